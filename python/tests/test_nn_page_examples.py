"""The examples of the page quantsim implements (spec/quantized-modules.rst), exactly as written
there except the two import lines, run as doctests."""
import doctest

import torch

PAGE_IMPORTS = """
    >>> import quantsim as aimet
    >>> import quantsim.quantization as Q
"""

PER_CHANNEL_WEIGHT = """
Example: Create a linear layer which performs only per-channel weight quantization
    >>> qlinear = aimet.nn.QuantizedLinear(out_features=10, in_features=5)
    >>> # Per-channel weight quantization is performed over the `out_features` dimension, so encodings are shape (10, 1)
    >>> per_channel_quantizer = Q.affine.QuantizeDequantize(shape=(10, 1), bitwidth=8, symmetric=True)
    >>> qlinear.param_quantizers["weight"] = per_channel_quantizer
"""

MULTIPLY = """
Example: Create an elementwise multiply layer which quantizes only the output and the second input
    >>> qmul = aimet.nn.custom.QuantizedMultiply()
    >>> qmul.output_quantizers[0] = Q.affine.QuantizeDequantize(shape=(), bitwidth=8, symmetric=False)
    >>> qmul.input_quantizers[1] = Q.affine.QuantizeDequantize(shape=(), bitwidth=8, symmetric=False)
"""

SHARED_ADD = """
Example: Create an elementwise add layer which shares the same quantizer between its inputs
    >>> qadd = aimet.nn.custom.QuantizedAdd()
    >>> quantizer = Q.affine.QuantizeDequantize(shape=(), bitwidth=8, symmetric=False)
    >>> qadd.input_quantizers[0] = quantizer
    >>> qadd.input_quantizers[1] = quantizer
"""

CALIBRATION = """
Example:
    >>> qlinear = aimet.nn.QuantizedLinear(out_features=10, in_features=5)
    >>> qlinear.output_quantizers[0] = Q.affine.QuantizeDequantize((1, ), bitwidth=8, symmetric=False)
    >>> qlinear.param_quantizers[0] = Q.affine.QuantizeDequantize((10, 1), bitwidth=8, symmetric=True)
    >>> with qlinear.compute_encodings():
    ...     # Pass several samples through the layer to ensure representative statistics
    ...     for x, _ in calibration_data_loader:
    ...         qlinear(x)
    >>> print(qlinear.output_quantizers[0].is_initialized())
    True
    >>> print(qlinear.param_quantizers["weight"].is_initialized())
    True
"""


class _PageOutputChecker(doctest.OutputChecker):
    """The page shows the output of its print() calls, not what an interactive session would echo
    for a bare call inside a loop (``qlinear(x)``): a statement without shown output may print."""

    def check_output(self, want, got, optionflags):
        return want == "" or super().check_output(want, got, optionflags)


def _run(example, extra_globals=None):
    globs = dict(extra_globals or {})
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(checker=_PageOutputChecker())
    test = parser.get_doctest(PAGE_IMPORTS + example, globs, "page", None, 0)
    runner.run(test, clear_globs=False)
    failed, attempted = runner.summarize(verbose=False)
    assert attempted > 2 and failed == 0
    return test.globs


def test_per_channel_weight_quantization():
    globs = _run(PER_CHANNEL_WEIGHT)
    qlinear = globs["qlinear"]
    assert isinstance(qlinear, torch.nn.Linear)
    assert qlinear.param_quantizers["weight"] is globs["per_channel_quantizer"]
    # Weight-only quantization needs no calibration: the first call initializes the quantizer.
    x = torch.randn(3, 5)
    y = qlinear(x)
    assert qlinear.param_quantizers["weight"].is_initialized()
    weight = qlinear.param_quantizers["weight"]._fake_quantize(qlinear.weight)
    assert torch.equal(y, torch.nn.functional.linear(x, weight, qlinear.bias))


def test_multiply_quantizing_output_and_second_input():
    globs = _run(MULTIPLY)
    qmul = globs["qmul"]
    assert qmul.input_quantizers[0] is None
    assert len(qmul.input_quantizers) == 2 and len(qmul.output_quantizers) == 1


def test_add_sharing_one_quantizer():
    globs = _run(SHARED_ADD)
    qadd = globs["qadd"]
    assert qadd.input_quantizers[0] is qadd.input_quantizers[1] is globs["quantizer"]
    with qadd.compute_encodings():
        qadd(torch.tensor([-1.0, 0.5]), torch.tensor([2.0, 3.0]))
    # One range from both inputs' statistics.
    assert torch.equal(qadd.input_quantizers[0].min.detach(), torch.tensor(-1.0))
    assert torch.equal(qadd.input_quantizers[0].max.detach(), torch.tensor(3.0))


def test_calibration():
    torch.manual_seed(0)
    loader = [(torch.randn(4, 5), None) for _ in range(3)]
    _run(CALIBRATION, {"calibration_data_loader": loader})
