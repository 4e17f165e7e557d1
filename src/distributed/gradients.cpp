// Gradient averaging for data-parallel QAT (docs/distributed.md §4): buckets of one dtype, one
// SUM all-reduce each.

#include <quantsim/distributed/gradients.h>

#include <ATen/ATen.h>
#include <c10/util/irange.h>

#include <map>

namespace quantsim::distributed {

void average_gradients(const std::vector<at::Tensor>& parameters,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group, int64_t bucket_bytes) {
  TORCH_CHECK(group, "average_gradients: no process group");
  TORCH_CHECK_VALUE(bucket_bytes > 0, "average_gradients: bucket_bytes must be > 0, got ",
                    bucket_bytes);
  // Buckets in parameter order, one open bucket per dtype: the same on every rank.
  std::vector<std::vector<at::Tensor>> buckets;
  std::map<at::ScalarType, std::pair<size_t, int64_t>> open;  // dtype -> (bucket, bytes)
  for (const auto& p : parameters) {
    // Empty tensors are skipped alike on every rank (Gloo cannot reduce an empty tensor).
    if (!p.defined() || !p.requires_grad() || p.numel() == 0) continue;
    auto& grad = p.mutable_grad();
    if (!grad.defined()) grad = at::zeros_like(p);
    const int64_t bytes = grad.numel() * static_cast<int64_t>(grad.element_size());
    auto it = open.find(grad.scalar_type());
    if (it == open.end() || it->second.second + bytes > bucket_bytes) {
      buckets.emplace_back();
      it = open.insert_or_assign(grad.scalar_type(), std::make_pair(buckets.size() - 1, int64_t{0}))
               .first;
    }
    buckets[it->second.first].push_back(grad);
    it->second.second += bytes;
  }
  const double world = group->getSize();
  for (auto& bucket : buckets) {
    auto packed = at::cat(c10::fmap(bucket, [](const at::Tensor& g) { return g.reshape({-1}); }));
    // Gloo has no bfloat16 reduction: such gradients travel (and are summed) in float32.
    if (packed.scalar_type() == at::kBFloat16) packed = packed.to(at::kFloat);
    std::vector<at::Tensor> flat{packed};
    wait_for(group->allreduce(flat), *group, "average_gradients: all-reduce");
    flat[0].div_(world);
    int64_t at_ = 0;
    for (auto& g : bucket) {
      g.detach().copy_(flat[0].slice(0, at_, at_ + g.numel()).view_as(g));
      at_ += g.numel();
    }
  }
}

void average_gradients(torch::nn::Module& module,
                       const c10::intrusive_ptr<c10d::ProcessGroup>& group, int64_t bucket_bytes) {
  average_gradients(module.parameters(), group, bucket_bytes);
}

void broadcast_state(torch::nn::Module& module, const c10::intrusive_ptr<c10d::ProcessGroup>& group,
                     int root) {
  TORCH_CHECK(group, "broadcast_state: no process group");
  c10d::BroadcastOptions options;
  options.rootRank = root;
  auto tensors = module.parameters();
  for (const auto& b : module.buffers()) tensors.push_back(b);
  at::NoGradGuard no_grad;
  for (auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;  // alike on every rank
    std::vector<at::Tensor> one{t.detach().contiguous()};
    wait_for(group->broadcast(one, options), *group, "broadcast_state");
    if (!t.is_contiguous()) t.detach().copy_(one[0]);
  }
}

}  // namespace quantsim::distributed
