"""QuantizedTensor and DequantizedTensor: torch.Tensor subclasses carrying an ``encoding``.

A ``QuantizedTensor`` holds grid integers (as floats), a ``DequantizedTensor`` the real values
on the grid; both know the encoding that relates them (reference §4). How the encoding follows a
tensor through torch operations:

* casts (``float``, ``half``, ``to``, ...) keep the class and move the encoding to the result's
  device; a cast to a non-floating dtype is an error (use ``quantized_repr()``);
* ``contiguous``, ``requires_grad_``, ``share_memory_`` keep the class and the encoding;
* shape and indexing ops (``view``, ``reshape``, ``permute``, ``[]``, ``split``, ...) keep the
  class; the encoding survives only when it is per tensor;
* other in-place ops return the same object with its encoding dropped;
* every other op returns plain tensors: it acts on the stored values, never dequantizing
  implicitly.
"""
import copy

import torch

from .. import _C

__all__ = ["QuantizedTensorBase", "QuantizedTensor", "DequantizedTensor", "EncodingError"]

EncodingError = _C.EncodingError

_CAST_OPS = frozenset(["half", "float", "double", "bfloat16", "char", "short", "int", "long",
                       "cuda", "cpu", "to", "type", "type_as"])
_PASS_THROUGH_OPS = frozenset(["contiguous", "requires_grad_", "share_memory_"])
_PER_TENSOR_PASS_THROUGH_OPS = frozenset([
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "transpose_",
    "squeeze", "squeeze_", "unsqueeze", "unsqueeze_", "flatten", "unflatten", "expand",
    "expand_as", "repeat", "tile", "__getitem__", "select", "narrow", "chunk", "split",
    "tensor_split", "hsplit", "vsplit", "dsplit", "unbind", "gather", "index_select",
    "masked_select", "take", "take_along_dim", "movedim", "moveaxis", "swapaxes", "swapdims",
    "t", "t_", "flip", "fliplr", "flipud", "as_strided", "resize", "resize_", "resize_as_",
    "broadcast_to", "kthvalue", "msort", "permute_copy", "transpose_copy", "view_copy",
    "expand_copy", "select_copy", "narrow_copy", "squeeze_copy", "unsqueeze_copy",
    "split_copy", "unbind_copy", "t_copy", "as_strided_copy", "swapaxes_", "swapdims_",
])


def _name_of(func):
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a property of Tensor (shape, grad, ...)
        return None
    return name


class QuantizedTensorBase(torch.Tensor):
    """Base of QuantizedTensor and DequantizedTensor: a float tensor with an ``encoding``."""

    encoding = None

    def __new__(cls, data, encoding=None):
        if not isinstance(data, torch.Tensor):
            data = torch.as_tensor(data)
        return cls._wrap(data, encoding)

    def __init__(self, data, encoding=None):  # pylint: disable=super-init-not-called
        pass

    @classmethod
    def _wrap(cls, data, encoding):
        if not data.is_floating_point():
            raise RuntimeError(f"{cls.__name__} must hold a floating-point tensor, got "
                               f"dtype {data.dtype}; use quantized_repr() for integers")
        result = data.as_subclass(cls)
        result.encoding = encoding
        return result

    def quantize(self):
        raise NotImplementedError

    def dequantize(self):
        raise NotImplementedError

    def quantized_repr(self):
        """The grid integers in the encoding's integer dtype (uint8, int8, int16, int32)."""
        encoding = self._require_encoding("quantized_repr()")
        with torch._C.DisableTorchFunction():
            return self.quantize().as_subclass(torch.Tensor).to(encoding.dtype)

    def _require_encoding(self, what):
        if self.encoding is None:
            raise EncodingError(f"{type(self).__name__} has no encoding: cannot {what}")
        return self.encoding

    def clone(self, *args, **kwargs):
        with torch._C.DisableTorchFunction():
            data = torch.Tensor.clone(self, *args, **kwargs)
        encoding = self.encoding.clone() if self.encoding is not None else None
        return type(self)._wrap(data, encoding)

    def detach(self):
        with torch._C.DisableTorchFunction():
            data = torch.Tensor.detach(self)
        encoding = self.encoding.detach() if self.encoding is not None else None
        return type(self)._wrap(data, encoding)

    def __copy__(self):
        return type(self)._wrap(self.as_subclass(torch.Tensor), self.encoding)

    def __reduce_ex__(self, protocol):
        # Pickled as its values and its encoding's legacy description would lose the
        # encoding's tensors; a plain tensor plus the encoding object is exact.
        return (_rebuild, (type(self), self.as_subclass(torch.Tensor).detach().clone(),
                           self.encoding))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunction():
            result = func(*args, **kwargs)
        self = args[0] if args else None
        name = _name_of(func)
        if name is None or not isinstance(self, QuantizedTensorBase):
            return _plain(result, keep=self)
        if name in _CAST_OPS:
            return self._cast_result(result)
        if name in _PASS_THROUGH_OPS:
            return _rewrap(result, type(self), copy.copy(self.encoding), self)
        if name in _PER_TENSOR_PASS_THROUGH_OPS:
            encoding = self.encoding
            keep = encoding is not None and encoding.granularity == "pertensor"
            return _rewrap(result, type(self), copy.copy(encoding) if keep else None, self)
        if name.endswith("_") and not name.startswith("__") and result is self:
            self.encoding = None
            return self
        return _plain(result, keep=None)

    def _cast_result(self, result):
        if result is self or not isinstance(result, torch.Tensor):
            return result
        if not result.is_floating_point():
            raise RuntimeError(f"cast of a {type(self).__name__} to {result.dtype}: the result "
                               "must be floating point; use quantized_repr() for integers")
        encoding = self.encoding
        if encoding is not None and result.device != self.device:
            encoding = encoding.to(str(result.device))
        return type(self)._wrap(result.as_subclass(torch.Tensor), encoding)


def _rebuild(cls, data, encoding):
    return cls._wrap(data, encoding)


def _plain(result, keep):
    """Results as plain tensors (in-place ops on another tensor return that object)."""
    if isinstance(result, QuantizedTensorBase) and result is not keep:
        return result.as_subclass(torch.Tensor)
    if isinstance(result, (tuple, list)) and any(isinstance(r, QuantizedTensorBase)
                                                 for r in result):
        return type(result)(_plain(r, keep) for r in result)
    return result


def _rewrap(result, cls, encoding, self):
    if result is self:
        return self
    if isinstance(result, torch.Tensor):
        if not result.is_floating_point():
            return result.as_subclass(torch.Tensor)
        return cls._wrap(result.as_subclass(torch.Tensor), encoding)
    if isinstance(result, (tuple, list)):
        items = [_rewrap(r, cls, copy.copy(encoding), self) for r in result]
        return type(result)(*items) if hasattr(result, "_fields") else type(result)(items)
    return result


class QuantizedTensor(QuantizedTensorBase):
    """Grid integers (held as floats) with the encoding that produced them."""

    def quantize(self):
        return self

    def dequantize(self):
        encoding = self._require_encoding("dequantize()")
        with torch._C.DisableTorchFunction():
            values = encoding.dequantize(self.as_subclass(torch.Tensor))
        return DequantizedTensor._wrap(values, copy.copy(encoding))


class DequantizedTensor(QuantizedTensorBase):
    """Real values lying on an encoding's grid (a quantize-dequantize output)."""

    def quantize(self):
        encoding = self._require_encoding("quantize()")
        with torch._C.DisableTorchFunction():
            values = encoding.quantize(self.as_subclass(torch.Tensor))
        return QuantizedTensor._wrap(values, copy.copy(encoding))

    def dequantize(self):
        return self
