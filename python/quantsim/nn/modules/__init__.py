"""Float modules quantsim adds to torch.nn: the custom ops (quantsim.nn.modules.custom)."""
from . import custom  # noqa: F401
