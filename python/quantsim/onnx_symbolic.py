"""ONNX symbolic functions of the ``quantsim`` operators (``torch.ops.quantsim.*``), so that
``torch.onnx.export`` of code calling them directly writes QuantizeLinear/DequantizeLinear nodes.
Registered for opsets 13 to 17 when ``quantsim`` is imported.

``quantsim.quantsim.QuantizationSimModel.export`` does not need them: it exports its quantizers
through the C++ exporter (docs/python.md §4). These are for models and scripts that call the
operators themselves (docs/onnx.md, the ``quantsim`` operator library).

What each operator becomes (s = scale, o = offset, the grid [qmin, qmax]; reference §1.2):

* ``quantize_dequantize``: ``DequantizeLinear(QuantizeLinear(x, s, -o), s, -o)`` with an
  uint8 zero point when ``0 <= qmin`` and ``qmax <= 255``, int8 when within [-128, 127]; a grid
  narrower than its storage type adds a ``Clip`` to ``[(qmin + o) s, (qmax + o) s]`` (the
  dequantized grid ends: clamping the integers and clamping their dequantized values agree, as
  dequantization is increasing). Per-channel scales (one non-1 dim) use the ``axis`` attribute.
  Grids beyond 8 bits and blockwise scales are written as the float ops of the definition,
  ``(Clip(Round(x / s) - o, qmin, qmax) + o) * s``, which ONNX Runtime computes exactly as the
  kernels (Round is half to even).
* ``quantize``: the grid integers, ``Clip(Round(x / s) - o, qmin, qmax)`` in float.
* ``dequantize``: ``(q + o) * s``.
* ``float_quantize_dequantize``: float16 and bfloat16 as a Cast pair; other formats are an error
  naming the format.
"""
import torch
from torch.onnx import symbolic_helper

__all__ = ["register"]

_ONNX_UINT8, _ONNX_INT8, _ONNX_FLOAT, _ONNX_FLOAT16, _ONNX_BFLOAT16 = 2, 3, 1, 10, 16


def _const_list(value):
    value = symbolic_helper._maybe_get_const(value, "is")  # pylint: disable=protected-access
    return list(value) if isinstance(value, (list, tuple)) else value


def _float_definition(g, x, scale, offset, qmin, qmax, dequantize):
    q = g.op("Sub", g.op("Round", g.op("Div", x, scale)), offset)
    q = g.op("Clip", q, g.op("Constant", value_t=torch.tensor(float(qmin))),
             g.op("Constant", value_t=torch.tensor(float(qmax))))
    return g.op("Mul", g.op("Add", q, offset), scale) if dequantize else q


def _per_channel_axis(x, scale):
    """The axis of a per-channel scale (one dim not 1), None for a per-tensor one; raises for
    others."""
    scale_sizes = symbolic_helper._get_tensor_sizes(scale)  # pylint: disable=protected-access
    x_rank = symbolic_helper._get_tensor_rank(x)  # pylint: disable=protected-access
    if scale_sizes is None or x_rank is None or None in scale_sizes:
        return "unknown"
    channel_dims = [d for d, size in enumerate(scale_sizes) if size != 1]
    if not channel_dims:
        return None
    if len(channel_dims) > 1:
        return "unknown"
    return x_rank - len(scale_sizes) + channel_dims[0]


def _quantize_dequantize(g, x, scale, offset, qmin, qmax, block_size):
    qmin = symbolic_helper._get_const(qmin, "i", "qmin")  # pylint: disable=protected-access
    qmax = symbolic_helper._get_const(qmax, "i", "qmax")  # pylint: disable=protected-access
    blocks = _const_list(block_size)
    if blocks:
        return _float_definition(g, x, scale, offset, qmin, qmax, dequantize=True)
    if 0 <= qmin and qmax <= 255:
        storage, low, high = _ONNX_UINT8, 0, 255
    elif -128 <= qmin and qmax <= 127:
        storage, low, high = _ONNX_INT8, -128, 127
    else:
        return _float_definition(g, x, scale, offset, qmin, qmax, dequantize=True)
    axis = _per_channel_axis(x, scale)
    if axis == "unknown":
        return _float_definition(g, x, scale, offset, qmin, qmax, dequantize=True)
    flat = g.op("Constant", value_t=torch.tensor([-1]))
    s, o = (scale, offset) if axis is None else (g.op("Reshape", scale, flat),
                                                g.op("Reshape", offset, flat))
    zero_point = g.op("Cast", g.op("Neg", o), to_i=storage)
    kwargs = {} if axis is None else {"axis_i": axis}
    y = g.op("DequantizeLinear", g.op("QuantizeLinear", x, s, zero_point, **kwargs), s,
             zero_point, **kwargs)
    if (qmin, qmax) != (low, high):
        # The grid's ends, dequantized: (qmin + o) * s and (qmax + o) * s, broadcast as the scale.
        lo = g.op("Mul", g.op("Add", offset, g.op("Constant", value_t=torch.tensor(float(qmin)))),
                  scale)
        hi = g.op("Mul", g.op("Add", offset, g.op("Constant", value_t=torch.tensor(float(qmax)))),
                  scale)
        y = g.op("Min", g.op("Max", y, lo), hi)
    return y


def _quantize(g, x, scale, offset, qmin, qmax, block_size):  # pylint: disable=unused-argument
    qmin = symbolic_helper._get_const(qmin, "i", "qmin")  # pylint: disable=protected-access
    qmax = symbolic_helper._get_const(qmax, "i", "qmax")  # pylint: disable=protected-access
    if _const_list(block_size):
        return symbolic_helper._onnx_unsupported(  # pylint: disable=protected-access
            "quantsim::quantize with a block_size")
    return _float_definition(g, x, scale, offset, qmin, qmax, dequantize=False)


def _dequantize(g, q, scale, offset, block_size):
    if _const_list(block_size):
        return symbolic_helper._onnx_unsupported(  # pylint: disable=protected-access
            "quantsim::dequantize with a block_size")
    return g.op("Mul", g.op("Add", q, offset), scale)


def _float_quantize_dequantize(g, x, exponent_bits, mantissa_bits, bias, format_maxval,
                               maxval=None):  # pylint: disable=unused-argument
    exponent = symbolic_helper._get_const(exponent_bits, "i", "exponent_bits")  # pylint: disable=protected-access
    mantissa = symbolic_helper._get_const(mantissa_bits, "i", "mantissa_bits")  # pylint: disable=protected-access
    has_bias = not symbolic_helper._is_none(bias)  # pylint: disable=protected-access
    formats = {(5, 10): _ONNX_FLOAT16, (8, 7): _ONNX_BFLOAT16}
    if has_bias or (exponent, mantissa) not in formats:
        return symbolic_helper._onnx_unsupported(  # pylint: disable=protected-access
            f"quantsim::float_quantize_dequantize of E{exponent}M{mantissa}"
            f"{' (OCP)' if has_bias else ''}: only float16 and bfloat16 have an ONNX type")
    return g.op("Cast", g.op("Cast", x, to_i=formats[(exponent, mantissa)]), to_i=_ONNX_FLOAT)


def register(opsets=range(13, 18)):
    """Registers the symbolic functions for each opset in ``opsets`` (idempotent)."""
    for opset in opsets:
        for name, fn in (("quantize_dequantize", _quantize_dequantize),
                         ("quantize", _quantize), ("dequantize", _dequantize),
                         ("float_quantize_dequantize", _float_quantize_dequantize)):
            torch.onnx.register_custom_op_symbolic(f"quantsim::{name}", fn, opset)
