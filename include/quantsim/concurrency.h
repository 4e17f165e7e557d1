#pragma once

/// What quantsim's modules use to be shared between threads (docs/simulation.md, "Threads"):
/// inference on a calibrated model may run on any number of threads at once; calibration,
/// training and set-up of one module may not, and the few places where a second thread can be
/// told apart cheaply use `ExclusiveUse` to make that misuse a c10::Error instead of a data race.

#include <atomic>
#include <thread>

namespace quantsim {

/// A `std::atomic<T>` member that a copyable class can keep: copying reads the value (as the
/// implicit copy of a plain member would), so that Cloneable modules keep their copy constructor.
template <typename T>
class CopyableAtomic : public std::atomic<T> {
 public:
  CopyableAtomic() noexcept : std::atomic<T>(T{}) {}
  CopyableAtomic(T value) noexcept
      : std::atomic<T>(value) {}  // NOLINT(google-explicit-constructor)
  CopyableAtomic(const CopyableAtomic& other) noexcept : std::atomic<T>(other.load()) {}
  CopyableAtomic& operator=(const CopyableAtomic& other) noexcept {
    this->store(other.load());
    return *this;
  }
  using std::atomic<T>::operator=;
};

/// Which thread, if any, is inside something that one thread at a time may do (a module's
/// calibration scope, an analyzer's statistics update). Re-entrant on the holding thread; a claim
/// from a second thread reports `kBusy` so that the caller can raise a c10::Error naming what was
/// misused. Lock-free: one compare-and-swap to claim, one store to release. A copy starts free.
///
///     const auto claim = busy_.try_claim();
///     TORCH_CHECK(claim != ExclusiveUse::Claim::kBusy, name, " is used from two threads at once");
///     ExclusiveUse::Release release(busy_, claim == ExclusiveUse::Claim::kAcquired);
///     ... work ...
class ExclusiveUse {
 public:
  enum class Claim {
    kAcquired,  ///< this thread now holds it; release() when done
    kNested,    ///< this thread already held it; do not release
    kBusy       ///< another thread holds it; nothing changed
  };

  ExclusiveUse() noexcept = default;
  ExclusiveUse(const ExclusiveUse&) noexcept {}
  ExclusiveUse& operator=(const ExclusiveUse&) noexcept { return *this; }

  Claim try_claim() noexcept {
    const auto self = std::this_thread::get_id();
    std::thread::id expected{};
    if (owner_.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) {
      return Claim::kAcquired;
    }
    return expected == self ? Claim::kNested : Claim::kBusy;
  }
  void release() noexcept { owner_.store(std::thread::id{}, std::memory_order_release); }
  /// Releases `use` when it goes out of scope, if `acquired` (a kNested claim must not).
  class Release {
   public:
    Release(ExclusiveUse& use, bool acquired) noexcept : use_(acquired ? &use : nullptr) {}
    Release(const Release&) = delete;
    Release& operator=(const Release&) = delete;
    ~Release() {
      if (use_) use_->release();
    }
    /// Keeps the claim past the scope (it is released elsewhere).
    void dismiss() noexcept { use_ = nullptr; }

   private:
    ExclusiveUse* use_;
  };

  bool held_by_this_thread() const noexcept {
    return owner_.load(std::memory_order_acquire) == std::this_thread::get_id();
  }

 private:
  std::atomic<std::thread::id> owner_{};
};

}  // namespace quantsim
