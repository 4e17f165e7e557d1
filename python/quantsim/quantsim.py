"""``quantsim.quantsim``: QuantizationSimModel, the reference's simulation of a whole model.

    >>> sim = QuantizationSimModel(model, dummy_input, quant_scheme="post_training_tf",
    ...                            default_param_bw=8, default_output_bw=8)
    >>> sim.compute_encodings(lambda model, _: model(calibration_batch), None)
    >>> sim.export("out", "model", dummy_input)

What is Python here is only what must be (docs/python.md): swapping the model's quantizable
leaves for quantized modules (``QuantizationMixin.from_module``), recording which module's output
feeds which (the quantized modules' own slots, probed during one forward pass), putting
quantizer modules into the slots, and the context managers. Which slots are quantized and how
(configuration files, supergroups, batch-norm folding, model inputs and outputs, per-channel
shapes) is decided by the C++ core on the recorded op graph (``quantsim/sim/placement.h``), the
very code the C++ QuantizationSimModel runs; the quantizers, calibration, encodings and the ONNX
quantizer nodes are the C++ core's too.
"""
import contextlib
import copy
import enum
import json
import os
import tempfile

import torch

from . import _C
from .nn import BaseQuantizationMixin, FakeQuantizationMixin, QuantizationMixin
from .quantization.base import QuantizerBase
from .quantization.affine import QuantizeDequantize
from .quantization.float import FloatQuantizeDequantize
from .quantization import encoding_analyzer as _analyzers

__all__ = ["QuantizationSimModel", "QuantScheme", "QuantizationDataType"]


class QuantScheme(enum.Enum):
    """The reference's quant schemes (aimet_common.defs.QuantScheme)."""
    post_training_tf = "post_training_tf"
    post_training_tf_enhanced = "post_training_tf_enhanced"
    post_training_percentile = "post_training_percentile"
    training_range_learning_with_tf_init = "training_range_learning_with_tf_init"
    training_range_learning_with_tf_enhanced_init = \
        "training_range_learning_with_tf_enhanced_init"


class QuantizationDataType(enum.Enum):
    """The reference's aimet_common.defs.QuantizationDataType."""
    int = 1
    float = 2


_NOT_SPECIFIED = object()
_POST_TRAINING = {"post_training_tf", "post_training_tf_enhanced", "post_training_percentile"}
_ENHANCED = {"post_training_tf_enhanced", "training_range_learning_with_tf_enhanced_init"}


def _scheme_name(quant_scheme):
    if isinstance(quant_scheme, QuantScheme):
        return quant_scheme.value
    if isinstance(quant_scheme, str):
        return _C.canonical_quant_scheme(quant_scheme)  # ValueError naming the scheme
    raise TypeError(f"quant_scheme must be a QuantScheme or its name, got {quant_scheme!r}")


def _data_type(data_type):
    if isinstance(data_type, QuantizationDataType):
        return data_type
    if data_type in (torch.int, torch.int8, torch.int16, torch.int32, int, "int"):
        return QuantizationDataType.int
    if data_type in (torch.float, torch.float16, torch.half, float, "float"):
        return QuantizationDataType.float
    raise TypeError(f"default_data_type must be QuantizationDataType.int or .float (or torch.int "
                    f"/ torch.float), got {data_type!r}")


def _check_bitwidth(name, bitwidth):
    if isinstance(bitwidth, bool) or not isinstance(bitwidth, int):
        raise TypeError(f"QuantizationSimModel: `{name}` must be an int, got {bitwidth!r}")
    if not 1 <= bitwidth <= 32:
        raise ValueError(f"QuantizationSimModel: `{name}` must be in [1, 32], got {bitwidth}")


def _is_container(module):
    return isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict))


def _convert_to_qmodule(module):
    """The reference's conversion: every module that is not a container is replaced by its
    quantized module (QuantizationMixin, else the legacy FakeQuantizationMixin); a module of no
    registered class stays float when it has children (which are converted) and is an error when
    it is a leaf."""
    if not _is_container(module):
        try:
            module = QuantizationMixin.from_module(module)
        except RuntimeError as error:
            try:
                module = FakeQuantizationMixin.from_module(module)
            except RuntimeError:
                if not list(module.children()):
                    raise error
    for name, child in list(module.named_children()):
        setattr(module, name, _convert_to_qmodule(child))
    return module


def _as_args(dummy_input):
    return tuple(dummy_input) if isinstance(dummy_input, (tuple, list)) else (dummy_input,)


@contextlib.contextmanager
def _eval_mode(model):
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in saved:
            module.train(training)


# ---- recording the dataflow ----------------------------------------------------------------------
class _Recorder:
    """Which quantized module's output feeds which input slot, and the identity of the tensor
    each slot saw: the C++ DataflowRecorder (src/sim/quantsim_model.cpp) for Python models.
    Storage identity follows views and in-place ops, which keep the producer's storage; tensor
    identity is the object and its version."""

    def __init__(self, count):
        self.input_producers = [dict() for _ in range(count)]
        self.output_consumers = [dict() for _ in range(count)]
        self.input_tensors = [dict() for _ in range(count)]
        self.output_tensors = [dict() for _ in range(count)]
        self.called = [False] * count
        self._writers = {}
        self._tensor_ids = {}
        self._kept = []  # alive for the pass: their addresses are not reused by other tensors

    def _tensor_id(self, x):
        key = (id(x), 0 if x.is_inference() else x._version)
        if key not in self._tensor_ids:
            self._tensor_ids[key] = len(self._tensor_ids)
            self._kept.append(x)
        return self._tensor_ids[key]

    @staticmethod
    def _storage_key(x):
        try:
            return x.storage().data_ptr() if x.numel() else None
        except (RuntimeError, NotImplementedError):
            return None

    def on_input(self, op, slot, x):
        self.called[op] = True
        self.input_tensors[op].setdefault(slot, self._tensor_id(x))
        producers = self.input_producers[op].setdefault(slot, [])
        producer = -1
        key = self._storage_key(x)
        if key is not None and key in self._writers:
            producer, out_slot = self._writers[key]
            consumers = self.output_consumers[producer]
            consumers[out_slot] = consumers.get(out_slot, 0) + 1
        if producer not in producers:
            producers.append(producer)

    def on_output(self, op, slot, y):
        self.called[op] = True
        self.output_consumers[op].setdefault(slot, 0)
        self.output_tensors[op].setdefault(slot, self._tensor_id(y))
        key = self._storage_key(y)
        if key is not None:
            self._writers[key] = (op, slot)
            self._kept.append(y)


class _Probe(torch.nn.Module):
    """Stands in an activation slot during the recorded pass: reports the tensor and returns it
    unchanged (the module computes its float op)."""

    def __init__(self, recorder, op, direction, slot):
        super().__init__()
        self._report = getattr(recorder, "on_" + direction)
        self._op, self._slot = op, slot

    def _fake_quantize(self, x):
        self._report(self._op, self._slot, x)
        return x

    def is_initialized(self):
        return False

    @property
    def _allow_overwrite(self):
        return False


def _groups(module):
    groups = getattr(module, "groups", 1)
    return groups if isinstance(groups, int) else 1


class QuantizationSimModel:
    """Simulates the quantization of ``model`` (the reference's
    ``aimet_torch.v2.quantsim.QuantizationSimModel``): its quantizable leaves are replaced by
    quantized modules (a copy of the model unless ``in_place``), whose quantizer slots are filled
    as the configuration says on the dataflow of one forward pass of ``dummy_input``.

    Arguments as the reference: ``quant_scheme`` (a QuantScheme or its name; default
    post_training_tf_enhanced), ``rounding_mode`` ('nearest' only), ``default_output_bw``,
    ``default_param_bw`` (1..32), ``in_place``, ``config_file`` (the reference's JSON layout; None:
    the default configuration), ``default_data_type`` (QuantizationDataType.int, or .float for
    16-bit float quantizers).
    """

    def __init__(self, model, dummy_input, quant_scheme=None, rounding_mode=None,
                 default_output_bw=8, default_param_bw=8, in_place=False, config_file=None,
                 default_data_type=QuantizationDataType.int):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"QuantizationSimModel: `model` must be a torch.nn.Module, got "
                            f"{type(model).__name__}")
        if rounding_mode not in (None, "nearest"):
            raise ValueError(f"QuantizationSimModel: rounding_mode {rounding_mode!r} is not "
                             "supported (only 'nearest')")
        _check_bitwidth("default_output_bw", default_output_bw)
        _check_bitwidth("default_param_bw", default_param_bw)
        self._quant_scheme = _scheme_name(quant_scheme or QuantScheme.post_training_tf_enhanced)
        self._data_type = _data_type(default_data_type)
        if self._data_type is QuantizationDataType.float and \
                (default_output_bw, default_param_bw) != (16, 16):
            raise ValueError("QuantizationSimModel: float quantization supports bitwidth 16 only "
                             f"(float16), got default_output_bw={default_output_bw}, "
                             f"default_param_bw={default_param_bw}")
        self._default_output_bw = default_output_bw
        self._default_param_bw = default_param_bw
        self._config = (_C.QuantsimConfig.from_file(os.fspath(config_file))
                        if config_file is not None else _C.QuantsimConfig.default_config())
        for module in model.modules():
            if isinstance(module, (BaseQuantizationMixin, QuantizerBase)):
                raise RuntimeError(
                    "QuantizationSimModel: the model already contains quantized modules or "
                    f"quantizers ({type(module).__name__}); pass a float model")
        if not in_place:
            model = copy.deepcopy(model)
        self.model = _convert_to_qmodule(model)
        self._modules = [(name, m) for name, m in self.model.named_modules()
                         if isinstance(m, BaseQuantizationMixin)]
        if not self._modules:
            raise RuntimeError("QuantizationSimModel: the model has no quantizable module")
        self._ops = self._record(dummy_input)
        self._place_quantizers()

    # ---- set-up ----------------------------------------------------------------------------------
    def _record(self, dummy_input):
        """One forward pass with probes in every activation slot: the op graph of the C++
        placement (names, float class names, producers, consumers, tensor ids)."""
        recorder = _Recorder(len(self._modules))
        saved = []
        for index, (_, module) in enumerate(self._modules):
            saved.append((list(module.input_quantizers), list(module.output_quantizers),
                          dict(module.param_quantizers)))
            for slot in range(len(module.input_quantizers)):
                module.input_quantizers[slot] = _Probe(recorder, index, "input", slot)
            for slot in range(len(module.output_quantizers)):
                module.output_quantizers[slot] = _Probe(recorder, index, "output", slot)
            for key in list(module.param_quantizers.keys()):
                module.param_quantizers[key] = None
        try:
            with _eval_mode(self.model), torch.no_grad():
                self.model(*_as_args(dummy_input))
        finally:
            for (_, module), (inputs, outputs, params) in zip(self._modules, saved):
                for slot, quantizer in enumerate(inputs):
                    module.input_quantizers[slot] = quantizer
                for slot, quantizer in enumerate(outputs):
                    module.output_quantizers[slot] = quantizer
                for key, quantizer in params.items():
                    module.param_quantizers[key] = quantizer
        ops = []
        for index, (name, module) in enumerate(self._modules):
            n_in, n_out = len(module.input_quantizers), len(module.output_quantizers)
            called = recorder.called[index]
            producers = [recorder.input_producers[index].get(i, []) if called else []
                         for i in range(n_in)]
            consumers = [recorder.output_consumers[index].get(i, 0) for i in range(n_out)]
            ops.append(_C.PlacementOp(
                name, type(module.get_original_module()).__name__, producers, consumers,
                [recorder.input_tensors[index].get(i, -1) for i in range(n_in)],
                [recorder.output_tensors[index].get(i, -1) for i in range(n_out)],
                called, _groups(module)))
        return ops

    def _make_quantizer(self, shape, bitwidth, symmetric, constraints):
        if self._data_type is QuantizationDataType.float:
            quantizer = FloatQuantizeDequantize(dtype=torch.float16)
        else:
            if self._quant_scheme == "post_training_percentile":
                analyzer = _analyzers.PercentileEncodingAnalyzer(shape)
            elif self._quant_scheme in _ENHANCED:
                analyzer = _analyzers.SqnrEncodingAnalyzer(shape)
            else:
                analyzer = _analyzers.MinMaxEncodingAnalyzer(shape)
            quantizer = QuantizeDequantize(shape, bitwidth, symmetric,
                                           encoding_analyzer=analyzer)
            if constraints is not None:
                quantizer.set_range(*constraints)
                quantizer.allow_overwrite(False)
                quantizer.requires_grad_(False)
        if self._quant_scheme in _POST_TRAINING:
            quantizer.requires_grad_(False)
        return quantizer

    def _place_quantizers(self):
        plans = _C.plan_slots(self._ops, self._config)
        for (name, module), op, (inputs, outputs, folded) in zip(self._modules, self._ops, plans):
            symmetric, constraints = _C.place_activation(self._config, op.type)

            def activation(quantized):
                if not quantized:
                    return None
                try:
                    return self._make_quantizer((), self._default_output_bw, symmetric,
                                                constraints)
                except ValueError as error:
                    raise ValueError(f"QuantizationSimModel: `default_output_bw` "
                                     f"{self._default_output_bw} for the activations of module "
                                     f"{name!r} ({op.type}): {error}") from error

            for slot, quantized in enumerate(outputs):
                module.output_quantizers[slot] = activation(quantized)
            for slot, quantized in enumerate(inputs):
                module.input_quantizers[slot] = activation(quantized)
            for key in list(module.param_quantizers.keys()):
                parameter = module._parameters.get(key)  # pylint: disable=protected-access
                placement = None if parameter is None else _C.place_param(
                    self._config, op.type, key, list(parameter.shape), folded)
                try:
                    module.param_quantizers[key] = None if placement is None else \
                        self._make_quantizer(placement[0], self._default_param_bw,
                                             placement[1], placement[2])
                except ValueError as error:
                    raise ValueError(f"QuantizationSimModel: `default_param_bw` "
                                     f"{self._default_param_bw} for parameter {key!r} of module "
                                     f"{name!r} ({op.type}): {error}") from error

    # ---- calibration -----------------------------------------------------------------------------
    def compute_encodings(self, forward_pass_callback, forward_pass_callback_args=_NOT_SPECIFIED,
                          *, process_group=None):
        """Calibrates every quantizer on what ``forward_pass_callback(model,
        forward_pass_callback_args)`` (``forward_pass_callback(model)`` when no arguments are
        given, as the reference) feeds the model, in eval mode and without gradients: parameters
        at entry, activations from every batch.

        ``process_group`` (a torch.distributed ProcessGroup; data-parallel calibration,
        docs/distributed.md): every rank runs its own batches and the statistics are merged
        across the group before the ranges are set, so every rank ends with the same encodings
        (MinMax: exactly the single-process encodings over all ranks' batches). Every rank of the
        group must call it."""
        if not callable(forward_pass_callback):
            raise TypeError("compute_encodings: `forward_pass_callback` must be callable")
        with _eval_mode(self.model), torch.no_grad(), contextlib.ExitStack() as scopes:
            for _, module in self._modules:
                scopes.enter_context(module.compute_encodings())
            if forward_pass_callback_args is _NOT_SPECIFIED:
                forward_pass_callback(self.model)
            else:
                forward_pass_callback(self.model, forward_pass_callback_args)
            if process_group is not None:
                from .distributed import synchronize_statistics  # pylint: disable=import-outside-toplevel
                synchronize_statistics(self.model, process_group)

    # ---- encodings -------------------------------------------------------------------------------
    def _quantizer_args(self):
        scheme = {"training_range_learning_with_tf_init": "post_training_tf",
                  "training_range_learning_with_tf_enhanced_init": "post_training_tf_enhanced"
                  }.get(self._quant_scheme, self._quant_scheme)
        symmetric = self._config.default_params_is_symmetric
        return {"quant_scheme": scheme, "param_bitwidth": self._default_param_bw,
                "activation_bitwidth": self._default_output_bw,
                "dtype": "int" if self._data_type is QuantizationDataType.int else "float",
                "is_symmetric": symmetric if symmetric is not None
                else self._config.per_channel_quantization,
                "per_channel_quantization": self._config.per_channel_quantization}

    def _slots(self):
        """(module name, quantizer path, kind, key, quantizer) of every filled slot, in the
        reference's order: modules in named_modules() order, inputs, outputs, parameters."""
        for name, module in self._modules:
            prefix = f"{name}." if name else ""
            for i, q in enumerate(module.input_quantizers):
                if q is not None:
                    yield name, f"{prefix}input_quantizers.{i}", "input", str(i), q
            for i, q in enumerate(module.output_quantizers):
                if q is not None:
                    yield name, f"{prefix}output_quantizers.{i}", "output", str(i), q
            for key, q in module.param_quantizers.items():
                if q is not None:
                    yield name, f"{prefix}param_quantizers.{key}", "param", key, q

    def _slot_records(self):
        """The filled slots as quantsim._C.encodings takes them."""
        records = []
        for name, _, kind, key, quantizer in self._slots():
            module = self.model.get_submodule(name) if name else self.model
            parameter = module._parameters.get(key) if kind == "param" else None  # pylint: disable=protected-access
            records.append((name, kind, key, quantizer._impl,  # pylint: disable=protected-access
                            None if parameter is None else parameter.detach()))
        return records

    def _torch_encodings(self):
        """The ``<prefix>_torch.encodings`` content (the C++ core's layout)."""
        return _C.torch_encodings(self._slot_records(), self._quantizer_args())

    def _graph_encodings(self, tensor_names, version="0.6.1"):
        """The ``<prefix>.encodings`` content in ``version`` (0.6.1 or 1.0.0), keyed by the
        exported graph's tensor names: one entry per tensor, of its quantizers the last in the
        reference's order (the C++ core's layout)."""
        return _C.encodings(self._slot_records(), version, self._quantizer_args(), tensor_names)

    def load_encodings(self, encodings, strict=True, partial=True, requires_grad=None,
                       allow_overwrite=True):
        """Loads the torch layout (a ``_torch.encodings`` path or its dict) into the quantized
        modules, as the reference: unknown names under ``strict`` are a RuntimeError."""
        if isinstance(encodings, (str, os.PathLike)):
            with open(encodings, encoding="utf-8") as file:
                encodings = json.load(file)
        modules = dict(self._modules)
        activations = encodings.get("activation_encodings", {})
        params = encodings.get("param_encodings", {})
        if strict:
            def known_param(name):
                module, _, param = name.rpartition(".")
                return module in modules and param in modules[module].param_quantizers

            unknown = [n for n in activations if n not in modules]
            unknown += [n for n in params if not known_param(n)]
            if unknown:
                raise RuntimeError(f"load_encodings: no quantized module or parameter named "
                                   f"{unknown[0]!r}")
        options = dict(strict=strict, partial=partial, requires_grad=requires_grad,
                       allow_overwrite=allow_overwrite)
        for name, module in self._modules:
            entry = activations.get(name, {})
            if "input" in entry or not partial:
                module.import_input_encodings(entry.get("input", {}), **options)
            if "output" in entry or not partial:
                module.import_output_encodings(entry.get("output", {}), **options)
            prefix = f"{name}." if name else ""
            own = {key[len(prefix):]: value for key, value in params.items()
                   if key.startswith(prefix) and key[len(prefix):] in module.param_quantizers}
            if own or not partial:
                module.import_param_encodings(own, **options)

    # ---- export ----------------------------------------------------------------------------------
    def export(self, path, filename_prefix, dummy_input, *, encoding_version="0.6.1",
               onnx_export_args=None):  # pylint: disable=too-many-arguments
        """The reference's export: in ``path`` (created when missing)
        ``<prefix>.onnx`` (the float graph, through torch.onnx.export), ``<prefix>.encodings``
        keyed by its tensor and initializer names, ``<prefix>_qdq.onnx`` (each quantizer as
        quantsim's QuantizeLinear/DequantizeLinear nodes, docs/onnx.md §2) and
        ``<prefix>_torch.encodings``. Everything is computed first; the four files are then
        written through temporary files and renamed, so a failing export leaves no half-written
        file. Returns {quantizer path: tensor name}."""
        from .onnx import export_graphs  # pylint: disable=import-outside-toplevel
        if not isinstance(filename_prefix, str) or not filename_prefix or "/" in filename_prefix:
            raise ValueError(f"export: `filename_prefix` must be a non-empty file name prefix, "
                             f"got {filename_prefix!r}")
        if encoding_version not in ("0.6.1", "1.0.0"):
            raise NotImplementedError(f"export: encoding_version {encoding_version!r} is not "
                                      "supported (0.6.1 or 1.0.0)")
        quantizers = {p: q for _, p, _, _, q in self._slots()}
        for quantizer_path, quantizer in quantizers.items():
            if not quantizer.is_initialized():
                raise RuntimeError(f"export: the quantizer {quantizer_path} is not initialized; "
                                   "call compute_encodings() first")
        float_model, qdq_model, tensor_names = export_graphs(
            self.model, _as_args(dummy_input), self._modules, onnx_export_args)
        dumps = lambda obj: json.dumps(obj, sort_keys=True, indent=4)  # noqa: E731
        contents = {f"{filename_prefix}.onnx": float_model,
                    f"{filename_prefix}.encodings":
                        dumps(self._graph_encodings(tensor_names, encoding_version)).encode(),
                    f"{filename_prefix}_qdq.onnx": qdq_model,
                    f"{filename_prefix}_torch.encodings": dumps(self._torch_encodings()).encode()}
        _write_files_atomically(os.fspath(path), contents)
        return tensor_names

    def __str__(self):
        lines = [f"QuantizationSimModel: quant_scheme={self._quant_scheme}, "
                 f"default_param_bw={self._default_param_bw}, "
                 f"default_output_bw={self._default_output_bw}"]
        for name, _, _, _, quantizer in self._slots():
            lines.append(f"  {name or '<root>'}: {quantizer}")
        return "\n".join(lines)


def _write_files_atomically(directory, contents):
    """Each file to a temporary beside it, then all renamed: a failure before the renames leaves
    the earlier files intact."""
    os.makedirs(directory, exist_ok=True)
    temporaries = []
    try:
        for name, data in contents.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
            temporaries.append((temporary, os.path.join(directory, name)))
            with os.fdopen(handle, "wb") as file:
                file.write(data)
        for temporary, target in temporaries:
            os.replace(temporary, target)
    finally:
        for temporary, _ in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)
