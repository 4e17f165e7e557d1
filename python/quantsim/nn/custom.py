"""``quantsim.nn.custom``: the custom float modules (quantsim.nn.modules.custom) and their
quantized classes (``FakeQuantizedAdd``, ``QuantizedAdd``, ...; added by quantsim.nn from the
module table)."""
from .modules.custom import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from .modules.custom import __all__ as _float_modules

__all__ = list(_float_modules)
