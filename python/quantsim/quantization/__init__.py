"""Quantizers, encoding analyzers, functional ops and quantized tensors (reference §1-§5)."""
from . import affine, encoding_analyzer
from . import float  # pylint: disable=redefined-builtin
from .base import QuantizerBase
from .tensor import DequantizedTensor, EncodingError, QuantizedTensor, QuantizedTensorBase

__all__ = ["affine", "float", "encoding_analyzer", "QuantizerBase", "QuantizedTensorBase",
           "QuantizedTensor", "DequantizedTensor", "EncodingError"]
