// The recurrent rows (docs/modules.md §5.3): RNN, LSTM, GRU and their cells.

#include <quantsim/affine/quantizer.h>
#include <quantsim/nn/modules.h>

#include <gtest/gtest.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/utils/rnn.h>
#include <torch/serialize.h>

#include "testing/printing.h"
#include "testing/tolerance.h"

#include <memory>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace qs = quantsim;
using torch::nn::utils::rnn::PackedSequence;

namespace {

/// The tensor leaves of a forward result, in quantizer order.
template <typename T>
std::vector<at::Tensor> leaves(const T& value) {
  std::vector<at::Tensor> collected;
  auto collect = [&](size_t, const at::Tensor& t) {
    collected.push_back(t);
    return t;
  };
  qs::nn::TensorLeaves<T>::map(value, 0, collect);
  return collected;
}

::testing::AssertionResult all_bitwise_equal(const std::vector<at::Tensor>& actual,
                                             const std::vector<at::Tensor>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << actual.size() << " vs " << expected.size() << " leaves";
  }
  for (size_t i = 0; i < actual.size(); ++i) {
    auto equal = qs::testing::bitwise_equal(actual[i], expected[i]);
    if (!equal) return ::testing::AssertionFailure() << "leaf " << i << ": " << equal.message();
  }
  return ::testing::AssertionSuccess();
}

/// The registered quantized module of `module`, sharing its parameters.
template <typename Float>
std::shared_ptr<qs::nn::FakeQuantizationMixin<Float>> quantized(
    const std::shared_ptr<Float>& module) {
  auto q = std::dynamic_pointer_cast<qs::nn::FakeQuantizationMixin<Float>>(
      qs::nn::from_module(std::static_pointer_cast<torch::nn::Module>(module)));
  EXPECT_NE(q, nullptr);
  return q;
}

/// 8-bit symmetric weight quantizers on every parameter (per output channel for matrices),
/// calibrated on the current parameters unless `calibrate` is false.
void quantize_all_parameters(qs::nn::BaseQuantizationMixin& q, bool calibrate = true) {
  for (const auto& p : q.as_module().named_parameters(/*recurse=*/false)) {
    std::vector<int64_t> shape;
    if (p.value().dim() == 2) shape = {p.value().size(0), 1};
    q.param_quantizers[p.key()] = qs::affine::QuantizeDequantize(shape, 8, true);
  }
  if (calibrate) q.compute_param_encodings();
}

/// A float copy of `q`'s module whose parameters are replaced by their quantize-dequantized
/// values: what the quantized module must compute.
template <typename Float>
std::shared_ptr<Float> float_with_quantized_parameters(qs::nn::FakeQuantizationMixin<Float>& q) {
  auto reference = std::dynamic_pointer_cast<Float>(q.get_original_module()->clone());
  torch::NoGradGuard no_grad;
  for (auto& p : reference->named_parameters(/*recurse=*/false)) {
    if (auto quantizer = q.param_quantizers[p.key()].get()) {
      p.value().copy_(quantizer->fake_quantize(p.value()));
    }
  }
  return reference;
}

/// No quantizer: the float module bit for bit. Parameter quantizers: the float module on the
/// quantized parameters, bit for bit, which is not the float output (they take effect). After
/// removing them, the float output again (the patch is undone).
template <typename Float, typename Run>
void check_parameter_quantization(const std::shared_ptr<Float>& module, const Run& run) {
  auto q = quantized(module);
  const auto float_output = run(*module);
  EXPECT_TRUE(all_bitwise_equal(run(*q), float_output));

  quantize_all_parameters(*q);
  const auto output = run(*q);
  EXPECT_TRUE(all_bitwise_equal(output, run(*float_with_quantized_parameters(*q))));
  EXPECT_FALSE(qs::testing::bitwise_equal(output[0], float_output[0]));

  auto removed = q->remove_param_quantizers();
  EXPECT_TRUE(all_bitwise_equal(run(*q), float_output));
}

std::vector<std::string> recurrent_parameter_names(int64_t layers, bool bidirectional, bool bias,
                                                   bool projection) {
  std::vector<std::string> names;
  for (int64_t layer = 0; layer < layers; ++layer) {
    for (const std::string suffix : {"", "_reverse"}) {
      if (!suffix.empty() && !bidirectional) continue;
      const auto l = "_l" + std::to_string(layer) + suffix;
      names.push_back("weight_ih" + l);
      names.push_back("weight_hh" + l);
      if (bias) {
        names.push_back("bias_ih" + l);
        names.push_back("bias_hh" + l);
      }
      if (projection) names.push_back("weight_hr" + l);
    }
  }
  return names;
}

std::shared_ptr<qs::affine::QuantizeDequantizeImpl> qdq(const qs::nn::QuantizerSlot& slot) {
  return slot.as<qs::affine::QuantizeDequantizeImpl>();
}

/// Sequences of lengths 5, 2 and 4 (not sorted), features 3, padded to (5, 3, 3).
PackedSequence packed_batch() {
  const auto padded = at::randn({5, 3, 3});
  return torch::nn::utils::rnn::pack_padded_sequence(padded, at::tensor({5, 2, 4}),
                                                     /*batch_first=*/false,
                                                     /*enforce_sorted=*/false);
}

}  // namespace

// Quantizer counts (docs/modules.md §5.2), with the parameter keys libtorch gives the modules.
TEST(RnnModules, QuantizerCountsAndParameterKeys) {
  using Keys = std::vector<std::string>;
  auto rnn = quantized(std::make_shared<torch::nn::RNNImpl>(
      torch::nn::RNNOptions(3, 4).num_layers(2).bidirectional(true)));
  EXPECT_EQ(rnn->input_quantizers->size(), 2u);
  EXPECT_EQ(rnn->output_quantizers->size(), 2u);
  EXPECT_EQ(rnn->param_quantizers->keys(), recurrent_parameter_names(2, true, true, false));

  auto gru = quantized(
      std::make_shared<torch::nn::GRUImpl>(torch::nn::GRUOptions(3, 4).num_layers(2).bias(false)));
  EXPECT_EQ(gru->input_quantizers->size(), 2u);
  EXPECT_EQ(gru->output_quantizers->size(), 2u);
  EXPECT_EQ(gru->param_quantizers->keys(), recurrent_parameter_names(2, false, false, false));

  auto lstm = quantized(
      std::make_shared<torch::nn::LSTMImpl>(torch::nn::LSTMOptions(3, 4).bidirectional(true)));
  EXPECT_EQ(lstm->input_quantizers->size(), 3u);
  EXPECT_EQ(lstm->output_quantizers->size(), 3u);
  EXPECT_EQ(lstm->param_quantizers->keys(), recurrent_parameter_names(1, true, true, false));
  auto projected =
      quantized(std::make_shared<torch::nn::LSTMImpl>(torch::nn::LSTMOptions(3, 4).proj_size(2)));
  EXPECT_EQ(projected->param_quantizers->keys(), recurrent_parameter_names(1, false, true, true));

  const Keys cell_keys{"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  auto lstm_cell = quantized(std::make_shared<torch::nn::LSTMCellImpl>(3, 4));
  EXPECT_EQ(lstm_cell->input_quantizers->size(), 3u);
  EXPECT_EQ(lstm_cell->output_quantizers->size(), 2u);
  EXPECT_EQ(lstm_cell->param_quantizers->keys(), cell_keys);
  auto gru_cell = quantized(std::make_shared<torch::nn::GRUCellImpl>(3, 4));
  EXPECT_EQ(gru_cell->input_quantizers->size(), 2u);
  EXPECT_EQ(gru_cell->output_quantizers->size(), 1u);
  EXPECT_EQ(gru_cell->param_quantizers->keys(), cell_keys);
  auto rnn_cell = quantized(std::make_shared<torch::nn::RNNCellImpl>(
      torch::nn::RNNCellOptions(3, 4).bias(false).nonlinearity(torch::kReLU)));
  EXPECT_EQ(rnn_cell->input_quantizers->size(), 2u);
  EXPECT_EQ(rnn_cell->output_quantizers->size(), 1u);
  EXPECT_EQ(rnn_cell->param_quantizers->keys(), (Keys{"weight_ih", "weight_hh"}));

  EXPECT_EQ(qs::nn::FakeQuantizedLSTMImpl::name(), "LSTM");
  EXPECT_EQ(qs::nn::FakeQuantizedGRUCellImpl::name(), "GRUCell");
}

// Unlike the reference on torch 1.13, the weight quantizers take effect (docs/differences.md).
TEST(RnnModules, RecurrentWeightQuantizersTakeEffect) {
  torch::manual_seed(0);
  const auto x = at::randn({6, 2, 3});
  const auto h0 = at::randn({4, 2, 4});
  const auto c0 = at::randn({4, 2, 4});
  auto rnn_options = torch::nn::RNNOptions(3, 4).num_layers(2).bidirectional(true);
  check_parameter_quantization(std::make_shared<torch::nn::RNNImpl>(rnn_options),
                               [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(
      std::make_shared<torch::nn::RNNImpl>(rnn_options.nonlinearity(torch::kReLU)),
      [&](auto& m) { return leaves(m.forward(x, h0)); });
  auto gru_options = torch::nn::GRUOptions(3, 4).num_layers(2).bidirectional(true);
  check_parameter_quantization(std::make_shared<torch::nn::GRUImpl>(gru_options),
                               [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(std::make_shared<torch::nn::GRUImpl>(gru_options),
                               [&](auto& m) { return leaves(m.forward(x, h0)); });
  auto lstm_options = torch::nn::LSTMOptions(3, 4).num_layers(2).bidirectional(true);
  check_parameter_quantization(std::make_shared<torch::nn::LSTMImpl>(lstm_options),
                               [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(std::make_shared<torch::nn::LSTMImpl>(lstm_options), [&](auto& m) {
    return leaves(m.forward(x, std::make_tuple(h0, c0)));
  });
  // Batch first, with projections (weight_hr_l0 is quantized too).
  const auto xb = at::randn({2, 6, 3});
  check_parameter_quantization(std::make_shared<torch::nn::LSTMImpl>(
                                   torch::nn::LSTMOptions(3, 4).proj_size(2).batch_first(true)),
                               [&](auto& m) { return leaves(m.forward(xb)); });
}

TEST(RnnModules, CellWeightQuantizersTakeEffect) {
  torch::manual_seed(1);
  const auto x = at::randn({5, 3});
  const auto h = at::randn({5, 4});
  const auto c = at::randn({5, 4});
  check_parameter_quantization(std::make_shared<torch::nn::RNNCellImpl>(3, 4),
                               [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(std::make_shared<torch::nn::RNNCellImpl>(
                                   torch::nn::RNNCellOptions(3, 4).nonlinearity(torch::kReLU)),
                               [&](auto& m) { return leaves(m.forward(x, h)); });
  check_parameter_quantization(std::make_shared<torch::nn::GRUCellImpl>(3, 4),
                               [&](auto& m) { return leaves(m.forward(x, h)); });
  check_parameter_quantization(
      std::make_shared<torch::nn::GRUCellImpl>(torch::nn::GRUCellOptions(3, 4).bias(false)),
      [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(std::make_shared<torch::nn::LSTMCellImpl>(3, 4),
                               [&](auto& m) { return leaves(m.forward(x)); });
  check_parameter_quantization(std::make_shared<torch::nn::LSTMCellImpl>(3, 4), [&](auto& m) {
    return leaves(m.forward(x, std::make_tuple(h, c)));
  });
}

TEST(RnnModules, PackedSequencesQuantizeThePackedData) {
  torch::manual_seed(2);
  const auto packed = packed_batch();
  const auto h0 = at::randn({1, 3, 4});
  check_parameter_quantization(std::make_shared<torch::nn::LSTMImpl>(3, 4), [&](auto& m) {
    return leaves(m.forward_with_packed_input(packed));
  });
  check_parameter_quantization(std::make_shared<torch::nn::GRUImpl>(3, 4), [&](auto& m) {
    return leaves(m.forward_with_packed_input(packed, h0));
  });
  check_parameter_quantization(
      std::make_shared<torch::nn::RNNImpl>(torch::nn::RNNOptions(3, 4).bidirectional(true)),
      [&](auto& m) { return leaves(m.forward_with_packed_input(packed)); });

  // iq[0] on the data, oq[0] on the output data, oq[1] on h_n; the sorting is kept.
  qs::nn::FakeQuantizedGRU gru(3, 4);
  auto in = qs::affine::QuantizeDequantize({}, 4, false);
  auto out = qs::affine::QuantizeDequantize({}, 4, false);
  auto h_n = qs::affine::QuantizeDequantize({}, 4, false);
  in->set_range(-1, 1);
  out->set_range(-0.5, 0.5);
  h_n->set_range(-0.25, 0.25);
  gru->input_quantizers[0] = in;
  gru->output_quantizers[0] = out;
  gru->output_quantizers[1] = h_n;
  auto [output, hidden] = gru->forward_with_packed_input(packed);
  auto float_gru = std::dynamic_pointer_cast<torch::nn::GRUImpl>(gru->get_original_module());
  auto [expected_output, expected_hidden] = float_gru->forward_with_packed_input(PackedSequence(
      in(packed.data()), packed.batch_sizes(), packed.sorted_indices(), packed.unsorted_indices()));
  EXPECT_TRUE(qs::testing::bitwise_equal(output.data(), out(expected_output.data())));
  EXPECT_TRUE(qs::testing::bitwise_equal(hidden, h_n(expected_hidden)));
  EXPECT_TRUE(qs::testing::bitwise_equal(output.batch_sizes(), packed.batch_sizes()));
  EXPECT_TRUE(qs::testing::bitwise_equal(output.unsorted_indices(), packed.unsorted_indices()));
}

// docs/modules.md §5.3: the hidden-state quantizers apply to the zeros the op uses when hx is
// omitted.
TEST(RnnModules, HiddenStateQuantizersApplyToTheDefaultZeros) {
  torch::manual_seed(3);
  // A range without 0: zeros quantize to the range's lower end.
  auto positive = [](double min, double max) {
    auto q = qs::affine::QuantizeDequantize({}, 8, false);
    q->set_range(min, max);
    return q;
  };
  {
    auto float_lstm =
        std::make_shared<torch::nn::LSTMImpl>(torch::nn::LSTMOptions(3, 4).bidirectional(true));
    auto lstm = quantized(float_lstm);
    auto h = positive(0.5, 1.5), c = positive(0.25, 1.0);
    lstm->input_quantizers[1] = h;
    lstm->input_quantizers[2] = c;
    const auto x = at::randn({6, 2, 3});
    const auto expected =
        float_lstm->forward(x, std::make_tuple(h(at::zeros({2, 2, 4})), c(at::zeros({2, 2, 4}))));
    EXPECT_TRUE(all_bitwise_equal(leaves(lstm->forward(x)), leaves(expected)));
    EXPECT_FALSE(qs::testing::bitwise_equal(std::get<0>(lstm->forward(x)),
                                            std::get<0>(float_lstm->forward(x))));
    // Packed input: the batch is the largest batch size.
    const auto packed = packed_batch();
    const auto expected_packed = float_lstm->forward_with_packed_input(
        packed, std::make_tuple(h(at::zeros({2, 3, 4})), c(at::zeros({2, 3, 4}))));
    EXPECT_TRUE(all_bitwise_equal(leaves(lstm->forward_with_packed_input(packed)),
                                  leaves(expected_packed)));
  }
  {
    auto float_gru =
        std::make_shared<torch::nn::GRUImpl>(torch::nn::GRUOptions(3, 4).batch_first(true));
    auto gru = quantized(float_gru);
    auto h = positive(0.5, 1.5);
    gru->input_quantizers[1] = h;
    const auto x = at::randn({2, 6, 3});
    EXPECT_TRUE(all_bitwise_equal(leaves(gru->forward(x)),
                                  leaves(float_gru->forward(x, h(at::zeros({1, 2, 4}))))));
  }
  {
    auto float_cell = std::make_shared<torch::nn::LSTMCellImpl>(3, 4);
    auto cell = quantized(float_cell);
    auto h = positive(0.5, 1.5), c = positive(0.25, 1.0);
    cell->input_quantizers[1] = h;
    cell->input_quantizers[2] = c;
    const auto x = at::randn({5, 3});
    const auto expected =
        float_cell->forward(x, std::make_tuple(h(at::zeros({5, 4})), c(at::zeros({5, 4}))));
    EXPECT_TRUE(all_bitwise_equal(leaves(cell->forward(x)), leaves(expected)));
  }
  {
    auto float_cell = std::make_shared<torch::nn::RNNCellImpl>(3, 4);
    auto cell = quantized(float_cell);
    auto h = positive(0.5, 1.5);
    cell->input_quantizers[1] = h;
    const auto x = at::randn({2, 3});
    EXPECT_TRUE(
        qs::testing::bitwise_equal(cell->forward(x), float_cell->forward(x, h(at::zeros({2, 4})))));
  }
}

TEST(RnnModules, ComputeEncodingsInitializesEveryQuantizer) {
  torch::manual_seed(4);
  qs::nn::FakeQuantizedLSTM lstm(torch::nn::LSTMOptions(3, 4).num_layers(2));
  for (int64_t i = 0; i < 3; ++i) {
    lstm->input_quantizers[i] = qs::affine::QuantizeDequantize({}, 8, false);
    lstm->output_quantizers[i] = qs::affine::QuantizeDequantize({}, 8, false);
  }
  quantize_all_parameters(*lstm, /*calibrate=*/false);
  for (const auto& key : lstm->param_quantizers->keys()) {
    EXPECT_FALSE(lstm->param_quantizers[key]->is_initialized());
  }
  const auto x = at::randn({6, 2, 3});
  const auto state = std::make_tuple(at::randn({2, 2, 4}), at::randn({2, 2, 4}));
  {
    auto calibrating = lstm->compute_encodings();
    lstm(x, state);
    lstm(x);  // h0 and c0 observe the zeros
  }
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(lstm->input_quantizers[i]->is_initialized()) << "input " << i;
    EXPECT_TRUE(lstm->output_quantizers[i]->is_initialized()) << "output " << i;
  }
  for (const auto& key : lstm->param_quantizers->keys()) {
    EXPECT_TRUE(lstm->param_quantizers[key]->is_initialized()) << key;
  }
  // The observed range of h0 covers the explicit state and the zeros.
  EXPECT_EQ(qdq(lstm->input_quantizers[1])->min.item<float>(),
            std::min(std::get<0>(state).min().item<float>(), 0.0f));
}

TEST(RnnModules, BackwardReachesTheInputsAndTheQuantizerRanges) {
  torch::manual_seed(5);
  qs::nn::FakeQuantizedLSTM lstm(3, 4);
  for (int64_t i = 0; i < 3; ++i) {
    lstm->input_quantizers[i] = qs::affine::QuantizeDequantize({}, 8, false);
    lstm->output_quantizers[i] = qs::affine::QuantizeDequantize({}, 8, false);
  }
  quantize_all_parameters(*lstm);
  const auto x = at::randn({6, 2, 3});
  const auto state = std::make_tuple(at::randn({1, 2, 4}), at::randn({1, 2, 4}));
  lstm->compute_encodings([&] { lstm(x, state); });

  const auto xg = x.clone().requires_grad_();
  const auto h0 = std::get<0>(state).clone().requires_grad_();
  at::Tensor loss = at::zeros({});
  for (const auto& y : leaves(lstm(xg, std::make_tuple(h0, std::get<1>(state))))) {
    loss = loss + (y * y).sum();
  }
  loss.backward();
  ASSERT_TRUE(xg.grad().defined());
  EXPECT_GT(xg.grad().abs().sum().item<float>(), 0.0f);
  ASSERT_TRUE(h0.grad().defined());
  EXPECT_GT(h0.grad().abs().sum().item<float>(), 0.0f);
  std::vector<std::shared_ptr<qs::affine::QuantizeDequantizeImpl>> quantizers;
  for (int64_t i = 0; i < 3; ++i) {
    quantizers.push_back(qdq(lstm->input_quantizers[i]));
    quantizers.push_back(qdq(lstm->output_quantizers[i]));
  }
  for (const auto& key : lstm->param_quantizers->keys()) {
    quantizers.push_back(qdq(lstm->param_quantizers[key]));
  }
  for (const auto& q : quantizers) {
    EXPECT_TRUE(q->min.grad().defined() && q->max.grad().defined());
  }
  // The weights get their gradients through the (patched) weight quantizers.
  EXPECT_TRUE(lstm->named_parameters()["weight_ih_l0"].grad().defined());
  EXPECT_TRUE(qdq(lstm->param_quantizers["weight_ih_l0"])->max.grad().abs().sum().item<float>() >
              0.0f);
}

TEST(RnnModules, SaveLoadAndCloneReproduceTheOutput) {
  torch::manual_seed(6);
  auto make = [] {
    qs::nn::FakeQuantizedLSTM lstm(torch::nn::LSTMOptions(3, 4).num_layers(2));
    lstm->input_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    lstm->output_quantizers[0] = qs::affine::QuantizeDequantize({}, 8, false);
    quantize_all_parameters(*lstm, /*calibrate=*/false);
    return lstm;
  };
  auto lstm = make();
  const auto x = at::randn({6, 2, 3});
  lstm->compute_encodings([&] { lstm(x); });
  const auto expected = leaves(lstm(x));

  std::stringstream archive;
  torch::save(lstm, archive);
  auto restored = make();
  torch::load(restored, archive);
  EXPECT_TRUE(restored->param_quantizers["weight_hh_l1"]->is_initialized());
  EXPECT_TRUE(all_bitwise_equal(leaves(restored(x)), expected));

  auto copy = std::dynamic_pointer_cast<qs::nn::FakeQuantizedLSTMImpl>(lstm->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_NE(copy->named_parameters()["weight_ih_l0"].data_ptr(),
            lstm->named_parameters()["weight_ih_l0"].data_ptr());
  EXPECT_TRUE(all_bitwise_equal(leaves(copy->forward(x)), expected));
}

TEST(RnnModules, WorkInsideAnyModuleWithTheDefaultState) {
  torch::manual_seed(7);
  qs::nn::FakeQuantizedGRUCell cell(3, 4);
  torch::nn::AnyModule any(cell);
  const auto x = at::randn({2, 3});
  EXPECT_TRUE(qs::testing::bitwise_equal(any.forward(x), cell(x)));
  qs::nn::FakeQuantizedLSTM lstm(3, 4);
  torch::nn::AnyModule any_lstm(lstm);
  using Output = std::tuple<at::Tensor, std::tuple<at::Tensor, at::Tensor>>;
  const auto xs = at::randn({5, 2, 3});
  EXPECT_TRUE(all_bitwise_equal(leaves(any_lstm.forward<Output>(xs)), leaves(lstm(xs))));
}

TEST(RnnModules, PrettyPrintShowsTheQuantizedClass) {
  qs::nn::FakeQuantizedLSTM lstm(torch::nn::LSTMOptions(3, 4).bidirectional(true));
  lstm->param_quantizers["weight_ih_l0"] = qs::affine::QuantizeDequantize({16, 1}, 8, true);
  EXPECT_EQ(qs::testing::printed(*lstm),
            "quantsim::nn::FakeQuantizedLSTM(input_size=3, hidden_size=4, num_layers=1, "
            "bias=true, batch_first=false, dropout=0, bidirectional=true)(\n"
            "  (input_quantizers): ModuleList\n"
            "  (output_quantizers): ModuleList\n"
            "  (param_quantizers): ModuleDict(\n"
            "    (weight_ih_l0): QuantizeDequantize(shape=[16, 1], qmin=-128, qmax=127, "
            "symmetric=true)\n"
            "  )\n"
            ")");
  auto cell = quantized(std::make_shared<torch::nn::GRUCellImpl>(3, 4));
  std::ostringstream header;
  cell->pretty_print(header);
  EXPECT_EQ(header.str(), "quantsim::nn::FakeQuantizedGRUCell(3, 4)");
}
