"""quantsim.quantsim.QuantizationSimModel on a Python model with residual blocks: conversion,
quantizer placement (the C++ core's, on the recorded dataflow), calibration, one QAT step,
state_dict save/load, encodings reload, and the errors with their Python types."""
import io
import json

import pytest
import torch

import quantsim
from quantsim.quantization.affine import QuantizeDequantize
from quantsim.quantization.encoding_analyzer import MinMaxEncodingAnalyzer
from quantsim.quantsim import QuantizationSimModel, QuantScheme


class Block(torch.nn.Module):
    """conv-bn-relu-conv + identity, then relu: the user's own (non-leaf) module."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.add = quantsim.nn.custom.Add()
        self.relu2 = torch.nn.ReLU()

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.add(self.conv2(y), x))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.blocks = torch.nn.Sequential(Block(8), Block(8))
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.flatten = torch.nn.Flatten()
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.blocks(self.relu(self.stem(x))))))


def make_net(seed=0):
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():  # batch norms with statistics of their own
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def batches(n=3, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 8, 8, generator=generator) for _ in range(n)]


def calibrate(model, data):
    for x in data:
        model(x)


def quantized_slots(sim):
    """{quantizer path: (shape, symmetric)} of every filled slot."""
    slots = {}
    for name, module in sim.model.named_modules():
        if not isinstance(module, quantsim.nn.BaseQuantizationMixin):
            continue
        groups = [("input_quantizers", enumerate(module.input_quantizers)),
                  ("output_quantizers", enumerate(module.output_quantizers)),
                  ("param_quantizers", module.param_quantizers.items())]
        for kind, items in groups:
            for key, q in items:
                if q is not None:
                    slots[f"{name}.{kind}.{key}"] = (tuple(q.shape), q.symmetric)
    return slots


# The reference's placement under the default configuration: the model input; weights per
# channel, symmetric (biases and batch norms float); conv1 + bn1 + relu1 one supergroup (the batch
# norm folded), add + relu2 another; conv2's output read by add is quantized.
EXPECTED_SLOTS = {"stem.input_quantizers.0": ((), False),
                  "stem.param_quantizers.weight": ((8, 1, 1, 1), True),
                  "relu.output_quantizers.0": ((), False),
                  "pool.output_quantizers.0": ((), False),
                  "flatten.output_quantizers.0": ((), False),
                  "fc.output_quantizers.0": ((), False),
                  "fc.param_quantizers.weight": ((10, 1), True)}
for _block in ("blocks.0", "blocks.1"):
    EXPECTED_SLOTS.update({f"{_block}.conv1.param_quantizers.weight": ((8, 1, 1, 1), True),
                           f"{_block}.relu1.output_quantizers.0": ((), False),
                           f"{_block}.conv2.param_quantizers.weight": ((8, 1, 1, 1), True),
                           f"{_block}.conv2.output_quantizers.0": ((), False),
                           f"{_block}.relu2.output_quantizers.0": ((), False)})


def test_conversion_keeps_user_modules_and_places_quantizers_as_the_configuration_says():
    net = make_net()
    sim = QuantizationSimModel(net, batches(1)[0], quant_scheme="post_training_tf")
    assert sim.model is not net  # in_place=False: a copy
    assert type(net.stem) is torch.nn.Conv2d  # the float model is untouched
    assert type(sim.model) is Net and type(sim.model.blocks[0]) is Block
    assert isinstance(sim.model.blocks, torch.nn.Sequential)
    assert isinstance(sim.model.stem, quantsim.nn.BaseQuantizationMixin)
    assert isinstance(sim.model.stem, torch.nn.Conv2d)
    assert isinstance(sim.model.blocks[1].add, quantsim.nn.custom.Add)
    assert quantized_slots(sim) == EXPECTED_SLOTS
    # Post-training schemes freeze the ranges.
    assert not sim.model.stem.input_quantizers[0].min.requires_grad


def test_in_place_converts_the_model_itself():
    net = make_net()
    sim = QuantizationSimModel(net, batches(1)[0], in_place=True)
    assert sim.model is net
    assert isinstance(net.stem, quantsim.nn.BaseQuantizationMixin)


def test_compute_encodings_calibrates_every_quantizer_as_a_quantizer_on_the_same_data():
    data = batches()
    sim = QuantizationSimModel(make_net(), data[0], quant_scheme=QuantScheme.post_training_tf)
    seen = []
    sim.compute_encodings(lambda model, args: (seen.append(args), calibrate(model, data)), "args")
    assert seen == ["args"]
    for path in EXPECTED_SLOTS:
        module_name, kind, key = path.rsplit(".", 2)
        quantizer = getattr(sim.model.get_submodule(module_name), kind)[
            int(key) if key.isdigit() else key]
        assert quantizer.is_initialized(), path
    # The model input's quantizer: MinMax over the three batches, as a lone quantizer.
    alone = QuantizeDequantize((), 8, False, encoding_analyzer=MinMaxEncodingAnalyzer(()))
    with alone.compute_encodings():
        for x in data:
            alone(x)
    stem_input = sim.model.stem.input_quantizers[0]
    assert torch.equal(stem_input.min, alone.min) and torch.equal(stem_input.max, alone.max)
    # A weight: per channel over the weight itself.
    weight = QuantizeDequantize((8, 1, 1, 1), 8, True)
    with weight.compute_encodings():
        weight(sim.model.stem.weight)
    assert torch.equal(sim.model.stem.param_quantizers["weight"].get_scale(), weight.get_scale())
    # The simulated output is on fc's output grid.
    y = sim.model(data[0])
    scale = sim.model.fc.output_quantizers[0].get_scale()
    offset = sim.model.fc.output_quantizers[0].get_offset()
    grid = y.as_subclass(torch.Tensor) / scale - offset
    assert torch.allclose(grid, grid.round(), atol=1e-3)


def test_the_module_order_of_the_user_model_decides_nothing_but_names():
    # Recording follows the data, not the attribute order: same slots with another seed.
    sim = QuantizationSimModel(make_net(3), batches(1)[0])
    assert quantized_slots(sim) == EXPECTED_SLOTS


def test_one_qat_step_trains_weights_and_ranges():
    data = batches()
    sim = QuantizationSimModel(make_net(), data[0],
                               quant_scheme="training_range_learning_with_tf_init")
    sim.compute_encodings(lambda model: calibrate(model, data))
    quantizer = sim.model.blocks[0].relu1.output_quantizers[0]
    assert quantizer.min.requires_grad and quantizer.max.requires_grad
    before = {k: v.detach().clone() for k, v in sim.model.state_dict().items()
              if isinstance(v, torch.Tensor)}
    sim.model.train()
    optimizer = torch.optim.SGD(sim.model.parameters(), lr=0.05)
    target = torch.arange(4) % 10
    loss = torch.nn.functional.cross_entropy(sim.model(data[1]), target)
    loss.backward()
    assert quantizer.max.grad is not None and quantizer.max.grad.abs().item() > 0
    optimizer.step()
    after = sim.model.state_dict()
    for key in ("stem.weight", "fc.weight", "blocks.0.relu1.output_quantizers.0.max",
                "fc.output_quantizers.0.min"):
        assert not torch.equal(before[key], after[key]), key
    assert torch.isfinite(loss)


def test_state_dict_survives_torch_save_and_load_into_a_fresh_simulation():
    data = batches()
    sim = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_tf")
    sim.compute_encodings(lambda model: calibrate(model, data))
    state = sim.model.state_dict()
    assert "stem.input_quantizers.0.min" in state
    assert "blocks.1.conv2.param_quantizers.weight.max" in state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    fresh = QuantizationSimModel(make_net(7), data[0], quant_scheme="post_training_tf")
    fresh.model.load_state_dict(torch.load(buffer))
    assert fresh.model.stem.input_quantizers[0].is_initialized()
    with torch.no_grad():
        assert torch.equal(fresh.model(data[2]), sim.model(data[2]))


def test_torch_encodings_load_into_a_fresh_simulation_bit_exactly(tmp_path):
    data = batches()
    sim = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_percentile")
    sim.compute_encodings(lambda model: calibrate(model, data))
    encodings = sim._torch_encodings()  # pylint: disable=protected-access
    assert set(encodings["activation_encodings"]["stem"]) == {"input"}
    assert encodings["activation_encodings"]["blocks.0.conv2"]["output"]["0"]["dtype"] == "int"
    assert len(encodings["param_encodings"]["stem.weight"]) == 8
    assert encodings["quantizer_args"]["quant_scheme"] == "post_training_percentile"
    path = tmp_path / "sim_torch.encodings"
    path.write_text(json.dumps(encodings))
    fresh = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_percentile")
    fresh.load_encodings(str(path))
    with torch.no_grad():
        assert torch.equal(fresh.model(data[2]), sim.model(data[2]))
    with pytest.raises(RuntimeError, match="nowhere"):
        fresh.load_encodings({"activation_encodings": {"nowhere": {}}, "param_encodings": {}})


def test_a_config_file_decides_the_slots(tmp_path):
    config = {"defaults": {"ops": {"is_output_quantized": "True"},
                           "params": {"is_quantized": "True", "is_symmetric": "False"}},
              "params": {"bias": {"is_quantized": "False"}},
              "op_type": {"Relu": {"is_output_quantized": "False"}},
              "supergroups": [], "model_input": {"is_input_quantized": "False"},
              "model_output": {}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    sim = QuantizationSimModel(make_net(), batches(1)[0], config_file=str(path),
                               default_param_bw=4, default_output_bw=16)
    slots = quantized_slots(sim)
    assert "stem.input_quantizers.0" not in slots
    assert "relu.output_quantizers.0" not in slots
    assert slots["stem.output_quantizers.0"] == ((), False)
    assert slots["stem.param_quantizers.weight"] == ((), False)  # per tensor, asymmetric
    # No supergroups: the batch norm still folds into its conv (as the reference always does).
    assert "blocks.0.conv1.output_quantizers.0" not in slots
    assert "blocks.0.bn1.param_quantizers.weight" not in slots
    assert slots["blocks.0.bn1.output_quantizers.0"] == ((), False)
    assert sim.model.stem.param_quantizers["weight"].bitwidth == 4
    assert sim.model.stem.output_quantizers[0].bitwidth == 16


class Unregistered(torch.nn.Module):
    def forward(self, x):
        return x * 2


def test_errors_and_their_python_types(tmp_path):
    x = batches(1)[0]
    with pytest.raises(ValueError, match="quant scheme"):
        QuantizationSimModel(make_net(), x, quant_scheme="post_training_nothing")
    with pytest.raises(TypeError):
        QuantizationSimModel(make_net(), x, quant_scheme=3)
    with pytest.raises(ValueError, match="default_param_bw"):
        QuantizationSimModel(make_net(), x, default_param_bw=0)
    # 1 bit cannot hold a symmetric grid: the option, the parameter and the module are named.
    with pytest.raises(ValueError, match="default_param_bw` 1 for parameter 'weight' of module "
                                         "'stem'"):
        QuantizationSimModel(make_net(), x, default_param_bw=1)
    with pytest.raises(TypeError, match="default_output_bw"):
        QuantizationSimModel(make_net(), x, default_output_bw="8")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        QuantizationSimModel(lambda t: t, x)
    with pytest.raises(ValueError, match="rounding_mode"):
        QuantizationSimModel(make_net(), x, rounding_mode="stochastic")
    # A leaf of no quantized class.
    with pytest.raises(RuntimeError, match="not registered"):
        QuantizationSimModel(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), Unregistered()), x)
    # A model that is already quantized.
    sim = QuantizationSimModel(make_net(), x)
    with pytest.raises(RuntimeError, match="already contains quantized"):
        QuantizationSimModel(sim.model, x)
    # Configuration files: unreadable (RuntimeError), malformed (ValueError naming the key).
    with pytest.raises(RuntimeError, match="missing.json"):
        QuantizationSimModel(make_net(), x, config_file=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaults": {"ops": {"is_output_quantized": 3}}}))
    with pytest.raises(ValueError, match="is_output_quantized"):
        QuantizationSimModel(make_net(), x, config_file=str(bad))
    # The forward pass fails: its error, and the model keeps its (empty) slots.
    with pytest.raises(RuntimeError):
        QuantizationSimModel(make_net(), torch.randn(1, 5, 8, 8))
    # Calibration with something that is not callable.
    with pytest.raises(TypeError, match="forward_pass_callback"):
        sim.compute_encodings(None)
    # An uninitialized simulation cannot run.
    with pytest.raises(RuntimeError):
        sim.model(x)
