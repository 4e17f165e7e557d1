#!/usr/bin/env python3
"""Writes include/quantsim/nn/modules/*.h and src/nn/modules/*.cpp from the table below.

The quantized module table (spec/quantized-modules.rst, spec §3.6) is data: one row per float
module with its quantizer counts. Each row becomes a ModuleTraits specialization, the
FakeQuantized<Name> (and, where the table lists one, Quantized<Name>) class and holder, an explicit
instantiation and a registration. Run it after editing the table: python3 tools/module_table.py
"""
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent

# group: (float headers, rows); row: (float impl, name, inputs, outputs, required args or None,
#                                     has QuantizationMixin class, extra traits body)
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
        ("torch::nn::EmbeddingBagImpl", "EmbeddingBag", 1, 1, 1, False,
         "  // Only per_sample_weights (the third argument) is quantized (spec §3.5).\n"
         "  static constexpr int input_leaf(size_t) { return 2; }\n"),
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
}

HEADER = '''#pragma once

// Generated by tools/module_table.py from its table; edit the table, not this file.

/// Quantized modules of the "{group}" rows of the module table (spec §3.6).

#include <quantsim/nn/quantization_mixin.h>
{extra_includes}
{includes}

namespace quantsim::nn {{

{traits}
{classes}
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
    r = list(r) + [None] * (7 - len(r))
    impl, name, n_in, n_out, required, quantized, extra = r
    return impl, name, n_in, n_out, required, bool(quantized), extra or ""


def main():
    for group, (includes, rows) in GROUPS.items():
        traits, classes, inst, regs = [], [], [], []
        extra_includes = ""
        if group == "loss":
            extra_includes = "#include <quantsim/nn/modules/asm_output.h>"
        for r in rows:
            impl, name, n_in, n_out, required, quantized, extra = row(r)
            req = f"\n  static constexpr size_t required_args = {required};" if required else ""
            traits.append(
                f"template <>\nstruct ModuleTraits<{impl}> : DefaultModuleTraits<{n_in}, {n_out}> {{\n"
                f"  static constexpr const char* name = \"{name}\";{req}\n{extra}}};\n")
            classes.append(
                f"using FakeQuantized{name}Impl = FakeQuantizationMixin<{impl}>;\n"
                f"TORCH_MODULE(FakeQuantized{name});\n"
                f"extern template class FakeQuantizationMixin<{impl}>;\n")
            inst.append(f"template class FakeQuantizationMixin<{impl}>;")
            regs.append(f"  register_quantized_module<{impl}>();")
            if quantized:
                classes.append(
                    f"using Quantized{name}Impl = QuantizationMixin<{impl}>;\n"
                    f"TORCH_MODULE(Quantized{name});\n"
                    f"extern template class QuantizationMixin<{impl}>;\n")
                inst.append(f"template class QuantizationMixin<{impl}>;")
                regs.append(f"  register_quantized_module<{impl}, QuantizationMixin<{impl}>>();")
        (ROOT / "include/quantsim/nn/modules" / f"{group}.h").write_text(HEADER.format(
            group=group, extra_includes=extra_includes,
            includes="\n".join(f"#include <{h}>" for h in includes),
            traits="\n".join(traits), classes="\n".join(classes)))
        (ROOT / "src/nn/modules" / f"{group}.cpp").write_text(SOURCE.format(
            group=group, instantiations="\n".join(inst) + "\n",
            registrations="\n".join(regs) + "\n"))
    print("groups:", ", ".join(GROUPS), "rows:", sum(len(r) for _, r in GROUPS.values()))


if __name__ == "__main__":
    main()
