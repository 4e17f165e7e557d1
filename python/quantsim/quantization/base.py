"""QuantizerBase: a torch.nn.Module around one of quantsim's C++ quantizer engines.

The engine (``self._impl``, a ``quantsim._C`` quantizer) does everything a quantizer does: its
grid, encodings, calibration, initialization tracking and forward kernels. This module is what
must be Python: it registers the engine's own tensors as its Parameters and buffers (the same
tensor objects, so autograd, optimizers, ``state_dict`` and ``.to()`` act on what the C++
forward reads), keeps them the engine's when Python replaces one, and makes the module
copyable and picklable (docs/python.md, "Quantizers").
"""
import contextlib

import torch

__all__ = ["QuantizerBase"]


class QuantizerBase(torch.nn.Module):
    """Base of every quantizer module; see the module docstring."""

    def __init__(self, engine):
        super().__init__()
        self._impl = engine
        self._adopt_engine_tensors()

    # --- the engine's tensors as this module's ---------------------------------------------
    def _adopt_engine_tensors(self):
        for name, tensor in self._impl.named_parameters().items():
            if type(tensor) is not torch.nn.Parameter:  # pylint: disable=unidiomatic-typecheck
                # The same tensor object, now of class Parameter: the engine keeps reading it.
                tensor.__class__ = torch.nn.Parameter
            self._parameters[name] = tensor
        for name, tensor in self._impl.named_buffers().items():
            self._buffers[name] = tensor

    def _push_buffers_to_engine(self):
        """Makes the engine's buffers hold this module's buffer values (after ``_apply`` or
        unpickling gave this module new buffer objects)."""
        engine_buffers = self._impl.named_buffers()
        for name, tensor in list(self._buffers.items()):
            engine = engine_buffers.get(name)
            if engine is None or tensor is None or engine is tensor:
                continue
            with torch.no_grad():
                engine.data = tensor
            self._buffers[name] = engine

    def __setattr__(self, name, value):
        impl = self.__dict__.get("_impl")
        if impl is not None and isinstance(value, torch.nn.Parameter) \
                and name in self._parameters:
            # Assigning a new Parameter initializes it, as in the reference (§1.9).
            impl.replace_parameter(name, value)
        super().__setattr__(name, value)

    def _apply(self, fn):
        result = super()._apply(fn)
        for name, param in self._parameters.items():
            if param is not None and param is not self._impl.named_parameters().get(name):
                flags = self._impl.initialization_flags()
                self._impl.replace_parameter(name, param)
                self._impl.set_initialization_flags(flags)  # .to() does not initialize
        self._push_buffers_to_engine()
        return result

    # --- copy and pickle --------------------------------------------------------------------
    def _engine_recipe(self):
        """Constructor arguments of an engine configured as this one is now."""
        raise NotImplementedError

    @classmethod
    def _engine_from_recipe(cls, recipe):
        raise NotImplementedError

    def __getstate__(self):
        state = self.__dict__.copy()
        impl = state.pop("_impl")
        state["_engine_recipe"] = self._engine_recipe()
        state["_engine_flags"] = impl.initialization_flags()
        state["_engine_overwrite"] = impl.overwrite_allowed
        return state

    def __setstate__(self, state):
        state = dict(state)
        recipe = state.pop("_engine_recipe")
        flags = state.pop("_engine_flags")
        overwrite = state.pop("_engine_overwrite")
        self.__dict__.update(state)
        impl = self._engine_from_recipe(recipe)
        self.__dict__["_impl"] = impl
        for name, param in self._parameters.items():
            impl.replace_parameter(name, param)
        impl.set_initialization_flags(flags)
        impl.allow_overwrite(overwrite)
        self._push_buffers_to_engine()

    # --- the quantizer API ------------------------------------------------------------------
    def is_initialized(self) -> bool:
        """True once every range parameter was set (calibration, set_range, loading, or
        assignment; reference §1.9)."""
        return self._impl.is_initialized()

    def allow_overwrite(self, mode: bool):
        """With False, compute_encodings() is a no-op and encodings imports skip this
        quantizer."""
        self._impl.allow_overwrite(bool(mode))

    @property
    def _allow_overwrite(self) -> bool:
        return self._impl.overwrite_allowed

    @property
    def _is_calibrating(self) -> bool:
        return self._impl.is_calibrating

    @contextlib.contextmanager
    def compute_encodings(self):
        """Calibration scope: each batch is quantized with its own range and observed; on normal
        exit the range is set from all batches, on an exception nothing is set."""
        calibration = self._impl.compute_encodings()
        calibration.__enter__()
        try:
            yield
        except BaseException as error:
            calibration.__exit__(type(error), error, None)
            raise
        calibration.__exit__(None, None, None)

    def get_encoding(self):
        """The current encoding, or None when uninitialized."""
        return self._impl.get_encoding()

    def get_legacy_encodings(self):
        """The encoding as the reference's legacy list of dicts, or None when uninitialized."""
        return self._impl.get_legacy_encodings()

    def set_legacy_encodings(self, encodings):
        """Sets grid and range from a legacy list of dicts (reference §1.9)."""
        self._impl.set_legacy_encodings(encodings)

    @property
    def bitwidth(self):
        return self._impl.bitwidth

    def _observe_only(self, input):  # pylint: disable=redefined-builtin
        """Adds ``input`` to the statistics only; inside this quantizer's compute_encodings()."""
        self._impl.observe_only(_plain(input))

    def _fake_quantize(self, input):  # pylint: disable=redefined-builtin
        """``input`` quantized and dequantized, as a plain tensor."""
        return self._impl.fake_quantize(_plain(input))

    def _quantize_to_grid(self, input):  # pylint: disable=redefined-builtin
        from .tensor import QuantizedTensor  # pylint: disable=import-outside-toplevel
        values, encoding = self._impl.quantize_to_grid(_plain(input))
        return QuantizedTensor._wrap(values, encoding)

    def extra_repr(self):
        text = repr(self._impl)
        start, end = text.find("("), text.rfind(")")
        return text[start + 1:end] if start >= 0 else ""


def _plain(tensor):
    from .tensor import QuantizedTensorBase  # pylint: disable=import-outside-toplevel
    if isinstance(tensor, QuantizedTensorBase):
        return tensor.dequantize().as_subclass(torch.Tensor) if tensor.encoding is not None \
            else tensor.as_subclass(torch.Tensor)
    return tensor
