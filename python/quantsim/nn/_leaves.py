"""Forward arguments and results as flat sequences of tensor *leaves* (docs/modules.md §5.1).

Input quantizer ``i`` of a quantized module binds to leaf ``input_leaves[i]`` of its forward's
arguments, output quantizer ``j`` to leaf ``j`` of its result, exactly as the C++ modules bind
them (include/quantsim/nn/tensor_leaves.h):

* a tensor is one leaf, and so is ``None`` where a tensor may stand (C++'s undefined tensor or
  empty optional: ``EmbeddingBag(input, None, per_sample_weights)`` has ``per_sample_weights`` at
  leaf 2);
* a tuple (a named tuple too: ``(h0, c0)``, ``topk``'s result) is the leaves of its elements;
* a list of tensors is ONE leaf: every element goes through the same quantizer (Concat's inputs,
  Split's outputs), as C++'s ``std::vector<at::Tensor>``;
* a PackedSequence is one leaf, its data;
* anything else (sizes, scalars, dtypes) has no leaf.
"""
import torch
from torch.nn.utils.rnn import PackedSequence

__all__ = ["count", "map_leaves"]


def _is_tensor_list(value):
    return isinstance(value, list) and len(value) > 0 and all(
        isinstance(v, torch.Tensor) for v in value)


def count(value):
    """How many leaves `value` has."""
    if value is None or isinstance(value, (torch.Tensor, PackedSequence)) or _is_tensor_list(value):
        return 1
    if isinstance(value, tuple):
        return sum(count(v) for v in value)
    return 0


def _rebuild(value, elements):
    if type(value) is tuple:  # pylint: disable=unidiomatic-typecheck
        return tuple(elements)
    if hasattr(value, "_fields"):  # namedtuple
        return type(value)(*elements)
    try:  # torch.return_types structseqs take one sequence
        return type(value)(elements)
    except TypeError:
        return tuple(elements)


def map_leaves(value, first, fn):
    """(value with each leaf ``x`` replaced by ``fn(first + i, x)``, the number of leaves)."""
    if value is None or isinstance(value, torch.Tensor):
        return fn(first, value), 1
    if isinstance(value, PackedSequence):
        data = fn(first, value.data)
        if data is value.data:
            return value, 1
        return PackedSequence(data, value.batch_sizes, value.sorted_indices,
                              value.unsorted_indices), 1
    if _is_tensor_list(value):
        return [fn(first, v) for v in value], 1
    if isinstance(value, tuple):
        elements, n = [], 0
        for v in value:
            mapped, k = map_leaves(v, first + n, fn)
            elements.append(mapped)
            n += k
        if n == 0:
            return value, 0
        return _rebuild(value, elements), n
    return value, 0
