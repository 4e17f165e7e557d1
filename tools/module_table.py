#!/usr/bin/env python3
"""Writes include/quantsim/nn/modules/*.h, src/nn/modules/*.cpp and include/quantsim/nn/drop_in.h
from the table below.

The quantized module table (spec/quantized-modules.rst, spec §3.6) is data: one row per float
module with its quantizer counts. Each row becomes a ModuleTraits specialization, the
FakeQuantized<Name> (and, where the table lists one, Quantized<Name>) class and holder, an explicit
instantiation, a registration, and the drop-in alias that replaces the float holder. Run it after
editing the table: python3 tools/module_table.py
"""
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent

# group: (float headers, rows); row: (float impl, name, inputs, outputs, required args or None,
#   has a QuantizationMixin class, class name if not the float name, argument leaf per input
#   quantizer if not 0, 1, ...)
GROUPS = {
    "activation": (["torch/nn/modules/activation.h", "quantsim/nn/float_modules.h"], [
        ("torch::nn::CELUImpl", "CELU", 1, 1), ("torch::nn::ELUImpl", "ELU", 1, 1),
        ("torch::nn::GELUImpl", "GELU", 1, 1, None, True), ("torch::nn::GLUImpl", "GLU", 1, 1),
        ("torch::nn::HardshrinkImpl", "Hardshrink", 1, 1),
        ("quantsim::nn::HardsigmoidImpl", "Hardsigmoid", 1, 1),
        ("quantsim::nn::HardswishImpl", "Hardswish", 1, 1),
        ("torch::nn::HardtanhImpl", "Hardtanh", 1, 1),
        ("torch::nn::LeakyReLUImpl", "LeakyReLU", 1, 1),
        ("torch::nn::LogSigmoidImpl", "LogSigmoid", 1, 1),
        ("torch::nn::LogSoftmaxImpl", "LogSoftmax", 1, 1), ("torch::nn::MishImpl", "Mish", 1, 1),
        ("torch::nn::PReLUImpl", "PReLU", 1, 1), ("torch::nn::RReLUImpl", "RReLU", 1, 1),
        ("torch::nn::ReLUImpl", "ReLU", 1, 1), ("torch::nn::ReLU6Impl", "ReLU6", 1, 1),
        ("torch::nn::SELUImpl", "SELU", 1, 1), ("torch::nn::SiLUImpl", "SiLU", 1, 1),
        ("torch::nn::SigmoidImpl", "Sigmoid", 1, 1, None, True),
        ("torch::nn::SoftmaxImpl", "Softmax", 1, 1, None, True),
        ("torch::nn::Softmax2dImpl", "Softmax2d", 1, 1), ("torch::nn::SoftminImpl", "Softmin", 1, 1),
        ("torch::nn::SoftplusImpl", "Softplus", 1, 1),
        ("torch::nn::SoftshrinkImpl", "Softshrink", 1, 1),
        ("torch::nn::SoftsignImpl", "Softsign", 1, 1), ("torch::nn::TanhImpl", "Tanh", 1, 1),
        ("torch::nn::TanhshrinkImpl", "Tanhshrink", 1, 1),
        ("torch::nn::ThresholdImpl", "Threshold", 1, 1),
    ]),
    "pooling": (["torch/nn/modules/pooling.h"], [
        ("torch::nn::AdaptiveAvgPool1dImpl", "AdaptiveAvgPool1d", 1, 1),
        ("torch::nn::AdaptiveAvgPool2dImpl", "AdaptiveAvgPool2d", 1, 1),
        ("torch::nn::AdaptiveAvgPool3dImpl", "AdaptiveAvgPool3d", 1, 1),
        ("torch::nn::AdaptiveMaxPool1dImpl", "AdaptiveMaxPool1d", 1, 1),
        ("torch::nn::AdaptiveMaxPool2dImpl", "AdaptiveMaxPool2d", 1, 1),
        ("torch::nn::AdaptiveMaxPool3dImpl", "AdaptiveMaxPool3d", 1, 1),
        ("torch::nn::AvgPool1dImpl", "AvgPool1d", 1, 1),
        ("torch::nn::AvgPool2dImpl", "AvgPool2d", 1, 1),
        ("torch::nn::AvgPool3dImpl", "AvgPool3d", 1, 1),
        ("torch::nn::FractionalMaxPool2dImpl", "FractionalMaxPool2d", 1, 1),
        ("torch::nn::FractionalMaxPool3dImpl", "FractionalMaxPool3d", 1, 1),
        ("torch::nn::LPPool1dImpl", "LPPool1d", 1, 1), ("torch::nn::LPPool2dImpl", "LPPool2d", 1, 1),
        ("torch::nn::MaxPool1dImpl", "MaxPool1d", 1, 1),
        ("torch::nn::MaxPool2dImpl", "MaxPool2d", 1, 1),
        ("torch::nn::MaxPool3dImpl", "MaxPool3d", 1, 1),
        ("torch::nn::MaxUnpool1dImpl", "MaxUnpool1d", 1, 1, 2),
        ("torch::nn::MaxUnpool2dImpl", "MaxUnpool2d", 1, 1, 2),
        ("torch::nn::MaxUnpool3dImpl", "MaxUnpool3d", 1, 1, 2),
    ]),
    "normalization": (["torch/nn/modules/batchnorm.h", "torch/nn/functional/instancenorm.h",
                       "torch/nn/modules/instancenorm.h",
                       "torch/nn/modules/normalization.h", "quantsim/nn/float_modules.h"], [
        ("torch::nn::BatchNorm1dImpl", "BatchNorm1d", 1, 1),
        ("torch::nn::BatchNorm2dImpl", "BatchNorm2d", 1, 1),
        ("torch::nn::BatchNorm3dImpl", "BatchNorm3d", 1, 1),
        ("torch::nn::CrossMapLRN2dImpl", "CrossMapLRN2d", 1, 1),
        ("torch::nn::GroupNormImpl", "GroupNorm", 1, 1),
        ("torch::nn::InstanceNorm1dImpl", "InstanceNorm1d", 1, 1),
        ("torch::nn::InstanceNorm2dImpl", "InstanceNorm2d", 1, 1),
        ("torch::nn::InstanceNorm3dImpl", "InstanceNorm3d", 1, 1),
        ("torch::nn::LayerNormImpl", "LayerNorm", 1, 1, None, True),
        ("torch::nn::LocalResponseNormImpl", "LocalResponseNorm", 1, 1),
        ("quantsim::nn::SyncBatchNormImpl", "SyncBatchNorm", 1, 1),
    ]),
    "conv": (["torch/nn/modules/conv.h", "torch/nn/modules/fold.h"], [
        ("torch::nn::Conv1dImpl", "Conv1d", 1, 1, None, True),
        ("torch::nn::Conv2dImpl", "Conv2d", 1, 1, None, True),
        ("torch::nn::Conv3dImpl", "Conv3d", 1, 1, None, True),
        ("torch::nn::ConvTranspose1dImpl", "ConvTranspose1d", 1, 1, 1),
        ("torch::nn::ConvTranspose2dImpl", "ConvTranspose2d", 1, 1, 1),
        ("torch::nn::ConvTranspose3dImpl", "ConvTranspose3d", 1, 1, 1),
        ("torch::nn::FoldImpl", "Fold", 1, 1), ("torch::nn::UnfoldImpl", "Unfold", 1, 1),
    ]),
    "linear": (["torch/nn/modules/linear.h", "torch/nn/modules/embedding.h"], [
        ("torch::nn::BilinearImpl", "Bilinear", 2, 1),
        ("torch::nn::EmbeddingImpl", "Embedding", 0, 1),
        # Only per_sample_weights, the third argument, is quantized (spec §3.5).
        ("torch::nn::EmbeddingBagImpl", "EmbeddingBag", 1, 1, 1, False, None, [2]),
        ("torch::nn::FlattenImpl", "Flatten", 1, 1),
        ("torch::nn::IdentityImpl", "Identity", 1, 1),
        ("torch::nn::LinearImpl", "Linear", 1, 1, None, True),
        ("torch::nn::UnflattenImpl", "Unflatten", 1, 1),
    ]),
    "shape": (["torch/nn/modules/dropout.h", "torch/nn/modules/padding.h",
               "torch/nn/modules/pixelshuffle.h", "torch/nn/modules/upsampling.h",
               "quantsim/nn/float_modules.h"], [
        ("torch::nn::AlphaDropoutImpl", "AlphaDropout", 1, 1),
        ("quantsim::nn::ChannelShuffleImpl", "ChannelShuffle", 1, 1),
        ("torch::nn::ConstantPad1dImpl", "ConstantPad1d", 1, 1),
        ("torch::nn::ConstantPad2dImpl", "ConstantPad2d", 1, 1),
        ("torch::nn::ConstantPad3dImpl", "ConstantPad3d", 1, 1),
        ("torch::nn::DropoutImpl", "Dropout", 1, 1),
        ("torch::nn::Dropout2dImpl", "Dropout2d", 1, 1),
        ("torch::nn::Dropout3dImpl", "Dropout3d", 1, 1),
        ("torch::nn::FeatureAlphaDropoutImpl", "FeatureAlphaDropout", 1, 1),
        ("torch::nn::PixelShuffleImpl", "PixelShuffle", 1, 1),
        ("torch::nn::PixelUnshuffleImpl", "PixelUnshuffle", 1, 1),
        ("torch::nn::ReflectionPad1dImpl", "ReflectionPad1d", 1, 1),
        ("torch::nn::ReflectionPad2dImpl", "ReflectionPad2d", 1, 1),
        ("torch::nn::ReplicationPad1dImpl", "ReplicationPad1d", 1, 1),
        ("torch::nn::ReplicationPad2dImpl", "ReplicationPad2d", 1, 1),
        ("torch::nn::ReplicationPad3dImpl", "ReplicationPad3d", 1, 1),
        ("torch::nn::UpsampleImpl", "Upsample", 1, 1),
        ("quantsim::nn::UpsamplingBilinear2dImpl", "UpsamplingBilinear2d", 1, 1),
        ("quantsim::nn::UpsamplingNearest2dImpl", "UpsamplingNearest2d", 1, 1),
        ("torch::nn::ZeroPad2dImpl", "ZeroPad2d", 1, 1),
    ]),
    "loss": (["torch/nn/modules/loss.h", "torch/nn/modules/distance.h",
              "torch/nn/modules/adaptive.h", "quantsim/nn/float_modules.h"], [
        ("torch::nn::AdaptiveLogSoftmaxWithLossImpl", "AdaptiveLogSoftmaxWithLoss", 2, 2),
        ("torch::nn::BCELossImpl", "BCELoss", 2, 1),
        ("torch::nn::BCEWithLogitsLossImpl", "BCEWithLogitsLoss", 2, 1),
        ("torch::nn::CTCLossImpl", "CTCLoss", 1, 1),
        ("torch::nn::CosineEmbeddingLossImpl", "CosineEmbeddingLoss", 2, 1),
        ("torch::nn::CosineSimilarityImpl", "CosineSimilarity", 2, 1),
        ("torch::nn::CrossEntropyLossImpl", "CrossEntropyLoss", 2, 1),
        ("quantsim::nn::GaussianNLLLossImpl", "GaussianNLLLoss", 3, 1),
        ("torch::nn::HingeEmbeddingLossImpl", "HingeEmbeddingLoss", 1, 1),
        ("torch::nn::HuberLossImpl", "HuberLoss", 2, 1),
        ("torch::nn::KLDivLossImpl", "KLDivLoss", 2, 1),
        ("torch::nn::L1LossImpl", "L1Loss", 2, 1),
        ("torch::nn::MSELossImpl", "MSELoss", 2, 1),
        ("torch::nn::MarginRankingLossImpl", "MarginRankingLoss", 2, 1),
        ("torch::nn::MultiLabelMarginLossImpl", "MultiLabelMarginLoss", 1, 1),
        ("torch::nn::MultiLabelSoftMarginLossImpl", "MultiLabelSoftMarginLoss", 1, 1),
        ("torch::nn::MultiMarginLossImpl", "MultiMarginLoss", 1, 1),
        ("torch::nn::NLLLossImpl", "NLLLoss", 1, 1),
        ("quantsim::nn::NLLLoss2dImpl", "NLLLoss2d", 1, 1),
        ("torch::nn::PairwiseDistanceImpl", "PairwiseDistance", 2, 1),
        ("torch::nn::PoissonNLLLossImpl", "PoissonNLLLoss", 2, 1),
        ("torch::nn::SmoothL1LossImpl", "SmoothL1Loss", 2, 1),
        ("torch::nn::SoftMarginLossImpl", "SoftMarginLoss", 1, 1),
        ("torch::nn::TripletMarginLossImpl", "TripletMarginLoss", 3, 1),
        ("torch::nn::TripletMarginWithDistanceLossImpl", "TripletMarginWithDistanceLoss", 3, 1),
    ]),
    "custom_elementwise": (["quantsim/nn/custom.h"], [
        ("quantsim::nn::custom::CastImpl", "Cast", 1, 1),
        ("quantsim::nn::custom::ExponentialImpl", "Exponential", 1, 1),
        ("quantsim::nn::custom::ErfImpl", "Erf", 1, 1),
        ("quantsim::nn::custom::SqrtImpl", "Sqrt", 1, 1),
        ("quantsim::nn::custom::LogImpl", "Log", 1, 1),
        ("quantsim::nn::custom::AbsImpl", "Abs", 1, 1),
        ("quantsim::nn::custom::NegImpl", "Neg", 1, 1),
        ("quantsim::nn::custom::ElementwiseCeilImpl", "ElementwiseCeil", 1, 1),
        ("quantsim::nn::custom::ElementwiseFloorImpl", "ElementwiseFloor", 1, 1),
        ("quantsim::nn::custom::SinImpl", "Sin", 1, 1),
        ("quantsim::nn::custom::CosImpl", "Cos", 1, 1),
        ("quantsim::nn::custom::AsinImpl", "Asin", 1, 1),
        ("quantsim::nn::custom::AtanImpl", "Atan", 1, 1),
        ("quantsim::nn::custom::RoundImpl", "Round", 1, 1),
        ("quantsim::nn::custom::LogicalNotImpl", "LogicalNot", 1, 1),
        ("quantsim::nn::custom::ElementwiseUnarySignImpl", "ElementwiseUnarySign", 1, 1),
        ("quantsim::nn::custom::RSqrtImpl", "RSqrt", 1, 1),
        ("quantsim::nn::custom::SquareImpl", "Square", 1, 1),
        ("quantsim::nn::custom::MatMulImpl", "MatMul", 2, 1),
        ("quantsim::nn::custom::AddImpl", "Add", 2, 1, None, True),
        ("quantsim::nn::custom::MultiplyImpl", "Multiply", 2, 1, None, True),
        ("quantsim::nn::custom::SubtractImpl", "Subtract", 2, 1, None, True),
        ("quantsim::nn::custom::DivideImpl", "Divide", 2, 1),
        ("quantsim::nn::custom::FloorDivideImpl", "FloorDivide", 2, 1),
        ("quantsim::nn::custom::GreaterImpl", "Greater", 2, 1),
        ("quantsim::nn::custom::LessImpl", "Less", 2, 1),
        ("quantsim::nn::custom::GreaterEqualImpl", "GreaterEqual", 2, 1),
        ("quantsim::nn::custom::LessEqualImpl", "LessEqual", 2, 1),
        ("quantsim::nn::custom::NotEqualImpl", "NotEqual", 2, 1),
        ("quantsim::nn::custom::EqualImpl", "Equal", 2, 1),
        ("quantsim::nn::custom::RemainderImpl", "Remainder", 2, 1),
        ("quantsim::nn::custom::FmodImpl", "Fmod", 2, 1),
        ("quantsim::nn::custom::PowImpl", "Pow", 2, 1),
        ("quantsim::nn::custom::MaximumImpl", "Maximum", 2, 1),
        ("quantsim::nn::custom::MaxImpl", "Max", 2, 1),
        ("quantsim::nn::custom::MinimumImpl", "Minimum", 2, 1),
        ("quantsim::nn::custom::MinImpl", "Min", 2, 1),
        ("quantsim::nn::custom::BmmImpl", "Bmm", 2, 1),
        ("quantsim::nn::custom::LogicalOrImpl", "LogicalOr", 2, 1),
        ("quantsim::nn::custom::LogicalAndImpl", "LogicalAnd", 2, 1),
        ("quantsim::nn::custom::BaddbmmImpl", "Baddbmm", 3, 1),
        ("quantsim::nn::custom::AddmmImpl", "Addmm", 3, 1),
        ("quantsim::nn::custom::WhereImpl", "Where", 3, 1),
        # Binary in the reference's legacy table, though its forward takes one tensor.
        ("quantsim::nn::custom::CustomSiLUImpl", "CustomSiLU", 2, 1, None, False, None, [0, -1]),
    ]),
    "custom_tensor": (["quantsim/nn/custom.h"], [
        ("quantsim::nn::custom::ChannelShuffleImpl", "ChannelShuffle", 1, 1),
        ("quantsim::nn::custom::MaxPool2dImpl", "MaxPool2d", 1, 1),
        ("quantsim::nn::custom::AdaptiveAvgPool2dImpl", "AdaptiveAvgPool2d", 1, 1),
        ("quantsim::nn::custom::AvgPool2dImpl", "AvgPool2d", 1, 1),
        ("quantsim::nn::custom::DepthToSpaceDCRModeImpl", "DepthToSpaceDCRMode", 1, 1),
        ("quantsim::nn::custom::OneHotImpl", "OneHot", 1, 1),
        ("quantsim::nn::custom::NonZeroImpl", "NonZero", 1, 1),
        ("quantsim::nn::custom::MeanImpl", "Mean", 1, 1),
        ("quantsim::nn::custom::SumImpl", "Sum", 1, 1),
        ("quantsim::nn::custom::ProdImpl", "Prod", 1, 1),
        ("quantsim::nn::custom::ArgminImpl", "Argmin", 1, 1),
        ("quantsim::nn::custom::ArgmaxImpl", "Argmax", 1, 1),
        ("quantsim::nn::custom::GatherImpl", "Gather", 1, 1),
        ("quantsim::nn::custom::ReshapeImpl", "Reshape", 1, 1),
        ("quantsim::nn::custom::RoiAlignImpl", "RoiAlign", 1, 1),
        ("quantsim::nn::custom::PermuteImpl", "Permute", 1, 1),
        ("quantsim::nn::custom::IndexSelectImpl", "IndexSelect", 1, 1),
        ("quantsim::nn::custom::TopKImpl", "TopK", 1, 1),
        ("quantsim::nn::custom::TileImpl", "Tile", 1, 1),
        ("quantsim::nn::custom::NormImpl", "Norm", 1, 1),
        ("quantsim::nn::custom::CumSumImpl", "CumSum", 1, 1),
        ("quantsim::nn::custom::InterpolateImpl", "Interpolate", 1, 1),
        ("quantsim::nn::custom::NormalizeImpl", "Normalize", 1, 1),
        ("quantsim::nn::custom::PadImpl", "Pad", 1, 1),
        ("quantsim::nn::custom::ShapeImpl", "Shape", 1, 1),
        ("quantsim::nn::custom::ExpandImpl", "Expand", 1, 1),
        ("quantsim::nn::custom::StridedSliceImpl", "StridedSlice", 1, 1),
        ("quantsim::nn::custom::SplitImpl", "Split", 1, 1),
        ("quantsim::nn::custom::ConcatImpl", "Concat", 1, 1),
        ("quantsim::nn::custom::CustomGatherImpl", "CustomGather", 2, 1),
        ("quantsim::nn::custom::GatherNdImpl", "GatherNd", 2, 1),
        ("quantsim::nn::custom::ScatterNDImpl", "ScatterND", 3, 1),
        ("quantsim::nn::custom::DynamicConv2dImpl", "DynamicConv2d", 3, 1),
        ("quantsim::nn::custom::ScatterElementsImpl", "ScatterElements", 3, 1),
        ("quantsim::nn::custom::BatchNormImpl", "BatchNorm", 5, 1, 3),
        # (input, [num_groups], weight, bias): the reference's slot 1 has no tensor.
        ("quantsim::nn::custom::GroupNormImpl", "GroupNorm", 4, 1, 1, False, "AimetGroupNorm",
         [0, -1, 1, 2]),
        # forward(boxes, scores): the one input quantizer applies to the scores.
        ("quantsim::nn::custom::NonMaxSuppressionImpl", "NonMaxSuppression", 1, 1, None, False,
         None, [1]),
        # forward(x, mask, value): slot 0 unused, slot 1 on the fill value (spec §3.7, §8 item 11).
        ("quantsim::nn::custom::MaskedFillImpl", "MaskedFill", 2, 1, None, False, None, [-1, 2]),
    ]),
}

HEADER = '''#pragma once

// Generated by tools/module_table.py from its table; edit the table, not this file.

/// Quantized modules of the "{group}" rows of the module table (spec §3.6).

#include <quantsim/nn/quantization_mixin.h>
{extra_includes}
{includes}

namespace quantsim::nn {{

{traits}
// Instantiated once, in src/nn/modules/{group}.cpp.
{externs}

{open_classes}{classes}{close_classes}
}}  // namespace quantsim::nn
'''

SOURCE = '''// Generated by tools/module_table.py from its table; edit the table, not this file.

#include <quantsim/nn/modules/{group}.h>
#include <quantsim/nn/registry.h>

#include "nn/modules/registration.h"

namespace quantsim::nn {{

{instantiations}
void register_{group}_modules() {{
{registrations}}}

}}  // namespace quantsim::nn
'''


def row(r):
    r = list(r) + [None] * (8 - len(r))
    impl, name, n_in, n_out, required, quantized, cls, leaves = r
    extra = ""
    if leaves is not None:
        assert len(leaves) == n_in, name
        extra = ("  static constexpr int input_leaf(size_t index) {\n"
                 f"    constexpr int leaves[] = {{{', '.join(map(str, leaves))}}};\n"
                 "    return leaves[index];\n  }\n")
    if cls:
        extra += f"  static constexpr const char* class_name = \"{cls}\";\n"
    return impl, name, n_in, n_out, required, bool(quantized), cls or name, extra


# The recurrent rows, written by hand in include/quantsim/nn/modules/rnn.h (their traits bind
# quantizers to hidden states); listed here for the drop-in namespace only.
RNN_ROWS = [(f"torch::nn::{name}Impl", name, 0, 0)
            for name in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")]

DROP_IN = '''#pragma once

// Generated by tools/module_table.py from its table; edit the table, not this file.

/// `quantsim::nn::drop_in`: all of torch::nn, with the module of every row of the quantized
/// module table (spec §3.6, §3.7) replaced by its quantized counterpart: `drop_in::Conv2d` is
/// `quantsim::nn::QuantizedConv2d`, `drop_in::BatchNorm2d` is `FakeQuantizedBatchNorm2d`
/// (Quantized<Name> where the table has one, else FakeQuantized<Name>), and the same for the
/// `Impl` classes. Options types, functional, init, utils, Module, Sequential, ModuleList, ... are
/// torch::nn's own. Qualified lookup finds the aliases declared here before the names the
/// using-directive brings in, so a model written against torch::nn becomes a simulation model by
/// changing its namespace alias:
///
///     namespace nn = quantsim::nn::drop_in;  // was: namespace nn = torch::nn;
///     struct NetImpl : nn::Module {{
///       nn::Conv2d conv{{nn::Conv2dOptions(1, 8, 3)}};
///       nn::Linear fc{{8, 10}};
///       ...
///     }};
///
/// The quantized modules start with empty quantizer slots, so until quantizers are assigned (by
/// hand or by a QuantizationSimModel) the model computes exactly the float model. Also here:
/// the float modules quantsim adds to torch::nn (Hardswish, ChannelShuffle, ...; their options
/// too) and, under `drop_in::custom`, the custom ops of quantsim::nn::custom. Modules without a
/// row stay torch's float modules (MultiheadAttention, the Transformer family, ReflectionPad3d);
/// `drop_in::Embedding` has no static `from_pretrained` (torch's holder is hand-written).

#include <quantsim/nn/custom.h>
#include <quantsim/nn/float_modules.h>
#include <quantsim/nn/modules.h>

#include <torch/nn.h>

namespace quantsim::nn::drop_in {{

// The whole of torch::nn: what is not declared below resolves to torch's own.
using namespace torch::nn;  // NOLINT(google-build-using-namespace)
namespace functional = torch::nn::functional;
namespace init = torch::nn::init;
namespace utils = torch::nn::utils;

{aliases}
/// The options of the float modules that quantsim adds to torch::nn.
{options}

/// The custom ops of quantsim::nn::custom, quantized.
namespace custom {{

using namespace quantsim::nn::custom;  // NOLINT(google-build-using-namespace)

{custom_aliases}
}}  // namespace custom

}}  // namespace quantsim::nn::drop_in
'''


def drop_in_header():
    """The text of include/quantsim/nn/drop_in.h: one alias pair per row."""
    aliases, custom_aliases = [], []
    groups = list(GROUPS.items()) + [("rnn", ([], RNN_ROWS))]
    for group, (_, rows) in groups:
        lines = []
        for r in rows:
            impl, _, _, _, _, quantized, cls, _ = row(r)
            namespace, holder = impl.rsplit("::", 1)[0], impl.rsplit("::", 1)[1][:-len("Impl")]
            target = ("quantsim::nn::custom::" if group.startswith("custom") else "quantsim::nn::") + (
                "Quantized" if quantized else "FakeQuantized") + cls
            lines.append(f"using {holder} = {target};\nusing {holder}Impl = {target}Impl;")
        block = f"// {group}\n" + "\n".join(lines) + "\n"
        (custom_aliases if group.startswith("custom") else aliases).append(block)
    float_header = (ROOT / "include/quantsim/nn/float_modules.h").read_text()
    options = sorted(set(re.findall(r"^(?:struct|using) (\w+Options)\b", float_header, re.M)))
    return DROP_IN.format(aliases="\n".join(aliases), custom_aliases="\n".join(custom_aliases),
                          options="\n".join(f"using quantsim::nn::{o};" for o in options))


def main():
    for group, (includes, rows) in GROUPS.items():
        traits, classes, externs, inst, regs = [], [], [], [], []
        extra_includes = ""
        if group == "loss":
            extra_includes = "#include <quantsim/nn/modules/asm_output.h>"
        for r in rows:
            impl, name, n_in, n_out, required, quantized, cls, extra = row(r)
            req = f"\n  static constexpr size_t required_args = {required};" if required else ""
            traits.append(
                f"template <>\nstruct ModuleTraits<{impl}> : DefaultModuleTraits<{n_in}, {n_out}> {{\n"
                f"  static constexpr const char* name = \"{name}\";{req}\n{extra}}};\n")
            classes.append(
                f"using FakeQuantized{cls}Impl = FakeQuantizationMixin<{impl}>;\n"
                f"TORCH_MODULE(FakeQuantized{cls});\n")
            externs.append(f"extern template class FakeQuantizationMixin<{impl}>;")
            inst.append(f"template class FakeQuantizationMixin<{impl}>;")
            regs.append(f"  register_quantized_module<{impl}>();")
            if quantized:
                classes.append(
                    f"using Quantized{cls}Impl = QuantizationMixin<{impl}>;\n"
                    f"TORCH_MODULE(Quantized{cls});\n")
                externs.append(f"extern template class QuantizationMixin<{impl}>;")
                inst.append(f"template class QuantizationMixin<{impl}>;")
                regs.append(f"  register_quantized_module<{impl}, QuantizationMixin<{impl}>>();")
        (ROOT / "include/quantsim/nn/modules" / f"{group}.h").write_text(HEADER.format(
            group=group, extra_includes=extra_includes,
            includes="\n".join(f"#include <{h}>" for h in includes),
            traits="\n".join(traits), classes="\n".join(classes), externs="\n".join(externs),
            open_classes="namespace custom {\n\n" if group.startswith("custom") else "",
            close_classes="\n}  // namespace custom\n" if group.startswith("custom") else ""))
        (ROOT / "src/nn/modules" / f"{group}.cpp").write_text(SOURCE.format(
            group=group, instantiations="\n".join(inst) + "\n",
            registrations="\n".join(regs) + "\n"))
    (ROOT / "include/quantsim/nn/drop_in.h").write_text(drop_in_header())
    written = [str(p) for g in GROUPS for p in (ROOT / "include/quantsim/nn/modules" / f"{g}.h",
                                                ROOT / "src/nn/modules" / f"{g}.cpp")]
    written.append(str(ROOT / "include/quantsim/nn/drop_in.h"))
    subprocess.run(["clang-format", "-i", *written], check=True)
    print("groups:", ", ".join(GROUPS), "rows:", sum(len(r) for _, r in GROUPS.values()))


if __name__ == "__main__":
    main()
