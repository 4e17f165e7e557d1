#include <quantsim/affine/encoding.h>
#include <quantsim/affine/functional.h>
#include <quantsim/errors.h>

#include <ATen/ATen.h>

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
  if (dtype) {
    TORCH_CHECK(at::isFloatingType(*dtype), "AffineEncoding.to: dtype must be floating, got ",
                *dtype);
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
  return at::kInt;
}

nlohmann::json AffineEncoding::to_legacy_format() const {
  // One dict per scale element, row-major; values computed in float32 as the reference does.
  const auto s = scale_.detach().to(at::kFloat).contiguous().cpu();
  const auto o = offset_.detach().to(at::kFloat).expand(scale_.sizes()).contiguous().cpu();
  const auto mn = ((o + grid_.qmin) * s).contiguous();
  const auto mx = ((o + grid_.qmax) * s).contiguous();
  const auto bw = bitwidth();  // raises for a non-standard grid, as the reference does
  const float* sp = s.data_ptr<float>();
  const float* op = o.data_ptr<float>();
  const float* minp = mn.data_ptr<float>();
  const float* maxp = mx.data_ptr<float>();
  auto out = nlohmann::json::array();
  for (int64_t i = 0; i < s.numel(); ++i) {
    out.push_back({{"min", static_cast<double>(minp[i])},
                   {"max", static_cast<double>(maxp[i])},
                   {"scale", static_cast<double>(sp[i])},
                   {"offset", static_cast<int64_t>(op[i]) + grid_.qmin},
                   {"bitwidth", bw},
                   {"dtype", "int"},
                   {"is_symmetric", symmetry_ ? "True" : "False"}});
  }
  return out;
}

}  // namespace quantsim::affine
