// QuantizationSimModel's data-parallel calibration; here rather than in src/sim/ so that only the
// distributed layer's files compile the c10d headers.

#include <quantsim/distributed/calibration.h>
#include <quantsim/sim/quantsim_model.h>

namespace quantsim {

void QuantizationSimModel::compute_encodings(
    const std::function<void()>& forward_pass,
    const c10::intrusive_ptr<c10d::ProcessGroup>& process_group) {
  // As the single-process overload, which is nn::compute_encodings over the model.
  distributed::compute_encodings(*model_, forward_pass, process_group);
}

}  // namespace quantsim
