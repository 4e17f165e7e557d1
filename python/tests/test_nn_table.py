"""Every row of the module table from Python, bit for bit against the C++ module.

For each row of the C++ module table test (tests/nn/module_table_*_test.cpp), the test-only
extension ``quantsim._testing`` builds the C++ float module and its inputs, and runs on the C++
quantized module: the float module, the quantized module with empty slots, then with every slot
filled (activations 8-bit asymmetric, parameters 8-bit symmetric, per tensor) one calibration
call in ``compute_encodings()`` and the calibrated call. This test builds the matching torch.nn
module here (FACTORIES), copies the C++ module's parameters and buffers into it by name, converts
it with ``QuantizationMixin.from_module``, replays the same sequence on the same inputs and
requires every output, and every calibrated range, to be bit-identical to the C++ ones.
"""
import glob
import os
import subprocess
import sys
import tempfile

import pytest
import torch
from torch import nn

import quantsim
from quantsim.nn import QuantizationMixin, custom
from quantsim.quantization.affine import QuantizeDequantize

# quantsim._testing links its own copy of libquantsim, whose operator library (TORCH_LIBRARY
# quantsim) must not be registered twice in one process: the C++ rows run in a process of their
# own, without quantsim._C, and hand their results over through torch.save.
_RUN_CPP_ROWS = """
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("_testing", sys.argv[1])
testing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(testing)
results = []
for i, row in enumerate(testing.rows()):
    try:
        results.append(testing.run(i))
    except Exception as error:  # reported by the row's test
        row["error"] = f"{type(error).__name__}: {error}"
        results.append(row)
torch.save(results, sys.argv[2])
"""


def _cpp_rows():
    libraries = glob.glob(os.path.join(os.path.dirname(quantsim.__file__), "_testing*.so"))
    assert libraries, "quantsim._testing is not built (target quantsim_python_testing)"
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "rows.pt")
        subprocess.run([sys.executable, "-c", _RUN_CPP_ROWS, libraries[0], out], check=True)
        return torch.load(out)


ROWS = _cpp_rows()


def _key(row):
    return (row["name"], row["variant"], row["custom"])


def _lstm_args(leaves):
    return (leaves[0], (leaves[1], leaves[2])) if len(leaves) == 3 else (leaves[0],)


def _lstm_cell_args(leaves):
    return (leaves[0], (leaves[1], leaves[2])) if len(leaves) == 3 else (leaves[0],)


def _unpool_args(leaves):
    # The C++ row passes the full output size (libtorch 1.13 needs N and C); torch.nn's default
    # output size for kernel 2 is the same.
    return (leaves[0], leaves[1])


# (row name, variant, custom) -> (float module factory[, arguments from the C++ input leaves]).
# Without an arguments function the leaves are the positional arguments, in order.
FACTORIES = {
    # activation
    ("CELU", "", False): (lambda: nn.CELU(alpha=0.7),),
    ("ELU", "", False): (nn.ELU,),
    ("GELU", "", False): (nn.GELU,),
    ("GLU", "", False): (nn.GLU,),
    ("Hardshrink", "", False): (lambda: nn.Hardshrink(0.4),),
    ("Hardsigmoid", "", False): (nn.Hardsigmoid,),
    ("Hardswish", "", False): (nn.Hardswish,),
    ("Hardtanh", "", False): (nn.Hardtanh,),
    ("LeakyReLU", "", False): (lambda: nn.LeakyReLU(0.2),),
    ("LogSigmoid", "", False): (nn.LogSigmoid,),
    ("LogSoftmax", "", False): (lambda: nn.LogSoftmax(1),),
    ("Mish", "", False): (nn.Mish,),
    ("PReLU", "", False): (lambda: nn.PReLU(3),),
    ("RReLU", "", False): (nn.RReLU,),
    ("ReLU", "", False): (nn.ReLU,),
    ("ReLU6", "", False): (nn.ReLU6,),
    ("SELU", "", False): (nn.SELU,),
    ("SiLU", "", False): (nn.SiLU,),
    ("Sigmoid", "", False): (nn.Sigmoid,),
    ("Softmax", "", False): (lambda: nn.Softmax(1),),
    ("Softmax2d", "", False): (nn.Softmax2d,),
    ("Softmin", "", False): (lambda: nn.Softmin(1),),
    ("Softplus", "", False): (lambda: nn.Softplus(beta=2, threshold=3),),
    ("Softshrink", "", False): (lambda: nn.Softshrink(0.3),),
    ("Softsign", "", False): (nn.Softsign,),
    ("Tanh", "", False): (nn.Tanh,),
    ("Tanhshrink", "", False): (nn.Tanhshrink,),
    ("Threshold", "", False): (lambda: nn.Threshold(0.1, 20),),
    # pooling
    ("AdaptiveAvgPool1d", "", False): (lambda: nn.AdaptiveAvgPool1d(4),),
    ("AdaptiveAvgPool2d", "", False): (lambda: nn.AdaptiveAvgPool2d(3),),
    ("AdaptiveAvgPool3d", "", False): (lambda: nn.AdaptiveAvgPool3d(3),),
    ("AdaptiveMaxPool1d", "", False): (lambda: nn.AdaptiveMaxPool1d(4),),
    ("AdaptiveMaxPool2d", "", False): (lambda: nn.AdaptiveMaxPool2d(3),),
    ("AdaptiveMaxPool3d", "", False): (lambda: nn.AdaptiveMaxPool3d(3),),
    ("AvgPool1d", "", False): (lambda: nn.AvgPool1d(2),),
    ("AvgPool2d", "", False): (lambda: nn.AvgPool2d(3, padding=1),),
    ("AvgPool3d", "", False): (lambda: nn.AvgPool3d(2),),
    ("FractionalMaxPool2d", "", False): (lambda: nn.FractionalMaxPool2d(2, output_size=3),),
    ("FractionalMaxPool3d", "", False): (lambda: nn.FractionalMaxPool3d(2, output_ratio=0.5),),
    ("LPPool1d", "", False): (lambda: nn.LPPool1d(2, 2),),
    ("LPPool2d", "", False): (lambda: nn.LPPool2d(3, 2),),
    ("MaxPool1d", "", False): (lambda: nn.MaxPool1d(3, stride=2),),
    ("MaxPool2d", "", False): (lambda: nn.MaxPool2d(2),),
    ("MaxPool3d", "", False): (lambda: nn.MaxPool3d(2),),
    ("MaxUnpool1d", "", False): (lambda: nn.MaxUnpool1d(2), _unpool_args),
    ("MaxUnpool2d", "", False): (lambda: nn.MaxUnpool2d(2), _unpool_args),
    ("MaxUnpool3d", "", False): (lambda: nn.MaxUnpool3d(2), _unpool_args),
    # normalization
    ("BatchNorm1d", "", False): (lambda: nn.BatchNorm1d(3),),
    ("BatchNorm2d", "", False): (lambda: nn.BatchNorm2d(3),),
    ("BatchNorm3d", "", False): (lambda: nn.BatchNorm3d(3),),
    ("CrossMapLRN2d", "", False): (lambda: nn.CrossMapLRN2d(3),),
    ("GroupNorm", "", False): (lambda: nn.GroupNorm(2, 4),),
    ("InstanceNorm1d", "", False): (lambda: nn.InstanceNorm1d(3, affine=True),),
    ("InstanceNorm2d", "", False): (lambda: nn.InstanceNorm2d(3, affine=True),),
    ("InstanceNorm3d", "", False): (lambda: nn.InstanceNorm3d(3, affine=True),),
    ("LayerNorm", "", False): (lambda: nn.LayerNorm([4]),),
    ("LocalResponseNorm", "", False): (lambda: nn.LocalResponseNorm(2),),
    ("SyncBatchNorm", "", False): (lambda: nn.SyncBatchNorm(3),),
    # conv
    ("Conv1d", "", False): (lambda: nn.Conv1d(3, 4, 3),),
    ("Conv2d", "", False): (lambda: nn.Conv2d(3, 4, 3, padding=1),),
    ("Conv3d", "", False): (lambda: nn.Conv3d(2, 3, 2),),
    ("ConvTranspose1d", "", False): (lambda: nn.ConvTranspose1d(3, 2, 3, stride=2),),
    ("ConvTranspose2d", "", False): (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2),),
    ("ConvTranspose3d", "", False): (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2),),
    ("Fold", "", False): (lambda: nn.Fold((4, 4), (2, 2)),),
    ("Unfold", "", False): (lambda: nn.Unfold((2, 2)),),
    # linear
    ("Bilinear", "", False): (lambda: nn.Bilinear(3, 4, 5),),
    ("Embedding", "", False): (lambda: nn.Embedding(10, 4),),
    ("EmbeddingBag", "", False): (lambda: nn.EmbeddingBag(10, 4, mode="sum"),),
    ("EmbeddingBag", "no per_sample_weights", False): (lambda: nn.EmbeddingBag(10, 4, mode="mean"),),
    ("Flatten", "", False): (nn.Flatten,),
    ("Identity", "", False): (nn.Identity,),
    ("Linear", "", False): (lambda: nn.Linear(4, 3),),
    ("Unflatten", "", False): (lambda: nn.Unflatten(1, (2, 2)),),
    # shape
    ("AlphaDropout", "", False): (lambda: nn.AlphaDropout(0.5),),
    ("ChannelShuffle", "", False): (lambda: nn.ChannelShuffle(2),),
    ("ConstantPad1d", "", False): (lambda: nn.ConstantPad1d(2, 0.5),),
    ("ConstantPad2d", "", False): (lambda: nn.ConstantPad2d((1, 0, 2, 1), -0.5),),
    ("ConstantPad3d", "", False): (lambda: nn.ConstantPad3d(1, 0.25),),
    ("Dropout", "", False): (lambda: nn.Dropout(0.5),),
    ("Dropout2d", "", False): (lambda: nn.Dropout2d(0.5),),
    ("Dropout3d", "", False): (lambda: nn.Dropout3d(0.5),),
    ("FeatureAlphaDropout", "", False): (lambda: nn.FeatureAlphaDropout(0.5),),
    ("PixelShuffle", "", False): (lambda: nn.PixelShuffle(2),),
    ("PixelUnshuffle", "", False): (lambda: nn.PixelUnshuffle(2),),
    ("ReflectionPad1d", "", False): (lambda: nn.ReflectionPad1d(2),),
    ("ReflectionPad2d", "", False): (lambda: nn.ReflectionPad2d(1),),
    ("ReplicationPad1d", "", False): (lambda: nn.ReplicationPad1d(2),),
    ("ReplicationPad2d", "", False): (lambda: nn.ReplicationPad2d(1),),
    ("ReplicationPad3d", "", False): (lambda: nn.ReplicationPad3d(1),),
    ("Upsample", "", False): (
        lambda: nn.Upsample(scale_factor=(2.0, 2.0), mode="bilinear", align_corners=False),),
    ("UpsamplingBilinear2d", "", False): (
        lambda: nn.UpsamplingBilinear2d(scale_factor=(2.0, 2.0)),),
    ("UpsamplingNearest2d", "", False): (lambda: nn.UpsamplingNearest2d(size=(5, 4)),),
    ("ZeroPad2d", "", False): (lambda: nn.ZeroPad2d((1, 2, 0, 1)),),
    # loss
    ("AdaptiveLogSoftmaxWithLoss", "", False): (
        lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4, 8], div_value=2.0),),
    ("BCELoss", "", False): (nn.BCELoss,),
    ("BCEWithLogitsLoss", "", False): (nn.BCEWithLogitsLoss,),
    ("CTCLoss", "", False): (nn.CTCLoss,),
    ("CosineEmbeddingLoss", "", False): (nn.CosineEmbeddingLoss,),
    ("CosineSimilarity", "", False): (nn.CosineSimilarity,),
    ("CrossEntropyLoss", "", False): (nn.CrossEntropyLoss,),
    ("CrossEntropyLoss", "probabilities", False): (nn.CrossEntropyLoss,),
    ("GaussianNLLLoss", "", False): (nn.GaussianNLLLoss,),
    ("HingeEmbeddingLoss", "", False): (nn.HingeEmbeddingLoss,),
    ("HuberLoss", "", False): (lambda: nn.HuberLoss(delta=0.5),),
    ("KLDivLoss", "", False): (lambda: nn.KLDivLoss(reduction="batchmean"),),
    ("L1Loss", "", False): (nn.L1Loss,),
    ("MSELoss", "", False): (nn.MSELoss,),
    ("MarginRankingLoss", "", False): (lambda: nn.MarginRankingLoss(margin=0.2),),
    ("MultiLabelMarginLoss", "", False): (nn.MultiLabelMarginLoss,),
    ("MultiLabelSoftMarginLoss", "", False): (nn.MultiLabelSoftMarginLoss,),
    ("MultiMarginLoss", "", False): (nn.MultiMarginLoss,),
    ("NLLLoss", "", False): (nn.NLLLoss,),
    ("NLLLoss2d", "", False): (nn.NLLLoss2d,),
    ("PairwiseDistance", "", False): (nn.PairwiseDistance,),
    ("PoissonNLLLoss", "", False): (nn.PoissonNLLLoss,),
    ("SmoothL1Loss", "", False): (nn.SmoothL1Loss,),
    ("SoftMarginLoss", "", False): (nn.SoftMarginLoss,),
    ("TripletMarginLoss", "", False): (nn.TripletMarginLoss,),
    ("TripletMarginWithDistanceLoss", "", False): (nn.TripletMarginWithDistanceLoss,),
    # recurrent
    ("RNN", "", False): (lambda: nn.RNN(4, 5),),
    ("RNN", "no hx", False): (lambda: nn.RNN(4, 5),),
    ("RNN", "2 layers bidirectional", False): (
        lambda: nn.RNN(4, 5, num_layers=2, bidirectional=True, nonlinearity="relu"),),
    ("GRU", "", False): (lambda: nn.GRU(4, 5),),
    ("GRU", "no hx", False): (lambda: nn.GRU(4, 5),),
    ("LSTM", "", False): (lambda: nn.LSTM(4, 5), _lstm_args),
    ("LSTM", "no hx", False): (lambda: nn.LSTM(4, 5), _lstm_args),
    ("LSTM", "2 layers batch first", False): (
        lambda: nn.LSTM(4, 5, num_layers=2, batch_first=True), _lstm_args),
    ("RNNCell", "", False): (lambda: nn.RNNCell(4, 5),),
    ("RNNCell", "no hx", False): (lambda: nn.RNNCell(4, 5),),
    ("GRUCell", "", False): (lambda: nn.GRUCell(4, 5),),
    ("GRUCell", "no hx", False): (lambda: nn.GRUCell(4, 5),),
    ("LSTMCell", "", False): (lambda: nn.LSTMCell(4, 5), _lstm_cell_args),
    ("LSTMCell", "no hx", False): (lambda: nn.LSTMCell(4, 5), _lstm_cell_args),
    # custom elementwise
    ("Cast", "", True): (lambda: custom.Cast(torch.int32),),
    ("Cast", "float", True): (lambda: custom.Cast(torch.float32),),
    ("CustomSiLU", "", True): (custom.CustomSiLU,),
    ("Add", "broadcast", True): (custom.Add,),
    ("Equal", "int", True): (custom.Equal,),
    ("LogicalNot", "bool", True): (custom.LogicalNot,),
    ("LogicalAnd", "float", True): (custom.LogicalAnd,),
    ("Baddbmm", "", True): (lambda: custom.Baddbmm(beta=0.5, alpha=2),),
    # custom tensor
    ("MaxPool2d", "", True): (lambda: custom.MaxPool2d(2),),
    ("AdaptiveAvgPool2d", "", True): (lambda: custom.AdaptiveAvgPool2d((2, 3)),),
    ("AvgPool2d", "", True): (lambda: custom.AvgPool2d(3, stride=1, padding=1),),
    ("DepthToSpaceDCRMode", "", True): (lambda: custom.DepthToSpaceDCRMode(2),),
    ("OneHot", "", True): (lambda: custom.OneHot(5),),
    ("Mean", "", True): (lambda: custom.Mean(dim=[1]),),
    ("Mean", "all", True): (custom.Mean,),
    ("Sum", "", True): (lambda: custom.Sum(dim=[1, 2], keepdim=True),),
    ("Prod", "", True): (lambda: custom.Prod(dim=1),),
    ("Argmin", "", True): (lambda: custom.Argmin(dim=1),),
    ("Argmax", "", True): (custom.Argmax,),
    ("Norm", "", True): (lambda: custom.Norm(dim=[1]),),
    ("CumSum", "", True): (lambda: custom.CumSum(1),),
    ("TopK", "", True): (lambda: custom.TopK(2),),
    ("Interpolate", "", True): (
        lambda: custom.Interpolate(scale_factor=[2.0, 2.0], mode="bilinear",
                                   align_corners=False),),
    ("Normalize", "", True): (custom.Normalize,),
    ("Pad", "", True): (lambda: custom.Pad([1, 2], value=0.5),),
    ("RoiAlign", "", True): (lambda: custom.RoiAlign(2, 0.5, 2),),
    ("Reshape", "", True): (lambda: custom.Reshape([4, -1]),),
    ("Permute", "", True): (lambda: custom.Permute([0, 2, 3, 1]),),
    ("Tile", "", True): (lambda: custom.Tile([2, 1]),),
    ("Shape", "", True): (custom.Shape,),
    ("Expand", "", True): (lambda: custom.Expand([4, 2, 3]),),
    ("StridedSlice", "", True): (lambda: custom.StridedSlice([[0, 2], [1, 4, 2], [3]]),),
    ("Split", "", True): (lambda: custom.Split(2, dim=1),),
    ("Concat", "", True): (lambda: custom.Concat(1),),
    ("Gather", "", True): (lambda: custom.Gather(1),),
    ("IndexSelect", "", True): (lambda: custom.IndexSelect(1),),
    ("CustomGather", "", True): (lambda: custom.CustomGather(1),),
    ("GatherNd", "", True): (custom.GatherNd,),
    ("ScatterND", "", True): (custom.ScatterND,),
    ("ScatterElements", "", True): (lambda: custom.ScatterElements(1),),
    ("DynamicConv2d", "", True): (lambda: custom.DynamicConv2d(padding=1),),
    ("DynamicConv2d", "no bias", True): (custom.DynamicConv2d,),
    ("BatchNorm", "", True): (custom.BatchNorm,),
    ("BatchNorm", "no affine", True): (custom.BatchNorm,),
    ("AimetGroupNorm", "", True): (lambda: custom.GroupNorm(2),),
    ("NonMaxSuppression", "", True): (lambda: custom.NonMaxSuppression(0.5, 0.1, 3),),
    ("MaskedFill", "", True): (custom.MaskedFill,),
}

# The stateless custom rows: the module of the same name, no options.
for _row in ROWS:
    if _row["custom"] and _key(_row) not in FACTORIES and hasattr(custom, _row["name"]):
        FACTORIES[_key(_row)] = (getattr(custom, _row["name"]),)

# Rows whose Python float module cannot run the C++ row's sequence, and why.
NOT_COMPARABLE = {
    ("SyncBatchNorm", "", False): "torch 1.13's torch.nn.SyncBatchNorm.forward raises "
                                  "ValueError for every CPU input (training or eval); the C++ "
                                  "rows run on the CPU",
}


def _flatten(value):
    """Output leaves as the C++ test lists them: a list's elements in turn."""
    if value is None or isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, torch.nn.utils.rnn.PackedSequence):
        return [value.data]
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_flatten(v))
        return out
    return []


def _bitwise_equal(actual, expected):
    if actual is None or expected is None:
        return actual is None and expected is None
    actual = actual.detach()
    return (actual.dtype == expected.dtype and actual.shape == expected.shape
            and actual.contiguous().numpy().tobytes() == expected.contiguous().numpy().tobytes())


def _assert_leaves_equal(actual, expected, what, limit=None):
    if limit is not None:
        actual = actual[:limit]
    assert len(actual) == len(expected), f"{what}: {len(actual)} leaves vs C++ {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert _bitwise_equal(a, e), (
            f"{what}, leaf {i}: Python {a!r}\nvs C++ {e!r}")


def _fill_slots(module):
    for container in (module.input_quantizers, module.output_quantizers):
        for i in range(len(container)):
            container[i] = QuantizeDequantize((), 8, False)
    for name in list(module.param_quantizers.keys()):
        module.param_quantizers[name] = QuantizeDequantize((), 8, True)


def _assert_ranges_equal(quantizer, expected, what):
    if expected is None:
        return
    assert quantizer is not None and quantizer.is_initialized(), f"{what}: not initialized"
    assert _bitwise_equal(quantizer.min, expected[0]), f"{what}: min {quantizer.min} vs {expected[0]}"
    assert _bitwise_equal(quantizer.max, expected[1]), f"{what}: max {quantizer.max} vs {expected[1]}"


def _row_id(row):
    return ("custom." if row["custom"] else "") + row["name"] + (
        "/" + row["variant"].replace(" ", "_") if row["variant"] else "")


@pytest.mark.parametrize("index", range(len(ROWS)), ids=[_row_id(r) for r in ROWS])
def test_row_matches_cpp(index):
    row = ROWS[index]
    if _key(row) in NOT_COMPARABLE:
        pytest.skip(NOT_COMPARABLE[_key(row)])
    assert _key(row) in FACTORIES, f"no Python factory for the C++ row {_key(row)}"
    factory = FACTORIES[_key(row)]
    make_args = factory[1] if len(factory) > 1 else tuple
    cpp = ROWS[index]
    assert "error" not in cpp, f"the C++ row failed: {cpp.get('error')}"

    module = factory[0]()
    own = dict(module.named_parameters())
    own.update(dict(module.named_buffers()))
    assert sorted(own) == sorted(cpp["state"]), "parameters and buffers differ from the C++ module's"
    with torch.no_grad():
        for name, value in cpp["state"].items():
            own[name].copy_(value)
    args = make_args([t.clone() if t is not None else None for t in cpp["inputs"]])

    def call(m, call_args=args):
        if row["random"]:
            torch.manual_seed(1234)
        return _flatten(m(*call_args))

    # A Python loss of AdaptiveLogSoftmaxWithLoss is a tensor (a second output leaf); libtorch's
    # is a double, without a leaf: compare the leaves C++ has.
    limit = len(cpp["float_output"])
    _assert_leaves_equal(call(module), cpp["float_output"], "float module", limit)
    quantized = QuantizationMixin.from_module(module)
    prefix = "Quantized" if row["quantized"] else "FakeQuantized"
    assert type(quantized).__name__.startswith(prefix)
    assert isinstance(quantized, type(module))
    assert len(quantized.input_quantizers) == row["num_inputs"]
    assert len(quantized.output_quantizers) == row["num_outputs"]
    assert list(quantized.param_quantizers.keys()) == [
        n for n, _ in module.named_parameters(recurse=False)]
    _assert_leaves_equal(call(quantized), cpp["empty_output"], "empty slots", limit)

    _fill_slots(quantized)
    with quantized.compute_encodings():
        call(quantized)
    _assert_leaves_equal(call(quantized), cpp["output"], "calibrated", limit)
    for i, expected in enumerate(cpp["input_ranges"]):
        _assert_ranges_equal(quantized.input_quantizers[i], expected, f"input quantizer {i}")
    for i, expected in enumerate(cpp["output_ranges"]):
        _assert_ranges_equal(quantized.output_quantizers[i], expected, f"output quantizer {i}")
    for name, expected in cpp["param_ranges"].items():
        _assert_ranges_equal(quantized.param_quantizers[name], expected, f"param quantizer {name}")

    if row["has_backward"]:
        _check_backward(row, cpp, quantized, module, make_args, call, limit)


def _check_backward(row, cpp, quantized, module, make_args, call, limit):
    """The C++ row's backward replayed: gradients on the inputs bound to input quantizers, the
    quantizers' ranges and the parameters, bit-identical."""
    leaves = [t.clone() if t is not None else None for t in cpp["inputs"]]
    if row["differentiable"]:
        bound = set(row["input_leaves"])
        leaves = [x.detach().requires_grad_(True)
                  if leaf in bound and x is not None and x.is_floating_point() else x
                  for leaf, x in zip(cpp["input_leaf_ids"], leaves)]
    grad_args = make_args(leaves)
    outputs = call(quantized, grad_args)[:limit]
    total = None
    for y in outputs:
        if y is None or not y.is_floating_point() or not y.requires_grad:
            continue
        total = y.sum() if total is None else total + y.sum()
    if total is None:
        assert "input_grads" not in cpp, "C++ has a backward, Python no output requiring grad"
        return
    assert "input_grads" in cpp, "Python has a backward, C++ no output requiring grad"
    total.backward()
    # An input written in place (MaskedFill's x) is no leaf any more: no gradient, as in C++.
    _assert_leaves_equal([x.grad if x is not None and x.is_leaf else None for x in leaves],
                         cpp["input_grads"], "input gradients")

    def compare_ranges(container, expected, what):
        for i, grads in enumerate(expected):
            quantizer = list(container.values())[i] if isinstance(container, dict) else container[i]
            if grads is None:
                continue
            for tensor, grad, name in ((quantizer.min, grads[0], "min"),
                                       (quantizer.max, grads[1], "max")):
                assert _bitwise_equal(tensor.grad, grad), f"{what} {i}: {name}.grad"

    compare_ranges(quantized.input_quantizers, cpp["input_range_grads"], "input quantizer")
    compare_ranges(quantized.output_quantizers, cpp["output_range_grads"], "output quantizer")
    compare_ranges(dict(quantized.param_quantizers.items()), cpp["param_range_grads"],
                   "param quantizer")
    own = dict(module.named_parameters())
    for name, grad in cpp["param_grads"].items():
        assert _bitwise_equal(own[name].grad, grad), f"parameter {name}: grad"
