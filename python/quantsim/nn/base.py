"""BaseQuantizationMixin: what every quantized module has (docs/modules.md; reference §3.1).

A quantized module is an instance of its float torch.nn class (``QuantizedLinear`` is a
``torch.nn.Linear``) holding three containers of quantizers, all entries ``None`` by default:

    input_quantizers   torch.nn.ModuleList   one per input leaf its op quantizes (the table)
    output_quantizers  torch.nn.ModuleList   one per output leaf
    param_quantizers   torch.nn.ModuleDict   one per parameter the module owns directly

Its forward computes what the C++ module computes (docs/modules.md eq. (M1)):

    y = oq( Float.forward( iq(x), ... ) )   with each parameter p replaced by pq(p)

with each input quantizer bound to a leaf of the forward's arguments (quantsim.nn._leaves), the
quantizers' math from the C++ core (``q._fake_quantize``, ``q._observe_only``), and only the
binding, the parameter patch and the calibration scope written here.
"""
import contextlib
import functools
import inspect

import torch

from ..quantization.base import QuantizerBase
from . import _leaves

__all__ = ["BaseQuantizationMixin", "ParamQuantizers"]


def _is_floating(x):
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _unique(quantizers):
    seen, unique = set(), []
    for q in quantizers:
        if q is not None and id(q) not in seen:
            seen.add(id(q))
            unique.append(q)
    return unique


class ParamQuantizers(torch.nn.ModuleDict):
    """``param_quantizers``: a torch.nn.ModuleDict keyed by parameter name that also takes the
    position of a parameter (``param_quantizers[0]`` is the first parameter's slot, as the page's
    example and the C++ slots index it)."""

    def _key(self, key):
        if isinstance(key, int) and not isinstance(key, bool):
            keys = list(self._modules)
            if not -len(keys) <= key < len(keys):
                raise IndexError(f"parameter quantizer index {key} out of range for the "
                                 f"{len(keys)} parameters {keys}")
            return keys[key]
        return key

    def __getitem__(self, key):
        key = self._key(key)
        if key not in self._modules:
            raise KeyError(f"no parameter quantizer {key!r}; the module's parameters are "
                           f"{list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key, module):
        super().__setitem__(self._key(key), module)

    def __delitem__(self, key):
        super().__delitem__(self._key(key))


class BaseQuantizationMixin(torch.nn.Module):
    """Mixin of every quantized module: quantizer containers, the quantized forward, calibration,
    quantizer removal and per-module encodings.

        >>> qlinear = QuantizedLinear(5, 10)
        >>> qlinear.param_quantizers["weight"] = QuantizeDequantize((10, 1), 8, True)
        >>> with qlinear.compute_encodings():
        ...     qlinear(x)
    """

    # The class's row of the module table (set on the generated classes): counts and bindings.
    _num_inputs = 1
    _num_outputs = 1
    _input_leaves = None  # default: input quantizer i binds to leaf i

    # Class registries, one per mixin kind: float class -> quantized class.
    _cls_to_qcls = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__quant_init__()

    def __quant_init__(self):
        """Creates the quantizer containers, every entry None: the table's counts of input and
        output quantizers, one parameter quantizer key per directly owned parameter."""
        self.input_quantizers = torch.nn.ModuleList([None] * self._num_inputs)
        self.output_quantizers = torch.nn.ModuleList([None] * self._num_outputs)
        self.param_quantizers = ParamQuantizers(
            {name: None for name, _ in self.named_parameters(recurse=False)})
        self._calibration_depth = 0
        self._observing = frozenset()

    def __getstate__(self):
        # Pickles and deep copies leave the inference cache out: it is recomputed on first use.
        state = super().__getstate__()
        state.pop("_parameter_cache", None)
        return state

    # ---- registry ---------------------------------------------------------------------------
    @classmethod
    def _registry(cls):
        # Each mixin kind (FakeQuantizationMixin, QuantizationMixin) owns its dict.
        for klass in cls.__mro__:
            if "_cls_to_qcls" in vars(klass) and vars(klass)["_cls_to_qcls"] is not None:
                return vars(klass)["_cls_to_qcls"]
        raise RuntimeError(f"{cls.__name__} has no registry of quantized classes")

    @classmethod
    def implements(cls, module_cls):
        """Class decorator registering the decorated class as the quantized class of
        `module_cls` for this mixin kind."""
        if not (isinstance(module_cls, type) and issubclass(module_cls, torch.nn.Module)):
            raise ValueError(f"Expected a subclass of torch.nn.Module, got {module_cls!r}")

        def register(quantized_cls):
            cls._registry()[module_cls] = quantized_cls
            return quantized_cls

        return register

    @classmethod
    def wrap(cls, module_cls):
        """The quantized class of `module_cls`: the registered one, else a new
        ``<Prefix><Name>`` with bases (mixin, module_cls) with one input and one output quantizer
        (the reference's default), registered."""
        if not (isinstance(module_cls, type) and issubclass(module_cls, torch.nn.Module)):
            raise ValueError(f"Expected a subclass of torch.nn.Module, got {module_cls!r}")
        registry = cls._registry()
        if module_cls in registry:
            return registry[module_cls]
        quantized_cls = type(f"{cls._prefix}{module_cls.__name__}", (cls, module_cls),
                             {"__module__": module_cls.__module__})
        registry[module_cls] = quantized_cls
        return quantized_cls

    @classmethod
    def _quantized_class_of(cls, module_cls):
        if cls is BaseQuantizationMixin:  # what QuantizationMixin.from_module gives
            from .true_quant import QuantizationMixin  # pylint: disable=import-outside-toplevel
            return QuantizationMixin._quantized_class_of(module_cls)
        return cls._registry().get(module_cls)

    @classmethod
    def from_module(cls, module: torch.nn.Module):
        """The quantized module of `module`'s class, sharing its parameters, buffers and
        submodules (shallow copies of ``__dict__``, ``_parameters``, ``_buffers``, ``_modules``:
        an in-place change is seen by both, re-assigning a parameter on one does not affect the
        other). RuntimeError for a class without a quantized class."""
        if isinstance(module, BaseQuantizationMixin):
            raise RuntimeError(f"{type(module).__name__} is already a quantized module")
        quantized_cls = cls._quantized_class_of(type(module))
        if quantized_cls is None:
            raise RuntimeError(
                f"The quantized module definition of {type(module)} is not registered. "
                f"Please register the quantized module definition of {type(module)} using "
                f"`@{cls.__name__}.implements({type(module).__name__})` decorator.")
        qmodule = quantized_cls.__new__(quantized_cls)
        qmodule.__dict__ = module.__dict__.copy()
        qmodule._parameters = module._parameters.copy()  # pylint: disable=protected-access
        qmodule._buffers = module._buffers.copy()  # pylint: disable=protected-access
        qmodule._modules = module._modules.copy()  # pylint: disable=protected-access
        qmodule.__quant_init__()
        return qmodule

    def get_original_module(self) -> torch.nn.Module:
        """The float module, sharing this module's parameters, buffers and submodules, without
        the quantizers."""
        float_cls = next(c for c in type(self).__mro__
                         if not issubclass(c, BaseQuantizationMixin))
        module = float_cls.__new__(float_cls)
        module.__dict__ = self.__dict__.copy()
        module._parameters = self._parameters.copy()  # pylint: disable=protected-access
        module._buffers = self._buffers.copy()  # pylint: disable=protected-access
        module._modules = self._modules.copy()  # pylint: disable=protected-access
        for name in ("input_quantizers", "output_quantizers", "param_quantizers"):
            module._modules.pop(name, None)  # pylint: disable=protected-access
        for name in ("_calibration_depth", "_observing", "_kernel", "_parameter_cache"):
            module.__dict__.pop(name, None)
        return module

    # ---- the quantized forward ----------------------------------------------------------------
    @classmethod
    @functools.lru_cache(maxsize=None)
    def _float_class(cls):
        return next(c for c in cls.__mro__ if not issubclass(c, BaseQuantizationMixin))

    @classmethod
    @functools.lru_cache(maxsize=None)
    def _forward_signature(cls):
        return inspect.signature(cls._float_class().forward)

    def _leaf_bindings(self):
        """{argument leaf: input quantizer index} of this class."""
        leaves = self._input_leaves
        return _bindings(None if leaves is None else tuple(leaves), len(self.input_quantizers))

    @classmethod
    @functools.lru_cache(maxsize=None)
    def _positional_shape(cls):
        """(the float forward's positional parameters after self, its ``*args`` parameter or
        None), or None when it has keyword-only ones: then every call binds through the
        signature."""
        positional, variadic = [], None
        for p in list(cls._forward_signature().parameters.values())[1:]:
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                          inspect.Parameter.POSITIONAL_OR_KEYWORD):
                positional.append(p.name)
            elif p.kind is inspect.Parameter.VAR_POSITIONAL:
                variadic = p.name
            elif p.kind is not inspect.Parameter.VAR_KEYWORD:
                return None
        return tuple(positional), variadic

    def _bind_arguments(self, args, kwargs):
        """(parameters of the float forward, their values): every argument, defaults included,
        in signature order; a ``*args`` parameter is one list (one leaf, as C++'s vector)."""
        shape = self._positional_shape()
        if not kwargs and shape is not None:
            # The common call, positional only: the omitted trailing defaults would only add
            # leaves after the given ones, which changes no binding.
            names, variadic = shape
            if variadic is None and len(args) <= len(names):
                return names[:len(args)], list(args)
            if variadic is not None and len(args) >= len(names):
                return names + (variadic,), list(args[:len(names)]) + [list(args[len(names):])]
        bound = self._forward_signature().bind(self, *args, **kwargs)
        bound.apply_defaults()
        names = list(bound.arguments)[1:]
        values = [bound.arguments[n] for n in names]
        params = self._forward_signature().parameters
        for i, name in enumerate(names):
            if params[name].kind is inspect.Parameter.VAR_POSITIONAL:
                values[i] = list(values[i])
        return names, values

    def _call_float(self, names, values):
        params = self._forward_signature().parameters
        args, kwargs = [], {}
        for name, value in zip(names, values):
            kind = params[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[name] = value
            else:
                args.append(value)
        return self._float_class().forward(self, *args, **kwargs)

    def _complete_arguments(self, names, values):
        """Fills in what the float op would default (the recurrent rows' zero state), so that the
        input quantizers see the values the op really uses (docs/modules.md §5.3).
        Returns (names, values)."""
        return names, values

    def _apply_quantizer(self, quantizer, x):
        """x through one slot: unchanged if the slot is empty or x is not a floating tensor;
        observed and unchanged while the module calibrates; else fake-quantized."""
        if quantizer is None or not _is_floating(x):
            return x
        if self._calibration_depth and id(quantizer) in self._observing:
            quantizer._observe_only(x.detach())  # pylint: disable=protected-access
            return x
        return quantizer._fake_quantize(x)  # pylint: disable=protected-access

    def _quantize_inputs(self, values):
        bindings = self._leaf_bindings()
        quantizers = self.input_quantizers

        def quantize(leaf, x):
            index = bindings.get(leaf)
            return x if index is None else self._apply_quantizer(quantizers[index], x)

        first, quantized = 0, []
        for value in values:
            mapped, n = _leaves.map_leaves(value, first, quantize)
            quantized.append(mapped)
            first += n
        return quantized

    def _quantize_outputs(self, result):
        quantizers = self.output_quantizers

        def quantize(leaf, y):
            return self._apply_quantizer(quantizers[leaf], y) if leaf < len(quantizers) else y

        return _leaves.map_leaves(result, 0, quantize)[0]

    def _quantized_parameters(self):
        """{name: fake-quantized parameter} for every initialized parameter quantizer."""
        quantized = {}
        for name, quantizer in self.param_quantizers.items():
            if quantizer is None or not quantizer.is_initialized():
                continue
            parameter = self._parameters.get(name)
            if parameter is None:
                continue
            quantized[name] = self._quantized_parameter(name, quantizer, parameter)
        return quantized

    def _quantized_parameter(self, name, quantizer, parameter):
        """``quantizer._fake_quantize(parameter)``; for inference (no gradient needed, no trace)
        reused while the parameter, the quantizer's tensors (identity, storage, version) and the
        quantizer's revision are unchanged, as the C++ modules do (re-quantizing a large weight on
        every call costs a good part of the op it feeds)."""
        # pylint: disable=protected-access
        tensors = [t for t in (*quantizer._parameters.values(), *quantizer._buffers.values())
                   if t is not None]
        if (quantizer._is_calibrating or torch.jit.is_tracing()
                or (torch.is_grad_enabled()
                    and (parameter.requires_grad or any(t.requires_grad for t in tensors)))):
            return quantizer._fake_quantize(parameter)
        engine = getattr(quantizer, "_impl", None)
        state = (getattr(engine, "revision", None), parameter._version, parameter.data_ptr(),
                 tuple((t._version, t.data_ptr()) for t in tensors))
        cache = self.__dict__.setdefault("_parameter_cache", {})
        entry = cache.get(name)
        # The objects are held, so that a new one cannot pass for them by reusing an address.
        if (entry is not None and entry[0] is quantizer and entry[1] is parameter
                and entry[2] is not None and entry[2] == state and all(
                    a is b for a, b in zip(entry[3], tensors)) and len(entry[3]) == len(tensors)):
            return entry[4]
        value = quantizer._fake_quantize(parameter)
        cache[name] = (quantizer, parameter, state if state[0] is not None else None, tensors,
                       value)
        return value

    @contextlib.contextmanager
    def _patch_quantized_parameters(self):
        """The parameters replaced by their quantized values for the duration of the call; the
        parameter table keeps the float values, which is what training updates."""
        quantized = self._quantized_parameters()
        if not quantized:
            yield
            return
        originals = {name: self._parameters[name] for name in quantized}
        self._parameters.update(quantized)
        try:
            yield
        finally:
            self._parameters.update(originals)

    def _fake_quantized_forward(self, *args, **kwargs):
        names, values = self._bind_arguments(args, kwargs)
        names, values = self._complete_arguments(names, values)
        values = self._quantize_inputs(values)
        if any(q is not None for q in self.param_quantizers.values()):
            with self._patch_quantized_parameters():
                result = self._call_float(names, values)
        else:
            result = self._call_float(names, values)
        return self._quantize_outputs(result)

    def __call__(self, *args, **kwargs):
        # Lazy initialization (docs/modules.md §2; the reference's __call__): uninitialized
        # parameter quantizers are calibrated on their parameters before any forward, a
        # user-defined one included.
        if self._has_uninitialized_parameter_quantizer():
            self._compute_param_encodings(overwrite=False)
        return super().__call__(*args, **kwargs)

    def _has_uninitialized_parameter_quantizer(self):
        for quantizer in self.param_quantizers.values():
            if (quantizer is not None and quantizer._allow_overwrite  # pylint: disable=protected-access
                    and not quantizer.is_initialized()):
                return True
        return False

    def forward(self, *args, **kwargs):  # pylint: disable=arguments-differ
        """The float forward's signature and result, with the tensors quantized (eq. (M1))."""
        return self._dispatch(*args, **kwargs)

    def _dispatch(self, *args, **kwargs):
        return self._fake_quantized_forward(*args, **kwargs)

    # ---- calibration --------------------------------------------------------------------------
    def _parameters_to_calibrate(self, overwrite):
        selected = []
        for name, quantizer in self.param_quantizers.items():
            if quantizer is None or not quantizer._allow_overwrite:  # pylint: disable=protected-access
                continue
            if not overwrite and quantizer.is_initialized():
                continue
            parameter = self._parameters.get(name)
            if parameter is None:
                continue
            selected.append((quantizer, parameter))
        return selected

    def _compute_param_encodings(self, overwrite):
        for quantizer, parameter in self._parameters_to_calibrate(overwrite):
            with quantizer.compute_encodings():
                quantizer._observe_only(parameter.detach())  # pylint: disable=protected-access

    def compute_param_encodings(self):
        """Calibrates every parameter quantizer that allows overwriting on its current
        parameter."""
        self._compute_param_encodings(overwrite=True)

    def _is_calibrating(self):
        return self._calibration_depth > 0

    @contextlib.contextmanager
    def compute_encodings(self):
        """Module-level calibration scope (docs/modules.md §3):

        1. on entry every parameter quantizer is calibrated on its current parameter;
        2. inside, every input/output quantizer only observes (the data passes through
           unquantized), so the module computes its float op on quantized parameters;
        3. on normal exit each activation quantizer sets its range from all batches seen; on an
           exception nothing is set.

        Quantizers with ``allow_overwrite(False)`` are left out and quantize as usual."""
        if self._calibration_depth:
            self._calibration_depth += 1
            try:
                yield
            finally:
                self._calibration_depth -= 1
            return
        self._compute_param_encodings(overwrite=True)
        observed = [q for q in _unique(list(self.input_quantizers) + list(self.output_quantizers))
                    if isinstance(q, QuantizerBase) and q._allow_overwrite]  # pylint: disable=protected-access
        with contextlib.ExitStack() as scopes:
            for quantizer in observed:
                scopes.enter_context(quantizer.compute_encodings())
                # A forward of the user's own that calls the quantizer (`self.input_quantizers[0]
                # (x)`) gets the same pass-through: the reference makes the quantizer's forward
                # the identity while it observes.
                scopes.enter_context(_observing_forward(quantizer))
            self._observing = frozenset(id(q) for q in observed)
            self._calibration_depth = 1
            try:
                yield
            finally:
                self._observing = frozenset()
                self._calibration_depth = 0

    # ---- quantizer removal --------------------------------------------------------------------
    @contextlib.contextmanager
    def _removal(self, removed):
        try:
            yield
        finally:
            for container, key, quantizer in reversed(removed):
                container[key] = quantizer

    def _remove(self, container, keys):
        removed = []
        for key in keys:
            quantizer = container[key]
            if quantizer is not None:
                removed.append((container, key, quantizer))
                container[key] = None
        return removed

    def _remove_input_quantizers(self, indices=None):
        """Empties the selected input slots (all by default). Used with ``with``, they get their
        quantizers back at the end; without, the removal is permanent."""
        return self._removal(self._remove(self.input_quantizers, _indices(
            indices, len(self.input_quantizers))))

    def _remove_output_quantizers(self, indices=None):
        return self._removal(self._remove(self.output_quantizers, _indices(
            indices, len(self.output_quantizers))))

    def _remove_param_quantizers(self, keys=None):
        if keys is None:
            keys = list(self.param_quantizers.keys())
        elif isinstance(keys, str):
            keys = [keys]
        for key in keys:
            if key not in self.param_quantizers:
                raise KeyError(key)
        return self._removal(self._remove(self.param_quantizers, keys))

    def _remove_activation_quantizers(self):
        removed = self._remove(self.input_quantizers, range(len(self.input_quantizers)))
        removed += self._remove(self.output_quantizers, range(len(self.output_quantizers)))
        return self._removal(removed)

    def _remove_all_quantizers(self):
        removed = self._remove(self.input_quantizers, range(len(self.input_quantizers)))
        removed += self._remove(self.output_quantizers, range(len(self.output_quantizers)))
        removed += self._remove(self.param_quantizers, list(self.param_quantizers.keys()))
        return self._removal(removed)

    # ---- per-module encodings (docs/modules.md §9) --------------------------------------------
    def export_input_encodings(self):
        """Per input slot: the quantizer's legacy encodings, or None (empty/uninitialized)."""
        return [q.get_legacy_encodings() if q is not None else None for q in self.input_quantizers]

    def export_output_encodings(self):
        return [q.get_legacy_encodings() if q is not None else None
                for q in self.output_quantizers]

    def export_param_encodings(self):
        return {name: q.get_legacy_encodings() if q is not None else None
                for name, q in self.param_quantizers.items()}

    def import_input_encodings(self, encodings, strict=True, partial=True, requires_grad=None,
                               allow_overwrite=None):
        """Sets the input quantizers from ``{"0": dict or list of dicts, ...}``."""
        _import_encodings(self.input_quantizers, encodings, strict, partial, requires_grad,
                          allow_overwrite)

    def import_output_encodings(self, encodings, strict=True, partial=True, requires_grad=None,
                                allow_overwrite=None):
        _import_encodings(self.output_quantizers, encodings, strict, partial, requires_grad,
                          allow_overwrite)

    def import_param_encodings(self, encodings, strict=True, partial=True, requires_grad=None,
                               allow_overwrite=None):
        """Sets the parameter quantizers from ``{name: [dict, ...]}``."""
        _import_encodings(self.param_quantizers, encodings, strict, partial, requires_grad,
                          allow_overwrite)


@functools.lru_cache(maxsize=None)
def _bindings(input_leaves, num_inputs):
    if input_leaves is None:
        input_leaves = range(num_inputs)
    return {leaf: i for i, leaf in enumerate(input_leaves) if leaf >= 0}


@contextlib.contextmanager
def _observing_forward(quantizer):
    """The quantizer's forward made `x -> x` after adding x to its statistics."""

    def observe(input, *args, **kwargs):  # pylint: disable=redefined-builtin,unused-argument
        quantizer._observe_only(input.detach())  # pylint: disable=protected-access
        return input

    if "forward" in vars(quantizer):  # already observing: another module's scope holds it
        yield
        return
    quantizer.forward = observe
    try:
        yield
    finally:
        del quantizer.forward


def _indices(indices, size):
    if indices is None:
        return list(range(size))
    if isinstance(indices, int):
        indices = [indices]
    for index in indices:
        if not -size <= index < size:
            raise IndexError(f"quantizer index {index} out of range for {size} slots")
    return [index % size for index in indices]


def _import_encodings(container, encodings, strict, partial, requires_grad, allow_overwrite):
    """docs/modules.md §9: every entry is checked before any quantizer changes."""
    if not isinstance(encodings, dict):
        raise ValueError(f"encodings must be a dict keyed by slot, got {encodings!r}")
    keys = [str(k) for k in (range(len(container)) if isinstance(container, torch.nn.ModuleList)
                             else container.keys())]

    def slot(key):
        return container[int(key)] if isinstance(container, torch.nn.ModuleList) else container[key]

    def set_slot(key, value):
        if isinstance(container, torch.nn.ModuleList):
            container[int(key)] = value
        else:
            container[key] = value

    for key in encodings:
        if str(key) not in keys:
            raise IndexError(f'encodings name slot "{key}", which the module does not have '
                             f"(slots: {keys})")
    entries = {str(k): v for k, v in encodings.items()}
    for key in keys:
        quantizer = slot(key)
        if quantizer is not None and not quantizer._allow_overwrite:  # pylint: disable=protected-access
            continue
        entry = entries.get(key)
        if entry is None:
            continue
        if quantizer is None and strict:
            raise RuntimeError(f'encodings given for the empty slot "{key}" (strict import)')
        if not isinstance(entry, (dict, list)):
            raise ValueError(f'encodings["{key}"] must be a dict or a list of dicts, got {entry!r}')
    for key in keys:
        quantizer = slot(key)
        if quantizer is not None and not quantizer._allow_overwrite:  # pylint: disable=protected-access
            continue
        entry = entries.get(key)
        if entry is None:
            if not partial:
                set_slot(key, None)
            continue
        if quantizer is None:
            continue
        quantizer.set_legacy_encodings(entry if isinstance(entry, list) else [entry])
        if requires_grad is not None:
            for parameter in quantizer.parameters():
                parameter.requires_grad_(requires_grad)
        if allow_overwrite is not None:
            quantizer.allow_overwrite(allow_overwrite)
