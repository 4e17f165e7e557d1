"""FakeQuantizationMixin: quantize-dequantize around the float module's own forward
(docs/modules.md §2; the C++ ``FakeQuantizationMixin<Float>``)."""
from .base import BaseQuantizationMixin

__all__ = ["FakeQuantizationMixin"]


class FakeQuantizationMixin(BaseQuantizationMixin):
    """``FakeQuantized<Name>`` classes: always ``oq(Float.forward(iq(x), ...))`` with the
    parameters replaced by their quantized values.

        >>> qconv = FakeQuantizedConv2d(3, 8, 3)
        >>> qconv.param_quantizers["weight"] = QuantizeDequantize((8, 1, 1, 1), 8, True)
        >>> y = qconv(x)
    """

    _prefix = "FakeQuantized"
    _cls_to_qcls = {}
