#include <quantsim/nn/quantizer_slots.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>

namespace quantsim::nn {

QuantizerSlot& QuantizerSlot::operator=(std::shared_ptr<QuantizerBase> quantizer) {
  owner_->set(key_, std::move(quantizer));
  return *this;
}

std::shared_ptr<QuantizerBase> QuantizerSlot::get() const { return owner_->at(key_); }

QuantizerBase* QuantizerSlot::operator->() const {
  auto quantizer = get();
  TORCH_CHECK(quantizer != nullptr, "quantizer slot ", key_, " is empty");
  return quantizer.get();
}

QuantizerSlotsImpl::QuantizerSlotsImpl(std::string kind, std::vector<std::string> keys)
    : torch::nn::Module("quantsim::nn::QuantizerSlots"),
      kind_(std::move(kind)),
      keys_(std::move(keys)),
      slots_(keys_.size()) {}

QuantizerSlot QuantizerSlotsImpl::slot_at(uint64_t index) {
  TORCH_CHECK_INDEX(index < keys_.size(), kind_, "[", index, "]: the module has ", keys_.size(),
                    " slot", keys_.size() == 1 ? "" : "s");
  return QuantizerSlot(this, keys_[index]);
}

std::shared_ptr<QuantizerBase> QuantizerSlotsImpl::at(size_t index) const {
  TORCH_CHECK_INDEX(index < keys_.size(), kind_, "[", index, "]: the module has ", keys_.size(),
                    " slot", keys_.size() == 1 ? "" : "s");
  return slots_[index];
}

QuantizerSlot QuantizerSlotsImpl::operator[](const std::string& key) {
  return QuantizerSlot(this, checked_key(key));
}

bool QuantizerSlotsImpl::contains(const std::string& key) const {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

const std::string& QuantizerSlotsImpl::checked_key(const std::string& key) const {
  const auto found = std::find(keys_.begin(), keys_.end(), key);
  if (found == keys_.end()) {
    std::ostringstream names;
    for (size_t i = 0; i < keys_.size(); ++i) names << (i ? ", " : "") << '"' << keys_[i] << '"';
    TORCH_CHECK_INDEX(false, kind_, "[\"", key, "\"]: no such slot; the slots are {", names.str(),
                      "}");
  }
  return *found;
}

std::shared_ptr<QuantizerBase> QuantizerSlotsImpl::at(const std::string& key) const {
  const auto found = std::find(keys_.begin(), keys_.end(), key);
  if (found == keys_.end()) checked_key(key);  // raises, naming the keys
  return slots_[found - keys_.begin()];
}

std::vector<std::shared_ptr<QuantizerBase>> QuantizerSlotsImpl::unique_quantizers() const {
  std::vector<std::shared_ptr<QuantizerBase>> unique;
  for (const auto& quantizer : slots_) {
    if (quantizer && std::find(unique.begin(), unique.end(), quantizer) == unique.end()) {
      unique.push_back(quantizer);
    }
  }
  return unique;
}

void QuantizerSlotsImpl::set(const std::string& key, std::shared_ptr<QuantizerBase> quantizer) {
  const auto found = std::find(keys_.begin(), keys_.end(), checked_key(key));
  slots_[found - keys_.begin()] = std::move(quantizer);
  update_registration();
}

void QuantizerSlotsImpl::clear() {
  std::fill(slots_.begin(), slots_.end(), nullptr);
  update_registration();
}

void QuantizerSlotsImpl::update_registration() {
  for (const auto& key : keys_) {
    if (named_children().contains(key)) unregister_module(key);
  }
  std::vector<QuantizerBase*> registered;
  for (size_t i = 0; i < keys_.size(); ++i) {
    auto* quantizer = slots_[i].get();
    if (!quantizer ||
        std::find(registered.begin(), registered.end(), quantizer) != registered.end()) {
      continue;
    }
    registered.push_back(quantizer);
    register_module(keys_[i], std::shared_ptr<torch::nn::Module>(slots_[i]));
  }
}

void QuantizerSlotsImpl::pretty_print(std::ostream& stream) const {
  // As the reference prints its containers.
  stream << (kind_ == "param_quantizers" ? "ModuleDict" : "ModuleList");
}

}  // namespace quantsim::nn
