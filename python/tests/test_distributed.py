"""Data-parallel calibration from Python (docs/distributed.md): two processes over loopback
(torch.distributed, Gloo) each calibrate the residual model of test_quantsim on their own batches
with ``compute_encodings(..., process_group=...)``; the statistics are merged by the C++ core on
torch's own ProcessGroup. Every rank ends with the same encodings, and with MinMax they equal
single-process calibration over all batches bit for bit. QAT across ranks is torch's
DistributedDataParallel on the simulated model (its quantizer ranges are Parameters)."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import torch

import quantsim
from quantsim.quantsim import QuantizationSimModel
from test_quantsim import batches, calibrate, make_net

_WORKER = r'''
import datetime, json, os, sys
import torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from quantsim.quantsim import QuantizationSimModel
from test_quantsim import batches, calibrate, make_net
rank, world, scheme, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
dist.init_process_group("gloo", rank=rank, world_size=world,
                        timeout=datetime.timedelta(seconds=20))
failing = scheme == "fail"  # rank 1 exits before calibrating
if failing:
    scheme = "post_training_tf"
data = batches(4)
shard = data[rank::world]
sim = QuantizationSimModel(make_net(), data[0], quant_scheme=scheme)
if failing and rank == 1:
    raise SystemExit("rank 1 fails before calibrating")
try:
    sim.compute_encodings(lambda model, _: calibrate(model, shard), None,
                          process_group=dist.group.WORLD)
except RuntimeError as error:
    with open(out, "w") as f:
        json.dump({"error": str(error),
                   "initialized": sim.model.stem.input_quantizers[0].is_initialized()}, f)
    raise SystemExit(3)
if scheme.startswith("training_range_learning"):
    # QAT with torch's DistributedDataParallel: gradients of the weights and of the quantizer
    # ranges (plain Parameters) averaged by DDP's reducer.
    model = torch.nn.parallel.DistributedDataParallel(sim.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for x in shard:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), torch.arange(4) % 10).backward()
        optimizer.step()
ranges = {k: v.tolist() for k, v in sim.model.state_dict().items()
          if isinstance(v, torch.Tensor) and "running_" not in k}
with open(out, "w") as f:
    json.dump(ranges, f)
dist.destroy_process_group()
'''


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(tmp_path, scheme, world=2, codes=None):
    """Each rank's quantizer ranges {state_dict key: values} after data-parallel calibration
    (each rank's exit status expected 0, or as `codes` lists them)."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               OMP_NUM_THREADS="1")
    tests = str(pathlib.Path(__file__).resolve().parent)
    outputs = [tmp_path / f"rank{r}.json" for r in range(world)]
    processes = [subprocess.Popen([sys.executable, str(script), tests, str(r), str(world),
                                   scheme, str(outputs[r])], env=env)
                 for r in range(world)]
    statuses = [process.wait(timeout=300) for process in processes]
    assert statuses == (codes or [0] * world)
    return [json.loads(o.read_text()) if o.exists() else None for o in outputs]


def test_minmax_calibration_is_identical_on_every_rank_and_equal_to_single_process(tmp_path):
    ranks = run_ranks(tmp_path, "post_training_tf")
    assert ranks[0] == ranks[1]
    data = batches(4)
    single = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_tf")
    single.compute_encodings(lambda model: calibrate(model, data))
    expected = {k: v.tolist() for k, v in single.model.state_dict().items()
                if k.endswith((".min", ".max"))}
    assert {k: v for k, v in ranks[0].items() if k.endswith((".min", ".max"))} == expected
    # Each rank's own batches alone give other ranges: the merge did something.
    alone = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_tf")
    alone.compute_encodings(lambda model: calibrate(model, data[0::2]))
    assert alone.model.stem.input_quantizers[0].min.tolist() != \
        ranks[0]["stem.input_quantizers.0.min"]


def test_percentile_calibration_is_identical_on_every_rank(tmp_path):
    ranks = run_ranks(tmp_path, "post_training_percentile")
    assert ranks[0] == ranks[1]
    assert len([k for k in ranks[0] if k.endswith((".min", ".max"))]) == 2 * 17


def test_qat_steps_with_distributed_data_parallel_keep_every_rank_identical(tmp_path):
    # Two QAT steps per rank on its own batches: weights and quantizer ranges moved, and equal
    # on both ranks (batch-norm running statistics are each rank's own since its last forward,
    # as DistributedDataParallel broadcasts rank 0's at the start of each forward).
    ranks = run_ranks(tmp_path, "training_range_learning_with_tf_init")
    assert ranks[0] == ranks[1]
    data = batches(4)
    calibrated = QuantizationSimModel(make_net(), data[0],
                                      quant_scheme="training_range_learning_with_tf_init")
    calibrated.compute_encodings(lambda model: calibrate(model, data))
    before = calibrated.model.state_dict()
    for key in ("stem.weight", "fc.output_quantizers.0.max",
                "blocks.1.relu2.output_quantizers.0.min"):
        assert ranks[0][key] != before[key].tolist(), key


def test_a_process_group_must_be_a_process_group():
    data = batches(1)
    sim = QuantizationSimModel(make_net(), data[0], quant_scheme="post_training_tf")
    with pytest.raises(TypeError, match="ProcessGroup"):
        sim.compute_encodings(lambda model, _: model(data[0]), None, process_group=object())
    # The failed calibration set nothing.
    assert not sim.model.stem.input_quantizers[0].is_initialized()
    with pytest.raises(TypeError, match="ProcessGroup"):
        quantsim._C.synchronize_statistics([], "group")  # pylint: disable=protected-access
    assert torch.distributed.is_available()


def test_a_rank_that_fails_makes_its_peer_fail_cleanly(tmp_path):
    # Rank 1 exits before calibrating; rank 0's merge fails with a RuntimeError (within the
    # group's timeout) and leaves its quantizers uncalibrated.
    ranks = run_ranks(tmp_path, "fail", codes=[3, 1])
    assert ranks[1] is None
    assert ranks[0]["initialized"] is False
    assert "rank 0" in ranks[0]["error"]
