"""QuantizationSimModel.export from Python: the four files (torch.onnx.export with marker nodes
turned into quantsim's quantizer nodes by the C++ core), encodings keyed by the graph's tensor
names, and the QDQ model run in ONNX Runtime equal to the simulation bit for bit."""
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

import quantsim

from quantsim.quantsim import QuantizationSimModel
from test_quantsim import batches, calibrate, make_net

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _onnxruntime_dir():
    if os.environ.get("QUANTSIM_ONNXRUNTIME_DIR"):
        return pathlib.Path(os.environ["QUANTSIM_ONNXRUNTIME_DIR"])
    version = json.loads((_ROOT / "tools/onnxruntime/package.json").read_text())[
        "dependencies"]["onnxruntime-node"]
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache"))
    return cache / "quantsim" / f"onnxruntime-node-{version}"


def _require_onnxruntime():
    """As tests/testing/onnxruntime.h: node and npm's onnxruntime-node, else skipped (failed on
    CI)."""
    node = os.environ.get("QUANTSIM_NODE") or shutil.which("node")
    missing = None
    if node is None:
        missing = "node not found"
    elif not (_onnxruntime_dir() / "node_modules" / "onnxruntime-node").is_dir():
        missing = f"onnxruntime-node not found in {_onnxruntime_dir()} (scripts/setup.sh)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return node


def run_in_onnxruntime(model_path, inputs, optimization, tmp_path):
    """The model's outputs on `inputs` ({name: float32 tensor}) through
    tools/onnxruntime/run_model.js."""
    node = _require_onnxruntime()
    blob, run = b"", {}
    for name, tensor in inputs.items():
        data = tensor.detach().contiguous().numpy().astype(np.float32).tobytes()
        run[name] = {"dtype": "float32", "shape": list(tensor.shape), "offset": len(blob),
                     "bytes": len(data)}
        blob += data
    (tmp_path / "in.bin").write_bytes(blob)
    (tmp_path / "in.json").write_text(json.dumps({"data": "in.bin", "runs": [run]}))
    env = dict(os.environ, QUANTSIM_ONNXRUNTIME_DIR=str(_onnxruntime_dir()))
    subprocess.run([node, str(_ROOT / "tools/onnxruntime/run_model.js"), "--model",
                    str(model_path), "--inputs", str(tmp_path / "in.json"), "--outputs",
                    str(tmp_path / "out.json"), "--optimization", optimization],
                   check=True, env=env)
    manifest = json.loads((tmp_path / "out.json").read_text())
    data = (tmp_path / manifest["data"]).read_bytes()
    outputs = []
    for entry in manifest["runs"][0].values():
        array = np.frombuffer(data[entry["offset"]:entry["offset"] + entry["bytes"]],
                              dtype=np.float32)
        outputs.append(torch.from_numpy(array.reshape(entry["shape"]).copy()))
    return outputs


@pytest.fixture(name="exported")
def fixture_exported(tmp_path_factory):
    data = batches()
    sim = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_tf")
    sim.compute_encodings(lambda model: calibrate(model, data))
    out = tmp_path_factory.mktemp("export")
    tensor_names = sim.export(str(out), "net", data[0])
    return sim, out, tensor_names


def test_export_writes_four_files_keyed_by_the_graph(exported):
    sim, out, tensor_names = exported
    assert sorted(p.name for p in out.iterdir()) == [
        "net.encodings", "net.onnx", "net_qdq.onnx", "net_torch.encodings"]
    # Every quantizer is met in the graph: parameters by their initializer's name, the model
    # input by the graph input's.
    assert tensor_names["stem.input_quantizers.0"] == "input"
    assert tensor_names["stem.param_quantizers.weight"] == "stem.weight"
    assert tensor_names["blocks.1.conv2.param_quantizers.weight"] == "blocks.1.conv2.weight"
    assert len(tensor_names) == 17
    text = (out / "net.encodings").read_text()
    encodings = json.loads(text)
    assert text == json.dumps(encodings, sort_keys=True, indent=4)  # the reference's writer
    assert encodings["version"] == "0.6.1"
    activation_names = {v for k, v in tensor_names.items() if ".param_quantizers." not in k}
    assert set(encodings["activation_encodings"]) == activation_names
    assert set(encodings["param_encodings"]) == {
        v for k, v in tensor_names.items() if ".param_quantizers." in k}
    assert encodings["activation_encodings"]["input"] == \
        sim.model.stem.input_quantizers[0].get_legacy_encodings()
    assert len(encodings["param_encodings"]["fc.weight"]) == 10
    torch_encodings = json.loads((out / "net_torch.encodings").read_text())
    assert torch_encodings == sim._torch_encodings()  # pylint: disable=protected-access
    for name in ("net.onnx", "net_qdq.onnx"):
        assert (out / name).read_bytes()[:2] == b"\x08\x08"  # ModelProto, ir_version 8


def test_exported_qdq_model_computes_the_simulation_bit_exactly(exported, tmp_path):
    sim, out, _ = exported
    x = torch.randn(5, 3, 8, 8) * 1.5  # another batch size: the batch dim is dynamic
    sim.model.eval()
    with torch.no_grad():
        expected = sim.model(x).as_subclass(torch.Tensor)
    for optimization in ("disabled", "all"):
        (actual,) = run_in_onnxruntime(out / "net_qdq.onnx", {"input": x}, optimization,
                                       tmp_path)
        assert torch.equal(actual, expected), optimization
    (float_out,) = run_in_onnxruntime(out / "net.onnx", {"input": x}, "disabled", tmp_path)
    with torch.no_grad():
        assert torch.allclose(float_out, make_net()(x), atol=1e-5)


def test_export_errors(tmp_path):
    data = batches(1)
    sim = QuantizationSimModel(make_net(), data[0])
    with pytest.raises(RuntimeError, match="not initialized"):
        sim.export(str(tmp_path / "a"), "net", data[0])
    assert not (tmp_path / "a").exists()
    sim.compute_encodings(lambda model: model(data[0]))
    with pytest.raises(ValueError, match="filename_prefix"):
        sim.export(str(tmp_path), "a/b", data[0])
    with pytest.raises(NotImplementedError, match="0.7"):
        sim.export(str(tmp_path), "net", data[0], encoding_version="0.7")
    # A failing trace writes nothing and leaves earlier files intact.
    sim.export(str(tmp_path), "net", data[0])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError):
        sim.export(str(tmp_path), "net", torch.randn(1, 5, 8, 8))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_export_1_0_0_has_one_entry_per_tensor(exported, tmp_path):
    sim, _, tensor_names = exported
    x = batches(1)[0]
    sim.export(str(tmp_path), "net", x, encoding_version="1.0.0")
    encodings = json.loads((tmp_path / "net.encodings").read_text())
    assert encodings["version"] == "1.0.0"
    by_name = {e["name"]: e for e in encodings["param_encodings"]}
    assert set(by_name) == {v for k, v in tensor_names.items() if ".param_quantizers." in k}
    stem = by_name["stem.weight"]
    assert stem["enc_type"] == "PER_CHANNEL" and stem["is_sym"] is True and stem["bw"] == 8
    legacy = sim.model.stem.param_quantizers["weight"].get_legacy_encodings()
    assert stem["scale"] == [d["scale"] for d in legacy]
    assert stem["offset"] == [-128] * 8
    activations = {e["name"]: e for e in encodings["activation_encodings"]}
    assert activations["input"]["enc_type"] == "PER_TENSOR"
    assert len(activations) == len({v for k, v in tensor_names.items()
                                    if ".param_quantizers." not in k})


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.add = quantsim.nn.custom.Add()
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, a, b):  # pylint: disable=invalid-name
        return self.fc(self.add(a, b))


class Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 5, batch_first=True)
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def _sequential():
    torch.manual_seed(2)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 36, 5))


@pytest.mark.parametrize("case", ["leaf", "sequential_sqnr", "two_inputs", "float16",
                                  "w4a16", "lstm"])
def test_export_variants_compute_the_simulation_bit_exactly(case, tmp_path):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 8, 8)
    options = dict(quant_scheme="post_training_tf")
    if case == "leaf":  # the model itself is the quantized leaf; its output a graph output
        model, inputs = torch.nn.Conv2d(3, 4, 3), (x,)
    elif case == "sequential_sqnr":
        model, inputs = _sequential(), (x,)
        options = dict(quant_scheme="post_training_tf_enhanced")
    elif case == "two_inputs":
        model, inputs = TwoInputs(), (torch.randn(4, 8), torch.randn(4, 8))
    elif case == "lstm":  # input, h0, c0 quantized (the zero states the op really uses)
        model, inputs = Recurrent(), (torch.randn(2, 4, 6),)
    elif case == "float16":
        model, inputs = _sequential(), (x,)
        options = dict(default_data_type=torch.float, default_output_bw=16, default_param_bw=16)
    else:  # 4-bit weights, 16-bit activations: QDQ pairs and the float form
        model, inputs = _sequential(), (x,)
        options.update(default_param_bw=4, default_output_bw=16)
    sim = QuantizationSimModel(model, inputs, **options)
    sim.compute_encodings(lambda m: m(*inputs))
    tensor_names = sim.export(str(tmp_path / "out"), "m", inputs)
    if case == "leaf":
        assert tensor_names == {"input_quantizers.0": "input",
                                "output_quantizers.0": "/Conv_output_0",
                                "param_quantizers.weight": "weight"}
    if case == "two_inputs":
        assert tensor_names["add.input_quantizers.1"] == "input_1"
    if case == "lstm":
        assert tensor_names["lstm.param_quantizers.weight_ih_l0"] == "lstm.weight_ih_l0"
        assert "lstm.input_quantizers.2" in tensor_names
    names = ["input"] if len(inputs) == 1 else [f"input_{i}" for i in range(len(inputs))]
    with torch.no_grad():
        expected = sim.model(*inputs).as_subclass(torch.Tensor)
    for optimization in ("disabled", "all"):
        (actual,) = run_in_onnxruntime(tmp_path / "out" / "m_qdq.onnx",
                                       dict(zip(names, inputs)), optimization, tmp_path)
        assert torch.equal(actual, expected), optimization


def test_marked_models_that_are_not_models_are_value_errors():
    with pytest.raises(ValueError, match="not an ONNX model"):
        quantsim._C.graphs_from_marked_model(b"\xff\xff", {})  # pylint: disable=protected-access
