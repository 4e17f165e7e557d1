// The demo's table, report.json and report.html from a fixed Report.
#include "apps/quantsim/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace quantsim::apps {
namespace {

Report sample_report() {
  Report r;
  r.version = "0.1.0";
  r.settings = {{"quick", false}, {"seed", 1}};
  r.float_accuracy = 91.5;
  r.float_training_seconds = 120.25;
  r.total_seconds = 300.5;
  r.results = {
      {"W8A8", "MinMax", "post_training_tf", 91.25, 0.5, 3.0, 0.0, {{"conv1", 40.5}, {"fc", 38.0}}},
      {"W8A8", "SQNR", "post_training_tf_enhanced", 91.5, 1.25, 3.0, 0.0, {{"conv1", 41.0}}},
      {"W4A8", "MinMax", "post_training_tf", 88.0, 0.5, 3.0, 0.0, {{"conv1", 16.5}, {"fc", 14.0}}},
      {"W4A8",
       "QAT <MinMax> & co",
       "training_range_learning_with_tf_init",
       91.0,
       0.5,
       3.0,
       60.5,
       {{"conv1", 17.0}}},
  };
  r.encodings_files = {"w8a8.encodings", "w8a8_torch.encodings"};
  return r;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Report, BestResultIsTheMostAccurateOfTheScheme) {
  const Report r = sample_report();
  EXPECT_EQ(best_result(r, "W8A8"), 1);
  EXPECT_EQ(best_result(r, "W4A8"), 3);
  EXPECT_EQ(best_result(r, "W2A2"), -1);
  Report tie = r;
  tie.results[1].accuracy = 91.25;
  EXPECT_EQ(best_result(tie, "W8A8"), 0);  // the first on a tie
}

TEST(Report, Table) {
  EXPECT_EQ(format_table(sample_report()),
            "scheme  analyzer           accuracy   drop  calibration\n"
            "float   -                    91.50%      -  -\n"
            "W8A8    MinMax               91.25%   0.25  0.50 s\n"
            "W8A8    SQNR                 91.50%   0.00  1.25 s\n"
            "W4A8    MinMax               88.00%   3.50  0.50 s\n"
            "W4A8    QAT <MinMax> & co    91.00%   0.50  0.50 s + 60.5 s QAT\n");
}

TEST(Report, OnnxRuntimeColumnsBesideTheSimulatedAccuracy) {
  Report r = sample_report();
  r.results[1].onnx_qdq_file = "w8a8_qdq.onnx";
  r.results[1].onnx_export_seconds = 0.25;
  r.results[1].runtime_accuracy = 91.5;
  r.results[1].runtime_integer_accuracy = 91.25;
  r.results[1].runtime_evaluation_seconds = 4.5;
  r.results[3].onnx_qdq_file = "w4a8_qdq.onnx";
  r.results[3].runtime_accuracy = 91.0;  // --quick: as written only
  EXPECT_EQ(format_table(r),
            "scheme  analyzer           accuracy   drop      ORT  ORT int  calibration\n"
            "float   -                    91.50%      -        -        -  -\n"
            "W8A8    MinMax               91.25%   0.25        -        -  0.50 s\n"
            "W8A8    SQNR                 91.50%   0.00   91.50%   91.25%  1.25 s\n"
            "W4A8    MinMax               88.00%   3.50        -        -  0.50 s\n"
            "W4A8    QAT <MinMax> & co    91.00%   0.50   91.00%        -  0.50 s + 60.5 s QAT\n"
            "(ORT: the exported QDQ model in ONNX Runtime as written; ORT int: with every graph "
            "optimization, its integer kernels)\n");
  const nlohmann::json j = to_json(r);
  EXPECT_EQ(j["results"][1]["onnx"], (nlohmann::json{{"qdq_model", "w8a8_qdq.onnx"},
                                                     {"export_seconds", 0.25},
                                                     {"runtime_accuracy", 91.5},
                                                     {"runtime_integer_accuracy", 91.25},
                                                     {"runtime_evaluation_seconds", 4.5}}));
  EXPECT_EQ(j["results"][3]["onnx"].count("runtime_integer_accuracy"), 0u);
  EXPECT_EQ(j["results"][0].count("onnx"), 0u);
  const std::string html = to_html(r);
  EXPECT_NE(html.find("<th>ONNX Runtime</th><th>ORT integer kernels</th>"), std::string::npos);
  EXPECT_NE(html.find("<td>91.50%</td><td>91.25%</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>91.00%</td><td>-</td>"), std::string::npos);
  // Without runtime results the table is as before (Report.Table).
  EXPECT_EQ(to_html(sample_report()).find("ONNX Runtime"), std::string::npos);
}

TEST(Report, Json) {
  const nlohmann::json j = to_json(sample_report());
  EXPECT_EQ(j["quantsim_version"], "0.1.0");
  EXPECT_EQ(j["settings"], (nlohmann::json{{"quick", false}, {"seed", 1}}));
  EXPECT_EQ(j["float"],
            (nlohmann::json{
                {"accuracy", 91.5}, {"training_seconds", 120.25}, {"cached_checkpoint", ""}}));
  ASSERT_EQ(j["results"].size(), 4u);
  EXPECT_EQ(j["results"][2], (nlohmann::json{{"scheme", "W4A8"},
                                             {"analyzer", "MinMax"},
                                             {"quant_scheme", "post_training_tf"},
                                             {"accuracy", 88.0},
                                             {"drop", 3.5},
                                             {"calibration_seconds", 0.5},
                                             {"evaluation_seconds", 3.0},
                                             {"training_seconds", 0.0},
                                             {"weight_sqnr_db", {{"conv1", 16.5}, {"fc", 14.0}}}}));
  EXPECT_EQ(j["best"], (nlohmann::json{{"W8A8", "W8A8 SQNR"}, {"W4A8", "W4A8 QAT <MinMax> & co"}}));
  EXPECT_EQ(j["encodings_files"], (nlohmann::json{"w8a8.encodings", "w8a8_torch.encodings"}));
  EXPECT_EQ(j["total_seconds"], 300.5);
}

TEST(Report, HtmlHasBothChartsInlineAndEscapesNames) {
  const std::string html = to_html(sample_report());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_EQ(count(html, "<svg "), 2u);
  EXPECT_EQ(count(html, "</svg>"), 2u);
  // Nothing loaded from elsewhere.
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, " src="), 0u);
  // Accuracy chart: one bar per configuration, the float line labelled.
  const size_t accuracy_start =
      html.find("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"accuracy\"");
  const size_t sqnr_start = html.find("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sqnr\"");
  ASSERT_NE(accuracy_start, std::string::npos);
  ASSERT_NE(sqnr_start, std::string::npos);
  const std::string accuracy =
      html.substr(accuracy_start, html.find("</svg>", accuracy_start) - accuracy_start);
  const std::string sqnr = html.substr(sqnr_start, html.find("</svg>", sqnr_start) - sqnr_start);
  EXPECT_EQ(count(accuracy, "<rect "), 4u);
  EXPECT_EQ(count(accuracy, ">float 91.50%</text>"), 1u);
  EXPECT_EQ(count(accuracy, ">88.00%</text>"), 1u);
  // SQNR chart: one bar per (layer, configuration) measured, plus one legend swatch each.
  EXPECT_EQ(count(sqnr, "<rect "), 6u + 4u);
  EXPECT_EQ(count(sqnr, "<title>conv1, W8A8 MinMax: 40.5 dB</title>"), 1u);
  EXPECT_EQ(count(sqnr, "<title>fc, W4A8 MinMax: 14.0 dB</title>"), 1u);
  EXPECT_EQ(count(sqnr, ">conv1</text>"), 1u);
  EXPECT_EQ(count(sqnr, ">fc</text>"), 1u);
  // Names are escaped everywhere (the table, both charts' labels and titles).
  EXPECT_EQ(count(html, "<MinMax>"), 0u);
  EXPECT_EQ(count(html, "QAT &lt;MinMax&gt; &amp; co"), 4u + 1u);
  EXPECT_EQ(count(html, "<a href=\"w8a8.encodings\">w8a8.encodings</a>"), 1u);
  EXPECT_EQ(count(html, "<td>W4A8</td><td>MinMax</td><td>88.00%</td><td>3.50</td>"), 1u);
}

TEST(Report, HtmlWithoutSqnrHasOnlyTheAccuracyChart) {
  Report r = sample_report();
  for (auto& result : r.results) result.weight_sqnr.clear();
  EXPECT_EQ(count(to_html(r), "<svg "), 1u);
}

TEST(Report, WritesJsonAndHtml) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("quantsim_report_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const Report r = sample_report();
  write_report(r, dir.string());
  std::ifstream json_file(dir / "report.json");
  EXPECT_EQ(nlohmann::json::parse(json_file), to_json(r));
  std::ifstream html_file(dir / "report.html");
  std::stringstream html;
  html << html_file.rdbuf();
  EXPECT_EQ(html.str(), to_html(r));
  // Only the two files: no temporary left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
  fs::remove_all(dir);
}

TEST(Report, HtmlEscape) {
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

}  // namespace
}  // namespace quantsim::apps
