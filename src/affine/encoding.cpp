#include <quantsim/affine/encoding.h>
#include <quantsim/affine/functional.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>

#include <cmath>
#include <limits>

namespace quantsim::affine {

AffineEncoding::AffineEncoding(at::Tensor scale, at::Tensor offset, Grid grid, bool symmetry,
                               std::vector<int64_t> block_size)
    : scale_(std::move(scale)),
      offset_(std::move(offset)),
      grid_(Grid::from_range(grid.qmin, grid.qmax)),
      symmetry_(symmetry),
      block_size_(std::move(block_size)) {
  TORCH_CHECK(scale_.defined() && offset_.defined(),
              "AffineEncoding: scale and offset must be defined");
  TORCH_CHECK(at::isFloatingType(scale_.scalar_type()) && at::isFloatingType(offset_.scalar_type()),
              "AffineEncoding: scale and offset must be floating, got ", scale_.scalar_type(),
              " and ", offset_.scalar_type());
  TORCH_CHECK(at::is_expandable_to(offset_.sizes(), scale_.sizes()),
              "AffineEncoding: offset of shape ", offset_.sizes(),
              " does not broadcast to the scale's shape ", scale_.sizes());
  TORCH_CHECK(block_size_.empty() || static_cast<int64_t>(block_size_.size()) == scale_.dim(),
              "AffineEncoding: `block_size` needs one entry per scale dim (", scale_.dim(),
              "), got ", at::IntArrayRef(block_size_));
}

at::Tensor AffineEncoding::min() const { return (offset_ + grid_.qmin) * scale_; }
at::Tensor AffineEncoding::max() const { return (offset_ + grid_.qmax) * scale_; }

std::string AffineEncoding::granularity() const {
  if (scale_.dim() == 0) return "pertensor";
  if (!block_size_.empty()) return "blockwise";
  int64_t non_singleton = 0;
  for (int64_t s : scale_.sizes()) non_singleton += s != 1;
  return non_singleton <= 1 ? "perchannel" : "unknown";
}

std::shared_ptr<EncodingBase> AffineEncoding::to(c10::optional<c10::Device> device,
                                                 c10::optional<at::ScalarType> dtype) const {
  // Checked before the no-change shortcut: a non-floating dtype always differs from the scale's.
  if (dtype) {
    TORCH_CHECK(at::isFloatingType(*dtype),
                "AffineEncoding.to: an encoding's tensors must stay floating, got dtype ", *dtype);
  }
  const bool same_device = !device || *device == scale_.device();
  const bool same_dtype =
      !dtype || (*dtype == scale_.scalar_type() && *dtype == offset_.scalar_type());
  if (same_device && same_dtype) {
    // The reference returns `self`; without an owning shared_ptr the closest is a shallow copy.
    auto self = std::const_pointer_cast<EncodingBase>(weak_from_this().lock());
    return self ? self : copy();
  }
  auto move = [&](const at::Tensor& t) {
    return t.to(device.value_or(t.device()), dtype.value_or(t.scalar_type()));
  };
  return std::make_shared<AffineEncoding>(move(scale_), move(offset_), grid_, symmetry_,
                                          block_size_);
}

std::shared_ptr<EncodingBase> AffineEncoding::copy() const {
  return std::make_shared<AffineEncoding>(*this);
}

std::shared_ptr<EncodingBase> AffineEncoding::clone() const {
  return std::make_shared<AffineEncoding>(scale_.clone(), offset_.clone(), grid_, symmetry_,
                                          block_size_);
}

std::shared_ptr<EncodingBase> AffineEncoding::detach() const {
  return std::make_shared<AffineEncoding>(scale_.detach(), offset_.detach(), grid_, symmetry_,
                                          block_size_);
}

at::Tensor AffineEncoding::quantize(const at::Tensor& x) const {
  const auto dt = x.scalar_type();
  return affine::quantize(x, scale_.to(dt), offset_.to(dt), grid_.qmin, grid_.qmax, block_size_);
}

at::Tensor AffineEncoding::dequantize(const at::Tensor& q) const {
  const auto dt = q.scalar_type();
  return affine::dequantize(q, scale_.to(dt), offset_.to(dt), block_size_);
}

at::ScalarType AffineEncoding::dtype() const {
  const int64_t lo = grid_.qmin, hi = grid_.qmax;
  if (0 <= lo && hi < 256) return at::kByte;
  if (-128 <= lo && hi < 128) return at::kChar;
  if (-32768 <= lo && hi < 32768) return at::kShort;
  // The reference stops at int32; a wider grid's integers would overflow it in quantized_repr()
  // (an undefined float -> int32 conversion), so they get int64 (docs/differences.md).
  if (std::numeric_limits<int32_t>::min() <= lo && hi <= std::numeric_limits<int32_t>::max()) {
    return at::kInt;
  }
  return at::kLong;
}

nlohmann::json AffineEncoding::to_legacy_format() const {
  const auto bw = bitwidth();  // raises for a non-standard grid, as the reference does
  // As the reference: min, max and offset + qmin are computed in the encoding's own dtype, then
  // read out element by element (as double, which holds any float32/float64 value exactly).
  const auto o = offset_.detach().expand(scale_.sizes());
  const auto s = scale_.detach();
  const auto as_double = [](const at::Tensor& t) {
    return t.reshape({-1}).to(at::kCPU, at::kDouble).contiguous();
  };
  const auto mn = as_double(min().detach().expand(scale_.sizes()));
  const auto mx = as_double(max().detach().expand(scale_.sizes()));
  const auto sc = as_double(s);
  const auto off = as_double(o + grid_.qmin);
  const double* minp = mn.data_ptr<double>();
  const double* maxp = mx.data_ptr<double>();
  const double* sp = sc.data_ptr<double>();
  const double* op = off.data_ptr<double>();
  auto out = nlohmann::json::array();
  for (int64_t i = 0; i < sc.numel(); ++i) {
    // Python's int() has no limit; int64's conversion of a larger (or non-finite) value is
    // undefined. Only a wide grid with a range narrow for its magnitude gets there.
    TORCH_CHECK_VALUE(std::fabs(op[i]) < 9.2233720368547758e18, "legacy encoding [", i,
                      "]: the offset ", op[i], " does not fit in int64 (scale ", sp[i], ", grid [",
                      grid_.qmin, ", ", grid_.qmax, "])");
    out.push_back({{"min", minp[i]},
                   {"max", maxp[i]},
                   {"scale", sp[i]},
                   {"offset", static_cast<int64_t>(op[i])},  // truncation, as Python's int()
                   {"bitwidth", bw},
                   {"dtype", "int"},
                   {"is_symmetric", symmetry_ ? "True" : "False"}});
  }
  return out;
}

}  // namespace quantsim::affine
