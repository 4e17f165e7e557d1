"""quantsim.quantization from Python: the reference's acceptance checks (reference-behaviour.md
§7) with its exact numbers, through the Python API."""
import copy
import io
import pickle

import pytest
import torch

from quantsim.quantization import DequantizedTensor, EncodingError, QuantizedTensor, affine
from quantsim.quantization.affine import (AffineEncoding, Quantize, QuantizeDequantize,
                                          quantize, quantize_dequantize)
from quantsim.quantization.encoding_analyzer import (MinMaxEncodingAnalyzer,
                                                     PercentileEncodingAnalyzer,
                                                     StatisticsNotFoundError)
from quantsim.quantization.float import FloatQuantizeDequantize


def close(actual, expected, atol=1e-6):
    return torch.allclose(torch.as_tensor(actual, dtype=torch.float32),
                          torch.tensor(expected, dtype=torch.float32), atol=atol, rtol=0)


@pytest.mark.parametrize("cls", [Quantize, QuantizeDequantize])
def test_constructor_errors(cls):  # §7.2
    for args, kwargs in [((), {}), (((1, 10),), {}), (((1, 10), -128), {}),
                         (((1, 10), -128, 127), {}), (((1, 10), -128, 127, True), {"foo": None})]:
        with pytest.raises(TypeError):
            cls(*args, **kwargs)
    for qmin, qmax in [(127, -128), (127, 127)]:
        with pytest.raises(ValueError):
            cls((1, 10), qmin, qmax, True)
    assert (cls((1, 10), 8, True).qmin, cls((1, 10), -128, 127, True).qmax) == (-128, 127)


def test_grid_attributes():  # §7.3
    q = Quantize((), qmin=0, qmax=15, symmetric=False)
    assert (q.bitwidth, q.signed) == (4, False)
    q.signed = True
    assert (q.qmin, q.qmax, q.bitwidth) == (-8, 7, 4)
    q.bitwidth = 5.0
    assert (q.qmin, q.qmax, q.signed) == (-16, 15, True)
    with pytest.raises(TypeError):
        q.bitwidth = 0.1
    with pytest.raises(ValueError):
        q.bitwidth = 0
    odd = Quantize((), qmin=-1, qmax=14, symmetric=False)
    with pytest.raises(RuntimeError):
        _ = odd.bitwidth
    with pytest.raises(RuntimeError):
        _ = odd.signed
    unsigned = Quantize((), qmin=0, qmax=255, symmetric=False)
    unsigned.signed = True
    assert (unsigned.qmin, unsigned.qmax) == (-128, 127)


@pytest.mark.parametrize("qmin,qmax,symmetric", [(0, 15, False), (0, 255, False), (-8, 7, True),
                                                 (-128, 127, True)])
@pytest.mark.parametrize("cls", [Quantize, QuantizeDequantize])
def test_identity_grid(qmin, qmax, symmetric, cls):  # §7.4
    x = torch.arange(qmin, qmax + 1, dtype=torch.float32)
    q = cls((), qmin, qmax, symmetric)
    with q.compute_encodings():
        q(x)
    assert q.get_min().item() == qmin and q.get_max().item() == qmax
    assert q.get_scale().item() == 1 and q.get_offset().item() == 0
    assert torch.equal(q(x).as_subclass(torch.Tensor), x)


def test_affine_math():  # §7.5
    x = torch.tensor([-1.2, -1, -0.5, 0, 0.3, 0.999, 1.5])
    qdq = QuantizeDequantize((), 8, False)
    qdq.set_range(-1, 1)
    assert close(qdq(x), [-0.99607849, -0.99607849, -0.50196081, 0, 0.29803923, 0.99607849,
                          1.00392163])
    q = Quantize((), 8, False)
    q.set_range(-1, 1)
    out = q(x)
    assert isinstance(out, QuantizedTensor)
    assert out.quantized_repr().tolist() == [0, 0, 63, 127, 165, 254, 255]
    assert out.quantized_repr().dtype == torch.uint8


def test_calibration():  # §7.6, §7.8
    x = torch.tensor([-2.0, 1.0])
    sym = QuantizeDequantize((), 8, True)
    with sym.compute_encodings():
        sym(x)
    assert (sym.get_min().item(), sym.get_max().item()) == (-2, 1.984375)
    assert sym.get_scale().item() == 0.015625
    asym = QuantizeDequantize((), 8, False)
    with asym.compute_encodings():
        asym(x)
    assert close(asym.get_scale(), 0.0117647061) and asym.get_offset().item() == -170
    multi = QuantizeDequantize((), 8, False)
    with multi.compute_encodings():
        multi(torch.tensor([-1.0, 1.0]))
        inside = multi(torch.tensor([0.0, 3.0]))
    assert close(inside, [0, 3])
    assert (multi.min.item(), multi.max.item()) == (-1, 3)


def test_per_channel_legacy_export():  # §7.10
    q = QuantizeDequantize((2, 1), 8, True)
    x = torch.tensor([[-1, 0.5, 0.25], [4, -2, 1]])
    with q.compute_encodings():
        q(x)
    first, second = q.get_legacy_encodings()
    assert first["min"] == -1.0 and first["max"] == 0.9921875 and first["scale"] == 0.0078125
    assert first["offset"] == -128 and first["is_symmetric"] == "True"
    assert abs(second["min"] + 4.031496048) < 1e-6 and second["max"] == 4.0
    assert close(q(x), [[-1, 0.5, 0.25], [4, -2.01574802, 1.00787401]])


def test_backend_gradients():  # §7.12
    x = torch.tensor([-1.3, -0.76, -0.11, 0, 1.01, 3, 10.4], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    o = torch.tensor(-5.0, requires_grad=True)
    quantize_dequantize(x, s, o, qmin=0, qmax=15).sum().backward()
    assert x.grad.tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert abs(s.grad.item() - 9.32) < 1e-5 and o.grad.item() == 0.5
    x.grad = s.grad = o.grad = None
    quantize(x, s, o, qmin=0, qmax=15).sum().backward()
    assert x.grad.tolist() == [2, 2, 2, 2, 2, 2, 0]
    assert abs(s.grad.item() + 7.36) < 1e-5 and o.grad.item() == -6


def test_uninitialized_quantizer():  # §7.15
    q = QuantizeDequantize((), 8, False)
    assert q.get_min() is None and q.get_scale() is None and q.get_encoding() is None
    assert q.get_legacy_encodings() is None
    with pytest.raises(RuntimeError):
        q(torch.randn(3))
    with q.compute_encodings():
        pass
    assert not q.is_initialized()


def test_is_initialized_rules():  # §7.16
    q = QuantizeDequantize((), 8, False)
    assert not q.is_initialized()
    with torch.no_grad():
        q.min.copy_(torch.tensor(-1.0))
    assert not q.is_initialized()
    with torch.no_grad():
        q.max.add_(3)
    assert q.is_initialized()
    q = QuantizeDequantize((), 8, False)
    q.min = torch.nn.Parameter(torch.tensor(-2.0))
    q.max = torch.nn.Parameter(torch.tensor(2.0))
    assert q.is_initialized()
    fresh = QuantizeDequantize((), 8, False)
    fresh.load_state_dict({"min": torch.tensor(-1.0)}, strict=False)
    assert not fresh.is_initialized()
    fresh.load_state_dict({"max": torch.tensor(1.0)}, strict=False)
    assert fresh.is_initialized()
    round_trip = QuantizeDequantize((), 8, False)
    round_trip.load_state_dict(QuantizeDequantize((), 8, False).state_dict())
    assert not round_trip.is_initialized()
    for copied in (copy.deepcopy(fresh), pickle.loads(pickle.dumps(fresh))):
        assert copied.is_initialized()
        x = torch.randn(5)
        assert torch.equal(copied(x), fresh(x))
    assert not copy.deepcopy(QuantizeDequantize((), 8, False)).is_initialized()


def test_allow_overwrite():  # §7.17
    x = torch.randn(100)
    q = QuantizeDequantize((), 8, False)
    with q.compute_encodings():
        q(x)
    before = (q.min.detach().clone(), q.max.detach().clone())
    q.allow_overwrite(False)
    with q.compute_encodings():
        q(10 * x)
    assert torch.equal(q.min, before[0]) and torch.equal(q.max, before[1])


def test_qdq_equals_dequantized_q():  # §7.18
    x = torch.arange(-200, 200) / 100
    for symmetric in (True, False):
        qdq, q = QuantizeDequantize((), 8, symmetric), Quantize((), 8, symmetric)
        qdq.set_range(-1, 1)
        q.set_range(-1, 1)
        assert torch.equal(qdq(x).as_subclass(torch.Tensor),
                           q(x).dequantize().as_subclass(torch.Tensor))


def test_affine_encoding():  # §7.24
    e = AffineEncoding(torch.tensor(1.0), torch.tensor(-5.0), 8)
    assert (e.min.item(), e.max.item(), e.dtype, e.granularity, e.mapping, e.num_steps) == \
        (-5, 250, torch.uint8, "pertensor", "affine", 255)
    e = AffineEncoding(torch.tensor(1.0), torch.tensor(0.0), 8, True, True)
    assert (e.min.item(), e.max.item(), e.dtype) == (-128, 127, torch.int8)
    with pytest.raises(RuntimeError):
        e.to(torch.uint8)
    assert AffineEncoding(torch.ones(10, 1), torch.zeros(10, 1), 8).granularity == "perchannel"


def test_min_max_analyzer():  # §7.25
    a = MinMaxEncodingAnalyzer(())
    a.update_stats(torch.arange(0, 26, 0.5))
    assert [t.item() for t in a.compute_encodings(255, False)] == [0, 25.5]
    assert [t.item() for t in a.compute_encodings(254, True)] == [-25.5, 25.5]
    with pytest.raises(ValueError):
        a.compute_encodings(0, False)
    with pytest.raises(StatisticsNotFoundError):
        MinMaxEncodingAnalyzer(()).compute_encodings(255, False)
    with pytest.raises(RuntimeError):
        MinMaxEncodingAnalyzer((3, 4)).update_stats(torch.randn(2, 3, 5))
    per_channel = MinMaxEncodingAnalyzer((3, 1))
    per_channel.update_stats(torch.arange(24.0).view(2, 3, 4))
    low, high = per_channel.compute_encodings(255, False)
    assert low.flatten().tolist() == [0, 0, 0] and high.flatten().tolist() == [15, 19, 23]
    assert pickle.loads(pickle.dumps(PercentileEncodingAnalyzer((), 64, 99.0))).num_bins == 64


def test_quantized_tensors():  # §7.31, §7.32
    q = Quantize((), 8, True)
    q.set_range(-12.8, 12.7)
    out = q(torch.tensor([[2.57, -2.312], [0.153, 0.205]]))
    assert out.quantized_repr().tolist() == [[26, -23], [2, 2]]
    assert close(out.dequantize(), [[2.6, -2.3], [0.2, 0.2]])
    qdq = QuantizeDequantize((), 8, False)
    qdq.set_range(-10, 41)
    out = qdq(torch.tensor([[0.39, 51], [3.521, 9.41]]))
    assert isinstance(out, DequantizedTensor)
    assert close(out, [[0.4, 41], [3.6, 9.4]])
    assert out.quantize().quantized_repr().tolist() == [[52, 255], [68, 97]]
    view = out.reshape(-1)
    assert isinstance(view, DequantizedTensor) and view.encoding is not None
    assert view.encoding is not out.encoding
    assert type(out + torch.ones(2, 2)) is torch.Tensor  # pylint: disable=unidiomatic-typecheck
    in_place = out.clone()
    assert in_place.add_(1) is in_place and in_place.encoding is None
    with pytest.raises(RuntimeError):
        out.int()
    with pytest.raises(RuntimeError):
        QuantizedTensor(torch.arange(3))
    with pytest.raises(EncodingError):
        QuantizedTensor(torch.randn(3)).dequantize()
    with pytest.raises(EncodingError):
        DequantizedTensor(torch.randn(3)).quantize()
    per_channel = QuantizeDequantize((2, 1), 8, False)
    per_channel.set_range(-torch.ones(2, 1), torch.ones(2, 1))
    assert per_channel(torch.randn(2, 3)).reshape(-1).encoding is None


def test_float_quantizer():  # §7.34
    q = FloatQuantizeDequantize(4, 3, encoding_analyzer=MinMaxEncodingAnalyzer(()))
    with q.compute_encodings():
        inside = q(torch.tensor([-3.0, 1, 2.5]))
    assert close(inside, [-3, 1, 2.4000001])
    assert close(q(torch.tensor([-3.0, 1, 2.5, 0.3, 5])), [-3, 1, 2.4000001, 0.30000001, 3])
    assert q.get_legacy_encodings() == [{"bitwidth": 8, "dtype": "float"}]
    for kwargs in [{}, {"dtype": torch.float16, "exponent_bits": 5}, {"dtype": torch.float32},
                   {"exponent_bits": 4}]:
        with pytest.raises(ValueError):
            FloatQuantizeDequantize(**kwargs)


def test_legacy_import():  # §7.39
    q = QuantizeDequantize((), 8, True)
    q.set_legacy_encodings([{"min": -4, "max": 4, "scale": 0.03, "offset": 8, "bitwidth": 8,
                             "is_symmetric": "False"}])
    assert (q.qmin, q.qmax, q.symmetric) == (0, 255, False)
    assert close(q.get_scale(), 0.031372551) and q.get_offset().item() == -127


def test_training_updates_the_engine_tensors():
    """An optimizer step on the Parameters changes what the C++ forward computes."""
    q = QuantizeDequantize((), 8, False)
    q.set_range(-1, 1)
    x = torch.linspace(-2, 2, 50)
    before = q(x).detach().clone()
    optimizer = torch.optim.SGD(q.parameters(), lr=0.5)
    q(x).pow(2).sum().backward()
    assert q.min.grad is not None and q.max.grad is not None
    optimizer.step()
    assert not torch.equal(q(x).detach(), before)
    buffer = io.BytesIO()
    torch.save(q.state_dict(), buffer)
    buffer.seek(0)
    restored = QuantizeDequantize((), 8, False)
    restored.load_state_dict(torch.load(buffer))
    assert restored.is_initialized() and torch.equal(restored(x), q(x))
