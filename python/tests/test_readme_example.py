"""The README's Python example runs as written, on a small residual CNN."""
import pathlib
import re

import torch


def _readme_python_block():
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x)) + x


def test_readme_python_example_runs(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), _Block(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10)).eval()
    sample = torch.randn(1, 1, 8, 8)
    calibration = [torch.randn(2, 1, 8, 8) for _ in range(3)]
    x = torch.randn(2, 1, 8, 8)
    monkeypatch.chdir(tmp_path)
    namespace = {"model": model, "sample": sample, "calibration": calibration, "x": x}
    exec(compile(_readme_python_block(), "README.md", "exec"), namespace)  # pylint: disable=exec-used
    assert namespace["y"].shape == (2, 10)
    assert not torch.equal(namespace["y"].as_subclass(torch.Tensor), model(x))  # quantized
    for name in ("net.onnx", "net.encodings", "net_qdq.onnx", "net_torch.encodings"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert namespace["qlinear"].param_quantizers["weight"].is_initialized()
