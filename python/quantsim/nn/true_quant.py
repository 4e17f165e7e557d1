"""QuantizationMixin: a fake-quantized module that can run a quantized kernel instead of the
float op (docs/modules.md §4; the C++ ``QuantizationMixin<Float>``)."""
import torch

from ..quantization.tensor import QuantizedTensor, QuantizedTensorBase
from .base import BaseQuantizationMixin, _is_floating
from . import _leaves

__all__ = ["QuantizationMixin", "KernelArgs"]

_UNSET = object()


class KernelArgs:
    """What a kernel receives (C++ ``KernelArgs``):

    * ``inputs``: one per input slot: a QuantizedTensor (grid integers with their encoding) for a
      floating input with a quantizer, the tensor as given otherwise (None for an absent one);
    * ``parameters``: {name: QuantizedTensor} for parameters with an initialized quantizer, the
      parameter itself otherwise;
    * ``output_encoding``: output_quantizers[0]'s encoding, or None;
    * ``module``: the module, for its options.
    """

    def __init__(self, inputs, parameters, output_encoding, module):
        self.inputs = inputs
        self.parameters = parameters
        self.output_encoding = output_encoding
        self.module = module

    @staticmethod
    def _real(value):
        if isinstance(value, QuantizedTensorBase) and value.encoding is not None:
            return value.dequantize().as_subclass(torch.Tensor)
        return value

    def real_input(self, index):
        """Input `index` as real values: dequantized, or as given without encoding."""
        return self._real(self.inputs[index])

    def real_parameter(self, name):
        """Parameter `name` as real values; None when the module has no such parameter."""
        return self._real(self.parameters.get(name))


class QuantizationMixin(BaseQuantizationMixin):
    """``Quantized<Name>`` classes. Without a kernel, and always inside compute_encodings(), they
    compute exactly what their ``FakeQuantized<Name>`` counterparts compute. With one
    (``set_kernel``, or ``set_default_kernel`` for the class), a forward returning one tensor
    calls ``kernel(KernelArgs)``, which returns a QuantizedTensor that the module dequantizes.

        >>> def kernel(args):
        ...     y = F.linear(args.real_input(0), args.real_parameter("weight"),
        ...                  args.real_parameter("bias"))
        ...     return QuantizedTensor(args.output_encoding.quantize(y), args.output_encoding)
        >>> qlinear.set_kernel(kernel)
    """

    _prefix = "Quantized"
    _cls_to_qcls = {}
    _default_kernel = None

    @classmethod
    def _quantized_class_of(cls, module_cls):
        # A QuantizationMixin class where the table lists one, else the FakeQuantized class
        # (the C++ from_module; the reference falls back to its legacy mixin the same way).
        from .fake_quant import FakeQuantizationMixin  # pylint: disable=import-outside-toplevel
        return (QuantizationMixin._cls_to_qcls.get(module_cls)
                or FakeQuantizationMixin._cls_to_qcls.get(module_cls))

    @classmethod
    def set_default_kernel(cls, kernel):
        """The kernel of every instance of this class that has none of its own."""
        cls._default_kernel = kernel

    @classmethod
    def get_default_kernel(cls):
        return cls._default_kernel

    def set_kernel(self, kernel):
        """This instance's kernel; None forces the fake-quantization path even when the class
        has a default kernel."""
        self.__dict__["_kernel"] = kernel

    def reset_kernel(self):
        """Back to the class default."""
        self.__dict__.pop("_kernel", None)

    def get_kernel(self):
        kernel = self.__dict__.get("_kernel", _UNSET)
        return type(self).get_default_kernel() if kernel is _UNSET else kernel

    def _dispatch(self, *args, **kwargs):
        kernel = self.get_kernel()
        if kernel is None or self._is_calibrating():
            return self._fake_quantized_forward(*args, **kwargs)
        return self._kernel_forward(kernel, args, kwargs)

    def _kernel_forward(self, kernel, args, kwargs):
        names, values = self._bind_arguments(args, kwargs)
        names, values = self._complete_arguments(names, values)
        inputs = [None] * len(self.input_quantizers)
        bindings = self._leaf_bindings()

        def collect(leaf, x):
            index = bindings.get(leaf)
            if index is not None and _is_floating(x):
                quantizer = self.input_quantizers[index]
                inputs[index] = (quantizer._quantize_to_grid(x)  # pylint: disable=protected-access
                                 if quantizer is not None else x)
            return x

        first = 0
        for value in values:
            first += _leaves.map_leaves(value, first, collect)[1]
        parameters = {}
        for name, parameter in self.named_parameters(recurse=False):
            quantizer = self.param_quantizers[name] if name in self.param_quantizers else None
            parameters[name] = (quantizer._quantize_to_grid(parameter)  # pylint: disable=protected-access
                                if quantizer is not None and quantizer.is_initialized()
                                else parameter)
        output_quantizer = self.output_quantizers[0] if len(self.output_quantizers) else None
        encoding = output_quantizer.get_encoding() if output_quantizer is not None else None
        out = kernel(KernelArgs(inputs, parameters, encoding, self))
        if isinstance(out, QuantizedTensor) and out.encoding is not None:
            out = out.dequantize()
        return out
