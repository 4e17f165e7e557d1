"""quantsim.nn from Python: the mixins' structure, registry, calibration, parameter handling,
encodings and errors (docs/modules.md; reference §3)."""
import io

import pytest
import torch
import torch.nn.functional as F

import quantsim  # noqa: F401  pylint: disable=unused-import
import quantsim.nn as qnn
from quantsim.nn import (BaseQuantizationMixin, FakeQuantizationMixin, QuantizationMixin,
                         custom)
from quantsim.quantization import QuantizedTensor
from quantsim.quantization.affine import Quantize, QuantizeDequantize


def act():
    return QuantizeDequantize((), 8, False)


def test_quantized_classes_are_their_float_classes():
    qlinear = qnn.QuantizedLinear(5, 10)
    assert isinstance(qlinear, torch.nn.Linear)
    assert isinstance(qlinear, QuantizationMixin) and isinstance(qlinear, BaseQuantizationMixin)
    assert isinstance(qnn.FakeQuantizedConv2d(3, 4, 3), FakeQuantizationMixin)
    assert type(qlinear).__mro__[1:3] == (QuantizationMixin, BaseQuantizationMixin)
    assert isinstance(custom.QuantizedAdd(), custom.Add)
    assert isinstance(custom.FakeQuantizedAimetGroupNorm(2), custom.GroupNorm)
    # The custom ChannelShuffle is torch.nn's: one class for both rows.
    assert custom.FakeQuantizedChannelShuffle is qnn.FakeQuantizedChannelShuffle


def test_containers_and_state_dict_keys():
    qlinear = qnn.QuantizedLinear(5, 10)
    assert isinstance(qlinear.input_quantizers, torch.nn.ModuleList)
    assert isinstance(qlinear.output_quantizers, torch.nn.ModuleList)
    assert isinstance(qlinear.param_quantizers, torch.nn.ModuleDict)
    assert list(qlinear.input_quantizers) == [None]
    assert list(qlinear.param_quantizers.keys()) == ["weight", "bias"]
    qlinear.input_quantizers[0] = act()
    keys = set(qlinear.state_dict())
    assert {"input_quantizers.0.min", "input_quantizers.0.max", "weight", "bias"} <= keys


# Reference §7.37: quantizer-list sizes after from_module.
@pytest.mark.parametrize("module, inputs, outputs", [
    (torch.nn.Linear(2, 3), 1, 1), (torch.nn.Embedding(4, 2), 0, 1),
    (torch.nn.EmbeddingBag(4, 2), 1, 1), (torch.nn.GRU(2, 3), 2, 2), (torch.nn.RNN(2, 3), 2, 2),
    (torch.nn.LSTM(2, 3), 3, 3), (torch.nn.LSTMCell(2, 3), 3, 2), (torch.nn.GRUCell(2, 3), 2, 1),
    (torch.nn.RNNCell(2, 3), 2, 1), (torch.nn.BCELoss(), 2, 1), (torch.nn.GaussianNLLLoss(), 3, 1),
    (custom.Add(), 2, 1), (custom.Addmm(), 3, 1), (custom.Concat(), 1, 1),
    (custom.BatchNorm(), 5, 1), (custom.GroupNorm(2), 4, 1)])
def test_quantizer_counts(module, inputs, outputs):
    quantized = QuantizationMixin.from_module(module)
    assert len(quantized.input_quantizers) == inputs
    assert len(quantized.output_quantizers) == outputs
    assert list(quantized.param_quantizers.keys()) == [
        n for n, _ in module.named_parameters(recurse=False)]


def test_from_module_shares_parameters():
    linear = torch.nn.Linear(3, 2)
    quantized = QuantizationMixin.from_module(linear)
    assert type(quantized) is qnn.QuantizedLinear
    assert type(FakeQuantizationMixin.from_module(linear)) is qnn.FakeQuantizedLinear
    assert type(BaseQuantizationMixin.from_module(linear)) is qnn.QuantizedLinear
    assert type(QuantizationMixin.from_module(torch.nn.ReLU())) is qnn.FakeQuantizedReLU
    assert quantized.weight is linear.weight
    with torch.no_grad():
        linear.weight.add_(1.0)  # in-place: seen by both
    assert torch.equal(quantized.weight, linear.weight)
    quantized.weight = torch.nn.Parameter(torch.zeros(2, 3))  # re-assignment: not shared
    assert not torch.equal(quantized.weight, linear.weight)
    original = quantized.get_original_module()
    assert type(original) is torch.nn.Linear and original.weight is quantized.weight
    assert "input_quantizers" not in dict(original.named_children())


def test_registry():
    class MyModule(torch.nn.Module):
        def forward(self, x):  # pylint: disable=no-self-use
            return x * 2

    with pytest.raises(RuntimeError, match="not registered"):
        QuantizationMixin.from_module(MyModule())

    @QuantizationMixin.implements(MyModule)
    class QuantizedMyModule(QuantizationMixin, MyModule):
        pass

    quantized = QuantizationMixin.from_module(MyModule())
    assert type(quantized) is QuantizedMyModule
    assert QuantizationMixin.wrap(MyModule) is QuantizedMyModule
    quantized.output_quantizers[0] = QuantizeDequantize((), 8, False)
    with quantized.compute_encodings():
        quantized(torch.tensor([0.0, 1.0]))
    assert quantized.output_quantizers[0].is_initialized()
    with pytest.raises(ValueError):
        QuantizationMixin.wrap(int)
    with pytest.raises(RuntimeError, match="already a quantized module"):
        QuantizationMixin.from_module(quantized)


def test_a_forward_of_your_own_calls_the_quantizers():
    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor([0.3, -0.7]))

        def forward(self, x):
            return x * self.weight

    @FakeQuantizationMixin.implements(Scale)
    class FakeQuantizedScale(FakeQuantizationMixin, Scale):
        def forward(self, x):  # the reference's style: quantizers called explicitly
            x = self.input_quantizers[0](x)
            weight = self.param_quantizers["weight"](self.weight)
            return self.output_quantizers[0](x * weight)

    module = FakeQuantizationMixin.from_module(Scale())
    assert type(module) is FakeQuantizedScale
    module.input_quantizers[0] = act()
    module.output_quantizers[0] = act()
    module.param_quantizers["weight"] = QuantizeDequantize((), 8, True)
    x = torch.tensor([-2.0, 1.5])
    with module.compute_encodings():
        y = module(x)
    # Inside the scope the activation quantizers passed their inputs through.
    assert torch.equal(y, x * module.param_quantizers["weight"](module.weight))
    assert module.input_quantizers[0].is_initialized()
    assert torch.equal(module.input_quantizers[0].min.detach(), torch.tensor(-2.0))
    assert "forward" not in vars(module.input_quantizers[0])  # restored


def test_wrap_makes_a_class_with_one_input_and_one_output():
    class Double(torch.nn.Module):
        def forward(self, x):  # pylint: disable=no-self-use
            return x * 2

    cls = FakeQuantizationMixin.wrap(Double)
    assert cls.__name__ == "FakeQuantizedDouble" and issubclass(cls, Double)
    module = cls()
    assert len(module.input_quantizers) == 1 and len(module.output_quantizers) == 1
    assert FakeQuantizationMixin.wrap(Double) is cls


def test_empty_slots_compute_the_float_module():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3)
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(QuantizationMixin.from_module(conv)(x), conv(x))


def test_lazy_parameter_initialization_and_uninitialized_input():
    torch.manual_seed(0)
    linear = qnn.QuantizedLinear(2, 2)
    linear.param_quantizers["weight"] = QuantizeDequantize((2, 1), 4, True)
    x = torch.randn(3, 2)
    y = linear(x)  # the first call initializes the weight quantizer from the weight itself
    quantizer = linear.param_quantizers["weight"]
    assert quantizer.is_initialized()
    expected = QuantizeDequantize((2, 1), 4, True)
    with expected.compute_encodings():
        expected(linear.weight.detach())
    assert torch.equal(quantizer.min, expected.min) and torch.equal(quantizer.max, expected.max)
    assert torch.equal(y, F.linear(x, expected(linear.weight), linear.bias))
    linear.input_quantizers[0] = act()
    with pytest.raises(RuntimeError):
        linear(x)


def test_module_calibration_observes_only_and_sets_ranges_on_exit():
    linear = qnn.QuantizedLinear(2, 2)
    linear.input_quantizers[0] = act()
    linear.output_quantizers[0] = act()
    linear.param_quantizers["weight"] = QuantizeDequantize((), 8, True)
    x = torch.tensor([[-1.0, 2.0], [0.5, 3.0]])
    with linear.compute_encodings():
        assert linear.param_quantizers["weight"].is_initialized()  # calibrated on entry
        y = linear(x)
        # Activations pass through unquantized; the parameters are quantized.
        weight = linear.param_quantizers["weight"]._fake_quantize(linear.weight)
        assert torch.equal(y, F.linear(x, weight, linear.bias))
        assert not linear.input_quantizers[0].is_initialized()
    assert linear.input_quantizers[0].is_initialized()
    assert torch.equal(linear.input_quantizers[0].min.detach(), torch.tensor(-1.0))
    assert torch.equal(linear.input_quantizers[0].max.detach(), torch.tensor(3.0))


def test_calibration_sets_nothing_on_exception():
    linear = qnn.QuantizedLinear(2, 2)
    linear.input_quantizers[0] = act()
    with pytest.raises(ZeroDivisionError):
        with linear.compute_encodings():
            linear(torch.randn(3, 2))
            raise ZeroDivisionError
    assert not linear.input_quantizers[0].is_initialized()
    assert not linear._is_calibrating()


def test_frozen_quantizers_are_left_out_of_calibration():
    linear = qnn.QuantizedLinear(2, 2)
    frozen = act()
    with frozen.compute_encodings():
        frozen(torch.tensor([-1.0, 1.0]))
    frozen.allow_overwrite(False)
    before = (frozen.min.detach().clone(), frozen.max.detach().clone())
    linear.input_quantizers[0] = frozen
    x = torch.tensor([[-10.0, 10.0]])
    with linear.compute_encodings():
        y = linear(x)
    assert torch.equal(frozen.min.detach(), before[0]) and torch.equal(frozen.max.detach(),
                                                                      before[1])
    assert torch.equal(y, F.linear(frozen._fake_quantize(x), linear.weight, linear.bias))


def test_quantize_and_quantize_dequantize_quantizers_agree():
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    outputs = []
    for cls in (QuantizeDequantize, Quantize):
        quantized = QuantizationMixin.from_module(linear)
        quantized.input_quantizers[0] = cls((), 8, False)
        quantized.output_quantizers[0] = cls((), 8, False)
        quantized.param_quantizers["weight"] = cls((), 8, True)
        with quantized.compute_encodings():
            quantized(x)
        outputs.append(quantized(x))
    assert torch.equal(outputs[0], outputs[1])


def test_kernel():
    torch.manual_seed(0)
    qlinear = qnn.QuantizedLinear(4, 3)
    qlinear.input_quantizers[0] = Quantize((), 8, False)
    qlinear.output_quantizers[0] = Quantize((), 8, False)
    qlinear.param_quantizers["weight"] = Quantize((), 8, True)
    x = torch.randn(5, 4)
    with qlinear.compute_encodings():
        qlinear(x)
    expected = qlinear(x)
    seen = {}

    def kernel(args):
        seen["input"] = args.inputs[0]
        y = F.linear(args.real_input(0), args.real_parameter("weight"),
                     args.real_parameter("bias"))
        return QuantizedTensor(args.output_encoding.quantize(y), args.output_encoding)

    qlinear.set_kernel(kernel)
    assert qlinear.get_kernel() is kernel
    out = qlinear(x)
    assert isinstance(seen["input"], QuantizedTensor)
    assert torch.allclose(out, expected, atol=float(qlinear.output_quantizers[0].get_scale()))
    with qlinear.compute_encodings():  # calibration always takes the fake-quantization path
        qlinear(x)
    qlinear.set_kernel(None)
    assert torch.equal(qlinear(x), expected)
    qlinear.reset_kernel()
    assert qlinear.get_kernel() is None


def test_remove_quantizers():
    qlinear = qnn.QuantizedLinear(2, 2)
    quantizer = act()
    qlinear.input_quantizers[0] = quantizer
    qlinear.param_quantizers["weight"] = QuantizeDequantize((), 8, True)
    with qlinear._remove_input_quantizers(0):
        assert qlinear.input_quantizers[0] is None
    assert qlinear.input_quantizers[0] is quantizer
    with qlinear._remove_all_quantizers():
        assert qlinear.param_quantizers["weight"] is None
    assert qlinear.param_quantizers["weight"] is not None
    qlinear._remove_activation_quantizers()  # without `with`: permanent
    assert qlinear.input_quantizers[0] is None


def test_encodings_export_and_import():
    qlinear = qnn.QuantizedLinear(2, 2)
    qlinear.input_quantizers[0] = QuantizeDequantize((), 8, True)
    assert qlinear.export_input_encodings() == [None]
    qlinear.import_input_encodings({"0": {"min": -1.28, "max": 1.27, "scale": 0.01,
                                          "offset": -128, "bitwidth": 8, "dtype": "int",
                                          "is_symmetric": "True"}})
    exported = qlinear.export_input_encodings()[0]
    assert exported[0]["bitwidth"] == 8 and exported[0]["offset"] == -128
    assert qlinear.export_output_encodings() == [None]
    assert qlinear.export_param_encodings() == {"weight": None, "bias": None}
    with pytest.raises(IndexError):
        qlinear.import_input_encodings({"3": exported})
    with pytest.raises(RuntimeError):
        qlinear.import_output_encodings({"0": exported})
    qlinear.import_output_encodings({"0": exported}, strict=False)
    with pytest.raises(ValueError):
        qlinear.import_input_encodings({"0": 3})
    qlinear.import_input_encodings({}, partial=False)
    assert qlinear.input_quantizers[0] is None


def test_slot_errors():
    qlinear = qnn.QuantizedLinear(2, 2)
    with pytest.raises(IndexError):
        qlinear.input_quantizers[1] = act()
    with pytest.raises(KeyError):
        qlinear.param_quantizers["gamma"]  # pylint: disable=pointless-statement
    with pytest.raises(IndexError):
        qlinear.param_quantizers[2] = act()
    assert qlinear.param_quantizers[1] is None  # by position: bias


def test_rnn_weight_quantizers_take_effect():
    torch.manual_seed(0)
    lstm = qnn.FakeQuantizedLSTM(3, 4)
    x = torch.randn(2, 1, 3)
    before = lstm(x)[0]
    lstm.param_quantizers["weight_ih_l0"] = QuantizeDequantize((), 2, True)
    after = lstm(x)[0]
    assert not torch.equal(before, after)
    float_lstm = lstm.get_original_module()
    with torch.no_grad():
        float_lstm.weight_ih_l0.copy_(lstm.param_quantizers["weight_ih_l0"](lstm.weight_ih_l0))
    assert torch.equal(float_lstm(x)[0], after)


def test_save_load_round_trip():
    torch.manual_seed(0)
    qlinear = qnn.QuantizedLinear(3, 2)
    qlinear.input_quantizers[0] = act()
    qlinear.param_quantizers["weight"] = QuantizeDequantize((2, 1), 8, True)
    x = torch.randn(4, 3)
    with qlinear.compute_encodings():
        qlinear(x)
    buffer = io.BytesIO()
    torch.save(qlinear.state_dict(), buffer)
    buffer.seek(0)
    fresh = qnn.QuantizedLinear(3, 2)
    fresh.input_quantizers[0] = act()
    fresh.param_quantizers["weight"] = QuantizeDequantize((2, 1), 8, True)
    fresh.load_state_dict(torch.load(buffer))
    assert torch.equal(fresh(x), qlinear(x))


def test_model_level_helpers():
    model = torch.nn.Sequential(qnn.QuantizedLinear(2, 3), qnn.QuantizedLinear(3, 1))
    for layer in model:
        layer.output_quantizers[0] = act()
        layer.param_quantizers["weight"] = QuantizeDequantize((), 8, True)
    qnn.compute_param_encodings(model)
    assert all(layer.param_quantizers["weight"].is_initialized() for layer in model)
    with qnn.compute_encodings(model):
        model(torch.randn(4, 2))
    assert all(layer.output_quantizers[0].is_initialized() for layer in model)


def test_a_quantizer_shared_by_two_modules_calibrates_once():
    first, second = qnn.QuantizedLinear(2, 2), qnn.QuantizedLinear(2, 2)
    shared = act()
    first.output_quantizers[0] = shared
    second.input_quantizers[0] = shared
    model = torch.nn.Sequential(first, second)
    with qnn.compute_encodings(model):
        model(torch.randn(3, 2))
    assert shared.is_initialized() and "forward" not in vars(shared)


@pytest.mark.parametrize("row", qnn._table.ROWS,
                         ids=[("custom." if r.custom else "") + r.name for r in qnn._table.ROWS])
def test_every_table_row_has_its_classes(row):
    namespace = custom if row.custom else qnn
    float_cls = (getattr(custom, row.name) if row.custom else getattr(torch.nn, row.name))
    fake = getattr(namespace, "FakeQuantized" + row.class_name)
    assert fake.__mro__[-len(float_cls.__mro__):] == float_cls.__mro__
    assert issubclass(fake, FakeQuantizationMixin) and issubclass(fake, float_cls)
    assert FakeQuantizationMixin.wrap(float_cls) is fake
    assert ("FakeQuantized" + row.class_name) in namespace.__all__
    if row.quantized:
        quantized = getattr(namespace, "Quantized" + row.class_name)
        assert issubclass(quantized, QuantizationMixin) and issubclass(quantized, float_cls)
        assert QuantizationMixin.wrap(float_cls) is quantized
    else:
        assert not hasattr(namespace, "Quantized" + row.class_name)
    assert fake._num_inputs == row.inputs and fake._num_outputs == row.outputs


def test_type_errors():
    qlinear = qnn.QuantizedLinear(2, 2)
    with pytest.raises(TypeError):
        qlinear.input_quantizers[0] = 3
    with pytest.raises(TypeError):
        qlinear(torch.randn(1, 2), torch.randn(1, 2))  # Linear.forward takes one input
    with pytest.raises(TypeError):
        qlinear(bogus=torch.randn(1, 2))


def test_inference_reuses_the_quantized_parameter_while_nothing_changed():
    torch.manual_seed(0)
    qlinear = qnn.QuantizedLinear(4, 3)
    quantizer = QuantizeDequantize((), 4, True)
    qlinear.param_quantizers["weight"] = quantizer
    x = torch.randn(2, 4)
    with torch.no_grad():
        first = qlinear(x)
        assert torch.equal(qlinear(x), first)
        with torch.no_grad():  # a new range: recomputed
            quantizer.max.mul_(0.5)
            quantizer.min.mul_(0.5)
        second = qlinear(x)
        assert torch.equal(second, F.linear(x, quantizer(qlinear.weight), qlinear.bias))
        assert not torch.equal(second, first)
        qlinear.weight.add_(1.0)  # an in-place change of the weight: recomputed
        assert torch.equal(qlinear(x), F.linear(x, quantizer(qlinear.weight), qlinear.bias))
        quantizer.bitwidth = 8  # a new grid (the quantizer's revision): recomputed
        assert torch.equal(qlinear(x), F.linear(x, quantizer(qlinear.weight), qlinear.bias))
    y = qlinear(x)  # with autograd: never cached, gradients reach the range
    y.sum().backward()
    assert quantizer.max.grad is not None and qlinear.weight.grad is not None


def test_deepcopy_and_whole_module_save():
    import copy  # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    qlinear = qnn.QuantizedLinear(3, 2)
    shared = act()
    qlinear.input_quantizers[0] = shared
    qlinear.output_quantizers[0] = shared
    qlinear.param_quantizers["weight"] = QuantizeDequantize((2, 1), 8, True)
    x = torch.randn(4, 3)
    with qlinear.compute_encodings():
        qlinear(x)
    with torch.no_grad():
        expected = qlinear(x)  # fills the inference cache
    clone = copy.deepcopy(qlinear)
    assert "_parameter_cache" not in vars(clone)
    assert clone.input_quantizers[0] is clone.output_quantizers[0]  # still shared
    assert clone.weight is not qlinear.weight
    assert torch.equal(clone(x), expected)
    buffer = io.BytesIO()
    torch.save(qlinear, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)
    assert type(loaded) is qnn.QuantizedLinear
    assert torch.equal(loaded(x), expected)
