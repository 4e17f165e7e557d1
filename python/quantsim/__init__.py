"""quantsim: quantization simulation of neural networks on quantsim's C++ core.

The layout mirrors the reference's so that code ports by changing imports only
(docs/python.md): ``quantsim.nn`` (quantized modules and mixins), ``quantsim.quantization``
(quantizers, encoding analyzers, functional ops, quantized tensors) and
``quantsim.quantsim.QuantizationSimModel``.
"""
import torch  # noqa: F401  (loads libtorch and its Python bindings before the extension)

from . import _C  # noqa: E402  (registers the `quantsim` operator library: torch.ops.quantsim.*)

__version__ = _C.__version__

from . import quantization  # noqa: E402,F401
from . import nn  # noqa: E402,F401
from . import onnx_symbolic  # noqa: E402

onnx_symbolic.register()
