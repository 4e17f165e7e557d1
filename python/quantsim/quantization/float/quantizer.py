"""FloatQuantizeDequantize: fake-casts to a floating-point format (reference §5)::

    FloatQuantizeDequantize(exponent_bits=None, mantissa_bits=None, dtype=None,
                            encoding_analyzer=None)

Either the bits or ``dtype`` (torch.float16 / torch.bfloat16). The math is the C++ engine's.
"""
from ... import _C
from ..base import QuantizerBase
from ..tensor import DequantizedTensor

__all__ = ["FloatQuantizeDequantize"]


class FloatQuantizeDequantize(QuantizerBase):
    """See the module docstring."""

    def __init__(self, exponent_bits=None, mantissa_bits=None, dtype=None,
                 encoding_analyzer=None):
        bits = (exponent_bits, mantissa_bits)
        if (dtype is None) == all(b is None for b in bits) or (dtype is None and None in bits):
            raise ValueError("FloatQuantizeDequantize takes exponent_bits and mantissa_bits, or "
                             f"dtype; got exponent_bits={exponent_bits}, "
                             f"mantissa_bits={mantissa_bits}, dtype={dtype}")
        super().__init__(_C.FloatQuantizeDequantize(exponent_bits, mantissa_bits, dtype,
                                                    encoding_analyzer))

    @property
    def exponent_bits(self):
        return self._impl.exponent_bits

    @property
    def mantissa_bits(self):
        return self._impl.mantissa_bits

    @property
    def encoding_analyzer(self):
        return self._impl.encoding_analyzer

    def is_float16(self):
        return self._impl.is_float16()

    def is_bfloat16(self):
        return self._impl.is_bfloat16()

    def forward(self, input):  # pylint: disable=redefined-builtin
        return DequantizedTensor._wrap(self._impl.forward(input), self._impl.get_encoding())

    def _engine_recipe(self):
        return dict(exponent_bits=self.exponent_bits, mantissa_bits=self.mantissa_bits,
                    encoding_analyzer=self.encoding_analyzer)

    @classmethod
    def _engine_from_recipe(cls, recipe):
        return _C.FloatQuantizeDequantize(recipe["exponent_bits"], recipe["mantissa_bits"],
                                          None, recipe["encoding_analyzer"])
