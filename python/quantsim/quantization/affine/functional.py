"""quantize / dequantize / quantize_dequantize with the reference's argument forms (§1.2)::

    quantize(tensor, scale, offset, bitwidth, signed=False, block_size=None)
    quantize(tensor, scale, offset, *, num_steps, signed=False, block_size=None)
    quantize(tensor, scale, offset, qmin, qmax, block_size=None)   # qmin/qmax also by keyword

The kernels are the C++ core's (autograd included).
"""
from ... import _C

__all__ = ["quantize", "dequantize", "quantize_dequantize"]


def _grid(args, kwargs, fn_name):
    args = list(args)
    kwargs = dict(kwargs)
    block_size = kwargs.pop("block_size", None)
    if "num_steps" in kwargs:
        num_steps = kwargs.pop("num_steps")
        signed = kwargs.pop("signed", args.pop(0) if args else False)
        grid = _C.grid_from_num_steps(num_steps, bool(signed))
    elif "qmin" in kwargs or "qmax" in kwargs or \
            (len(args) >= 2 and not isinstance(args[1], bool) and isinstance(args[1], int)):
        qmin = kwargs.pop("qmin") if "qmin" in kwargs else args.pop(0)
        qmax = kwargs.pop("qmax") if "qmax" in kwargs else args.pop(0)
        grid = _C.grid_from_range(qmin, qmax)
    else:
        bitwidth = kwargs.pop("bitwidth") if "bitwidth" in kwargs else (
            args.pop(0) if args else None)
        if bitwidth is None:
            raise TypeError(f"{fn_name}() needs bitwidth, num_steps or qmin and qmax")
        signed = kwargs.pop("signed") if "signed" in kwargs else (args.pop(0) if args else False)
        grid = _C.grid_from_bitwidth(bitwidth, bool(signed))
    if args and block_size is None:
        block_size = args.pop(0)
    if args or kwargs:
        raise TypeError(f"{fn_name}() got unexpected arguments {args or list(kwargs)}")
    return grid, block_size


def _check_rounding(kwargs):
    mode = kwargs.pop("rounding_mode", "nearest")
    if mode != "nearest":
        raise TypeError(f"rounding_mode must be 'nearest', got {mode!r}")


def quantize(tensor, scale, offset, *args, **kwargs):
    """Grid integers of ``tensor`` (a tensor of its dtype): clamp(round(x / s) - o, qmin, qmax)."""
    _check_rounding(kwargs)
    (qmin, qmax), block_size = _grid(args, kwargs, "quantize")
    return _C.quantize(tensor, scale, offset, qmin, qmax, block_size)


def quantize_dequantize(tensor, scale, offset, *args, **kwargs):
    """(clamp(round(x / s) - o, qmin, qmax) + o) * s."""
    _check_rounding(kwargs)
    (qmin, qmax), block_size = _grid(args, kwargs, "quantize_dequantize")
    return _C.quantize_dequantize(tensor, scale, offset, qmin, qmax, block_size)


def dequantize(tensor, scale, offset, block_size=None):
    """(q + o) * s."""
    return _C.dequantize(tensor, scale, offset, block_size)
