"""The custom float modules (docs/modules.md §6): torch functions as modules, so that each call
site of, say, an addition gets its own quantizers. Each computes what the C++ module of the same
name in quantsim::nn::custom computes (include/quantsim/nn/custom/*.h), with the same torch call.

Where the C++ module takes options at construction (dims, sizes, dtypes), so does the Python one;
arguments given to forward beyond the tensors are passed on to the torch call instead, as the
reference's thin wrappers do (``Mean()(x, 1)`` is ``torch.mean(x, 1)``).
"""
import torch
import torch.nn.functional as F

from ... import _C

__all__ = []


def _export(cls):
    __all__.append(cls.__name__)
    return cls


def _stateless(name, fn, doc, arity):
    """A module whose forward is one torch call on its `arity` tensors (extra arguments passed
    on)."""

    if arity == 1:
        def forward(self, x, *args, **kwargs):  # pylint: disable=unused-argument
            return fn(x, *args, **kwargs)
    else:
        def forward(self, x, y, *args, **kwargs):  # pylint: disable=unused-argument
            return fn(x, y, *args, **kwargs)
    cls = type(name, (torch.nn.Module,), {"forward": forward, "__doc__": doc,
                                           "__module__": __name__})
    return _export(cls)


Exponential = _stateless("Exponential", torch.exp, "`exp(x)` (torch.exp).", 1)
Erf = _stateless("Erf", torch.erf, "`erf(x)` (torch.erf).", 1)
Sqrt = _stateless("Sqrt", torch.sqrt, "`sqrt(x)` (torch.sqrt).", 1)
Log = _stateless("Log", torch.log, "`log(x)` (torch.log).", 1)
Abs = _stateless("Abs", torch.abs, "`|x|` (torch.abs).", 1)
Neg = _stateless("Neg", torch.neg, "`-x` (torch.neg).", 1)
ElementwiseCeil = _stateless("ElementwiseCeil", torch.ceil, "`ceil(x)` (torch.ceil).", 1)
ElementwiseFloor = _stateless("ElementwiseFloor", torch.floor, "`floor(x)` (torch.floor).", 1)
Sin = _stateless("Sin", torch.sin, "`sin(x)` (torch.sin).", 1)
Cos = _stateless("Cos", torch.cos, "`cos(x)` (torch.cos).", 1)
Asin = _stateless("Asin", torch.asin, "`asin(x)` (torch.asin).", 1)
Atan = _stateless("Atan", torch.atan, "`atan(x)` (torch.atan).", 1)
Round = _stateless("Round", torch.round, "`round(x)`, half to even (torch.round).", 1)
LogicalNot = _stateless("LogicalNot", torch.logical_not, "`!x` (torch.logical_not).", 1)
ElementwiseUnarySign = _stateless("ElementwiseUnarySign", torch.sign, "`sign(x)` (torch.sign).", 1)
RSqrt = _stateless("RSqrt", torch.rsqrt, "`1 / sqrt(x)` (torch.rsqrt).", 1)
Square = _stateless("Square", torch.square, "`x * x` (torch.square).", 1)
NonZero = _stateless("NonZero", torch.nonzero, "int64 coordinates of the nonzero elements "
                     "(torch.nonzero).", 1)
Shape = _stateless("Shape", lambda x: torch.tensor(x.shape, dtype=torch.int64),
                   "The sizes of `x` as a 1-D int64 tensor (as the C++ module; the reference "
                   "returns a torch.Size).", 1)
MatMul = _stateless("MatMul", torch.matmul, "Matrix product with broadcasting (torch.matmul).", 2)
Subtract = _stateless("Subtract", torch.sub, "`x - y` (torch.sub).", 2)
Divide = _stateless("Divide", torch.div, "`x / y`, true division (torch.div).", 2)
FloorDivide = _stateless("FloorDivide", torch.floor_divide, "`floor(x / y)` "
                         "(torch.floor_divide).", 2)
Greater = _stateless("Greater", torch.gt, "`x > y` (torch.gt).", 2)
Less = _stateless("Less", torch.lt, "`x < y` (torch.lt).", 2)
GreaterEqual = _stateless("GreaterEqual", torch.ge, "`x >= y` (torch.ge).", 2)
LessEqual = _stateless("LessEqual", torch.le, "`x <= y` (torch.le).", 2)
NotEqual = _stateless("NotEqual", torch.ne, "`x != y` (torch.ne).", 2)
Equal = _stateless("Equal", torch.eq, "`x == y` (torch.eq).", 2)
Remainder = _stateless("Remainder", torch.remainder, "`x - floor(x / y) * y` "
                       "(torch.remainder).", 2)
Fmod = _stateless("Fmod", torch.fmod, "`x - trunc(x / y) * y` (torch.fmod).", 2)
Pow = _stateless("Pow", torch.pow, "`x ** y` (torch.pow).", 2)
Maximum = _stateless("Maximum", torch.maximum, "Elementwise max, NaN-propagating "
                     "(torch.maximum).", 2)
Max = _stateless("Max", torch.max, "torch.max (binary form: elementwise max).", 2)
Minimum = _stateless("Minimum", torch.minimum, "Elementwise min, NaN-propagating "
                     "(torch.minimum).", 2)
Min = _stateless("Min", torch.min, "torch.min (binary form: elementwise min).", 2)
Bmm = _stateless("Bmm", torch.bmm, "Batched matrix product (torch.bmm).", 2)
LogicalOr = _stateless("LogicalOr", torch.logical_or, "`x || y` (torch.logical_or).", 2)
LogicalAnd = _stateless("LogicalAnd", torch.logical_and, "`x && y` (torch.logical_and).", 2)


@_export
class Add(torch.nn.Module):
    """`x + y` with broadcasting: torch.add when either is a tensor, else Python's `+`."""

    def forward(self, x, y):  # pylint: disable=no-self-use
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            return torch.add(x, y)
        return x + y


@_export
class Multiply(torch.nn.Module):
    """`x * y` with broadcasting: torch.mul when either is a tensor, else Python's `*`."""

    def forward(self, x, y):  # pylint: disable=no-self-use
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            return torch.mul(x, y)
        return x * y


@_export
class Where(torch.nn.Module):
    """`condition ? x : y` elementwise (torch.where)."""

    def forward(self, condition, x, y):  # pylint: disable=no-self-use
        return torch.where(condition, x, y)


@_export
class MaskedFill(torch.nn.Module):
    """`x.masked_fill_(mask, value)`: IN PLACE, returns `x` (as the reference)."""

    def forward(self, x, mask, value):  # pylint: disable=no-self-use
        return x.masked_fill_(mask, value)


@_export
class CustomSiLU(torch.nn.Module):
    """`mul(x, sigmoid(x))` from two submodules, so that each can be quantized."""

    def __init__(self):
        super().__init__()
        self.sigmoid = torch.nn.Sigmoid()
        self.mul = Multiply()

    def forward(self, x):
        return self.mul(x, self.sigmoid(x))


class _AddProduct(torch.nn.Module):
    def __init__(self, beta=1, alpha=1):
        super().__init__()
        self.beta, self.alpha = beta, alpha

    def extra_repr(self):
        return f"beta={self.beta}, alpha={self.alpha}"


@_export
class Baddbmm(_AddProduct):
    """`beta * input + alpha * bmm(batch1, batch2)` (torch.baddbmm)."""

    def forward(self, input, batch1, batch2, **kwargs):  # pylint: disable=redefined-builtin
        kwargs.setdefault("beta", self.beta)
        kwargs.setdefault("alpha", self.alpha)
        return torch.baddbmm(input, batch1, batch2, **kwargs)


@_export
class Addmm(_AddProduct):
    """`beta * input + alpha * mm(mat1, mat2)` (torch.addmm)."""

    def forward(self, input, mat1, mat2, **kwargs):  # pylint: disable=redefined-builtin
        kwargs.setdefault("beta", self.beta)
        kwargs.setdefault("alpha", self.alpha)
        return torch.addmm(input, mat1, mat2, **kwargs)


@_export
class DynamicLinear(torch.nn.Module):
    """`F.linear(x, weight, bias)` with the weight given at forward."""

    def forward(self, x, weight, bias=None):  # pylint: disable=no-self-use
        return F.linear(x, weight, bias)


@_export
class DynamicConv2d(torch.nn.Module):
    """`F.conv2d(x, weight, bias, stride, padding, dilation, groups)` with the weight given at
    forward."""

    def __init__(self, stride=1, padding=0, dilation=1, groups=1):
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x, weight, bias=None):
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


@_export
class BatchNorm(torch.nn.Module):
    """`F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)`;
    the running statistics take no gradient (used detached, updated in place in training)."""

    def __init__(self, training=False, momentum=0.1, eps=1e-5):
        super().__init__()
        self.bn_training, self.momentum, self.eps = training, momentum, eps

    def forward(self, input, running_mean, running_var, weight=None, bias=None):  # pylint: disable=redefined-builtin
        def statistic(t):
            return t.detach() if t is not None else t
        return F.batch_norm(input, statistic(running_mean), statistic(running_var), weight, bias,
                            self.bn_training, self.momentum, self.eps)


@_export
class GroupNorm(torch.nn.Module):
    """`F.group_norm(input, num_groups, weight, bias, eps)`; its quantized class is
    FakeQuantizedAimetGroupNorm."""

    def __init__(self, num_groups, eps=1e-5):
        super().__init__()
        self.num_groups, self.eps = num_groups, eps

    def forward(self, input, weight=None, bias=None):  # pylint: disable=redefined-builtin
        return F.group_norm(input, self.num_groups, weight, bias, self.eps)


@_export
class Normalize(torch.nn.Module):
    """`F.normalize(x, p, dim, eps)`."""

    def __init__(self, p=2.0, dim=1, eps=1e-12):
        super().__init__()
        self.p, self.dim, self.eps = p, dim, eps

    def forward(self, x):
        return F.normalize(x, self.p, self.dim, self.eps)


@_export
class RmsNorm(torch.nn.Module):
    """`x / sqrt(mean(x², axes, keepdim) + eps) * weight + bias` in float32, cast back."""

    def __init__(self, input_shape, axes, eps):
        super().__init__()
        self.input_shape, self.axes, self.eps = list(input_shape), list(axes), eps
        shape = [self.input_shape[a] for a in self.axes]
        self.weight = torch.nn.Parameter(torch.ones(shape))
        self.bias = torch.nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        x32 = x.to(torch.float32)
        rms = torch.sqrt(torch.mean(x32 * x32, self.axes, keepdim=True) + self.eps)
        return (torch.div(x32, rms) * self.weight + self.bias).to(x.dtype)


class _Reduce(torch.nn.Module):
    _fn = None

    def __init__(self, dim=None, keepdim=False):
        super().__init__()
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x, *args, **kwargs):
        fn = type(self)._fn
        if args or kwargs:
            return fn(x, *args, **kwargs)
        if self.dim is None:
            return fn(x)
        return fn(x, self.dim, keepdim=self.keepdim)


@_export
class Mean(_Reduce):
    """Mean over `dim` (torch.mean)."""
    _fn = staticmethod(torch.mean)


@_export
class Sum(_Reduce):
    """Sum over `dim` (torch.sum)."""
    _fn = staticmethod(torch.sum)


@_export
class Prod(_Reduce):
    """Product over `dim`, or of all elements (torch.prod)."""
    _fn = staticmethod(torch.prod)


@_export
class Argmin(_Reduce):
    """Index of the first minimum along `dim`, or in the flattened input (torch.argmin)."""
    _fn = staticmethod(torch.argmin)

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return torch.argmin(x, *args, **kwargs)
        return torch.argmin(x, self.dim, self.keepdim)


@_export
class Argmax(_Reduce):
    """Index of the first maximum along `dim`, or in the flattened input (torch.argmax)."""
    _fn = staticmethod(torch.argmax)

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return torch.argmax(x, *args, **kwargs)
        return torch.argmax(x, self.dim, self.keepdim)


@_export
class Norm(torch.nn.Module):
    """Vector p-norm over `dim` (torch.linalg.vector_norm, what torch.norm computes)."""

    def __init__(self, p=2.0, dim=None, keepdim=False):
        super().__init__()
        self.p, self.dim, self.keepdim = p, dim, keepdim

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return torch.norm(x, *args, **kwargs)
        return torch.linalg.vector_norm(x, self.p, self.dim, self.keepdim)


@_export
class CumSum(torch.nn.Module):
    """Inclusive cumulative sum along `dim` (torch.cumsum)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = dim

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return torch.cumsum(x, *args, **kwargs)
        return torch.cumsum(x, self.dim)


@_export
class TopK(torch.nn.Module):
    """The `k` largest (or smallest) elements along `dim` and their indices (torch.topk)."""

    def __init__(self, k=1, dim=-1, largest=True, sorted=True):  # pylint: disable=redefined-builtin
        super().__init__()
        self.k, self.dim, self.largest, self.sorted = k, dim, largest, sorted

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return torch.topk(x, *args, **kwargs)
        return torch.topk(x, self.k, self.dim, self.largest, self.sorted)


class _Sizes(torch.nn.Module):
    def __init__(self, *sizes):
        super().__init__()
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
            sizes = tuple(sizes[0])
        self.sizes = list(sizes)


@_export
class Reshape(_Sizes):
    """`x.reshape(sizes)` (torch.reshape)."""

    def forward(self, x, *shape):
        return torch.reshape(x, shape if shape else self.sizes)


@_export
class Permute(_Sizes):
    """`x.permute(dims)` (torch.permute)."""

    def forward(self, x, *dims):
        return torch.permute(x, dims if dims else self.sizes)


@_export
class Tile(_Sizes):
    """`x` repeated along each dim (torch.tile)."""

    def forward(self, x, *dims):
        return torch.tile(x, dims if dims else self.sizes)


@_export
class Expand(_Sizes):
    """`x.expand(sizes)`."""

    def forward(self, x, *sizes):
        return x.expand(*(sizes if sizes else self.sizes))


@_export
class StridedSlice(torch.nn.Module):
    """`x[slice(*ranges[0]), slice(*ranges[1]), ...]`."""

    def __init__(self, ranges=()):
        super().__init__()
        self.ranges = [list(r) for r in ranges]

    def forward(self, x, ranges=None):
        ranges = self.ranges if ranges is None else ranges
        return x[tuple(slice(*r) for r in ranges)]


@_export
class Split(torch.nn.Module):
    """`x` split along `dim` (torch.split), as a list: one leaf, every piece through the same
    output quantizer."""

    def __init__(self, split_size_or_sections=1, dim=0):
        super().__init__()
        self.split_size_or_sections, self.dim = split_size_or_sections, dim

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return list(torch.split(x, *args, **kwargs))
        return list(torch.split(x, self.split_size_or_sections, self.dim))


@_export
class Concat(torch.nn.Module):
    """`cat(xs, axis)`; its quantized class shares one input quantizer among all inputs."""

    def __init__(self, axis=0):
        super().__init__()
        self._axis = axis

    def forward(self, *x):
        return torch.cat(x, self._axis)


@_export
class Cast(torch.nn.Module):
    """`x` converted to `dtype` (Tensor.type(dtype))."""

    def __init__(self, dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x):
        return x.to(self.dtype)


@_export
class OneHot(torch.nn.Module):
    """ONNX OneHot: `one_hot(x, num_classes) * (on - off) + off` unless (off, on) = (0, 1)."""

    def __init__(self, num_classes, off_value=0, on_value=1):
        super().__init__()
        self.num_classes, self.off_value, self.on_value = num_classes, off_value, on_value

    def forward(self, x):
        out = F.one_hot(x, self.num_classes)
        off, on = self.off_value, self.on_value
        if (off, on) == (0, 1):
            return out
        return out * (on - off) + off


@_export
class Gather(torch.nn.Module):
    """`torch.gather(x, dim, index)`."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = dim

    def forward(self, x, index):
        return torch.gather(x, self.dim, index)


@_export
class IndexSelect(torch.nn.Module):
    """`torch.index_select(x, dim, index)`."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = dim

    def forward(self, x, index):
        return torch.index_select(x, self.dim, index)


@_export
class CustomGather(torch.nn.Module):
    """ONNX Gather: negative indices count from the end of `axis`."""

    def __init__(self, axis=0):
        super().__init__()
        self.axis = axis

    def forward(self, data, indices):
        axis = self.axis % data.dim()
        shape = list(data.shape[:axis]) + list(indices.shape) + list(data.shape[axis + 1:])
        wrapped = (indices < 0).to(indices.dtype) * data.shape[axis] + indices
        return torch.index_select(data, axis, wrapped.flatten()).reshape(shape)


@_export
class GatherNd(torch.nn.Module):
    """ONNX GatherND with `batch_dims` leading dims shared by data and indices."""

    def __init__(self, batch_dims=0):
        super().__init__()
        self.batch_dims = batch_dims

    def forward(self, data, indices):
        b = self.batch_dims
        m = indices.shape[-1]
        out_shape = list(indices.shape[:-1]) + list(data.shape[b + m:])
        batch = 1
        for d in range(b):
            batch *= data.shape[d]
        flat_data = data.reshape([batch] + list(data.shape[b:]))
        flat_indices = indices.to(torch.int64).reshape(batch, -1, m)
        index = [torch.arange(batch, dtype=flat_indices.dtype).unsqueeze(1)]
        index += [flat_indices.select(2, k) for k in range(m)]
        return flat_data[tuple(index)].reshape(out_shape)


@_export
class ScatterND(torch.nn.Module):
    """ONNX ScatterND: replace (0), add (1) or multiply (2) `updates` into a copy of `data`."""

    def __init__(self, reduction=0):
        super().__init__()
        self.reduction = reduction

    def forward(self, data, indices, updates):
        out = data.clone()
        index = tuple(indices.to(torch.int64).split(1, -1))
        selected = out[index]
        values = updates.reshape(selected.shape)
        if self.reduction == 1:
            out.index_put_(index, selected + values)
        elif self.reduction == 2:
            out.index_put_(index, selected * values)
        else:
            out.index_put_(index, values)
        return out


@_export
class ScatterElements(torch.nn.Module):
    """ONNX ScatterElements, IN PLACE on `x`: `x.scatter_(dim, index, src)` or
    `x.scatter_reduce_(dim, index, src, reduce)`."""

    def __init__(self, dim=0, reduce=None):
        super().__init__()
        self.dim, self.reduce = dim, reduce

    def forward(self, x, index, src):
        if self.reduce is not None:
            return x.scatter_reduce_(self.dim, index, src, self.reduce)
        return x.scatter_(self.dim, index, src)


@_export
class MaxPool2d(torch.nn.Module):
    """`F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)`; values only."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode)


@_export
class AdaptiveAvgPool2d(torch.nn.Module):
    """`F.adaptive_avg_pool2d(x, output_size)`."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


@_export
class AvgPool2d(torch.nn.Module):
    """`F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
    divisor_override)`."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


@_export
class Interpolate(torch.nn.Module):
    """`F.interpolate(x, size, scale_factor, mode, align_corners, recompute_scale_factor,
    antialias)`."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None, antialias=False):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor
        self.antialias = antialias

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return F.interpolate(x, *args, **kwargs)
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor, self.antialias)


@_export
class Pad(torch.nn.Module):
    """`F.pad(x, pad, mode, value)`."""

    def __init__(self, pad=(), mode="constant", value=0.0):
        super().__init__()
        self.pad, self.mode, self.value = list(pad), mode, value

    def forward(self, x, *args, **kwargs):
        if args or kwargs:
            return F.pad(x, *args, **kwargs)
        return F.pad(x, self.pad, self.mode, self.value)


# The custom ChannelShuffle is torch.nn.ChannelShuffle (one float module serves both rows).
ChannelShuffle = torch.nn.ChannelShuffle
__all__.append("ChannelShuffle")


@_export
class DepthToSpaceDCRMode(torch.nn.Module):
    """ONNX DepthToSpace, DCR mode, block size s."""

    def __init__(self, block_size):
        super().__init__()
        self.block_size = block_size

    def forward(self, x):
        b, c, h, w = x.shape
        s = self.block_size
        return x.reshape(b, s, s, c // (s * s), h, w).permute(0, 3, 4, 1, 5, 2).reshape(
            b, c // (s * s), h * s, w * s)


@_export
class DepthToSpaceCRDMode(torch.nn.Module):
    """ONNX DepthToSpace, CRD mode, blocks (bh, bw)."""

    def __init__(self, block_size):
        super().__init__()
        self.block_size = block_size

    def forward(self, x):
        b, c, h, w = x.shape
        bh, bw = (self.block_size if isinstance(self.block_size, (list, tuple))
                  else (self.block_size, self.block_size))
        return x.reshape(b, c // (bh * bw), bh, bw, h, w).permute(0, 1, 4, 2, 5, 3).reshape(
            b, c // (bh * bw), h * bh, w * bw)


@_export
class RoiAlign(torch.nn.Module):
    """ONNX RoiAlign: `roi_align(input, cat(batch_indices[:, None], rois), output_size,
    spatial_scale, sampling_ratio, aligned)`, the C++ core's roi_align (torchvision's)."""

    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned=False):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input, rois, batch_indices):  # pylint: disable=redefined-builtin
        size = (self.output_size if isinstance(self.output_size, (list, tuple))
                else (self.output_size, self.output_size))
        boxes = torch.cat([batch_indices.reshape(-1, 1).to(rois.dtype), rois], 1)
        return _C._custom.roi_align(input, boxes, list(size), float(self.spatial_scale),
                                    int(self.sampling_ratio), bool(self.aligned))


@_export
class NonMaxSuppression(torch.nn.Module):
    """ONNX NonMaxSuppression: rows [batch, class, box] of the kept boxes, int64
    (B·C·max_output_boxes_per_class, 3); the C++ core's nms (torchvision's)."""

    def __init__(self, iou_threshold, score_threshold, max_output_boxes_per_class):
        super().__init__()
        self.iou_threshold, self.score_threshold = iou_threshold, score_threshold
        self.max_output_boxes_per_class = max_output_boxes_per_class

    def forward(self, boxes, scores):
        return _C._custom.non_max_suppression(boxes, scores, float(self.iou_threshold),
                                              float(self.score_threshold),
                                              int(self.max_output_boxes_per_class))
