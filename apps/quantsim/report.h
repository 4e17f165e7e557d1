#pragma once

/// What the demo measured, and the three ways it shows it: the console table, report.json, and
/// report.html (inline SVG charts of accuracy per configuration and per-layer weight SQNR).

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace quantsim::apps {

/// Signal-to-quantization-noise ratio of one layer's quantized weight:
/// 10 log10(sum w^2 / sum (w - q(w))^2) in dB.
struct LayerSqnr {
  std::string layer;  ///< module name in the model ("conv1")
  double sqnr_db = 0.0;
};

/// One simulated configuration and its result.
struct ConfigResult {
  std::string scheme;        ///< "W8A8", "W4A8"
  std::string analyzer;      ///< "MinMax", "Percentile", "SQNR", "QAT (MinMax init)", ...
  std::string quant_scheme;  ///< the reference's name: "post_training_tf", ...
  double accuracy = 0.0;     ///< top-1 test accuracy, percent
  double calibration_seconds = 0.0;
  double evaluation_seconds = 0.0;
  double training_seconds = 0.0;  ///< quantization-aware training; 0 for post-training
  std::vector<LayerSqnr> weight_sqnr;
  /// The ONNX export of a best configuration (QuantizationSimModel::export_onnx): its QDQ model,
  /// relative to the output directory (empty: not exported), and the time of writing the four
  /// files.
  std::string onnx_qdq_file;
  double onnx_export_seconds = 0.0;
  /// Top-1 test accuracy of the QDQ model in ONNX Runtime, graph optimizations disabled (the
  /// graph as written) and all enabled (QDQ pairs fused into ORT's integer kernels); negative:
  /// not evaluated (no runtime here; the integer kernels are skipped by `--quick`).
  double runtime_accuracy = -1.0;
  double runtime_integer_accuracy = -1.0;
  /// Both runtime evaluations, Node start and data exchange included.
  double runtime_evaluation_seconds = 0.0;

  bool has_runtime_accuracy() const { return runtime_accuracy >= 0.0; }
  bool is_qat() const { return training_seconds > 0.0; }
  /// "W4A8 SQNR".
  std::string name() const { return scheme + " " + analyzer; }
};

/// The whole study.
struct Report {
  std::string version;      ///< quantsim's
  nlohmann::json settings;  ///< command-line settings, network, schedule, example counts
  double float_accuracy = 0.0;
  /// The float model was loaded from this checkpoint (empty: trained in this run).
  std::string cached_checkpoint;
  double float_training_seconds = 0.0;
  double total_seconds = 0.0;
  std::vector<ConfigResult> results;
  /// Encodings files written for the best W8A8 and W4A8 configurations, relative to the
  /// output directory (empty when none was written).
  std::vector<std::string> encodings_files;
};

/// Index in `report.results` of the most accurate configuration of `scheme` (the first on a
/// tie), or -1 when there is none.
int best_result(const Report& report, const std::string& scheme);

/// The table the demo prints: one row per configuration, float first, with accuracy, drop in
/// points vs float (positive = worse), calibration time (plus QAT time):
///
///     scheme  analyzer          accuracy   drop  calibration
///     float   -                   91.42%      -            -
///     W8A8    MinMax              91.38%   0.04       0.35 s
///     W4A8    QAT (SQNR init)     90.95%   0.47  0.52 s + 61.2 s QAT
std::string format_table(const Report& report);

/// report.json: {"quantsim_version", "settings", "float": {"accuracy", "training_seconds",
/// "cached_checkpoint"}, "results": [{scheme, analyzer, quant_scheme, accuracy, drop,
/// calibration_seconds, evaluation_seconds, training_seconds, weight_sqnr_db: {layer: dB}}],
/// "best": {"W8A8": name, "W4A8": name}, "encodings_files", "total_seconds"}.
nlohmann::json to_json(const Report& report);

/// A self-contained HTML page: the table, a bar chart of accuracy per configuration against the
/// float accuracy, and a grouped bar chart of each layer's weight SQNR per configuration, both as
/// inline SVG (no scripts, no external files).
std::string to_html(const Report& report);

/// Writes `<dir>/report.json` and `<dir>/report.html`, each atomically.
void write_report(const Report& report, const std::string& dir);

/// `text` with &, <, >, " and ' replaced by entities, for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace quantsim::apps
