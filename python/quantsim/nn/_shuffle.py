"""The ChannelShuffle rows' hook: torch 1.13's ``channel_shuffle`` has no derivative, so the
quantized ChannelShuffle computes the same permutation with reshapes (as the C++ ChannelShuffle
and the reference's custom ChannelShuffle do): the same values, and a quantizer's range in front
of it can be trained."""
from .base import BaseQuantizationMixin

__all__ = ["ChannelShuffleHooks"]


class ChannelShuffleHooks(BaseQuantizationMixin):
    """``x.reshape(n, g, c / g, ...).transpose(1, 2).reshape(x.shape)``."""

    def _call_float(self, names, values):
        x = values[0]
        groups = self.groups
        if x.dim() <= 2:
            raise RuntimeError(f"ChannelShuffle: `input` must have at least 3 dims, got {x.dim()}")
        if x.shape[1] % groups != 0:
            raise RuntimeError(f"ChannelShuffle: the {x.shape[1]} channels of `input` are not "
                               f"divisible by `groups` = {groups}")
        grouped = (x.shape[0], groups, x.shape[1] // groups) + tuple(x.shape[2:])
        return x.reshape(grouped).transpose(1, 2).reshape(x.shape)
