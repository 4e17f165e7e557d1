#include <quantsim/affine/functional.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/analyzers/min_max.h>
#include <quantsim/analyzers/percentile.h>
#include <quantsim/errors.h>
#include <quantsim/logging.h>
#include <quantsim/ops.h>

#include "affine/internal_dtype.h"
#include "affine/learned_range.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <c10/util/irange.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/serialize/archive.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <ostream>

namespace quantsim::affine {

QuantizerOptions::QuantizerOptions(std::vector<int64_t> shape, int64_t bitwidth, bool symmetric)
    : shape_(std::move(shape)),
      grid_(Grid::from_bitwidth(bitwidth, symmetric)),
      symmetric_(symmetric) {}

QuantizerOptions::QuantizerOptions(std::vector<int64_t> shape, int64_t qmin, int64_t qmax,
                                   bool symmetric)
    : shape_(std::move(shape)), grid_(Grid::from_range(qmin, qmax)), symmetric_(symmetric) {}

namespace {

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

/// A symmetric quantizer's offset is 0 and its range splits into floor(n/2) steps above zero and
/// ceil(n/2) below: with one step (the 1-bit signed grid [-1, 0]) nothing above zero is
/// representable and the calibrated range divides by zero (the reference's NaN encoding).
void check_symmetric_grid(const Grid& grid, bool symmetric) {
  if (!symmetric || grid.num_steps() >= 2) return;
  QS_THROW(c10::ValueError, "a symmetric quantizer needs a grid of at least 2 steps, got ",
           grid.has_bitwidth() ? c10::str("bitwidth ", grid.bitwidth(), " (") : std::string(),
           "grid [", grid.qmin, ", ", grid.qmax, "]", grid.has_bitwidth() ? ")" : "",
           ": with its offset fixed at 0 it cannot represent both signs; use bitwidth >= 2 or an "
           "asymmetric quantizer");
}

/// " at index i" of a flattened range tensor with more than one element, "" for one.
std::string index_text(int64_t index, int64_t numel) {
  return numel > 1 ? c10::str(" at index ", index) : std::string();
}

/// The first index where `bad` is true, or -1.
int64_t first_true(const at::Tensor& bad) {
  const auto flat = bad.reshape({-1});
  return flat.any().item<bool>() ? flat.nonzero()[0][0].item<int64_t>() : -1;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> AffineQuantizerBase::usable_range(
    const at::Tensor& new_min, const at::Tensor& new_max, const std::vector<int64_t>& shape,
    const Grid& grid, bool symmetric, const std::string& context) {
  TORCH_CHECK(new_min.defined() && new_max.defined(), context, ": min and max must be defined");
  // As given (float64 holds every float32 value), so that messages name the caller's values.
  const auto given_min = new_min.detach().to(at::kDouble).expand(shape).contiguous();
  const auto given_max = new_max.detach().to(at::kDouble).expand(shape).contiguous();
  const int64_t numel = given_min.numel();
  for (const auto& [name, given] : {std::pair<const char*, const at::Tensor&>{"min", given_min},
                                    std::pair<const char*, const at::Tensor&>{"max", given_max}}) {
    if (const int64_t i = first_true(~at::isfinite(given)); i >= 0) {
      QS_THROW(c10::ValueError, context, ": `", name, "` must be finite, got ",
               given.reshape({-1})[i].item<double>(), index_text(i, numel));
    }
    if (const int64_t i = first_true(at::isinf(given.to(at::kFloat))); i >= 0) {
      QS_THROW(c10::ValueError, context, ": `", name, "` ", given.reshape({-1})[i].item<double>(),
               index_text(i, numel), " does not fit in float32, the dtype of the range");
    }
  }
  // Kept in float64 (the caller's precision, for a quantizer cast to float64); checked in float32,
  // the dtype of the encoding.
  auto mn = given_min, mx = given_max;
  // [0, 0] is what a tool writes for an all-zero tensor (a pruned channel); it becomes the range
  // calibration gives such a tensor (docs/quantization.md §9.2): asymmetric [0, n * EPS],
  // symmetric [-ceil(n/2) * EPS, floor(n/2) * EPS].
  const auto zero = (mn == 0) & (mx == 0);
  if (zero.any().item<bool>()) {
    const auto zeros = at::zeros(shape, at::kFloat);
    const auto calibrated = MinMaxEncodingAnalyzer(shape).compute_encodings_from_stats(
        MinMaxStatistics(zeros, zeros), grid.num_steps(), symmetric);
    mn = at::where(zero, calibrated.first.to(at::kDouble), mn);
    mx = at::where(zero, calibrated.second.to(at::kDouble), mx);
  }
  // Eq. (4) in float32: an infinite scale turns every output into NaN or inf, a zero one divides
  // by zero.
  const auto scale = (mx.to(at::kFloat) - mn.to(at::kFloat)) / grid.num_steps();
  const auto describe = [&](int64_t i) {
    return c10::str("the range [", given_min.reshape({-1})[i].item<double>(), ", ",
                    given_max.reshape({-1})[i].item<double>(), "]", index_text(i, numel));
  };
  if (const int64_t i = first_true(at::isinf(scale)); i >= 0) {
    QS_THROW(c10::ValueError, context, ": ", describe(i),
             " is too wide for float32: its scale (max - min) / ", grid.num_steps(),
             " overflows; max - min must not exceed 3.4028235e38");
  }
  if (const int64_t i = first_true(scale == 0); i >= 0) {
    QS_THROW(c10::ValueError, context, ": ", describe(i), " has no width: its scale (max - min) / ",
             grid.num_steps(),
             " is 0 in float32; `min` and `max` must differ (only [0, 0] is widened, as "
             "calibration widens an all-zero tensor)");
  }
  return {mn, mx};
}

AffineQuantizerBase::AffineQuantizerBase(QuantizerOptions options) : options_(std::move(options)) {
  // Options built field by field bypass the Grid factories' checks.
  options_.grid(Grid::from_range(options_.grid().qmin, options_.grid().qmax));
  check_symmetric_grid(options_.grid(), options_.symmetric());
  for (int64_t s : shape()) {
    TORCH_CHECK_VALUE(s >= 1, "quantizer `shape` entries must be >= 1, got ", s);
  }
  if (!block_size().empty()) {
    TORCH_CHECK(block_size().size() == shape().size(), "`block_size` ",
                at::IntArrayRef(block_size()), " must have one entry per dim of `shape` ",
                at::IntArrayRef(shape()));
  }
  if (!encoding_analyzer()) {
    options_.encoding_analyzer(std::make_shared<MinMaxEncodingAnalyzer>(default_analyzer_shape()));
  } else if (block_size().empty()) {
    TORCH_CHECK(at::is_expandable_to(encoding_analyzer()->shape(), shape()),
                "encoding analyzer shape ", at::IntArrayRef(encoding_analyzer()->shape()),
                " is not expandable to the quantizer shape ", at::IntArrayRef(shape()));
  }
}

std::vector<int64_t> AffineQuantizerBase::default_analyzer_shape() const {
  if (block_size().empty()) return shape();
  std::vector<int64_t> interleaved;  // (S0, 1, S1, 1, ...): reduce over each block
  for (int64_t s : shape()) {
    interleaved.push_back(s);
    interleaved.push_back(1);
  }
  return interleaved;
}

void AffineQuantizerBase::reset() {
  min = register_parameter("min", at::full(shape(), -1.0, at::kFloat));
  max = register_parameter("max", at::full(shape(), 1.0, at::kFloat));
  track_parameter("min");
  track_parameter("max");
}

void AffineQuantizerBase::set_bitwidth(int64_t bitwidth) {
  const Grid grid = options_.grid().with_bitwidth(bitwidth);
  check_symmetric_grid(grid, symmetric());
  options_.grid(grid);
  bump_revision();
}

int64_t AffineQuantizerBase::integral_bitwidth(double bitwidth) {
  TORCH_CHECK_TYPE(std::isfinite(bitwidth) && bitwidth == std::trunc(bitwidth),
                   "`bitwidth` must be an integer, got ", bitwidth);
  // Beyond this Grid::from_bitwidth refuses anyway; the bound keeps the cast defined.
  TORCH_CHECK_VALUE(std::fabs(bitwidth) < 1e9, "`bitwidth` out of range, got ", bitwidth);
  return static_cast<int64_t>(bitwidth);
}

void AffineQuantizerBase::set_signed(bool is_signed) {
  options_.grid(options_.grid().with_signed(is_signed));
  bump_revision();
}

void AffineQuantizerBase::set_range(const at::Tensor& new_min, const at::Tensor& new_max) {
  const auto range = usable_range(new_min, new_max, shape(), grid(), symmetric(), "set_range");
  torch::NoGradGuard no_grad;
  min.copy_(range.first);
  max.copy_(range.second);
  mark_all(true);
}

void AffineQuantizerBase::replace_parameter(const std::string& name, const at::Tensor& value) {
  QuantizerBase::replace_parameter(name, value);
  (name == "min" ? min : max) = value;
}

void AffineQuantizerBase::set_range(double new_min, double new_max) {
  // float64 scalars: a value beyond float32 is reported as given.
  set_range(at::scalar_tensor(new_min, at::kDouble), at::scalar_tensor(new_max, at::kDouble));
}

at::Tensor AffineQuantizerBase::scale_from(const at::Tensor& mn, const at::Tensor& mx,
                                           at::ScalarType dtype) const {
  return (mx.to(dtype) - mn.to(dtype)) / num_steps();
}

at::Tensor AffineQuantizerBase::offset_from(const at::Tensor& mn, const at::Tensor& scale,
                                            at::ScalarType dtype) const {
  if (symmetric()) return at::zeros(shape(), scale.options().dtype(dtype));
  return ste_round(mn.to(dtype) / scale) - qmin();
}

c10::optional<at::Tensor> AffineQuantizerBase::get_scale(at::ScalarType dtype) const {
  if (!is_initialized()) return c10::nullopt;
  return scale_from(min, max, dtype);
}

c10::optional<at::Tensor> AffineQuantizerBase::get_offset(at::ScalarType dtype) const {
  if (!is_initialized()) return c10::nullopt;
  return offset_from(min, scale_from(min, max, dtype), dtype);
}

c10::optional<at::Tensor> AffineQuantizerBase::get_min(at::ScalarType dtype) const {
  if (!is_initialized()) return c10::nullopt;
  const auto scale = scale_from(min, max, dtype);
  return scale * (offset_from(min, scale, dtype) + qmin());
}

c10::optional<at::Tensor> AffineQuantizerBase::get_max(at::ScalarType dtype) const {
  if (!is_initialized()) return c10::nullopt;
  const auto scale = scale_from(min, max, dtype);
  return scale * (offset_from(min, scale, dtype) + qmax());
}

std::shared_ptr<AffineEncoding> AffineQuantizerBase::get_affine_encoding() const {
  if (!is_initialized()) return nullptr;
  const auto scale = scale_from(min, max, at::kFloat);
  return std::make_shared<AffineEncoding>(scale, offset_from(min, scale, at::kFloat), grid(),
                                          symmetric(), block_size());
}

std::shared_ptr<EncodingBase> AffineQuantizerBase::get_encoding() const {
  return get_affine_encoding();
}

c10::optional<nlohmann::json> AffineQuantizerBase::get_legacy_encodings() const {
  const auto enc = get_affine_encoding();
  if (!enc) return c10::nullopt;
  return enc->to_legacy_format();
}

namespace {

/// An integer above int64's range (18446744073709551615) reads as a wrapped, negative int64:
/// refused with the number as written.
void check_fits_int64(const nlohmann::json& value, const char* key) {
  TORCH_CHECK_VALUE(
      !value.is_number_unsigned() ||
          value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
      "legacy encoding [0] \"", key, "\" does not fit in int64, got ", value.dump());
}

double finite_number(const nlohmann::json& entry, const char* key, size_t index) {
  TORCH_CHECK_INDEX(entry.contains(key), "legacy encoding [", index, "] has no \"", key,
                    "\" entry: ", entry.dump());
  const auto& v = entry.at(key);
  TORCH_CHECK_VALUE(v.is_number(), "legacy encoding [", index, "] \"", key,
                    "\" must be a number, got ", v.dump());
  const double d = v.get<double>();
  // `d`, not v.dump(): JSON has no NaN or infinity, so nlohmann prints them as null.
  TORCH_CHECK_VALUE(std::isfinite(d), "legacy encoding [", index, "] \"", key,
                    "\" must be finite, got ", d);
  return d;
}

/// The value as float32, the dtype of min/max; a double such as 1e39 that overflows it is
/// rejected like a non-finite one.
float finite_float(const nlohmann::json& entry, const char* key, size_t index) {
  const double d = finite_number(entry, key, index);
  const auto f = static_cast<float>(d);
  TORCH_CHECK_VALUE(std::isfinite(f), "legacy encoding [", index, "] \"", key,
                    "\" does not fit in float32, got ", entry.at(key).dump());
  return f;
}

bool parse_symmetric(const nlohmann::json& entry, size_t index) {
  TORCH_CHECK_INDEX(entry.contains("is_symmetric"), "legacy encoding [", index,
                    "] has no \"is_symmetric\" entry: ", entry.dump());
  const auto& v = entry.at("is_symmetric");
  if (v.is_boolean()) return v.get<bool>();
  TORCH_CHECK_VALUE(v.is_string(), "legacy encoding [", index,
                    "] \"is_symmetric\" must be \"True\" or \"False\", got ", v.dump());
  std::string s = v.get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  TORCH_CHECK_VALUE(s == "true" || s == "false", "legacy encoding [", index,
                    "] \"is_symmetric\" must be \"True\" or \"False\", got ", v.dump());
  return s == "true";
}

}  // namespace

void AffineQuantizerBase::set_legacy_encodings(const nlohmann::json& encodings) {
  // Validate everything first: a failed import leaves the quantizer unchanged.
  TORCH_CHECK_VALUE(encodings.is_array() && !encodings.empty(),
                    "legacy encodings must be a non-empty list of dicts, got ", encodings.dump());
  const auto count = static_cast<int64_t>(encodings.size());
  TORCH_CHECK_VALUE(count == numel_of(shape()), "legacy encodings hold ", count,
                    " entries but the quantizer of shape ", at::IntArrayRef(shape()), " needs ",
                    numel_of(shape()));
  std::vector<float> mins, maxs;
  for (size_t i = 0; i < encodings.size(); ++i) {
    const auto& e = encodings[i];
    TORCH_CHECK_VALUE(e.is_object(), "legacy encoding [", i, "] must be a dict, got ", e.dump());
    mins.push_back(finite_float(e, "min", i));
    maxs.push_back(finite_float(e, "max", i));
  }
  const auto& first = encodings[0];
  TORCH_CHECK_INDEX(first.contains("bitwidth"),
                    "legacy encoding [0] needs an integer \"bitwidth\", got ", first.dump());
  TORCH_CHECK_VALUE(first.at("bitwidth").is_number_integer(),
                    "legacy encoding [0] needs an integer \"bitwidth\", got ", first.dump());
  check_fits_int64(first.at("bitwidth"), "bitwidth");
  const auto bitwidth = first.at("bitwidth").get<int64_t>();
  const bool symmetric = parse_symmetric(first, 0);
  const Grid grid = Grid::from_bitwidth(bitwidth, symmetric);  // validates the bitwidth
  check_symmetric_grid(grid, symmetric);
  usable_range(at::tensor(mins).view(shape()), at::tensor(maxs).view(shape()), shape(), grid,
               symmetric, "legacy encodings");

  auto exact = range_reproducing_scales(encodings, mins, maxs, grid);

  options_.grid(grid);
  options_.symmetric(symmetric);
  bump_revision();
  set_range(at::tensor(exact.first).view(shape()), at::tensor(exact.second).view(shape()));
  if (exact.first != mins || exact.second != maxs) {
    // Eq. (4) as this quantizer computes it must give the file's scales; if it does not (LPBQ
    // derives its scales differently), the file's min/max stand as they are.
    std::vector<float> moved_scales(maxs.size(), std::numeric_limits<float>::quiet_NaN());
    for (size_t i = 0; i < maxs.size(); ++i) {
      if (exact.first[i] != mins[i] || exact.second[i] != maxs[i]) {
        moved_scales[i] = static_cast<float>(encodings[i].at("scale").get<double>());
      }
    }
    const auto wanted = at::tensor(moved_scales);
    const auto derived = get_scale()->flatten();
    if (!((derived == wanted) | wanted.isnan()).all().item<bool>()) {
      set_range(at::tensor(mins).view(shape()), at::tensor(maxs).view(shape()));
    }
  }
}

std::pair<std::vector<float>, std::vector<float>> AffineQuantizerBase::range_reproducing_scales(
    const nlohmann::json& encodings, const std::vector<float>& mins, const std::vector<float>& maxs,
    const Grid& grid) {
  // An exported encoding holds the grid-aligned min/max, s * (o + qmin) and s * (o + qmax), and
  // its scale s. Eq. (4) on those min/max gives s back only up to a rounding: (max - min) / n can
  // land an ulp away. A loaded quantizer must reproduce the exported one bit for bit, so max (and,
  // when the subtraction's rounding skips the needed difference, min) moves by the few ulps that
  // make eq. (4) give the file's s exactly, keeping round(min / s), so that the offset (eq. (5))
  // is the file's too (docs/differences.md). Entries without a usable scale stay as written.
  constexpr int kMaxUlpsOfMax = 16, kMaxUlpsOfMin = 2;
  const auto steps = static_cast<float>(grid.num_steps());
  const auto moved = [](float value, int ulps) {
    const float toward =
        ulps > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
    for (int i = 0; i < std::abs(ulps); ++i) value = std::nextafter(value, toward);
    return value;
  };
  auto exact = std::make_pair(mins, maxs);
  for (size_t i = 0; i < maxs.size(); ++i) {
    const auto& entry = encodings[i];
    if (!entry.contains("scale") || !entry.at("scale").is_number()) continue;
    const auto scale = static_cast<float>(entry.at("scale").get<double>());
    if (!std::isfinite(scale) || !(scale > 0) || (maxs[i] - mins[i]) / steps == scale) continue;
    const float grid_min = std::nearbyint(mins[i] / scale);
    bool found = false;
    // Offsets in the order 0, +1, -1, +2, -2, ...: the nearest candidates first.
    for (int a = 0; a <= 2 * kMaxUlpsOfMin && !found; ++a) {
      const float min = moved(mins[i], a % 2 ? (a + 1) / 2 : -(a / 2));
      if (std::nearbyint(min / scale) != grid_min) continue;
      for (int b = 1; b <= 2 * kMaxUlpsOfMax && !found; ++b) {
        const float max = moved(maxs[i], b % 2 ? (b + 1) / 2 : -(b / 2));
        if ((max - min) / steps == scale) {
          exact.first[i] = min;
          exact.second[i] = max;
          found = true;
        }
      }
    }
  }
  return exact;
}

void AffineQuantizerBase::finish_clone_from(const AffineQuantizerBase& other) {
  copy_initialization_from(other);
  options_.encoding_analyzer(other.encoding_analyzer()->clone());
}

at::Tensor AffineQuantizerBase::to_quantizer_shape(const at::Tensor& t) const {
  return t.numel() == numel_of(shape()) ? t.reshape(shape()) : t.expand(shape());
}

AffineEncoding AffineQuantizerBase::forward_encoding(const at::Tensor& x) {
  at::Tensor mn = min, mx = max;
  if (is_calibrating()) {
    // Calibration never trains the range: an empty batch, which has no statistics, uses the
    // current range detached, as every other batch uses its own detached range.
    mn = min.detach();
    mx = max.detach();
    if (x.numel() > 0) {
      const auto xb = block_size().empty()
                          ? x
                          : x.reshape(block_shapes(x.sizes(), shape(), block_size()).input);
      const auto batch = observe(*encoding_analyzer(), xb);
      auto range =
          encoding_analyzer()->compute_encodings_from_stats(*batch, num_steps(), symmetric());
      // This batch's range must give a usable encoding too (data holding -inf and +inf does not).
      range = usable_range(to_quantizer_shape(range.first), to_quantizer_shape(range.second),
                           shape(), grid(), symmetric(),
                           c10::str(description(), ": calibration batch of shape ", x.sizes(),
                                    " gives an unusable range"));
      mn = range.first.detach();
      mx = range.second.detach();
    }
  } else {
    TORCH_CHECK(is_initialized(), "Failed to run ", kind(),
                " since quantization parameters are not initialized. Please initialize the "
                "quantization parameters using `compute_encodings()` or `set_range()`.");
  }
  const auto scale = scale_from(mn, mx, at::kFloat);
  return AffineEncoding(scale, offset_from(mn, scale, at::kFloat), grid(), symmetric(),
                        block_size());
}

void AffineQuantizerBase::begin_calibration() { encoding_analyzer()->reset_stats(); }

bool AffineQuantizerBase::set_percentile(double percentile) {
  auto* analyzer = dynamic_cast<PercentileEncodingAnalyzer*>(encoding_analyzer().get());
  if (analyzer == nullptr) return false;
  analyzer->set_percentile(percentile);
  return true;
}

void AffineQuantizerBase::end_calibration() {
  report_nan(*encoding_analyzer());  // once per calibration, however many batches held NaN
  std::pair<at::Tensor, at::Tensor> range;
  try {
    range = encoding_analyzer()->compute_encodings(num_steps(), symmetric());
  } catch (const StatisticsNotFoundError&) {
    return;  // no batch seen: keep the current state
  }
  // Data holding both -inf and +inf (or values near +-FLT_MAX) calibrates to a range whose scale
  // overflows, the reference's NaN encoding: refused, naming this quantizer.
  const auto usable = usable_range(to_quantizer_shape(range.first),
                                   to_quantizer_shape(range.second), shape(), grid(), symmetric(),
                                   c10::str(description(), ": the calibrated range is unusable"));
  const auto& mn = usable.first;
  const auto& mx = usable.second;
  const double limit = 0.95 * std::numeric_limits<float>::max();
  const bool extreme =
      !at::isfinite(mn).all().item<bool>() || !at::isfinite(mx).all().item<bool>() ||
      (mn.abs() >= limit).any().item<bool>() || (mx.abs() >= limit).any().item<bool>();
  if (extreme) {
    warn(c10::str(kind(),
                  ": calibrated range is non-finite or within 5% of the float32 limit (min ",
                  mn.min().item<double>(), ", max ", mx.max().item<double>(),
                  "); the input probably holds inf or NaN values"));
  }
  set_range(mn, mx);
}

void AffineQuantizerBase::load(torch::serialize::InputArchive& archive) {
  // Checked before anything changes. A saved range of another shape is left to Module::load,
  // which reports the mismatch.
  at::Tensor saved_min, saved_max;
  c10::optional<std::pair<at::Tensor, at::Tensor>> usable;
  if (archive.try_read("min", saved_min) && archive.try_read("max", saved_max) &&
      saved_min.sizes() == min.sizes() && saved_max.sizes() == max.sizes()) {
    usable = usable_range(saved_min, saved_max, shape(), grid(), symmetric(),
                          c10::str(description(), ": the saved range is unusable"));
  }
  QuantizerBase::load(archive);
  if (usable && ((saved_min == 0) & (saved_max == 0)).any().item<bool>()) {
    // Through .data(): the version counters, and so the initialization flags just restored, stay.
    torch::NoGradGuard no_grad;
    min.data().copy_(usable->first);
    max.data().copy_(usable->second);
  }
}

void AffineQuantizerBase::pretty_print(std::ostream& stream) const {
  stream << kind() << "(shape=" << at::IntArrayRef(shape()) << ", qmin=" << qmin()
         << ", qmax=" << qmax() << ", symmetric=" << (symmetric() ? "true" : "false");
  if (!block_size().empty()) stream << ", block_size=" << at::IntArrayRef(block_size());
  stream << ")";
}

QuantizedTensor AffineQuantizerBase::quantize_to_grid(const at::Tensor& x) {
  const auto enc = forward_encoding(x);
  // A traced model records the quantizer as one quantsim::quantize node.
  auto q = ops::tracing() ? ops::traced_by(ops::quantize(x, enc.scale(), enc.offset(), qmin(),
                                                         qmax(), block_size()),
                                           static_cast<const QuantizerBase*>(this))
                          : quantize(x, enc.scale(), enc.offset(), qmin(), qmax(), block_size());
  return QuantizedTensor(std::move(q), std::make_shared<AffineEncoding>(enc));
}

void AffineQuantizerBase::observe_only(const at::Tensor& x) {
  TORCH_CHECK(is_calibrating(), kind(), ": observe_only() outside compute_encodings()");
  if (x.numel() == 0) return;  // an empty batch has no statistics
  const auto xb =
      block_size().empty() ? x : x.reshape(block_shapes(x.sizes(), shape(), block_size()).input);
  observe(*encoding_analyzer(), xb);
}

QuantizedTensor QuantizeImpl::forward(const at::Tensor& x) { return quantize_to_grid(x); }

bool AffineQuantizerBase::describes_current_range(const RangeEncoding& encoding) const {
  return encoding.revision == revision() && encoding.min_impl == min.unsafeGetTensorImpl() &&
         encoding.max_impl == max.unsafeGetTensorImpl() && encoding.min_data == min.data_ptr() &&
         encoding.max_data == max.data_ptr() && encoding.min_version == min._version() &&
         encoding.max_version == max._version();
}

std::shared_ptr<const AffineQuantizerBase::RangeEncoding> AffineQuantizerBase::range_encoding()
    const {
  auto cached = std::atomic_load(&range_encoding_);
  if (cached && describes_current_range(*cached)) return cached;
  // The key is read before the values: a range changing meanwhile leaves an entry that no longer
  // matches, never a stale one that does.
  auto fresh = std::make_shared<RangeEncoding>();
  fresh->revision = revision();
  fresh->min_impl = min.unsafeGetTensorImpl();
  fresh->max_impl = max.unsafeGetTensorImpl();
  fresh->min_data = min.data_ptr();
  fresh->max_data = max.data_ptr();
  fresh->min_version = min._version();
  fresh->max_version = max._version();
  if (!is_initialized()) return nullptr;
  torch::NoGradGuard no_grad;
  fresh->scale = scale_from(min, max, at::kFloat).contiguous();
  fresh->offset = offset_from(min, fresh->scale, at::kFloat).contiguous();
  std::shared_ptr<const RangeEncoding> result = std::move(fresh);
  std::atomic_store(&range_encoding_, result);
  return result;
}

c10::optional<at::Tensor> AffineQuantizerBase::direct_quantize_dequantize(
    const at::Tensor& x) const {
  // A trace must record the quantizer's ops, not a kernel's output as a constant.
  if (is_calibrating() || !block_size().empty() || ops::tracing()) {
    return c10::nullopt;
  }
  if (!x.defined() || x.scalar_type() != at::kFloat || !x.device().is_cpu()) return c10::nullopt;
  if (min.scalar_type() != at::kFloat || max.scalar_type() != at::kFloat || !min.is_cpu() ||
      !max.is_cpu() || min.sizes() != max.sizes()) {
    return c10::nullopt;
  }
  if (detail::quantize_dequantize_internal_dtype(at::kFloat, qmin(), qmax()) != at::kFloat ||
      !at::is_expandable_to(min.sizes(), x.sizes())) {
    return c10::nullopt;
  }
  const auto encoding = range_encoding();
  if (!encoding) return c10::nullopt;
  return detail::learned_range_quantize_dequantize(x, min, max, encoding->scale, encoding->offset,
                                                   grid(), symmetric());
}

at::Tensor QuantizeDequantizeImpl::forward(const at::Tensor& x) {
  if (auto direct = direct_quantize_dequantize(x)) return *std::move(direct);
  const auto enc = forward_encoding(x);
  // A traced model records the quantizer as one quantsim::quantize_dequantize node, marked as
  // this quantizer's.
  if (ops::tracing()) {
    return ops::traced_by(
        ops::quantize_dequantize(x, enc.scale(), enc.offset(), qmin(), qmax(), block_size()),
        static_cast<const QuantizerBase*>(this));
  }
  return quantize_dequantize(x, enc.scale(), enc.offset(), qmin(), qmax(), block_size());
}

}  // namespace quantsim::affine
