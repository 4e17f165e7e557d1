#include "report.h"

#include "progress.h"

#include <quantsim/sim/atomic_file.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace quantsim::apps {
namespace {

// One hue per family of configurations (blue W8A8, orange W4A8, green QAT, grey others) and
// one shade per configuration in it, the same in both charts.
const char* const kFamilies[4][3] = {{"#1f4e79", "#4e79a7", "#9cbbe0"},
                                     {"#a0450b", "#f28e2b", "#fdc086"},
                                     {"#2e7d32", "#59a14f", "#a5d6a7"},
                                     {"#555555", "#999999", "#cccccc"}};

int family(const ConfigResult& result) {
  if (result.is_qat()) return 2;
  if (result.scheme == "W8A8") return 0;
  if (result.scheme == "W4A8") return 1;
  return 3;
}

std::string series_color(const Report& report, size_t index) {
  const int f = family(report.results[index]);
  size_t rank = 0;
  for (size_t i = 0; i < index; ++i) rank += family(report.results[i]) == f ? 1 : 0;
  return kFamilies[f][rank % 3];
}

std::string calibration_text(const ConfigResult& result) {
  std::string text = format_fixed(result.calibration_seconds, 2) + " s";
  if (result.is_qat()) text += " + " + format_fixed(result.training_seconds, 1) + " s QAT";
  return text;
}

// A round step giving at most ~8 ticks over `span`.
double tick_step(double span) {
  for (double step : {0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 25.0, 50.0}) {
    if (span / step <= 8.0) return step;
  }
  return 100.0;
}

std::string num(double value) { return format_fixed(value, 1); }

std::string svg_text(double x, double y, const std::string& text, const std::string& anchor,
                     const std::string& extra = "") {
  std::ostringstream s;
  s << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"" << anchor << "\""
    << extra << ">" << html_escape(text) << "</text>\n";
  return s.str();
}

std::string accuracy_chart(const Report& report) {
  const double label_width = 190, bar_width = 460, right = 70, row = 26, top = 30, bottom = 40;
  double lo = report.float_accuracy, hi = report.float_accuracy;
  for (const auto& r : report.results) {
    lo = std::min(lo, r.accuracy);
    hi = std::max(hi, r.accuracy);
  }
  // The differences that matter are fractions of a point: the axis starts just below the worst
  // result instead of at zero (the caption says so).
  const double step = tick_step(std::max(hi - lo, 1.0) + 1.0);
  lo = std::max(0.0, std::floor((lo - 0.5) / step) * step);
  hi = std::min(100.0, std::ceil((hi + 0.25) / step) * step);
  if (hi <= lo) hi = lo + step;
  const auto x_of = [&](double accuracy) {
    return label_width + (accuracy - lo) / (hi - lo) * bar_width;
  };
  const double height = top + row * static_cast<double>(report.results.size()) + bottom;
  const double width = label_width + bar_width + right;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"accuracy\" width=\"" << num(width)
    << "\" height=\"" << num(height) << "\" viewBox=\"0 0 " << num(width) << " " << num(height)
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<title>Test accuracy per configuration</title>\n";
  const double axis_y = top + row * static_cast<double>(report.results.size());
  for (double t = lo; t <= hi + 1e-9; t += step) {
    s << "<line x1=\"" << num(x_of(t)) << "\" y1=\"" << num(top - 6) << "\" x2=\"" << num(x_of(t))
      << "\" y2=\"" << num(axis_y) << "\" stroke=\"#e0e0e0\"/>\n";
    s << svg_text(x_of(t), axis_y + 16, format_fixed(t, step < 1 ? 1 : 0) + "%", "middle");
  }
  for (size_t i = 0; i < report.results.size(); ++i) {
    const ConfigResult& r = report.results[i];
    const double y = top + row * static_cast<double>(i);
    const double end = x_of(std::clamp(r.accuracy, lo, hi));
    s << svg_text(label_width - 8, y + row / 2 + 4, r.name(), "end");
    s << "<rect x=\"" << num(label_width) << "\" y=\"" << num(y + 4) << "\" width=\""
      << num(end - label_width) << "\" height=\"" << num(row - 8) << "\" fill=\""
      << series_color(report, i) << "\"><title>" << html_escape(r.name()) << ": "
      << format_fixed(r.accuracy, 2) << "%</title></rect>\n";
    s << svg_text(end + 4, y + row / 2 + 4, format_fixed(r.accuracy, 2) + "%", "start");
  }
  const double fx = x_of(report.float_accuracy);
  s << "<line x1=\"" << num(fx) << "\" y1=\"" << num(top - 10) << "\" x2=\"" << num(fx)
    << "\" y2=\"" << num(axis_y) << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>\n";
  s << svg_text(fx, top - 14, "float " + format_fixed(report.float_accuracy, 2) + "%", "middle",
                " font-weight=\"bold\"");
  s << svg_text(label_width + bar_width / 2, height - 6,
                "test accuracy (axis from " + format_fixed(lo, step < 1 ? 1 : 0) + "%)", "middle",
                " fill=\"#555\"");
  s << "</svg>\n";
  return s.str();
}

std::string sqnr_chart(const Report& report) {
  std::vector<std::string> layers;
  double max_db = 0.0;
  for (const auto& r : report.results) {
    for (const auto& l : r.weight_sqnr) {
      if (std::find(layers.begin(), layers.end(), l.layer) == layers.end()) {
        layers.push_back(l.layer);
      }
      if (std::isfinite(l.sqnr_db)) max_db = std::max(max_db, l.sqnr_db);
    }
  }
  if (layers.empty()) return "";
  const double left = 50, top = 20, plot_height = 240, bar = 10, gap = 22, bottom = 40;
  const double legend_row = 18;
  const size_t series = report.results.size();
  const double group = bar * static_cast<double>(series) + gap;
  const double plot_width = group * static_cast<double>(layers.size());
  const double step = max_db > 40 ? 10.0 : 5.0;
  const double y_max = std::max(step, std::ceil(max_db / step) * step);
  const auto y_of = [&](double db) { return top + plot_height * (1.0 - db / y_max); };
  size_t longest_name = 0;
  for (const auto& r : report.results) longest_name = std::max(longest_name, r.name().size());
  // The legend to the right of the plot; ~7 px per character of 12 px sans-serif.
  const double legend_left = left + plot_width + 24;
  const double width = legend_left + 18 + 7.0 * static_cast<double>(longest_name) + 10;
  const double height =
      std::max(top + plot_height + bottom, top + legend_row * static_cast<double>(series) + 10);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sqnr\" width=\"" << num(width)
    << "\" height=\"" << num(height) << "\" viewBox=\"0 0 " << num(width) << " " << num(height)
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<title>Weight SQNR per layer and configuration</title>\n";
  for (double t = 0; t <= y_max + 1e-9; t += step) {
    s << "<line x1=\"" << num(left) << "\" y1=\"" << num(y_of(t)) << "\" x2=\""
      << num(left + plot_width) << "\" y2=\"" << num(y_of(t)) << "\" stroke=\"#e0e0e0\"/>\n";
    s << svg_text(left - 6, y_of(t) + 4, format_fixed(t, 0), "end");
  }
  s << svg_text(14, top + plot_height / 2, "weight SQNR (dB)", "middle",
                " transform=\"rotate(-90 14 " + num(top + plot_height / 2) + ")\"");
  for (size_t li = 0; li < layers.size(); ++li) {
    const double gx = left + group * static_cast<double>(li) + gap / 2;
    for (size_t si = 0; si < series; ++si) {
      const ConfigResult& r = report.results[si];
      auto it = std::find_if(r.weight_sqnr.begin(), r.weight_sqnr.end(),
                             [&](const LayerSqnr& l) { return l.layer == layers[li]; });
      if (it == r.weight_sqnr.end()) continue;
      const double db = std::isfinite(it->sqnr_db) ? std::clamp(it->sqnr_db, 0.0, y_max) : y_max;
      s << "<rect x=\"" << num(gx + bar * static_cast<double>(si)) << "\" y=\"" << num(y_of(db))
        << "\" width=\"" << num(bar - 1) << "\" height=\"" << num(y_of(0) - y_of(db))
        << "\" fill=\"" << series_color(report, si) << "\"><title>" << html_escape(layers[li])
        << ", " << html_escape(r.name()) << ": " << format_fixed(it->sqnr_db, 1)
        << " dB</title></rect>\n";
    }
    s << svg_text(gx + bar * static_cast<double>(series) / 2, y_of(0) + 16, layers[li], "middle");
  }
  for (size_t si = 0; si < series; ++si) {
    const double y = top + legend_row * static_cast<double>(si);
    s << "<rect x=\"" << num(legend_left) << "\" y=\"" << num(y)
      << "\" width=\"12\" height=\"12\" fill=\"" << series_color(report, si) << "\"/>\n";
    s << svg_text(legend_left + 18, y + 10, report.results[si].name(), "start");
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace

int best_result(const Report& report, const std::string& scheme) {
  int best = -1;
  for (size_t i = 0; i < report.results.size(); ++i) {
    const ConfigResult& r = report.results[i];
    if (r.scheme == scheme && (best < 0 || r.accuracy > report.results[best].accuracy)) {
      best = static_cast<int>(i);
    }
  }
  return best;
}

std::string format_table(const Report& report) {
  size_t analyzer_width = std::string("analyzer").size();
  for (const auto& r : report.results) analyzer_width = std::max(analyzer_width, r.analyzer.size());
  std::ostringstream s;
  // The runtime's columns only when some configuration was evaluated in ONNX Runtime.
  const bool runtime = std::any_of(report.results.begin(), report.results.end(),
                                   [](const ConfigResult& r) { return r.has_runtime_accuracy(); });
  const auto row = [&](const std::string& scheme, const std::string& analyzer,
                       const std::string& accuracy, const std::string& drop,
                       const std::string& calibration, const std::string& ort,
                       const std::string& ort_int) {
    s << std::left << std::setw(8) << scheme << std::setw(static_cast<int>(analyzer_width) + 2)
      << analyzer << std::right << std::setw(8) << accuracy << std::setw(7) << drop;
    if (runtime) s << std::setw(9) << ort << std::setw(9) << ort_int;
    s << "  " << calibration << "\n";
  };
  row("scheme", "analyzer", "accuracy", "drop", "calibration", "ORT", "ORT int");
  row("float", "-", format_fixed(report.float_accuracy, 2) + "%", "-", "-", "-", "-");
  for (const auto& r : report.results) {
    row(r.scheme, r.analyzer, format_fixed(r.accuracy, 2) + "%",
        format_fixed(report.float_accuracy - r.accuracy, 2), calibration_text(r),
        r.has_runtime_accuracy() ? format_fixed(r.runtime_accuracy, 2) + "%" : "-",
        r.runtime_integer_accuracy >= 0 ? format_fixed(r.runtime_integer_accuracy, 2) + "%" : "-");
  }
  if (runtime) {
    s << "(ORT: the exported QDQ model in ONNX Runtime as written; ORT int: with every graph "
         "optimization, its integer kernels)\n";
  }
  return s.str();
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& r : report.results) {
    nlohmann::json sqnr = nlohmann::json::object();
    for (const auto& l : r.weight_sqnr) sqnr[l.layer] = l.sqnr_db;
    results.push_back({{"scheme", r.scheme},
                       {"analyzer", r.analyzer},
                       {"quant_scheme", r.quant_scheme},
                       {"accuracy", r.accuracy},
                       {"drop", report.float_accuracy - r.accuracy},
                       {"calibration_seconds", r.calibration_seconds},
                       {"evaluation_seconds", r.evaluation_seconds},
                       {"training_seconds", r.training_seconds},
                       {"weight_sqnr_db", sqnr}});
    if (!r.onnx_qdq_file.empty()) {
      nlohmann::json onnx = {{"qdq_model", r.onnx_qdq_file},
                             {"export_seconds", r.onnx_export_seconds}};
      if (r.has_runtime_accuracy()) {
        onnx["runtime_accuracy"] = r.runtime_accuracy;
        if (r.runtime_integer_accuracy >= 0) {
          onnx["runtime_integer_accuracy"] = r.runtime_integer_accuracy;
        }
        onnx["runtime_evaluation_seconds"] = r.runtime_evaluation_seconds;
      }
      results.back()["onnx"] = std::move(onnx);
    }
  }
  nlohmann::json best = nlohmann::json::object();
  for (const char* scheme : {"W8A8", "W4A8"}) {
    const int i = best_result(report, scheme);
    if (i >= 0) best[scheme] = report.results[i].name();
  }
  return {{"quantsim_version", report.version},
          {"settings", report.settings},
          {"float",
           {{"accuracy", report.float_accuracy},
            {"training_seconds", report.float_training_seconds},
            {"cached_checkpoint", report.cached_checkpoint}}},
          {"results", results},
          {"best", best},
          {"encodings_files", report.encodings_files},
          {"total_seconds", report.total_seconds}};
}

std::string to_html(const Report& report) {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<title>quantsim: Fashion-MNIST quantization study</title>\n"
    << "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    << "table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:right}"
    << "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}"
    << "tr:nth-child(even){background:#f4f4f4}figure{margin:1.5em 0}"
    << "figcaption{color:#555;font-size:.9em}</style>\n</head>\n<body>\n";
  s << "<h1>Fashion-MNIST quantization study</h1>\n";
  s << "<p>Float test accuracy <b>" << format_fixed(report.float_accuracy, 2) << "%</b>";
  if (!report.cached_checkpoint.empty()) {
    s << " (model loaded from " << html_escape(report.cached_checkpoint) << ")";
  } else {
    s << " (trained in " << format_fixed(report.float_training_seconds, 1) << " s)";
  }
  s << ". Weights are quantized per channel (symmetric), activations per tensor (asymmetric). "
    << "Whole run: " << format_fixed(report.total_seconds, 1) << " s, quantsim "
    << html_escape(report.version) << ".</p>\n";
  s << "<figure>\n" << accuracy_chart(report);
  s << "<figcaption>Test accuracy of each configuration; the dashed line is the float "
       "model.</figcaption>\n</figure>\n";
  const std::string sqnr = sqnr_chart(report);
  if (!sqnr.empty()) {
    s << "<figure>\n" << sqnr;
    s << "<figcaption>Signal-to-quantization-noise ratio of each layer's quantized weight, "
         "10&#8201;log<sub>10</sub>(&#931;w&#178; / &#931;(w &#8722; q(w))&#178;): about 6 dB "
         "per bit, so 4-bit weights sit ~24 dB below 8-bit ones.</figcaption>\n</figure>\n";
  }
  const bool runtime = std::any_of(report.results.begin(), report.results.end(),
                                   [](const ConfigResult& r) { return r.has_runtime_accuracy(); });
  s << "<table>\n<tr><th>scheme</th><th>analyzer</th><th>accuracy</th><th>drop</th>";
  if (runtime) s << "<th>ONNX Runtime</th><th>ORT integer kernels</th>";
  s << "<th>calibration</th></tr>\n";
  s << "<tr><td>float</td><td>-</td><td>" << format_fixed(report.float_accuracy, 2)
    << "%</td><td>-</td>" << (runtime ? "<td>-</td><td>-</td>" : "") << "<td>-</td></tr>\n";
  for (const auto& r : report.results) {
    s << "<tr><td>" << html_escape(r.scheme) << "</td><td>" << html_escape(r.analyzer)
      << "</td><td>" << format_fixed(r.accuracy, 2) << "%</td><td>"
      << format_fixed(report.float_accuracy - r.accuracy, 2) << "</td>";
    if (runtime) {
      for (const double accuracy : {r.runtime_accuracy, r.runtime_integer_accuracy}) {
        s << "<td>" << (accuracy >= 0 ? format_fixed(accuracy, 2) + "%" : "-") << "</td>";
      }
    }
    s << "<td>" << html_escape(calibration_text(r)) << "</td></tr>\n";
  }
  s << "</table>\n";
  if (runtime) {
    s << "<p>ONNX Runtime: the best configurations' exported QDQ models (<code>*_qdq.onnx</code>) "
         "evaluated on the same test images in ONNX Runtime, as written (graph optimizations "
         "disabled) and with every optimization (QDQ pairs fused into its integer kernels).</p>\n";
  }
  if (!report.encodings_files.empty()) {
    s << "<p>Encodings of the best configurations:";
    for (const auto& file : report.encodings_files) {
      s << " <a href=\"" << html_escape(file) << "\">" << html_escape(file) << "</a>";
    }
    s << "</p>\n";
  }
  s << "<details><summary>Settings</summary><pre>" << html_escape(report.settings.dump(2))
    << "</pre></details>\n</body>\n</html>\n";
  return s.str();
}

void write_report(const Report& report, const std::string& dir) {
  const std::filesystem::path base(dir);
  const std::string json = to_json(report).dump(2) + "\n";
  const std::string html = to_html(report);
  write_files_atomically(
      {{(base / "report.json").string(), [&](std::ostream& os) { os << json; }},
       {(base / "report.html").string(), [&](std::ostream& os) { os << html; }}});
}

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace quantsim::apps
