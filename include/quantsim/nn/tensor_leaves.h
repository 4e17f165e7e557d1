#pragma once

/// `TensorLeaves<T>`: a module argument or result seen as a flat sequence of tensor leaves (see
/// DefaultModuleTraits), with a map that rebuilds the value with some leaves replaced.

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/nn/utils/rnn.h>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace quantsim::nn {

/// Values without tensors: no leaves, passed through unchanged.
template <typename T, typename = void>
struct TensorLeaves {
  static constexpr size_t count = 0;
  template <typename F>
  static T map(const T& value, size_t /*first*/, F& /*f*/) {
    return value;
  }
};

template <>
struct TensorLeaves<at::Tensor> {
  static constexpr size_t count = 1;
  template <typename F>
  static at::Tensor map(const at::Tensor& value, size_t first, F& f) {
    return f(first, value);
  }
};

template <typename T>
struct TensorLeaves<c10::optional<T>, std::enable_if_t<(TensorLeaves<T>::count > 0)>> {
  static constexpr size_t count = TensorLeaves<T>::count;
  template <typename F>
  static c10::optional<T> map(const c10::optional<T>& value, size_t first, F& f) {
    if (!value) return value;
    return TensorLeaves<T>::map(*value, first, f);
  }
};

/// Every element is the same leaf.
template <>
struct TensorLeaves<std::vector<at::Tensor>> {
  static constexpr size_t count = 1;
  template <typename F>
  static std::vector<at::Tensor> map(const std::vector<at::Tensor>& value, size_t first, F& f) {
    std::vector<at::Tensor> mapped;
    mapped.reserve(value.size());
    for (const auto& element : value) mapped.push_back(f(first, element));
    return mapped;
  }
};

template <typename... T>
struct TensorLeaves<std::tuple<T...>> {
  static constexpr size_t count = (size_t{0} + ... + TensorLeaves<std::decay_t<T>>::count);
  template <typename F>
  static std::tuple<T...> map(const std::tuple<T...>& value, size_t first, F& f) {
    return map_elements(value, first, f, std::index_sequence_for<T...>{});
  }

 private:
  template <size_t I>
  static constexpr size_t offset() {
    constexpr size_t counts[] = {TensorLeaves<std::decay_t<T>>::count..., 0};
    size_t sum = 0;
    for (size_t i = 0; i < I; ++i) sum += counts[i];
    return sum;
  }
  template <typename F, size_t... I>
  static std::tuple<T...> map_elements(const std::tuple<T...>& value, size_t first, F& f,
                                       std::index_sequence<I...>) {
    return std::tuple<T...>(
        TensorLeaves<std::decay_t<T>>::map(std::get<I>(value), first + offset<I>(), f)...);
  }
};

/// The packed data is the leaf; the batch sizes and permutations are kept.
template <>
struct TensorLeaves<torch::nn::utils::rnn::PackedSequence> {
  using PackedSequence = torch::nn::utils::rnn::PackedSequence;
  static constexpr size_t count = 1;
  template <typename F>
  static PackedSequence map(const PackedSequence& value, size_t first, F& f) {
    return PackedSequence(f(first, value.data()), value.batch_sizes(), value.sorted_indices(),
                          value.unsorted_indices());
  }
};

}  // namespace quantsim::nn
