#include "resilience/lb/weighted_random.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace sluice::resilience {
namespace {

std::size_t lowBit(std::size_t k) { return k & (~k + 1); }

std::size_t largestPowerOfTwoAtMost(std::size_t n) {
  std::size_t step = n == 0 ? 0 : 1;
  while (step != 0 && step <= n / 2) {
    step <<= 1U;
  }
  return step;
}

}  // namespace

WeightedRandom::WeightedRandom(std::vector<std::uint32_t> weights) : weights_(std::move(weights)) {
  rebuild();
}

void WeightedRandom::rebuild() {
  // O(n) construction: each node pushes its sum into its parent once.
  tree_.assign(weights_.size() + 1, 0);
  total_ = 0;
  for (std::size_t k = 1; k <= weights_.size(); ++k) {
    tree_[k] += weights_[k - 1];
    total_ += weights_[k - 1];
    const std::size_t parent = k + lowBit(k);
    if (parent <= weights_.size()) {
      tree_[parent] += tree_[k];
    }
  }
  top_step_ = largestPowerOfTwoAtMost(weights_.size());
  common_weight_ = weights_.empty() ? 0 : weights_[0];
  unequal_ = 0;
  for (const std::uint32_t weight : weights_) {
    unequal_ += weight != common_weight_ ? 1 : 0;
  }
}

void WeightedRandom::setWeight(std::size_t host, std::uint32_t weight) {
  if (host >= weights_.size()) {
    return;
  }
  const std::uint32_t old = weights_[host];
  weights_[host] = weight;
  total_ = total_ - old + weight;
  unequal_ = unequal_ - (old != common_weight_ ? 1 : 0) + (weight != common_weight_ ? 1 : 0);
  // Unsigned wrap-around adds the (possibly negative) difference exactly.
  const std::uint64_t delta = static_cast<std::uint64_t>(weight) - old;
  for (std::size_t k = host + 1; k <= weights_.size(); k += lowBit(k)) {
    tree_[k] += delta;
  }
}

void WeightedRandom::addHost(std::uint32_t weight) {
  if (weights_.empty()) {
    weights_.push_back(weight);
    rebuild();
    return;
  }
  weights_.push_back(weight);
  unequal_ += weight != common_weight_ ? 1 : 0;
  const std::size_t k = weights_.size();
  // Node k covers hosts [k - lowbit(k), k): its own weight plus the nodes that tile the rest of
  // that range, found by walking down from k - 1.
  std::uint64_t sum = weight;
  const std::size_t stop = k - lowBit(k);
  for (std::size_t j = k - 1; j > stop; j -= lowBit(j)) {
    sum += tree_[j];
  }
  tree_.push_back(sum);
  total_ += weight;
  top_step_ = largestPowerOfTwoAtMost(weights_.size());
}

void WeightedRandom::removeHost(std::size_t host) {
  if (host >= weights_.size()) {
    return;
  }
  weights_.erase(weights_.begin() + static_cast<std::ptrdiff_t>(host));
  rebuild();
}

}  // namespace sluice::resilience
