#pragma once

/// Data-parallel calibration: every rank calibrates on its own batches, then the quantizers'
/// statistics are merged across the ranks of a c10d process group so that every rank ends with
/// the same encodings (docs/distributed.md §3).

#include <quantsim/analyzers/encoding_analyzer.h>
#include <quantsim/distributed/process_group.h>

#include <torch/nn/module.h>

#include <functional>
#include <vector>

namespace quantsim::distributed {

/// Merges the accumulated statistics of `analyzers` (the same list, of the same kinds and shapes,
/// in the same order on every rank) across `group`, in place; every rank must call it.
///  - MinMaxEncodingAnalyzer: element-wise MIN/MAX all-reduce, exactly the single-process
///    statistics over all ranks' batches.
///  - Percentile/SQNR (HistogramEncodingAnalyzer): ranges and histograms all-gathered and merged
///    in rank order with the observer's merge rules, so every rank holds the same histograms;
///    equal to single-process calibration over rank 0's batches then rank 1's ... when every rank
///    saw one batch and retained it (HistogramEncodingAnalyzer::retain_single_batch).
///  - NaN counts are summed; rank 0's analyzers hold the total and the others 0, so that the
///    warning is given once.
/// Ranks without statistics for an analyzer take part and receive the others'. Other analyzer
/// kinds are c10::TypeError. A failed collective (a peer gone, a timeout) is c10::Error naming
/// this rank; the analyzers are then left as they were.
void synchronize_statistics(const std::vector<EncodingAnalyzer*>& analyzers,
                            const c10::intrusive_ptr<c10d::ProcessGroup>& group);

/// The analyzers of every calibrating affine quantizer in `model`, each once, in module order.
std::vector<EncodingAnalyzer*> calibrating_analyzers(torch::nn::Module& model);

/// Where compute_encodings spent its time on this rank, in seconds (steady clock).
struct CalibrationTimes {
  /// `run`: this rank's batches through the model, the statistics collected.
  double forward = 0.0;
  /// synchronize_statistics: the collectives and the merge, including any wait for a slower rank
  /// still in its `run`.
  double synchronize = 0.0;
  /// The ranges set: the parameters' on entry (from the weights, before `run`) and the
  /// activations' from the merged statistics (what single-process calibration does too).
  double ranges = 0.0;
};

/// Calibrates every quantized module of `model` over what `run` feeds it on this rank, with the
/// statistics merged across `group` before the ranges are set: the same encodings on every rank.
/// Every rank must call it (with its own shard). When `run` throws on one rank, that rank leaves
/// its quantizers unchanged and rethrows, and its peers fail in the merge with c10::Error.
/// `times`, when given, receives how long each part took on this rank (set on success).
void compute_encodings(torch::nn::Module& model, const std::function<void()>& run,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                       CalibrationTimes* times = nullptr);

}  // namespace quantsim::distributed
