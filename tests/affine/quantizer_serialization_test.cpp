// Quantizer state that outlives a forward: initialization tracking (docs/quantization.md §9.2),
// serialization, clone, and the legacy encodings (docs/quantization.md §9.4, §10.1).

#include <quantsim/affine/quantizer.h>

#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "testing/tensors.h"
#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::affine::Quantize;
using qs::affine::QuantizeDequantize;
using qs::affine::QuantizeDequantizeImpl;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using qs::testing::f32;
using qs::testing::f32_2d;
using qs::testing::scalar;
using json = nlohmann::json;

namespace {

/// torch::save then torch::load into a freshly built quantizer of the same configuration.
QuantizeDequantize round_trip(QuantizeDequantize q) {
  std::stringstream stream;
  torch::save(q, stream);
  auto options = q->options();
  options.encoding_analyzer(nullptr);  // a default analyzer of its own
  QuantizeDequantize loaded(options);
  torch::load(loaded, stream);
  return loaded;
}

/// Expects one legacy dict (docs/quantization.md §10.1) to hold these values; floats within 1e-6.
void expect_legacy_dict(const json& d, double min, double max, double scale, int64_t offset,
                        int64_t bitwidth, const std::string& is_symmetric) {
  SCOPED_TRACE(d.dump());
  ASSERT_TRUE(d.is_object());
  EXPECT_NEAR(d.at("min").get<double>(), min, qs::testing::kSpecAtol);
  EXPECT_NEAR(d.at("max").get<double>(), max, qs::testing::kSpecAtol);
  EXPECT_NEAR(d.at("scale").get<double>(), scale, qs::testing::kSpecAtol);
  ASSERT_TRUE(d.at("offset").is_number_integer());
  EXPECT_EQ(d.at("offset").get<int64_t>(), offset);
  ASSERT_TRUE(d.at("bitwidth").is_number_integer());
  EXPECT_EQ(d.at("bitwidth").get<int64_t>(), bitwidth);
  EXPECT_EQ(d.at("dtype"), "int");
  EXPECT_EQ(d.at("is_symmetric"), is_symmetric);
}

}  // namespace

// ---- is_initialized (docs/quantization.md §9.2) -------------------------------------------------

TEST(QuantizerInitialization, Check16InPlaceEditsOfEveryParameterInitialize) {
  QuantizeDequantize q({10}, 8, true);
  EXPECT_FALSE(q->is_initialized());
  {
    torch::NoGradGuard no_grad;
    q->min.copy_(torch::zeros({10}));
  }
  EXPECT_FALSE(q->is_initialized());  // max is not initialized yet
  {
    torch::NoGradGuard no_grad;
    q->max.add_(3);
  }
  EXPECT_TRUE(q->is_initialized());
}

TEST(QuantizerInitialization, Check16SetRangeAndCalibrationInitialize) {
  QuantizeDequantize by_range({10}, 8, true);
  by_range->set_range(-1, 1);
  EXPECT_TRUE(by_range->is_initialized());

  QuantizeDequantize by_calibration({10}, 8, true);
  by_calibration->compute_encodings([&] { by_calibration(torch::arange(-5, 5, torch::kFloat)); });
  EXPECT_TRUE(by_calibration->is_initialized());
}

TEST(QuantizerInitialization, Check16ConversionDoesNotInitialize) {
  QuantizeDequantize q({10}, 8, true);
  q->to(torch::kDouble);
  EXPECT_EQ(q->min.scalar_type(), torch::kDouble);
  EXPECT_FALSE(q->is_initialized());
  q->to(torch::kFloat);
  EXPECT_FALSE(q->is_initialized());

  QuantizeDequantize set({10}, 8, true);
  set->set_range(-2, 2);
  set->to(torch::kDouble);
  EXPECT_TRUE(set->is_initialized());
  EXPECT_TRUE(all_close(set->max, torch::full({10}, 2.0)));
}

TEST(QuantizerInitialization, Check16SaveLoadKeepsTheFlag) {
  QuantizeDequantize fresh({10}, 8, true);
  EXPECT_FALSE(round_trip(fresh)->is_initialized());

  QuantizeDequantize half({10}, 8, true);
  {
    torch::NoGradGuard no_grad;
    half->min.mul_(1.0);
  }
  EXPECT_FALSE(round_trip(half)->is_initialized());  // partially initialized stays so

  QuantizeDequantize set({10}, 8, false);
  set->set_range(torch::linspace(-1, -0.1, 10), torch::linspace(0.5, 2, 10));
  auto loaded = round_trip(set);
  EXPECT_TRUE(loaded->is_initialized());
  EXPECT_TRUE(bitwise_equal(loaded->min, set->min));
  EXPECT_TRUE(bitwise_equal(loaded->max, set->max));
  const auto x = torch::linspace(-2, 3, 50).view({5, 10});
  EXPECT_TRUE(bitwise_equal(loaded(x), set(x)));
}

// An archive that holds only min and max (no flags), as a plain state dict: every parameter it
// holds is initialized, as the reference's load_state_dict without `_extra_state`.
TEST(QuantizerInitialization, Check16LoadingPlainParametersInitializes) {
  torch::serialize::OutputArchive archive;
  archive.write("min", -torch::ones({10}));
  archive.write("max", torch::ones({10}));
  std::stringstream stream;
  archive.save_to(stream);

  QuantizeDequantize q({10}, 8, true);
  torch::serialize::InputArchive input;
  input.load_from(stream);
  q->load(input);
  EXPECT_TRUE(q->is_initialized());
  EXPECT_TRUE(bitwise_equal(q->min, -torch::ones({10})));
}

TEST(QuantizerInitialization, Check16CloneKeepsTheFlagAndOutputs) {
  QuantizeDequantize fresh({10}, 8, true);
  const auto fresh_copy = std::dynamic_pointer_cast<QuantizeDequantizeImpl>(fresh->clone());
  ASSERT_NE(fresh_copy, nullptr);
  EXPECT_FALSE(fresh_copy->is_initialized());

  QuantizeDequantize set({10}, 8, false);
  set->set_range(-1, 1.5);
  const auto copy = std::dynamic_pointer_cast<QuantizeDequantizeImpl>(set->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_TRUE(copy->is_initialized());
  const auto x = torch::linspace(-2, 3, 50).view({5, 10});
  EXPECT_TRUE(bitwise_equal(copy->forward(x), set(x)));
  // A deep copy: changing the clone leaves the original alone.
  copy->set_range(-4, 4);
  EXPECT_TRUE(all_close(set->max, torch::full({10}, 1.5f)));
}

// The clone gets its own analyzer: calibrating both at once must not mix their statistics.
TEST(QuantizerInitialization, CloneCalibratesIndependently) {
  QuantizeDequantize q({}, 8, false);
  const auto copy = std::dynamic_pointer_cast<QuantizeDequantizeImpl>(q->clone());
  ASSERT_NE(copy, nullptr);
  {
    auto a = q->compute_encodings();
    auto b = copy->compute_encodings();
    q(f32({-1, 1}));
    copy->forward(f32({-3, 5}));
  }
  EXPECT_TRUE(all_close(q->min, scalar(-1)));
  EXPECT_TRUE(all_close(q->max, scalar(1)));
  EXPECT_TRUE(all_close(copy->min, scalar(-3)));
  EXPECT_TRUE(all_close(copy->max, scalar(5)));
}

// ---- per-channel symmetric export (docs/quantization.md §10.1) ----------------------------------

TEST(LegacyEncodings, Check10PerChannelSymmetricExport) {
  const auto x = f32_2d({{-1, 0.5, 0.25}, {4, -2, 1}});
  QuantizeDequantize q({2, 1}, 8, true);
  q->compute_encodings([&] { q(x); });
  const auto legacy = q->get_legacy_encodings();
  ASSERT_TRUE(legacy.has_value());
  ASSERT_TRUE(legacy->is_array());
  ASSERT_EQ(legacy->size(), 2u);
  expect_legacy_dict((*legacy)[0], -1.0, 0.9921875, 0.0078125, -128, 8, "True");
  expect_legacy_dict((*legacy)[1], -4.031496048, 4.0, 0.031496063, -128, 8, "True");
  EXPECT_TRUE(all_close(q(x), f32_2d({{-1, 0.5, 0.25}, {4, -2.01574802, 1.00787401}})));
}

// ---- legacy export / import (docs/quantization.md §9.4) -----------------------------------------

TEST(LegacyEncodings, Check39Export) {
  QuantizeDequantize q({}, 8, true);
  q->set_range(-1.28, 1.27);
  const auto legacy = q->get_legacy_encodings();
  ASSERT_TRUE(legacy.has_value());
  ASSERT_EQ(legacy->size(), 1u);
  expect_legacy_dict((*legacy)[0], -1.28, 1.27, 0.01, -128, 8, "True");
}

TEST(LegacyEncodings, Check39SymmetricQuantizerImportsAsymmetricEncoding) {
  QuantizeDequantize q({}, 8, true);
  q->set_legacy_encodings(json::parse(R"([{"min": -4, "max": 4, "scale": 0.03, "offset": 8,
                                           "bitwidth": 8, "dtype": "int",
                                           "is_symmetric": "False"}])"));
  EXPECT_EQ(q->qmin(), 0);
  EXPECT_EQ(q->qmax(), 255);
  EXPECT_FALSE(q->symmetric());
  EXPECT_FALSE(q->is_signed());
  EXPECT_TRUE(q->is_initialized());
  EXPECT_TRUE(all_close(q->min, scalar(-4)));
  EXPECT_TRUE(all_close(q->max, scalar(4)));
  // The file's scale and offset are ignored: both derive from min/max in float32 (offset -127,
  // not the -128 of exact arithmetic, docs/quantization.md §4).
  EXPECT_TRUE(all_close(*q->get_scale(), scalar(0.031372551)));
  EXPECT_TRUE(bitwise_equal(*q->get_offset(), scalar(-127)));
}

TEST(LegacyEncodings, Check39RoundTripsFlipSignedAndSymmetric) {
  QuantizeDequantize sym({2}, 4, true), asym({2}, 4, false);
  sym->set_range(f32({-0.8, -1.6}), f32({0.7, 1.4}));
  asym->set_range(f32({-0.5, 0}), f32({1, 3}));
  const auto sym_legacy = *sym->get_legacy_encodings();
  const auto asym_legacy = *asym->get_legacy_encodings();

  QuantizeDequantize to_asym({2}, 4, true), to_sym({2}, 4, false);
  to_asym->set_legacy_encodings(asym_legacy);
  to_sym->set_legacy_encodings(sym_legacy);
  EXPECT_FALSE(to_asym->symmetric());
  EXPECT_FALSE(to_asym->is_signed());
  EXPECT_EQ(to_asym->qmin(), 0);
  EXPECT_EQ(to_asym->qmax(), 15);
  EXPECT_TRUE(to_sym->symmetric());
  EXPECT_TRUE(to_sym->is_signed());
  EXPECT_EQ(to_sym->qmin(), -8);
  EXPECT_EQ(to_sym->qmax(), 7);
  // The imported quantizers represent the exported ranges.
  EXPECT_TRUE(all_close(*to_asym->get_min(), *asym->get_min()));
  EXPECT_TRUE(all_close(*to_asym->get_max(), *asym->get_max()));
  EXPECT_TRUE(bitwise_equal(*to_asym->get_offset(), *asym->get_offset()));
  EXPECT_TRUE(all_close(*to_sym->get_min(), *sym->get_min()));
  EXPECT_TRUE(all_close(*to_sym->get_max(), *sym->get_max()));
}

// The import validates the dicts (docs/differences.md) and, when it refuses one, changes nothing.
TEST(LegacyEncodings, InvalidImportsThrowAndChangeNothing) {
  const auto valid = [] {
    return json::parse(R"({"min": -1, "max": 2, "scale": 0.1, "offset": 0, "bitwidth": 4,
                           "dtype": "int", "is_symmetric": "False"})");
  };
  const auto with = [&](const char* key, json value) {
    auto d = valid();
    d[key] = std::move(value);
    return json::array({d});
  };
  const auto without = [&](const char* key) {
    auto d = valid();
    d.erase(key);
    return json::array({d});
  };
  const std::vector<std::pair<std::string, json>> invalid = {
      {"missing min", without("min")},
      {"missing max", without("max")},
      {"missing bitwidth", without("bitwidth")},
      {"missing is_symmetric", without("is_symmetric")},
      {"min is a string", with("min", "-1")},
      {"max is null", with("max", nullptr)},
      {"bitwidth is a float", with("bitwidth", 4.5)},
      {"bitwidth is zero", with("bitwidth", 0)},
      {"is_symmetric is neither True nor False", with("is_symmetric", "maybe")},
      {"min is NaN", with("min", std::nan(""))},
      {"max is +inf", with("max", std::numeric_limits<double>::infinity())},
      {"max overflows float32", with("max", 1e39)},
      {"two dicts for one channel", json::array({valid(), valid()})},
      {"no dicts", json::array()},
      {"a dict, not a list", valid()},
      {"a list of numbers", json::array({1, 2})},
  };
  for (const bool initialized : {false, true}) {
    QuantizeDequantize q({}, 8, true);
    if (initialized) q->set_range(-0.5, 0.25);
    const auto min = q->min.detach().clone(), max = q->max.detach().clone();
    for (const auto& [what, encodings] : invalid) {
      SCOPED_TRACE(::testing::Message() << what << (initialized ? " (initialized)" : ""));
      if (what.rfind("missing ", 0) == 0) {
        EXPECT_THROW(q->set_legacy_encodings(encodings), c10::IndexError);  // Python's KeyError
      } else {
        EXPECT_THROW(q->set_legacy_encodings(encodings), c10::ValueError);
      }
      EXPECT_TRUE(bitwise_equal(q->min, min));
      EXPECT_TRUE(bitwise_equal(q->max, max));
      EXPECT_EQ(q->qmin(), -128);
      EXPECT_EQ(q->qmax(), 127);
      EXPECT_TRUE(q->symmetric());
      EXPECT_EQ(q->is_initialized(), initialized);
    }
  }
  // The valid dict itself is accepted ("true"/"false" in any case, as the reference).
  QuantizeDequantize q({}, 8, true);
  auto d = valid();
  d["is_symmetric"] = "FALSE";
  q->set_legacy_encodings(json::array({d}));
  EXPECT_EQ(q->qmax(), 15);
  EXPECT_FALSE(q->symmetric());
}

TEST(LegacyEncodings, ImportReproducesTheExportedScaleBitForBit) {
  // Ranges whose grid-aligned min/max, put through eq. (4) again, land one ulp away from the
  // exported scale: the import must still give the exported scale, offset and outputs exactly.
  torch::manual_seed(7);
  const auto x = torch::randn({4096}) * 3;
  int moved = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const float lo = -torch::rand({}).item<float>() * 2, hi = torch::rand({}).item<float>() * 2;
    for (bool symmetric : {false, true}) {
      QuantizeDequantize source({}, 8, symmetric);
      source->set_range(symmetric ? -hi : lo, hi);
      const auto legacy = *source->get_legacy_encodings();
      const float min = static_cast<float>(legacy[0]["min"].get<double>());
      const float max = static_cast<float>(legacy[0]["max"].get<double>());
      const float exported_scale = static_cast<float>(legacy[0]["scale"].get<double>());
      if ((max - min) / 255.0f != exported_scale) ++moved;

      QuantizeDequantize target({}, 8, symmetric);
      target->set_legacy_encodings(legacy);
      ASSERT_EQ(target->get_scale()->item<float>(), exported_scale) << legacy.dump();
      ASSERT_EQ(target->get_offset()->item<float>(), source->get_offset()->item<float>());
      ASSERT_TRUE(bitwise_equal(target(x), source(x))) << legacy.dump();
    }
  }
  // The case this test is about occurred (in about one range in ten), so it was exercised.
  EXPECT_GT(moved, 5);
}

TEST(LegacyEncodings, ImportWithoutScaleTakesMinMaxAsWritten) {
  QuantizeDequantize target({}, 8, false);
  target->set_legacy_encodings(
      json::array({{{"min", -1.0}, {"max", 1.0}, {"bitwidth", 8}, {"is_symmetric", "False"}}}));
  EXPECT_EQ(target->min.item<float>(), -1.0f);
  EXPECT_EQ(target->max.item<float>(), 1.0f);
}

// The front-end API (the Python package owns the parameter objects, docs/python.md).

TEST(FrontEndApi, InitializationFlagsReadAndSetPerParameter) {
  QuantizeDequantize q({}, 8, false);
  EXPECT_EQ(q->initialization_flags(),
            (std::map<std::string, bool>{{"max", false}, {"min", false}}));
  q->set_initialization_flags({{"min", true}});
  EXPECT_EQ(q->initialization_flags(),
            (std::map<std::string, bool>{{"max", false}, {"min", true}}));
  EXPECT_FALSE(q->is_initialized());
  q->set_initialization_flags({{"max", true}});
  EXPECT_TRUE(q->is_initialized());
  q->set_initialization_flags({{"min", false}, {"max", false}});
  EXPECT_FALSE(q->is_initialized());
  EXPECT_THROW(q->set_initialization_flags({{"scale", true}}), c10::IndexError);
  EXPECT_FALSE(q->is_initialized());  // nothing changed by the rejected call
}

TEST(FrontEndApi, ReplacedParameterIsWhatTheForwardReads) {
  QuantizeDequantize q({}, 8, false);
  const at::Tensor new_min = torch::full({}, -2.0f).requires_grad_();
  const at::Tensor new_max = torch::full({}, 2.0f).requires_grad_();
  q->replace_parameter("min", new_min);
  EXPECT_FALSE(q->is_initialized());  // max is still the registered, untouched one
  q->replace_parameter("max", new_max);
  EXPECT_TRUE(q->is_initialized());  // replaced parameters count as set (reference §1.9)
  EXPECT_TRUE(q->min.is_same(new_min));
  EXPECT_TRUE(q->named_parameters()["max"].is_same(new_max));
  const at::Tensor x = f32({-3, -1, 0.5, 3});
  QuantizeDequantize same_range({}, 8, false);
  same_range->set_range(-2.0, 2.0);
  EXPECT_TRUE(bitwise_equal(q(x), same_range(x)));
  q(x).sum().backward();
  EXPECT_TRUE(new_min.grad().defined() && new_max.grad().defined());
  EXPECT_THROW(q->replace_parameter("min", torch::zeros({2})), c10::ValueError);
  EXPECT_THROW(q->replace_parameter("min", torch::zeros({}, torch::kDouble)), c10::ValueError);
  EXPECT_THROW(q->replace_parameter("scale", torch::zeros({})), c10::IndexError);
}

TEST(FrontEndApi, CancelledCalibrationSetsNothing) {
  QuantizeDequantize q({}, 8, false);
  {
    auto calibrating = q->compute_encodings();
    q(f32({-5, 5}));
    calibrating.cancel();
    EXPECT_FALSE(q->is_calibrating());
  }
  EXPECT_FALSE(q->is_initialized());
  {
    auto calibrating = q->compute_encodings();  // the scope can be opened again
    q(f32({-5, 5}));
  }
  EXPECT_TRUE(q->is_initialized());
  EXPECT_EQ(q->min.item<float>(), -5.0f);
}
