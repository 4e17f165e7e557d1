"""torch.onnx.export of code calling the quantsim operators directly: QDQ nodes (the symbolic
functions of quantsim/onnx_symbolic.py), and ONNX Runtime computing what the operators compute."""
import re

import pytest
import torch

import quantsim  # noqa: F401  (registers the operators and their symbolic functions)
from test_export import run_in_onnxruntime

ops = torch.ops.quantsim


class _Calls(torch.nn.Module):
    """Per-tensor uint8, per-channel int8 on a weight, a 4-bit grid, a 16-bit grid, quantize then
    dequantize, and a float16 round trip."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(6, 5))
        self.w_scale = torch.rand(6, 1) * 0.02 + 0.01

    def forward(self, x):
        x = ops.quantize_dequantize(x, torch.tensor(0.02), torch.tensor(-100.0), 0, 255)
        w = ops.quantize_dequantize(self.weight, self.w_scale, torch.zeros(6, 1), -128, 127)
        y = torch.nn.functional.linear(x, w)
        y4 = ops.quantize_dequantize(y, torch.tensor(0.1), torch.tensor(-8.0), 0, 15)
        y16 = ops.quantize_dequantize(y, torch.tensor(0.001), torch.tensor(0.0), -32768, 32767)
        q = ops.quantize(y, torch.tensor(0.05), torch.tensor(3.0), -128, 127)
        dq = ops.dequantize(q, torch.tensor(0.05), torch.tensor(3.0))
        half = ops.float_quantize_dequantize(y, 5, 10, None, 65504.0)
        return y4 + y16 + dq + half


def _export(module, x, path):
    torch.onnx.export(module, (x,), str(path), opset_version=17, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}})


def test_operators_export_as_qdq_nodes():
    torch.manual_seed(0)
    text = torch.onnx.export_to_pretty_string(_Calls(), (torch.randn(3, 5),), opset_version=17)
    kinds = re.findall(r'Node {type: "(\w+)"', text)
    # uint8 input, int8 per-channel weight (axis 0), the 4-bit grid in uint8 storage.
    assert kinds.count("DequantizeLinear") == 3 and "axis" in text
    assert kinds.count("Round") == 2  # the 16-bit grid's float definition, and quantize
    assert kinds.count("Cast") >= 2  # the float16 pair (and zero points' casts, unless folded)


def test_exported_operators_compute_the_kernels_values_in_onnxruntime(tmp_path):
    torch.manual_seed(0)
    module = _Calls()
    x = torch.randn(7, 5) * 3
    _export(module, torch.randn(3, 5), tmp_path / "calls.onnx")
    with torch.no_grad():
        expected = module(x)
    for optimization in ("disabled", "all"):
        (actual,) = run_in_onnxruntime(tmp_path / "calls.onnx", {"input": x}, optimization,
                                       tmp_path)
        assert torch.equal(actual, expected), optimization


def test_unsupported_float_format_names_it():
    class E4M3(torch.nn.Module):
        def forward(self, x):  # pylint: disable=no-self-use
            return ops.float_quantize_dequantize(x, 4, 3, None, 240.0)

    with pytest.raises(Exception, match="E4M3"):
        torch.onnx.export_to_pretty_string(E4M3(), (torch.randn(2),), opset_version=17)
