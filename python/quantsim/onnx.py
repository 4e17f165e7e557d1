"""ONNX export of a simulated Python model (``QuantizationSimModel.export``, docs/python.md).

torch.onnx.export traces the model with every quantizer call replaced by a marker: a
``torch.autograd.Function`` whose symbolic is one node of domain ``quantsim.marker`` naming the
quantizer (its path in the model) and the input's shape. The C++ core then turns the marked model
into the float graph (markers removed, each quantizer's tensor recorded) and the QDQ graph (each
marker replaced by the quantizer's QuantizeLinear/DequantizeLinear nodes, the same nodes the C++
QuantizationSimModel::export_onnx writes: ``quantsim/onnx/marked_export.h``), so the ONNX
arithmetic of a quantizer has one implementation, proven bit-exact in ONNX Runtime by the C++
tests (docs/onnx.md §4).

Exported graphs: ai.onnx opset 17, inputs ``input`` (or ``input_0``, ...), outputs ``output`` (or
``output_0``, ...), the batch (first) dim dynamic, initializers named after the model's
parameters.
"""
import contextlib
import io
import warnings

import torch

from . import _C

__all__ = ["export_graphs"]

_MARKER_OP = f"{_C.QUANTIZER_MARKER_DOMAIN}::Quantizer"


# During an export: quantizer path -> (its original _fake_quantize, the input's shape). The
# tracer takes only tensors and plain scalars as a Function's arguments, so the marker carries
# the path alone.
_ACTIVE = {}


class _Marker(torch.autograd.Function):
    """y = quantizer(x) when run; one marker node when exported."""

    @staticmethod
    def forward(ctx, x, path):  # pylint: disable=arguments-differ
        # The quantizer runs untraced: the marker node stands for it (its own ops would read its
        # ranges, which the trace would have to capture as constants).
        state = torch._C._get_tracing_state()  # pylint: disable=protected-access
        torch._C._set_tracing_state(None)  # pylint: disable=protected-access
        try:
            return _ACTIVE[path][0](x)
        finally:
            torch._C._set_tracing_state(state)  # pylint: disable=protected-access

    @staticmethod
    def symbolic(g, x, path):
        output = g.op(_MARKER_OP, x, quantizer_s=path, shape_i=list(_ACTIVE[path][1]))
        output.setType(x.type())
        return output


@contextlib.contextmanager
def _markers(modules):
    """Every quantizer's ``_fake_quantize`` (what the quantized modules call) through _Marker, for
    the duration of the export."""
    patched = []

    def marked(quantizer, path, parameter):
        original = quantizer._fake_quantize  # pylint: disable=protected-access

        def fake_quantize(x):
            shape = list(x.shape)
            if x is not parameter and shape:
                shape[0] = -1  # the dynamic batch
            _ACTIVE[path] = (original, shape)
            return _Marker.apply(x, path)

        return fake_quantize

    try:
        for name, module in modules:
            prefix = f"{name}." if name else ""
            slots = [(f"{prefix}input_quantizers.{i}", q, None)
                     for i, q in enumerate(module.input_quantizers)]
            slots += [(f"{prefix}output_quantizers.{i}", q, None)
                      for i, q in enumerate(module.output_quantizers)]
            slots += [(f"{prefix}param_quantizers.{k}", q, module._parameters.get(k))  # pylint: disable=protected-access
                      for k, q in module.param_quantizers.items()]
            for path, quantizer, parameter in slots:
                if quantizer is None:
                    continue
                quantizer._fake_quantize = marked(quantizer, path, parameter)  # pylint: disable=protected-access
                patched.append(quantizer)
        yield
    finally:
        _ACTIVE.clear()
        for quantizer in patched:
            del quantizer._fake_quantize  # pylint: disable=protected-access


@contextlib.contextmanager
def _without_extra_state(model):
    """The quantizers' ``_extra_state`` (their initialization flags, a dict) out of state_dict()
    while tracing: torch.jit's tracer detaches every state_dict value."""
    restored = []
    for cls in {type(m) for m in model.modules()}:
        for klass in cls.__mro__:
            if "get_extra_state" in vars(klass) and klass is not torch.nn.Module:
                restored.append((klass, vars(klass)["get_extra_state"]))
    try:
        for klass, _ in restored:
            klass.get_extra_state = torch.nn.Module.get_extra_state
        yield
    finally:
        for klass, method in restored:
            klass.get_extra_state = method


def _names(prefix, count):
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


def export_graphs(model, args, modules, onnx_export_args=None):
    """(float model bytes, QDQ model bytes, {quantizer path: tensor name of the float graph}) of
    ``model(*args)``; ``modules`` are the (name, quantized module) pairs of the model."""
    engines = {}
    for name, module in modules:
        prefix = f"{name}." if name else ""
        for i, q in enumerate(module.input_quantizers):
            if q is not None:
                engines[f"{prefix}input_quantizers.{i}"] = (q._impl, None)  # pylint: disable=protected-access
        for i, q in enumerate(module.output_quantizers):
            if q is not None:
                engines[f"{prefix}output_quantizers.{i}"] = (q._impl, None)  # pylint: disable=protected-access
        for key, q in module.param_quantizers.items():
            if q is not None:
                parameter = module._parameters.get(key)  # pylint: disable=protected-access
                engines[f"{prefix}param_quantizers.{key}"] = (
                    q._impl, None if parameter is None else parameter.detach())  # pylint: disable=protected-access

    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(*args)
        n_outputs = len(outputs) if isinstance(outputs, (tuple, list)) else 1
        input_names = _names("input", len(args))
        output_names = _names("output", n_outputs)
        options = dict(opset_version=17, do_constant_folding=True, input_names=input_names,
                       output_names=output_names,
                       dynamic_axes={n: {0: "batch"} for n in input_names + output_names},
                       custom_opsets={_C.QUANTIZER_MARKER_DOMAIN: 1})
        options.update(onnx_export_args or {})
        buffer = io.BytesIO()
        with _markers(modules), _without_extra_state(model), torch.no_grad(), \
                warnings.catch_warnings():
            # The markers have no ONNX shape inference (they are gone from both graphs), and
            # torch 1.13 announces g.op's deprecation for 1.14.
            warnings.filterwarnings("ignore", message=".*quantsim\\.marker::Quantizer.*")
            warnings.filterwarnings("ignore", message=".*_graph_op.*", category=FutureWarning)
            torch.onnx.export(model, tuple(args), buffer, **options)
    finally:
        for module, training in saved:
            module.train(training)
    return _C.graphs_from_marked_model(buffer.getvalue(), engines)
