"""Affine quantizers: Quantize, QuantizeDequantize, GroupedBlockQuantizeDequantize (reference §1).

Constructors take the reference's forms, positional or keyword::

    QuantizeDequantize(shape, bitwidth, symmetric, encoding_analyzer=None, block_size=None)
    QuantizeDequantize(shape, qmin, qmax, symmetric, encoding_analyzer=None, block_size=None)

With ``bitwidth`` the grid is signed iff ``symmetric``. The math is the C++ engine's.
"""
import torch

from ... import _C
from ..base import QuantizerBase
from ..tensor import DequantizedTensor, QuantizedTensor

__all__ = ["AffineQuantizerBase", "Quantize", "QuantizeDequantize",
           "GroupedBlockQuantizeDequantize"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_grid_arguments(cls_name, args, kwargs, extra=()):
    """(shape, qmin, qmax, symmetric, rest) from the reference's two constructor forms; ``rest``
    holds the keyword arguments after them (encoding_analyzer, block_size, and ``extra``)."""
    args = list(args)
    kwargs = dict(kwargs)
    names = ["encoding_analyzer", "block_size", *extra]

    def take(name):
        if args:
            return args.pop(0)
        if name in kwargs:
            return kwargs.pop(name)
        raise TypeError(f"{cls_name}() missing required argument '{name}'")

    shape = take("shape")
    explicit_grid = "qmin" in kwargs or (len(args) >= 2 and _is_int(args[1])) or \
        (len(args) == 1 and "qmax" in kwargs)
    if explicit_grid:
        qmin, qmax, symmetric = take("qmin"), take("qmax"), take("symmetric")
        if not (_is_int(qmin) and _is_int(qmax)):
            raise TypeError(f"{cls_name}(): qmin and qmax must be ints, got {qmin!r}, {qmax!r}")
    else:
        bitwidth, symmetric = take("bitwidth"), take("symmetric")
        if isinstance(bitwidth, bool) or not isinstance(bitwidth, (int, float)) \
                or int(bitwidth) != bitwidth:
            raise TypeError(f"{cls_name}(): bitwidth must be an integer, got {bitwidth!r}")
        qmin, qmax = _C.grid_from_bitwidth(int(bitwidth), bool(symmetric))
    rest = {}
    for name in names:
        rest[name] = args.pop(0) if args else kwargs.pop(name, None)
    if args:
        raise TypeError(f"{cls_name}() takes at most {4 + len(names)} positional arguments")
    if kwargs:
        raise TypeError(f"{cls_name}() got an unexpected keyword argument "
                        f"'{next(iter(kwargs))}'")
    if isinstance(shape, int):
        shape = (shape,)
    return tuple(shape), qmin, qmax, bool(symmetric), rest


class AffineQuantizerBase(QuantizerBase):
    """What Quantize, QuantizeDequantize and GroupedBlockQuantizeDequantize share: a grid
    [qmin, qmax], learnable ``min``/``max`` of ``shape``, an encoding analyzer."""

    min: torch.nn.Parameter
    max: torch.nn.Parameter

    @property
    def shape(self):
        return tuple(self._impl.shape)

    @property
    def qmin(self):
        return self._impl.qmin

    @property
    def qmax(self):
        return self._impl.qmax

    @property
    def symmetric(self):
        return self._impl.symmetric

    @property
    def block_size(self):
        return self._impl.block_size

    @property
    def encoding_analyzer(self):
        return self._impl.encoding_analyzer

    @property
    def bitwidth(self):
        return self._impl.bitwidth

    @bitwidth.setter
    def bitwidth(self, bitwidth):
        if isinstance(bitwidth, bool) or not isinstance(bitwidth, (int, float)):
            raise TypeError(f"bitwidth must be an integer, got {bitwidth!r}")
        self._impl.set_bitwidth(float(bitwidth))

    @property
    def signed(self):
        return self._impl.signed

    @signed.setter
    def signed(self, signed):
        self._impl.set_signed(bool(signed))

    def get_min(self, dtype=None):
        return self._impl.get_min(dtype)

    def get_max(self, dtype=None):
        return self._impl.get_max(dtype)

    def get_scale(self, dtype=None):
        return self._impl.get_scale(dtype)

    def get_offset(self, dtype=None):
        return self._impl.get_offset(dtype)

    def set_range(self, min, max):  # pylint: disable=redefined-builtin
        """Sets the range (tensors of ``shape`` or numbers); it becomes initialized."""
        if isinstance(min, torch.Tensor) or isinstance(max, torch.Tensor):
            self._impl.set_range(torch.as_tensor(min), torch.as_tensor(max))
        else:
            self._impl.set_range(float(min), float(max))

    def set_percentile(self, percentile):
        return self._impl.set_percentile(float(percentile))

    def extra_repr(self):
        return (f"shape={self.shape}, qmin={self.qmin}, qmax={self.qmax}, "
                f"symmetric={self.symmetric}")

    # The reference's state_dict carries the initialization flags as `_extra_state` (§1.9).
    def get_extra_state(self):
        return {name: torch.tensor(flag)
                for name, flag in self._impl.initialization_flags().items()}

    def set_extra_state(self, state):
        self._impl.set_initialization_flags({name: bool(flag) for name, flag in state.items()})

    def _engine_recipe(self):
        return dict(shape=self.shape, qmin=self.qmin, qmax=self.qmax, symmetric=self.symmetric,
                    encoding_analyzer=self.encoding_analyzer, block_size=self.block_size)

    @classmethod
    def _engine_from_recipe(cls, recipe):
        return cls._engine_class(**recipe)


class Quantize(AffineQuantizerBase):
    """x -> QuantizedTensor of grid integers (reference §1.2)."""

    _engine_class = _C.Quantize

    def __init__(self, *args, **kwargs):
        shape, qmin, qmax, symmetric, rest = _parse_grid_arguments("Quantize", args, kwargs)
        super().__init__(_C.Quantize(shape, qmin, qmax, symmetric, **rest))

    def forward(self, input):  # pylint: disable=redefined-builtin
        values, encoding = self._impl.forward(input)
        return QuantizedTensor._wrap(values, encoding)


class QuantizeDequantize(AffineQuantizerBase):
    """x -> DequantizedTensor: x quantized and dequantized (reference §1.2)."""

    _engine_class = _C.QuantizeDequantize

    def __init__(self, *args, **kwargs):
        shape, qmin, qmax, symmetric, rest = _parse_grid_arguments("QuantizeDequantize", args,
                                                                   kwargs)
        super().__init__(_C.QuantizeDequantize(shape, qmin, qmax, symmetric, **rest))

    def forward(self, input):  # pylint: disable=redefined-builtin
        output = self._impl.forward(input)
        encoding = self._impl.get_encoding() if self._impl.is_initialized() else None
        return DequantizedTensor._wrap(output, encoding)


class GroupedBlockQuantizeDequantize(QuantizeDequantize):
    """Low-power blockwise quantization, LPBQ (reference §1.5)::

        GroupedBlockQuantizeDequantize(shape, bitwidth, symmetric, decompressed_bw,
                                       encoding_analyzer=None, block_size=None,
                                       block_grouping=None)
    """

    _engine_class = _C.GroupedBlockQuantizeDequantize

    def __init__(self, *args, **kwargs):  # pylint: disable=super-init-not-called
        args = list(args)
        # decompressed_bw follows symmetric positionally: pull it out before the grid parse.
        if "decompressed_bw" in kwargs:
            decompressed_bw = kwargs.pop("decompressed_bw")
        elif len(args) >= 4:
            decompressed_bw = args.pop(3)
        else:
            raise TypeError("GroupedBlockQuantizeDequantize() missing required argument "
                            "'decompressed_bw'")
        shape, qmin, qmax, symmetric, rest = _parse_grid_arguments(
            "GroupedBlockQuantizeDequantize", args, kwargs, extra=("block_grouping",))
        QuantizerBase.__init__(self, _C.GroupedBlockQuantizeDequantize(
            shape, qmin, qmax, symmetric, decompressed_bw, **rest))

    @property
    def decompressed_bw(self):
        return self._impl.decompressed_bw

    @property
    def block_grouping(self):
        return tuple(self._impl.block_grouping)

    def get_per_channel_scale(self, dtype=None):
        return self._impl.get_per_channel_scale(dtype)

    def get_per_block_integer_scale(self):
        return self._impl.get_per_block_integer_scale()

    def _engine_recipe(self):
        recipe = super()._engine_recipe()
        recipe.update(decompressed_bw=self.decompressed_bw,
                      block_grouping=self.block_grouping or None)
        return recipe
