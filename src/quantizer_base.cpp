#include <quantsim/errors.h>
#include <quantsim/logging.h>
#include <quantsim/quantizer_base.h>

#include <torch/serialize/archive.h>

#include <exception>
#include <sstream>

namespace quantsim {

CalibrationGuard::CalibrationGuard(QuantizerBase* quantizer)
    : quantizer_(quantizer && quantizer->overwrite_allowed() ? quantizer : nullptr),
      uncaught_at_entry_(std::uncaught_exceptions()) {
  if (!quantizer_) return;
  // Nested scopes of one thread are fine (a quantizer shared by two modules of a model); a scope
  // opened from a second thread would reset the statistics the first one is gathering.
  const auto claim = quantizer_->calibration_scope_.try_claim();
  if (claim == ExclusiveUse::Claim::kBusy) {
    quantizer_ = nullptr;
    TORCH_CHECK(false, quantizer->description(),
                ": compute_encodings() entered from a second thread while another thread is "
                "inside it; calibration of one quantizer is not thread-safe");
  }
  try {
    quantizer_->begin_calibration();
  } catch (...) {
    if (claim == ExclusiveUse::Claim::kAcquired) quantizer_->calibration_scope_.release();
    throw;
  }
  ++quantizer_->calibrating_;
}

CalibrationGuard::CalibrationGuard(CalibrationGuard&& other) noexcept
    : quantizer_(other.quantizer_), uncaught_at_entry_(other.uncaught_at_entry_) {
  other.quantizer_ = nullptr;
}

CalibrationGuard::~CalibrationGuard() noexcept(false) {
  if (!quantizer_) return;
  // The outermost scope lets other threads in only once the range is set.
  ExclusiveUse::Release release(quantizer_->calibration_scope_, --quantizer_->calibrating_ == 0);
  if (std::uncaught_exceptions() > uncaught_at_entry_) return;  // unwinding: set nothing
  quantizer_->end_calibration();
}

void CalibrationGuard::cancel() noexcept {
  if (!quantizer_) return;
  ExclusiveUse::Release release(quantizer_->calibration_scope_, --quantizer_->calibrating_ == 0);
  quantizer_ = nullptr;
}

CalibrationGuard QuantizerBase::compute_encodings() { return CalibrationGuard(this); }

void QuantizerBase::compute_encodings(const std::function<void()>& run) {
  auto calibrating = compute_encodings();
  run();
}

std::string QuantizerBase::description() const {
  std::ostringstream stream;
  pretty_print(stream);
  return stream.str();
}

std::shared_ptr<const Statistics> QuantizerBase::observe(EncodingAnalyzer& analyzer,
                                                         const at::Tensor& x) const {
  // Analyzers accumulate without locks; two threads calibrating one quantizer at once would
  // corrupt the statistics, so the second is told (docs/simulation.md, "Threads").
  const auto claim = observing_.try_claim();
  TORCH_CHECK(claim != ExclusiveUse::Claim::kBusy, description(),
              ": calibration statistics gathered from two threads at once; calibration of one "
              "quantizer is not thread-safe");
  ExclusiveUse::Release release(observing_, claim == ExclusiveUse::Claim::kAcquired);
  try {
    return analyzer.update_stats(x);
  } catch (const c10::ValueError& e) {
    // The analyzer cannot tell which of a model's many quantizers failed; the user needs to.
    rethrow_with_prefix(
        e, c10::str(description(), ": calibration batch of shape ", x.sizes(), " rejected: "));
  }
}

void QuantizerBase::report_nan(const EncodingAnalyzer& analyzer) const {
  if (const int64_t nans = analyzer.nan_count(); nans > 0) {
    warn(c10::str(description(), ": ", nans,
                  " NaN value(s) seen during calibration were left out of the statistics"));
  }
}

void QuantizerBase::track_parameter(const std::string& name) {
  // A copy: named_parameters() returns a temporary dict, a reference into it would dangle
  // (AddressSanitizer: heap-use-after-free in every quantizer's constructor).
  const at::Tensor t = named_parameters(/*recurse=*/false)[name];
  tracking_[name] = Tracking{t.unsafeGetTensorImpl(), t._version(), false};
}

void QuantizerBase::mark_parameter(const std::string& name, bool initialized) {
  const at::Tensor t = named_parameters(/*recurse=*/false)[name];  // a copy, as above
  tracking_[name] = Tracking{t.unsafeGetTensorImpl(), t._version(), initialized};
  bump_revision();  // what was derived from the old state (a cached encoding) is stale
}

void QuantizerBase::mark_all(bool initialized) {
  for (auto& entry : tracking_) mark_parameter(entry.first, initialized);
}

void QuantizerBase::copy_initialization_from(const QuantizerBase& other) {
  for (auto& entry : tracking_)
    mark_parameter(entry.first, other.parameter_initialized(entry.first));
}

bool QuantizerBase::parameter_initialized(const std::string& name) const {
  const auto it = tracking_.find(name);
  if (it == tracking_.end()) return false;
  const auto* found = parameters_.find(name);  // this module's own, without copying the dict
  if (found == nullptr) return false;
  const Tracking& t = it->second;
  return t.initialized || found->unsafeGetTensorImpl() != t.impl || found->_version() != t.version;
}

bool QuantizerBase::is_initialized() const {
  for (const auto& entry : tracking_) {
    if (!parameter_initialized(entry.first)) return false;
  }
  return true;
}

std::map<std::string, bool> QuantizerBase::initialization_flags() const {
  std::map<std::string, bool> flags;
  for (const auto& entry : tracking_) flags[entry.first] = parameter_initialized(entry.first);
  return flags;
}

void QuantizerBase::set_initialization_flags(const std::map<std::string, bool>& flags) {
  for (const auto& [name, initialized] : flags) {
    TORCH_CHECK_INDEX(tracking_.count(name) != 0, description(), " has no parameter '", name,
                      "' to set the initialization flag of");
  }
  for (const auto& [name, initialized] : flags) mark_parameter(name, initialized);
}

void QuantizerBase::replace_parameter(const std::string& name, const at::Tensor& value) {
  TORCH_CHECK_INDEX(tracking_.count(name) != 0, description(), " has no parameter '", name, "'");
  const at::Tensor current = named_parameters(/*recurse=*/false)[name];
  TORCH_CHECK_VALUE(value.defined() && value.sizes() == current.sizes() &&
                        value.scalar_type() == current.scalar_type(),
                    description(), ": parameter '", name, "' must keep shape ", current.sizes(),
                    " and dtype ", current.scalar_type(), ", got ",
                    value.defined() ? c10::str(value.sizes(), " ", value.scalar_type())
                                    : std::string("an undefined tensor"));
  parameters_[name] = value;  // register_parameter refuses a name already taken
  bump_revision();
}

namespace {
std::string flag_key(const std::string& name) { return "_initialized_" + name; }
}  // namespace

void QuantizerBase::save(torch::serialize::OutputArchive& archive) const {
  torch::nn::Module::save(archive);
  for (const auto& entry : tracking_) {
    archive.write(flag_key(entry.first), at::scalar_tensor(parameter_initialized(entry.first)),
                  /*is_buffer=*/true);
  }
}

void QuantizerBase::load(torch::serialize::InputArchive& archive) {
  bump_revision();
  torch::nn::Module::load(archive);
  for (auto& entry : tracking_) {
    at::Tensor flag;
    // An archive without flags marks every loaded parameter initialized, as the reference's
    // load_state_dict without `_extra_state` does.
    const bool initialized = archive.try_read(flag_key(entry.first), flag, /*is_buffer=*/true)
                                 ? flag.item<bool>()
                                 : true;
    mark_parameter(entry.first, initialized);
  }
}

namespace {
/// `description` is the quantizer as it prints (QuantizerBase::description()).
[[noreturn]] void not_affine(const std::string& description, const char* accessor) {
  C10_THROW_ERROR(TypeError, c10::str(description, " is not an affine quantizer: ", accessor,
                                      " is defined for affine::Quantize, QuantizeDequantize and "
                                      "GroupedBlockQuantizeDequantize"));
}
}  // namespace

c10::optional<at::Tensor> QuantizerBase::get_min(at::ScalarType) const {
  not_affine(description(), "get_min()");
}
c10::optional<at::Tensor> QuantizerBase::get_max(at::ScalarType) const {
  not_affine(description(), "get_max()");
}
c10::optional<at::Tensor> QuantizerBase::get_scale(at::ScalarType) const {
  not_affine(description(), "get_scale()");
}
c10::optional<at::Tensor> QuantizerBase::get_offset(at::ScalarType) const {
  not_affine(description(), "get_offset()");
}
void QuantizerBase::set_range(const at::Tensor&, const at::Tensor&) {
  not_affine(description(), "set_range()");
}
void QuantizerBase::set_range(double, double) { not_affine(description(), "set_range()"); }
int64_t QuantizerBase::qmin() const { not_affine(description(), "qmin()"); }
int64_t QuantizerBase::qmax() const { not_affine(description(), "qmax()"); }
bool QuantizerBase::symmetric() const { not_affine(description(), "symmetric()"); }
int64_t QuantizerBase::bitwidth() const { not_affine(description(), "bitwidth()"); }

}  // namespace quantsim
