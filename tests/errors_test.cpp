// One exception family, as libtorch's: a representative error of every layer is its precise c10
// kind (or quantsim's own, derived from c10::Error), one `catch (const c10::Error&)` handles them
// all, and the message names the bad value, the file and the key.

#include <quantsim/quantsim.h>

#include <c10/util/Type.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

namespace qs = quantsim;

namespace errors_test {

/// A float module nobody registered a quantized module for.
struct UnregisteredImpl : torch::nn::Cloneable<UnregisteredImpl> {
  void reset() override {}
  at::Tensor forward(const at::Tensor& x) { return x; }
};

}  // namespace errors_test

namespace {

/// What one `catch (const c10::Error&)` saw: the dynamic type and both texts.
struct Caught {
  std::string type;
  std::string message;  // what_without_backtrace()
  std::string what;     // what(): the message, then where it was raised
};

Caught catch_c10(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return {c10::demangle(typeid(e).name()), e.what_without_backtrace(), e.what()};
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a c10::Error: " << c10::demangle(typeid(e).name()) << ": " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception";
  return {};
}

/// `f` throws exactly an `Error`, which `catch (const c10::Error&)` catches, with a message that
/// holds every one of `parts` and no backtrace (what() has the message and the backtrace).
template <typename Error>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  static_assert(std::is_base_of_v<c10::Error, Error>);
  EXPECT_THROW(f(), Error);
  const Caught caught = catch_c10(f);
  EXPECT_EQ(caught.type, c10::demangle_type<Error>()) << caught.message;
  for (const auto& part : parts) {
    EXPECT_NE(caught.message.find(part), std::string::npos)
        << "'" << part << "' not in: " << caught.message;
  }
  EXPECT_EQ(caught.message.find("Exception raised from"), std::string::npos) << caught.message;
  EXPECT_EQ(caught.what.rfind(caught.message, 0), 0u) << caught.what;
  EXPECT_NE(caught.what.find("Exception raised from"), std::string::npos) << caught.what;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

TEST(Errors, QuantizerConstructorWithABadBitwidthIsAValueError) {
  expect_error<c10::ValueError>([] { qs::affine::QuantizeDequantize({}, 0, false); },
                                {"`bitwidth`", "got 0"});
  expect_error<c10::ValueError>([] { qs::affine::QuantizeDequantize({}, 127, -128, true); },
                                {"qmin=127", "qmax=-128"});
}

TEST(Errors, NonIntegralBitwidthIsATypeError) {
  qs::affine::QuantizeDequantize q({}, 8, false);
  expect_error<c10::TypeError>([&] { q->set_bitwidth(0.5); }, {"`bitwidth`", "got 0.5"});
}

TEST(Errors, AnalyzerWithoutStatisticsIsStatisticsNotFoundError) {
  qs::MinMaxEncodingAnalyzer analyzer({});
  expect_error<qs::StatisticsNotFoundError>([&] { analyzer.compute_encodings(255, false); },
                                            {"no statistics", "update_stats"});
}

TEST(Errors, DequantizingWithoutAnEncodingIsEncodingError) {
  const qs::QuantizedTensor q(torch::zeros({2}), nullptr);
  expect_error<qs::EncodingError>([&] { q.dequantize(); }, {"no encoding"});
}

TEST(Errors, SlotOutOfRangeIsAnIndexError) {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 3));
  expect_error<c10::IndexError>([&] { linear->input_quantizers[1]; },
                                {"input_quantizers[1]", "1 slot"});
  expect_error<c10::IndexError>([&] { linear->param_quantizers["weights"]; },
                                {"param_quantizers[\"weights\"]", "\"weight\""});
}

TEST(Errors, ConfigKeyErrorNamesTheFileAndTheKey) {
  const auto config = nlohmann::json::parse(R"({"defaults": {"ops": {"is_output_quantised": 1}}})");
  expect_error<c10::ValueError>(
      [&] { qs::QuantsimConfig::parse(config, "htp.json"); },
      {"htp.json", "`defaults.ops.is_output_quantised`", "not a known key"});
  expect_error<c10::Error>([] { qs::QuantsimConfig::from_file(temp_path("no_such_config.json")); },
                           {"no_such_config.json"});
}

TEST(Errors, LoadEncodingsOfABadFileNamesTheFile) {
  qs::nn::QuantizedLinear linear(torch::nn::LinearOptions(2, 3));
  const auto path = temp_path("errors_test_torch.encodings");
  {
    std::ofstream file(path);
    file << R"({"param_encodings": {"weight": )";
  }
  // Malformed JSON is a ValueError (Python's json raises JSONDecodeError, a ValueError).
  expect_error<c10::ValueError>([&] { qs::load_encodings(*linear, path); },
                                {"load_encodings", path, "malformed JSON"});
  // An entry missing a key keeps its kind (the reference's KeyError) and gains the file and key.
  {
    std::ofstream file(path);
    file << R"({"param_encodings": {"weight": [{"min": -1, "bitwidth": 8,
                                                 "is_symmetric": "False"}]}})";
  }
  linear->param_quantizers["weight"] = qs::affine::QuantizeDequantize({}, 8, false);
  expect_error<c10::IndexError>([&] { qs::load_encodings(*linear, path); },
                                {path, "param_encodings[\"weight\"]", "\"max\""});
  std::remove(path.c_str());
  // A file that cannot be read is a RuntimeError: a plain c10::Error.
  expect_error<c10::Error>([&] { qs::load_encodings(*linear, path); }, {path, "cannot open"});
}

TEST(Errors, FromModuleOfAnUnregisteredTypeIsARuntimeError) {
  // The reference raises RuntimeError: a plain c10::Error.
  expect_error<c10::Error>(
      [] { qs::nn::from_module(std::make_shared<errors_test::UnregisteredImpl>()); },
      {"errors_test::UnregisteredImpl",
       "quantsim::nn::register_quantized_module<errors_test::UnregisteredImpl>();"});
}

TEST(Errors, RethrowWithPrefixKeepsTheKindAndTheBacktrace) {
  try {
    try {
      qs::affine::QuantizeDequantize({}, 0, false);
    } catch (const c10::Error& e) {
      qs::rethrow_with_prefix(e, "model.encodings: ");
    }
    FAIL() << "no exception";
  } catch (const c10::ValueError& e) {
    EXPECT_EQ(std::string(e.what_without_backtrace()).rfind("model.encodings: `bitwidth`", 0), 0u)
        << e.what_without_backtrace();
    EXPECT_NE(std::string(e.what()).find("Exception raised from"), std::string::npos);
  }
  try {
    try {
      QS_THROW(qs::EncodingError, "inner ", 7);
    } catch (const c10::Error& e) {
      qs::rethrow_with_prefix(e, "outer: ");
    }
    FAIL() << "no exception";
  } catch (const qs::EncodingError& e) {
    EXPECT_STREQ(e.what_without_backtrace(), "outer: inner 7");
  }
}

TEST(Errors, MessageOfShowsNoBacktrace) {
  try {
    qs::affine::QuantizeDequantize({}, 0, false);
  } catch (const std::exception& e) {
    EXPECT_EQ(std::string(qs::message_of(e)).find("Exception raised from"), std::string::npos);
    EXPECT_NE(std::string(qs::message_of(e)).find("got 0"), std::string::npos);
  }
  const std::runtime_error other("plain");
  EXPECT_STREQ(qs::message_of(other), "plain");
}

}  // namespace
