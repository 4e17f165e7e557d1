// Data-parallel calibration from Python (docs/distributed.md): the statistics of the calibrating
// quantizers merged across a torch.distributed process group (quantsim::distributed::
// synchronize_statistics). The group is torch's own Python ProcessGroup object: torch binds it
// with pybind11 and an intrusive_ptr holder, and this extension shares pybind11's internals with
// torch._C (same pybind11 ABI), so it casts to c10::intrusive_ptr<c10d::ProcessGroup>.

#include "bindings.h"

#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/distributed/calibration.h>
#include <quantsim/errors.h>

namespace quantsim::python {

void bind_distributed(py::module_& m) {
  m.def(
      "synchronize_statistics",
      [](const std::vector<std::shared_ptr<EncodingAnalyzer>>& analyzers,
         const py::object& process_group) {
        c10::intrusive_ptr<c10d::ProcessGroup> group;
        try {
          group = process_group.cast<c10::intrusive_ptr<c10d::ProcessGroup>>();
        } catch (const py::cast_error&) {
          QS_THROW(c10::TypeError,
                   "synchronize_statistics: `process_group` must be a "
                   "torch.distributed ProcessGroup, got ",
                   py::str(py::type::of(process_group)).cast<std::string>());
        }
        std::vector<EncodingAnalyzer*> raw;
        raw.reserve(analyzers.size());
        for (const auto& analyzer : analyzers) {
          TORCH_CHECK_VALUE(analyzer != nullptr, "synchronize_statistics: an analyzer is None");
          raw.push_back(analyzer.get());
        }
        py::gil_scoped_release release;
        distributed::synchronize_statistics(raw, group);
      },
      py::arg("analyzers"), py::arg("process_group"),
      "Merges the analyzers' statistics across the ranks of `process_group` (every rank calls it "
      "with the same list of analyzers, in the same order).");
}

}  // namespace quantsim::python
