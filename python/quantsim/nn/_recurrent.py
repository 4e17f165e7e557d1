"""The recurrent rows' hooks (docs/modules.md §5.3; the C++ rnn_traits.h): the zero hidden state
the float module would create is filled in before the input quantizers see the arguments, and
RNN/LSTM/GRU's weight quantizers take effect through the cached weight list their forward reads
(torch 1.13's ``_flat_weights``; the reference's do not, docs/differences.md)."""
import contextlib

import torch
from torch.nn.utils.rnn import PackedSequence

from .base import BaseQuantizationMixin

__all__ = ["RecurrentHooks", "CellHooks"]


def _with_hx_slot(names, values):
    """The arguments as a list with the hidden state second (None when the call omitted it)."""
    values = list(values)
    if len(values) < 2:
        values.append(None)
        names = tuple(names) + ("hx",)
    return names, values


class RecurrentHooks(BaseQuantizationMixin):
    """RNN, LSTM, GRU: iq = (input, h0[, c0]), oq = (output, h_n[, c_n])."""

    def _complete_arguments(self, names, values):
        names, values = _with_hx_slot(names, values)
        input = values[0]  # pylint: disable=redefined-builtin
        if values[1] is not None:
            return names, values
        if isinstance(input, PackedSequence):
            data, batched, batch = input.data, True, int(input.batch_sizes[0])
        else:
            data, batched = input, input.dim() == 3
            batch = input.size(0 if self.batch_first else 1) if batched else None
        layers = self.num_layers * (2 if self.bidirectional else 1)

        def zeros(size):
            shape = (layers, batch, size) if batched else (layers, size)
            return torch.zeros(shape, dtype=data.dtype, device=data.device)

        h = zeros(self.proj_size if self.proj_size > 0 else self.hidden_size)
        values[1] = (h, zeros(self.hidden_size)) if isinstance(self, torch.nn.LSTM) else h
        return names, values

    @contextlib.contextmanager
    def _patch_quantized_parameters(self):
        quantized = self._quantized_parameters()
        if not quantized:
            yield
            return
        originals = {name: self._parameters[name] for name in quantized}
        flat = self.__dict__["_flat_weights"]
        self._parameters.update(quantized)
        self.__dict__["_flat_weights"] = [quantized.get(name, weight) for name, weight in
                                          zip(self._flat_weights_names, flat)]
        try:
            yield
        finally:
            self._parameters.update(originals)
            self.__dict__["_flat_weights"] = flat


class CellHooks(BaseQuantizationMixin):
    """RNNCell, GRUCell: iq = (input, hx), oq = (h'); LSTMCell: iq = (input, h, c), oq = (h', c')."""

    def _complete_arguments(self, names, values):
        names, values = _with_hx_slot(names, values)
        input = values[0]  # pylint: disable=redefined-builtin
        if values[1] is not None:
            return names, values

        def zeros():
            shape = (input.size(0), self.hidden_size) if input.dim() == 2 else (self.hidden_size,)
            return torch.zeros(shape, dtype=input.dtype, device=input.device)

        values[1] = (zeros(), zeros()) if isinstance(self, torch.nn.LSTMCell) else zeros()
        return names, values
