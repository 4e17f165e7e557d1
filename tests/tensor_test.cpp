// QuantizedTensor / DequantizedTensor (docs/quantization.md §10.3), with the reference's values.
#include <quantsim/affine/encoding.h>
#include <quantsim/affine/quantizer.h>
#include <quantsim/errors.h>
#include <quantsim/tensor.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "testing/tolerance.h"

namespace qs = quantsim;
using qs::DequantizedTensor;
using qs::QuantizedTensor;
using qs::affine::AffineEncoding;
using qs::affine::Grid;
using qs::testing::all_close;
using qs::testing::bitwise_equal;
using torch::indexing::Slice;

namespace {

std::shared_ptr<AffineEncoding> affine(const std::shared_ptr<qs::EncodingBase>& enc) {
  return std::dynamic_pointer_cast<AffineEncoding>(enc);
}

/// `actual` is a distinct encoding object equal to `expected` (same grid, symmetry, block size,
/// and bit-identical scale/offset).
::testing::AssertionResult equal_but_distinct(const std::shared_ptr<qs::EncodingBase>& actual,
                                              const std::shared_ptr<qs::EncodingBase>& expected) {
  const auto a = affine(actual), e = affine(expected);
  if (!a || !e) return ::testing::AssertionFailure() << "missing or non-affine encoding";
  if (a == e) return ::testing::AssertionFailure() << "the same encoding object";
  if (!(a->grid() == e->grid()) || a->symmetry() != e->symmetry() ||
      a->block_size() != e->block_size()) {
    return ::testing::AssertionFailure() << "different grid, symmetry or block size";
  }
  if (auto r = bitwise_equal(a->scale(), e->scale()); !r) return r << " (scale)";
  if (auto r = bitwise_equal(a->offset(), e->offset()); !r) return r << " (offset)";
  return ::testing::AssertionSuccess();
}

/// Runs `body` and checks that it throws c10::Error whose message contains `needle`.
template <typename Body>
::testing::AssertionResult throws_c10_error_containing(Body body, const std::string& needle) {
  try {
    body();
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    if (msg.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "message lacks \"" << needle << "\": " << msg;
  }
  return ::testing::AssertionFailure() << "no c10::Error thrown";
}

/// Per-tensor 8-bit signed encoding of scale 0.5: grid integers k represent k / 2.
std::shared_ptr<AffineEncoding> half_step_encoding() {
  return std::make_shared<AffineEncoding>(torch::tensor(0.5f), torch::tensor(0.f), Grid{-128, 127},
                                          true);
}

/// Grid integers -12..11 as a (2, 3, 4) float tensor.
at::Tensor grid_integers() { return torch::arange(-12, 12, torch::kFloat).view({2, 3, 4}); }

}  // namespace

// ---- check 31: exact integers and dequantized values -------------------------------------------

TEST(QuantizedTensor, Check31QuantizeSymmetric) {
  qs::affine::Quantize q({}, 8, /*symmetric=*/true);
  q->set_range(-12.8, 12.7);
  const auto x = torch::tensor({{2.57f, -2.312f}, {0.153f, 0.205f}});
  const QuantizedTensor xq = q(x);
  EXPECT_TRUE(bitwise_equal(xq.tensor(), torch::tensor({{26.f, -23.f}, {2.f, 2.f}})));
  EXPECT_TRUE(bitwise_equal(xq.quantized_repr(),
                            torch::tensor({{26, -23}, {2, 2}}, torch::dtype(torch::kChar))));
  const DequantizedTensor xdq = xq.dequantize();
  EXPECT_TRUE(all_close(xdq.tensor(), torch::tensor({{2.6f, -2.3f}, {0.2f, 0.2f}})));
  // dequantize keeps an equal copy of the encoding; quantize of a QuantizedTensor is the identity.
  EXPECT_TRUE(equal_but_distinct(xdq.encoding(), xq.encoding()));
  EXPECT_TRUE(xq.quantize().tensor().is_same(xq.tensor()));
  EXPECT_EQ(xq.quantize().encoding(), xq.encoding());
  // And back again: the grid integers survive the round trip.
  EXPECT_TRUE(bitwise_equal(xdq.quantize().tensor(), xq.tensor()));
}

TEST(DequantizedTensor, Check31QuantizeDequantizeAsymmetric) {
  qs::affine::QuantizeDequantize qdq({}, 8, /*symmetric=*/false);
  qdq->set_range(-10, 41);
  const auto enc = affine(qdq->get_encoding());
  ASSERT_TRUE(enc);
  EXPECT_NEAR(enc->scale().item<double>(), 0.2, qs::testing::kSpecAtol);
  EXPECT_EQ(enc->offset().item<double>(), -50.0);

  const auto x = torch::tensor({{0.39f, 51.f}, {3.521f, 9.41f}});
  const DequantizedTensor y(qdq(x), enc);
  EXPECT_TRUE(all_close(y.tensor(), torch::tensor({{0.4f, 41.f}, {3.6f, 9.4f}})));
  const QuantizedTensor yq = y.quantize();
  EXPECT_TRUE(bitwise_equal(yq.tensor(), torch::tensor({{52.f, 255.f}, {68.f, 97.f}})));
  EXPECT_TRUE(bitwise_equal(y.quantized_repr(),
                            torch::tensor({{52, 255}, {68, 97}}, torch::dtype(torch::kByte))));
  EXPECT_TRUE(equal_but_distinct(yq.encoding(), y.encoding()));
  EXPECT_TRUE(y.dequantize().tensor().is_same(y.tensor()));
}

TEST(QuantizedTensor, PerChannelQuantizeAndDequantize) {
  // The reference's values (input from its QuantizedTensorBase docstring).
  qs::affine::Quantize q({2, 1}, 8, /*symmetric=*/true);
  const auto x = torch::tensor({{-1.20f, 4.1f, -0.21f, 2.3f}, {0.2f, 5.6f, -1.0f, -0.1f}});
  {
    auto calibrating = q->compute_encodings();
    q(x);
  }
  const QuantizedTensor xq = q(x);
  EXPECT_EQ(xq.encoding()->granularity(), "perchannel");
  EXPECT_TRUE(bitwise_equal(
      xq.quantized_repr(),
      torch::tensor({{-37, 127, -7, 71}, {5, 127, -23, -2}}, torch::dtype(torch::kChar))));
  EXPECT_TRUE(all_close(xq.dequantize().tensor(),
                        torch::tensor({{-1.19448817f, 4.1f, -0.22598425f, 2.29212594f},
                                       {0.22047244f, 5.6f, -1.01417327f, -0.08818898f}})));
}

TEST(QuantizedTensor, WorksThroughTheCommonBase) {
  const QuantizedTensor q(grid_integers(), half_step_encoding());
  const qs::QuantizedTensorBase& base = q;
  EXPECT_TRUE(bitwise_equal(base.dequantize().tensor(), grid_integers() * 0.5f));
  EXPECT_TRUE(bitwise_equal(base.quantized_repr(), grid_integers().to(torch::kChar)));
  EXPECT_TRUE(base.quantize().tensor().is_same(q.tensor()));
}

// ---- check 32: construction and missing encodings -----------------------------------------------

TEST(QuantizedTensor, NonFloatingConstructionThrows) {
  const auto ints = torch::tensor({1, 2, 3});
  EXPECT_TRUE(throws_c10_error_containing([&] { QuantizedTensor(ints, half_step_encoding()); },
                                          "quantized_repr"));
  EXPECT_THROW(DequantizedTensor(ints.to(torch::kByte), nullptr), c10::Error);
  EXPECT_THROW(DequantizedTensor(torch::tensor({true}), nullptr), c10::Error);
  EXPECT_THROW(QuantizedTensor(at::Tensor(), nullptr), c10::Error);
  EXPECT_NO_THROW(QuantizedTensor(torch::zeros({2}, torch::kHalf), nullptr));
  EXPECT_NO_THROW(DequantizedTensor(torch::zeros({2}, torch::kDouble), nullptr));
}

TEST(QuantizedTensor, WithoutEncoding) {
  const QuantizedTensor q(grid_integers(), nullptr);
  EXPECT_THROW(q.dequantize(), qs::EncodingError);
  EXPECT_THROW(q.quantized_repr(), qs::EncodingError);
  EXPECT_TRUE(q.quantize().tensor().is_same(q.tensor()));  // the identity needs no encoding
  const auto c = q.clone();
  EXPECT_EQ(c.encoding(), nullptr);
  EXPECT_TRUE(bitwise_equal(c.tensor(), q.tensor()));
  EXPECT_EQ(q.detach().encoding(), nullptr);
  EXPECT_EQ(q.reshape({-1}).encoding(), nullptr);
  EXPECT_EQ(q.to(torch::kDouble).encoding(), nullptr);
}

TEST(DequantizedTensor, WithoutEncoding) {
  const DequantizedTensor d(grid_integers() * 0.5f, nullptr);
  EXPECT_THROW(d.quantize(), qs::EncodingError);
  EXPECT_THROW(d.quantized_repr(), qs::EncodingError);
  EXPECT_TRUE(d.dequantize().tensor().is_same(d.tensor()));
  EXPECT_EQ(d.clone().encoding(), nullptr);
  EXPECT_EQ(d.detach().encoding(), nullptr);
}

// ---- check 32: per-tensor pass-through (view-like) ops ------------------------------------------

TEST(DequantizedTensor, PerTensorViewOpsKeepAnEqualDistinctEncoding) {
  const auto values = grid_integers() * 0.5f;  // real values on the grid of scale 0.5
  const DequantizedTensor d(values, half_step_encoding());
  const auto idx = torch::tensor({2, 0}, torch::kLong);

  struct Case {
    const char* name;
    DequantizedTensor out;
    at::Tensor expected;
  };
  const std::vector<Case> cases = {
      {"view", d.view({6, 4}), values.view({6, 4})},
      {"view_as", d.view_as(torch::empty({4, 6})), values.view({4, 6})},
      {"reshape", d.reshape({-1}), values.reshape({-1})},
      {"reshape_as", d.reshape_as(torch::empty({3, 8})), values.reshape({3, 8})},
      {"permute", d.permute({2, 0, 1}), values.permute({2, 0, 1})},
      {"transpose", d.transpose(0, 2), values.transpose(0, 2)},
      {"swapaxes", d.swapaxes(1, 2), values.swapaxes(1, 2)},
      {"t", d.view({6, 4}).t(), values.view({6, 4}).t()},
      {"movedim", d.movedim(0, -1), values.movedim(0, -1)},
      {"movedim(list)", d.movedim({0, 1}, {2, 0}), values.movedim({0, 1}, {2, 0})},
      {"squeeze", d.unsqueeze(1).squeeze(), values},
      {"squeeze(dim)", d.unsqueeze(0).squeeze(0), values},
      {"unsqueeze", d.unsqueeze(-1), values.unsqueeze(-1)},
      {"flatten", d.flatten(1), values.flatten(1)},
      {"unflatten", d.unflatten(2, {2, 2}), values.unflatten(2, {2, 2})},
      {"expand", d.unsqueeze(0).expand({3, 2, 3, 4}), values.unsqueeze(0).expand({3, 2, 3, 4})},
      {"expand_as", d.expand_as(torch::empty({5, 2, 3, 4})), values.expand({5, 2, 3, 4})},
      {"broadcast_to", d.broadcast_to({2, 2, 3, 4}), values.broadcast_to({2, 2, 3, 4})},
      {"repeat", d.repeat({1, 2, 1}), values.repeat({1, 2, 1})},
      {"tile", d.tile({2}), values.tile({2})},
      {"select", d.select(1, 2), values.select(1, 2)},
      {"operator[]", d[1], values[1]},
      {"index", d.index({Slice(), 1, Slice(1, 3)}), values.index({Slice(), 1, Slice(1, 3)})},
      {"index(tensor)", d.index({Slice(), idx}), values.index_select(1, idx)},
      {"narrow", d.narrow(2, 1, 2), values.narrow(2, 1, 2)},
      {"as_strided", d.as_strided({2, 2}, {1, 4}), values.as_strided({2, 2}, {1, 4})},
      {"flip", d.flip({0, 2}), values.flip({0, 2})},
      {"fliplr", d.fliplr(), values.fliplr()},
      {"flipud", d.flipud(), values.flipud()},
      {"gather", d.gather(2, torch::zeros({2, 3, 1}, torch::kLong)), values.narrow(2, 0, 1)},
      {"index_select", d.index_select(1, idx), values.index_select(1, idx)},
      {"masked_select", d.masked_select(values > 0), values.masked_select(values > 0)},
      {"take", d.take(idx), values.flatten().index_select(0, idx)},
      {"take_along_dim", d.take_along_dim(torch::zeros({1}, torch::kLong)),
       values.flatten().narrow(0, 0, 1)},
      {"map_view(diagonal)", d.map_view([](const at::Tensor& t) { return t.diagonal(); }),
       values.diagonal()},
      {"contiguous (pass-through)", d.transpose(0, 1).contiguous(),
       values.transpose(0, 1).contiguous()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(bitwise_equal(c.out.tensor(), c.expected));
    EXPECT_TRUE(equal_but_distinct(c.out.encoding(), d.encoding()));
    // The encoding that followed is usable: the values map back to their grid integers.
    EXPECT_TRUE(bitwise_equal(c.out.quantize().tensor(), c.expected * 2.f));
  }
}

TEST(DequantizedTensor, VectorValuedViewOpsGiveEachPartItsOwnEncoding) {
  const auto values = grid_integers() * 0.5f;
  const DequantizedTensor d(values, half_step_encoding());
  struct Case {
    const char* name;
    std::vector<DequantizedTensor> out;
    std::vector<at::Tensor> expected;
  };
  const std::vector<Case> cases = {
      {"chunk", d.chunk(2, 2), values.chunk(2, 2)},
      {"split", d.split(2, 1), values.split(2, 1)},
      {"split_with_sizes", d.split_with_sizes({1, 3}, 2), values.split_with_sizes({1, 3}, 2)},
      {"tensor_split", d.tensor_split(3, 2), values.tensor_split(3, 2)},
      {"unbind", d.unbind(1), values.unbind(1)},
      {"map_view(vector)", d.map_view([](const at::Tensor& t) { return t.unbind(2); }),
       values.unbind(2)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_EQ(c.out.size(), c.expected.size());
    ASSERT_GE(c.out.size(), 2u);
    for (size_t i = 0; i < c.out.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(c.out[i].tensor(), c.expected[i]));
      EXPECT_TRUE(equal_but_distinct(c.out[i].encoding(), d.encoding()));
    }
    EXPECT_NE(c.out[0].encoding(), c.out[1].encoding());  // one copy per part
  }
}

TEST(DequantizedTensor, ViewsShareStorage) {
  const DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  const auto v = d.view({-1});
  EXPECT_EQ(v.tensor().data_ptr(), d.tensor().data_ptr());
  EXPECT_EQ(d.select(0, 1).tensor().storage_offset(), 12);
}

TEST(QuantizedTensor, PerTensorViewOpsOnGridIntegers) {
  const QuantizedTensor q(grid_integers(), half_step_encoding());
  const auto r = q.permute({1, 2, 0}).reshape({4, 6});
  static_assert(std::is_same_v<decltype(r), const QuantizedTensor>);
  EXPECT_TRUE(equal_but_distinct(r.encoding(), q.encoding()));
  EXPECT_TRUE(bitwise_equal(r.dequantize().tensor(),
                            grid_integers().permute({1, 2, 0}).reshape({4, 6}) * 0.5f));
  const std::vector<QuantizedTensor> parts = q.unbind(0);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_TRUE(bitwise_equal(parts[1].quantized_repr(), grid_integers()[1].to(torch::kChar)));
}

TEST(DequantizedTensor, NonPerTensorViewOpsDropTheEncoding) {
  const auto values = grid_integers() * 0.5f;
  const auto per_channel = std::make_shared<AffineEncoding>(
      torch::full({2, 1, 1}, 0.5f), torch::zeros({2, 1, 1}), Grid{-128, 127}, true);
  // A (1,)-shaped scale is "perchannel" too (docs/quantization.md §3), so it does not propagate
  // either.
  const auto one_element = std::make_shared<AffineEncoding>(
      torch::full({1}, 0.5f), torch::zeros({1}), Grid{-128, 127}, true);
  const auto blockwise =
      std::make_shared<AffineEncoding>(torch::full({1, 3, 2}, 0.5f), torch::zeros({1, 3, 2}),
                                       Grid{-128, 127}, true, std::vector<int64_t>{2, 1, 2});
  for (const auto& enc : {std::shared_ptr<AffineEncoding>(per_channel), one_element, blockwise}) {
    SCOPED_TRACE(enc->granularity());
    const DequantizedTensor d(values, enc);
    ASSERT_TRUE(bitwise_equal(d.quantize().tensor(), grid_integers()));  // usable before

    const DequantizedTensor r = d.reshape({-1});  // the kind is kept ...
    EXPECT_EQ(r.encoding(), nullptr);             // ... the encoding is not
    EXPECT_TRUE(bitwise_equal(r.tensor(), values.reshape({-1})));
    EXPECT_THROW(r.quantize(), qs::EncodingError);
    EXPECT_EQ(d.permute({0, 2, 1}).encoding(), nullptr);
    EXPECT_EQ(d[0].encoding(), nullptr);
    EXPECT_EQ(d.index({Slice(), 0}).encoding(), nullptr);
    for (const auto& part : d.chunk(2, 2)) EXPECT_EQ(part.encoding(), nullptr);

    // Pass-through and cast ops keep the encoding whatever its granularity.
    EXPECT_TRUE(equal_but_distinct(d.contiguous().encoding(), enc));
    EXPECT_TRUE(equal_but_distinct(d.to(torch::kDouble).encoding(), enc));
    EXPECT_NE(d.clone().encoding(), nullptr);
    EXPECT_NE(d.detach().encoding(), nullptr);
  }
}

// ---- check 32: clone, detach -------------------------------------------------------------------

TEST(DequantizedTensor, CloneClonesDataAndEncodingTensorsWithAutograd) {
  const auto scale = torch::tensor(0.5f).requires_grad_();
  const auto offset = torch::tensor(0.f).requires_grad_();
  const auto values = (grid_integers() * 0.5f).requires_grad_();
  const DequantizedTensor d(values,
                            std::make_shared<AffineEncoding>(scale, offset, Grid{-128, 127}, true));
  const DequantizedTensor c = d.clone();

  EXPECT_TRUE(bitwise_equal(c.tensor(), values));
  EXPECT_NE(c.tensor().data_ptr(), values.data_ptr());
  ASSERT_TRUE(c.tensor().grad_fn());
  EXPECT_NE(c.tensor().grad_fn()->name().find("Clone"), std::string::npos);

  const auto ce = affine(c.encoding());
  ASSERT_TRUE(ce);
  EXPECT_NE(ce, affine(d.encoding()));
  EXPECT_FALSE(ce->scale().is_same(scale));
  ASSERT_TRUE(ce->scale().grad_fn());
  EXPECT_NE(ce->scale().grad_fn()->name().find("Clone"), std::string::npos);
  ASSERT_TRUE(ce->offset().grad_fn());
  EXPECT_TRUE(bitwise_equal(ce->scale(), scale));

  // Gradients flow from the clone's values and encoding back to the originals.
  (c.tensor().sum() + ce->scale() * 4).backward();
  ASSERT_TRUE(values.grad().defined());
  EXPECT_TRUE(bitwise_equal(values.grad(), torch::ones({2, 3, 4})));
  EXPECT_EQ(scale.grad().item<float>(), 4.f);
}

TEST(DequantizedTensor, CloneOfTensorsWithoutGradHasNoGradFn) {
  const DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  const auto c = d.clone();
  EXPECT_FALSE(c.tensor().grad_fn());
  EXPECT_FALSE(affine(c.encoding())->scale().grad_fn());
  EXPECT_FALSE(affine(c.encoding())->scale().is_same(affine(d.encoding())->scale()));
}

TEST(QuantizedTensor, DetachDetachesDataAndEncoding) {
  const auto scale = torch::tensor(0.5f).requires_grad_();
  const auto offset = torch::tensor(0.f).requires_grad_();
  const auto data = (grid_integers() * 1.f).requires_grad_();
  const QuantizedTensor q(data * 1.f, std::make_shared<AffineEncoding>(scale * 1.f, offset * 1.f,
                                                                       Grid{-128, 127}, true));
  ASSERT_TRUE(q.requires_grad());
  const QuantizedTensor dq = q.detach();
  EXPECT_FALSE(dq.tensor().requires_grad());
  EXPECT_FALSE(dq.tensor().grad_fn());
  const auto enc = affine(dq.encoding());
  ASSERT_TRUE(enc);
  EXPECT_FALSE(enc->scale().requires_grad());
  EXPECT_FALSE(enc->offset().requires_grad());
  EXPECT_TRUE(bitwise_equal(enc->scale(), scale.detach()));
  EXPECT_EQ(dq.tensor().data_ptr(), q.tensor().data_ptr());  // detach shares storage
  EXPECT_FALSE(dq.dequantize().tensor().requires_grad());
}

// ---- check 32: in-place ops and pass-through ops ------------------------------------------------

TEST(DequantizedTensor, InPlaceOpsClearTheEncoding) {
  using InPlace = std::function<void(const at::Tensor&)>;
  const std::vector<std::pair<const char*, InPlace>> ops = {
      {"add_", [](const at::Tensor& t) { t.add_(1); }},
      {"mul_", [](const at::Tensor& t) { t.mul_(2); }},
      {"copy_", [](const at::Tensor& t) { t.copy_(torch::ones_like(t)); }},
      {"relu_", [](const at::Tensor& t) { t.relu_(); }},
      {"sin_", [](const at::Tensor& t) { t.sin_(); }},
      {"zero_", [](const at::Tensor& t) { t.zero_(); }},
  };
  for (const auto& [name, op] : ops) {
    SCOPED_TRACE(name);
    const auto values = grid_integers() * 0.5f;
    DequantizedTensor d(values.clone(), half_step_encoding());
    const auto* impl = d.tensor().unsafeGetTensorImpl();
    const auto expected = values.clone();
    op(expected);

    DequantizedTensor& ret = d.apply_(op);
    EXPECT_EQ(&ret, &d);                                // the same object
    EXPECT_EQ(d.tensor().unsafeGetTensorImpl(), impl);  // modified in place
    EXPECT_TRUE(bitwise_equal(d.tensor(), expected));
    EXPECT_EQ(d.encoding(), nullptr);
    EXPECT_THROW(d.quantize(), qs::EncodingError);
  }
}

TEST(QuantizedTensor, InPlaceOpMustKeepTheValuesFloating) {
  QuantizedTensor q(grid_integers(), half_step_encoding());
  EXPECT_THROW(q.apply_([](at::Tensor& t) { t = t.to(torch::kInt); }), c10::Error);
}

TEST(DequantizedTensor, RequiresGradKeepsTheEncodingObject) {
  DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  const auto enc = d.encoding();
  DequantizedTensor& ret = d.requires_grad_();
  EXPECT_EQ(&ret, &d);
  EXPECT_TRUE(d.requires_grad());
  EXPECT_EQ(d.encoding(), enc);
  d.requires_grad_(false);
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.encoding(), enc);
}

// ---- check 32: casts ---------------------------------------------------------------------------

TEST(DequantizedTensor, CastToNonFloatingThrows) {
  const DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  EXPECT_TRUE(throws_c10_error_containing([&] { d.to(torch::kInt); }, "quantized_repr()"));
  EXPECT_TRUE(throws_c10_error_containing([&] { d.to(torch::kLong); }, "quantized_repr()"));
  EXPECT_THROW(d.to(torch::TensorOptions().dtype(torch::kChar)), c10::Error);
  EXPECT_THROW(d.to(torch::Device(torch::kCPU), torch::kByte), c10::Error);
  EXPECT_THROW(d.to(torch::zeros({1}, torch::kShort)), c10::Error);
  EXPECT_THROW(d.type_as(torch::zeros({1}, torch::kInt)), c10::Error);
  const QuantizedTensor q(grid_integers(), half_step_encoding());
  EXPECT_THROW(q.to(torch::kInt), c10::Error);
}

TEST(DequantizedTensor, FloatingCastKeepsKindAndEncodingDtype) {
  const DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  for (const auto dtype : {torch::kDouble, torch::kHalf, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    const DequantizedTensor c = d.to(dtype);
    EXPECT_EQ(c.scalar_type(), dtype);
    EXPECT_TRUE(bitwise_equal(c.tensor(), d.tensor().to(dtype)));
    // A distinct encoding with unchanged (float32) tensors.
    EXPECT_TRUE(equal_but_distinct(c.encoding(), d.encoding()));
    EXPECT_EQ(affine(c.encoding())->scale().scalar_type(), torch::kFloat);
  }
  const DequantizedTensor c = d.type_as(torch::zeros({}, torch::kDouble));
  EXPECT_EQ(c.scalar_type(), torch::kDouble);
  EXPECT_TRUE(equal_but_distinct(c.encoding(), d.encoding()));
  // The double values still map back to the grid through the float32 encoding.
  EXPECT_TRUE(bitwise_equal(c.quantize().tensor(), grid_integers().to(torch::kDouble)));
}

TEST(DequantizedTensor, NoOpCastReturnsAnEqualObjectSharingTheEncoding) {
  const DequantizedTensor d(grid_integers() * 0.5f, half_step_encoding());
  for (const DequantizedTensor& same :
       {d.to(torch::kFloat), d.cpu(), d.to(torch::Device(torch::kCPU), torch::kFloat),
        d.to(torch::zeros({}, torch::kFloat)), d.type_as(torch::zeros({}))}) {
    EXPECT_TRUE(same.tensor().is_same(d.tensor()));
    EXPECT_EQ(same.encoding(), d.encoding());
  }
}

// ---- check 32: everything else gives plain tensors ----------------------------------------------

TEST(QuantizedTensor, OtherOpsGivePlainTensors) {
  // No implicit conversion exists: an op must be run on tensor() and gives a plain at::Tensor,
  // acting on the stored values (no implicit dequantization).
  static_assert(!std::is_convertible_v<QuantizedTensor, at::Tensor>);
  static_assert(!std::is_convertible_v<DequantizedTensor, at::Tensor>);
  static_assert(!std::is_convertible_v<QuantizedTensor, DequantizedTensor>);
  const QuantizedTensor q(grid_integers(), half_step_encoding());
  const auto sum = q.tensor() + torch::ones({2, 3, 4});
  static_assert(std::is_same_v<decltype(q.tensor() + torch::ones({1})), at::Tensor>);
  EXPECT_TRUE(bitwise_equal(sum, grid_integers() + 1));  // grid integers, not real values
  const auto prod = q.tensor().bmm(torch::ones({2, 4, 1}));
  EXPECT_TRUE(bitwise_equal(prod, grid_integers().sum(2, true)));
}
