"""Data-parallel calibration on torch.distributed (docs/distributed.md): every rank calibrates on
its own batches and the quantizers' statistics are merged across a process group before the
ranges are set, so that every rank ends with the same encodings. The merge is the C++ core's
``quantsim::distributed::synchronize_statistics`` on torch's own ProcessGroup (Gloo on CPU):

    >>> torch.distributed.init_process_group("gloo")            # MASTER_ADDR, RANK, ...
    >>> sim.compute_encodings(run_my_shard, None, process_group=torch.distributed.group.WORLD)

or, for modules calibrated by hand:

    >>> with quantsim.nn.compute_encodings(model):
    ...     model(my_batch)
    ...     quantsim.distributed.synchronize_statistics(model, group)

MinMax: the ranges equal single-process calibration over all ranks' batches, bit for bit.
Percentile/SQNR: every rank's histograms merged in rank order (identical on every rank; equal to
single-process calibration when every rank saw one batch).
"""
import torch

from . import _C
from .quantization.base import QuantizerBase

__all__ = ["calibrating_analyzers", "synchronize_statistics"]


def calibrating_analyzers(model):
    """The encoding analyzers of every quantizer of ``model`` inside its compute_encodings()
    scope, each once, in module order (the same list on every rank of a data-parallel model)."""
    analyzers, seen = [], set()
    for module in model.modules():
        if not isinstance(module, QuantizerBase) or not module._is_calibrating:  # pylint: disable=protected-access
            continue
        analyzer = getattr(module._impl, "encoding_analyzer", None)  # pylint: disable=protected-access
        if analyzer is not None and id(analyzer) not in seen:
            seen.add(id(analyzer))
            analyzers.append(analyzer)
    return analyzers


def synchronize_statistics(model, process_group=None):
    """Merges the statistics of ``model``'s calibrating quantizers across ``process_group``
    (default: torch.distributed's default group). Every rank must call it, inside the
    calibration scope, after its own batches. TypeError for an object that is not a
    ProcessGroup; RuntimeError when a collective fails (a peer gone, a timeout)."""
    if process_group is None:
        process_group = torch.distributed.distributed_c10d._get_default_group()  # pylint: disable=protected-access
    _C.synchronize_statistics(calibrating_analyzers(model), process_group)
