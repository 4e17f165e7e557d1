#pragma once

/// Elementwise custom float modules (spec §3.7): unary math, binary arithmetic, comparisons and
/// logic, `CustomSiLU`, `Where` and `MaskedFill`. Binary modules broadcast as torch does; a
/// Python scalar operand is a 0-dim tensor here.
///
///     quantsim::nn::custom::Add add;
///     auto z = add(x, y);   // torch::add(x, y)

#include <quantsim/nn/custom/stateless.h>

#include <torch/nn/modules/activation.h>
#include <torch/nn/pimpl.h>

#include <ATen/core/Tensor.h>

namespace quantsim::nn::custom {

// ---- unary (1 input) ---------------------------------------------------------------------------

/// `exp(x)` (torch.exp).
class ExponentialImpl : public StatelessModule<ExponentialImpl> {
 public:
  static constexpr const char* kName = "Exponential";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Exponential);

/// `erf(x)` (torch.erf).
class ErfImpl : public StatelessModule<ErfImpl> {
 public:
  static constexpr const char* kName = "Erf";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Erf);

/// `sqrt(x)` (torch.sqrt).
class SqrtImpl : public StatelessModule<SqrtImpl> {
 public:
  static constexpr const char* kName = "Sqrt";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Sqrt);

/// `log(x)`, natural logarithm (torch.log).
class LogImpl : public StatelessModule<LogImpl> {
 public:
  static constexpr const char* kName = "Log";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Log);

/// `|x|` (torch.abs).
class AbsImpl : public StatelessModule<AbsImpl> {
 public:
  static constexpr const char* kName = "Abs";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Abs);

/// `-x` (torch.neg).
class NegImpl : public StatelessModule<NegImpl> {
 public:
  static constexpr const char* kName = "Neg";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Neg);

/// `ceil(x)` (torch.ceil).
class ElementwiseCeilImpl : public StatelessModule<ElementwiseCeilImpl> {
 public:
  static constexpr const char* kName = "ElementwiseCeil";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(ElementwiseCeil);

/// `floor(x)` (torch.floor).
class ElementwiseFloorImpl : public StatelessModule<ElementwiseFloorImpl> {
 public:
  static constexpr const char* kName = "ElementwiseFloor";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(ElementwiseFloor);

/// `sin(x)` (torch.sin).
class SinImpl : public StatelessModule<SinImpl> {
 public:
  static constexpr const char* kName = "Sin";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Sin);

/// `cos(x)` (torch.cos).
class CosImpl : public StatelessModule<CosImpl> {
 public:
  static constexpr const char* kName = "Cos";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Cos);

/// `asin(x)` (torch.asin).
class AsinImpl : public StatelessModule<AsinImpl> {
 public:
  static constexpr const char* kName = "Asin";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Asin);

/// `atan(x)` (torch.atan).
class AtanImpl : public StatelessModule<AtanImpl> {
 public:
  static constexpr const char* kName = "Atan";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Atan);

/// `round(x)`, half to even (torch.round).
class RoundImpl : public StatelessModule<RoundImpl> {
 public:
  static constexpr const char* kName = "Round";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Round);

/// `!x` as a bool tensor (torch.logical_not).
class LogicalNotImpl : public StatelessModule<LogicalNotImpl> {
 public:
  static constexpr const char* kName = "LogicalNot";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(LogicalNot);

/// `sign(x)` in {-1, 0, 1} (torch.sign).
class ElementwiseUnarySignImpl : public StatelessModule<ElementwiseUnarySignImpl> {
 public:
  static constexpr const char* kName = "ElementwiseUnarySign";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(ElementwiseUnarySign);

/// `1 / sqrt(x)` (torch.rsqrt).
class RSqrtImpl : public StatelessModule<RSqrtImpl> {
 public:
  static constexpr const char* kName = "RSqrt";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(RSqrt);

/// `x * x` (torch.square).
class SquareImpl : public StatelessModule<SquareImpl> {
 public:
  static constexpr const char* kName = "Square";
  at::Tensor forward(const at::Tensor& x);
};
TORCH_MODULE(Square);

// ---- binary (inputs x, y) ----------------------------------------------------------------------

/// `x + y` with broadcasting (torch.add).
class AddImpl : public StatelessModule<AddImpl> {
 public:
  static constexpr const char* kName = "Add";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Add);

/// `x * y` with broadcasting (torch.mul).
class MultiplyImpl : public StatelessModule<MultiplyImpl> {
 public:
  static constexpr const char* kName = "Multiply";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Multiply);

/// `x - y` with broadcasting (torch.sub).
class SubtractImpl : public StatelessModule<SubtractImpl> {
 public:
  static constexpr const char* kName = "Subtract";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Subtract);

/// `x / y`, true division (torch.div).
class DivideImpl : public StatelessModule<DivideImpl> {
 public:
  static constexpr const char* kName = "Divide";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Divide);

/// `floor(x / y)` (torch.floor_divide).
class FloorDivideImpl : public StatelessModule<FloorDivideImpl> {
 public:
  static constexpr const char* kName = "FloorDivide";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(FloorDivide);

/// `x > y` as a bool tensor (torch.gt).
class GreaterImpl : public StatelessModule<GreaterImpl> {
 public:
  static constexpr const char* kName = "Greater";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Greater);

/// `x < y` as a bool tensor (torch.lt).
class LessImpl : public StatelessModule<LessImpl> {
 public:
  static constexpr const char* kName = "Less";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Less);

/// `x >= y` as a bool tensor (torch.ge).
class GreaterEqualImpl : public StatelessModule<GreaterEqualImpl> {
 public:
  static constexpr const char* kName = "GreaterEqual";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(GreaterEqual);

/// `x <= y` as a bool tensor (torch.le).
class LessEqualImpl : public StatelessModule<LessEqualImpl> {
 public:
  static constexpr const char* kName = "LessEqual";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(LessEqual);

/// `x != y` as a bool tensor (torch.ne).
class NotEqualImpl : public StatelessModule<NotEqualImpl> {
 public:
  static constexpr const char* kName = "NotEqual";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(NotEqual);

/// `x == y` as a bool tensor (torch.eq).
class EqualImpl : public StatelessModule<EqualImpl> {
 public:
  static constexpr const char* kName = "Equal";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Equal);

/// `x - floor(x / y) * y`, the sign of y (torch.remainder).
class RemainderImpl : public StatelessModule<RemainderImpl> {
 public:
  static constexpr const char* kName = "Remainder";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Remainder);

/// `x - trunc(x / y) * y`, the sign of x (torch.fmod).
class FmodImpl : public StatelessModule<FmodImpl> {
 public:
  static constexpr const char* kName = "Fmod";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Fmod);

/// `x ** y` (torch.pow).
class PowImpl : public StatelessModule<PowImpl> {
 public:
  static constexpr const char* kName = "Pow";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Pow);

/// Elementwise `max(x, y)`, NaN-propagating (torch.maximum).
class MaximumImpl : public StatelessModule<MaximumImpl> {
 public:
  static constexpr const char* kName = "Maximum";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Maximum);

/// Elementwise `max(x, y)`: the binary form of torch.max.
class MaxImpl : public StatelessModule<MaxImpl> {
 public:
  static constexpr const char* kName = "Max";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Max);

/// Elementwise `min(x, y)`, NaN-propagating (torch.minimum).
class MinimumImpl : public StatelessModule<MinimumImpl> {
 public:
  static constexpr const char* kName = "Minimum";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Minimum);

/// Elementwise `min(x, y)`: the binary form of torch.min.
class MinImpl : public StatelessModule<MinImpl> {
 public:
  static constexpr const char* kName = "Min";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Min);

/// `x || y` as a bool tensor (torch.logical_or).
class LogicalOrImpl : public StatelessModule<LogicalOrImpl> {
 public:
  static constexpr const char* kName = "LogicalOr";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(LogicalOr);

/// `x && y` as a bool tensor (torch.logical_and).
class LogicalAndImpl : public StatelessModule<LogicalAndImpl> {
 public:
  static constexpr const char* kName = "LogicalAnd";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(LogicalAnd);

// ---- composite and selection -------------------------------------------------------------------

/// SiLU built from two submodules so that each can be quantized: `mul(x, sigmoid(x))`, with
/// `sigmoid` a torch::nn::Sigmoid and `mul` a Multiply.
class CustomSiLUImpl : public torch::nn::Cloneable<CustomSiLUImpl> {
 public:
  CustomSiLUImpl();
  /// Registers the submodules `sigmoid` and `mul`.
  void reset() override;
  void pretty_print(std::ostream& stream) const override;
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Sigmoid sigmoid{nullptr};
  Multiply mul{nullptr};
};
TORCH_MODULE(CustomSiLU);

/// `condition ? x : y` elementwise with broadcasting (torch.where). The condition comes first, as
/// in the reference, whose quantized Where leaves input quantizer 0 (the condition) unused.
class WhereImpl : public StatelessModule<WhereImpl> {
 public:
  static constexpr const char* kName = "Where";
  at::Tensor forward(const at::Tensor& condition, const at::Tensor& x, const at::Tensor& y);
};
TORCH_MODULE(Where);

/// `x.masked_fill_(mask, value)`: writes the 0-dim `value` where `mask` is true, IN PLACE, and
/// returns `x` (Tensor.masked_fill_, as the reference).
class MaskedFillImpl : public StatelessModule<MaskedFillImpl> {
 public:
  static constexpr const char* kName = "MaskedFill";
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask, const at::Tensor& value);
};
TORCH_MODULE(MaskedFill);

}  // namespace quantsim::nn::custom
