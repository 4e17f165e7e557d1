"""Float quantization: FloatQuantizeDequantize and FloatEncoding (reference §5)."""
from .quantizer import FloatQuantizeDequantize
from ... import _C

FloatEncoding = _C.FloatEncoding

__all__ = ["FloatQuantizeDequantize", "FloatEncoding"]
