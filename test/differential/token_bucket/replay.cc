// Replays scenarios recorded from Go's golang.org/x/time/rate (gen.go) against
// resilience::TokenBucket and reports every answer that differs. Exit status 0 when all agree.
//
//   go run gen.go -seed 1 -n 2000 | token_bucket_replay
//
// Decisions (allowed or not, a reservation's delay) must agree exactly, up to the rounding of a
// wait to whole nanoseconds (Go truncates, sluice rounds up: 2 ns). Token counts must agree to
// 1e-6 relative: Go keeps float64 tokens, sluice fixed point rounded toward fewer tokens.
// With an unlimited rate Go reports a meaningless finite count and sluice +infinity: not
// compared.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "resilience/token_bucket.h"

namespace {

using sluice::resilience::Duration;
using sluice::resilience::TimePoint;
using sluice::resilience::TokenBucket;

constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(24);

double parseDouble(const std::string& s) {
  return s == "inf" ? std::numeric_limits<double>::infinity() : std::stod(s);
}

class Replay {
 public:
  int run(std::istream& in) {
    std::string line;
    while (std::getline(in, line)) {
      ++line_no_;
      std::istringstream f(line);
      std::string op;
      f >> op;
      if (op == "scenario") {
        double rate = 0;
        std::string rate_s;
        std::uint64_t burst = 0;
        f >> scenario_ >> rate_s >> burst;
        rate = parseDouble(rate_s);
        reservations_.clear();
        max_rate_ = std::isinf(rate) ? 0 : rate;
        bucket_.reset();
        bucket_ = std::make_unique<TokenBucket>(
            TokenBucket::Settings{.rate_per_second = rate, .burst = burst}, kStart);
        ++scenarios_;
        continue;
      }
      if (op == "end" || op.empty()) {
        continue;
      }
      ++ops_;
      std::int64_t t_ns = 0;
      f >> t_ns;
      const TimePoint now = kStart + Duration{t_ns};
      if (op == "allow") {
        std::uint64_t n = 0;
        int ok = 0;
        std::string tokens;
        f >> n >> ok >> tokens;
        const bool got = bucket_->tryAcquire(n, now);
        expectDecision(line, got, ok != 0);
        expectTokens(line, now, parseDouble(tokens));
      } else if (op == "reserve") {
        std::uint64_t n = 0;
        std::string max_wait_s;
        std::string tokens;
        int ok = 0;
        std::int64_t delay = 0;
        f >> n >> max_wait_s >> ok >> delay >> tokens;
        const Duration max_wait =
            max_wait_s == "inf" ? Duration::max() : Duration{std::stoll(max_wait_s)};
        reservations_.push_back(bucket_->reserve(n, now, max_wait));
        const TokenBucket::Reservation& r = reservations_.back();
        expectDecision(line, r.ok(), ok != 0);
        if (r.ok() && ok != 0) {
          const std::int64_t got = r.delay(now).count();
          if (std::fabs(static_cast<double>(got - delay)) >
              delaySlack(static_cast<double>(delay), parseDouble(tokens))) {
            fail(line, "delay " + std::to_string(got) + " ns");
          }
        }
        expectTokens(line, now, parseDouble(tokens));
      } else if (op == "cancel") {
        std::size_t idx = 0;
        std::string tokens;
        f >> idx >> tokens;
        if (idx < reservations_.size()) {
          reservations_[idx].cancel(now);
        }
        expectTokens(line, now, parseDouble(tokens));
      } else if (op == "setrate") {
        std::string rate_s;
        std::string tokens;
        f >> rate_s >> tokens;
        const double rate = parseDouble(rate_s);
        bucket_->setRate(rate, now);
        max_rate_ = std::max(max_rate_, std::isinf(rate) ? 0 : rate);
        expectTokens(line, now, parseDouble(tokens));
      } else if (op == "setburst") {
        std::uint64_t burst = 0;
        std::string tokens;
        f >> burst >> tokens;
        bucket_->setBurst(burst, now);
        expectTokens(line, now, parseDouble(tokens));
      } else {
        std::cerr << "line " << line_no_ << ": unknown record '" << op << "'\n";
        return 2;
      }
    }
    std::printf("token bucket vs Go x/time/rate: %d scenarios, %d operations, %d mismatches\n",
                scenarios_, ops_, mismatches_);
    return mismatches_ == 0 && ops_ > 0 ? 0 : 1;
  }

 private:
  void expectDecision(const std::string& line, bool got, bool want) {
    if (got != want) {
      fail(line, std::string("sluice ") + (got ? "allowed" : "refused"));
    }
  }

  // Go's clock has whole ns, and a cancel subtracts two times that each side rounds to whole
  // ns its own way (4 ns of tokens, at the highest rate the scenario has had: the error stays
  // after the rate drops); Go's tokens are float64, sluice's fixed point rounded toward fewer.
  [[nodiscard]] double tokenSlack(double tokens) const {
    return 1e-6 * std::max(1.0, std::fabs(tokens)) + max_rate_ * 4e-9;
  }

  // The same slack in time, plus Go's truncation of waits to whole ns where sluice rounds up
  // (2 ns), plus sluice's token interval, rounded up by up to 2^-29 of itself (token_bucket.h,
  // "Precision"), which long waits for many tokens multiply.
  [[nodiscard]] double delaySlack(double delay_ns, double tokens) const {
    return 2.0 + tokenSlack(tokens) * 1e9 / bucket_->settings().rate_per_second +
           delay_ns * 0x1p-29;
  }

  void expectTokens(const std::string& line, TimePoint now, double want) {
    const double rate = bucket_->settings().rate_per_second;
    if (std::isinf(rate)) {
      return;
    }
    const double got = bucket_->tokens(now);
    if (std::fabs(got - want) > tokenSlack(want)) {
      std::ostringstream text;
      text.precision(12);
      text << "tokens " << got;
      fail(line, text.str());
    }
  }

  void fail(const std::string& line, const std::string& got) {
    // Later answers of a scenario that already diverged add nothing: report its first only.
    if (failed_scenario_ == scenario_) {
      return;
    }
    failed_scenario_ = scenario_;
    ++mismatches_;
    if (mismatches_ <= 20) {
      std::cerr << "scenario " << scenario_ << " line " << line_no_ << ": Go '" << line << "', "
                << got << "\n";
    }
  }

  std::unique_ptr<TokenBucket> bucket_;
  std::vector<TokenBucket::Reservation> reservations_;
  double max_rate_ = 0;
  int scenario_ = -1;
  int failed_scenario_ = -1;
  int scenarios_ = 0;
  int ops_ = 0;
  int mismatches_ = 0;
  int line_no_ = 0;
};

}  // namespace

int main() {
  Replay replay;
  return replay.run(std::cin);
}
