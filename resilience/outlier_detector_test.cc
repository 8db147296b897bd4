#include "resilience/outlier_detector.h"

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/testing_time.h"

namespace sluice::resilience {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;
using HostOutcome = OutlierDetector::Outcome;
using Reason = OutlierDetector::Reason;
using HostId = OutlierDetector::HostId;

// Consecutive 5xx only, no cap in the way (100 %), base 30 s, max 100 s.
OutlierDetector::Settings consecutiveOnly(std::uint32_t consecutive_5xx = 5) {
  OutlierDetector::Settings s;
  s.consecutive_5xx = consecutive_5xx;
  s.failure_percentage_threshold = std::nullopt;
  s.max_ejection_percent = 100;
  s.base_ejection_time = seconds(30);
  s.max_ejection_time = seconds(100);
  return s;
}

std::vector<HostId> addHosts(OutlierDetector& d, int n) {
  std::vector<HostId> ids;
  ids.reserve(n);

  for (int i = 0; i < n; ++i) {
    ids.push_back(d.addHost());
  }
  return ids;
}

std::optional<Reason> fail(OutlierDetector& d, HostId h, int times, TimePoint now,
                           HostOutcome outcome = HostOutcome::ServerError) {
  std::optional<Reason> last;
  for (int i = 0; i < times; ++i) {
    last = d.record(h, outcome, now);
  }
  return last;
}

TEST(OutlierDetector, ValidateExplainsBadSettings) {
  EXPECT_EQ(OutlierDetector::validate(OutlierDetector::Settings{}), std::nullopt);
  auto s = OutlierDetector::Settings{};
  s.interval = Duration::zero();
  EXPECT_EQ(OutlierDetector::validate(s), "interval must be positive");
  s = OutlierDetector::Settings{};
  s.base_ejection_time = Duration::zero();
  EXPECT_EQ(OutlierDetector::validate(s), "base_ejection_time must be positive");
  s = OutlierDetector::Settings{};
  s.max_ejection_time = seconds(1);
  EXPECT_EQ(OutlierDetector::validate(s), "max_ejection_time must be at least base_ejection_time");
  s = OutlierDetector::Settings{};
  s.max_ejection_percent = 101;
  EXPECT_EQ(OutlierDetector::validate(s), "max_ejection_percent must be in [0, 100]");
  s = OutlierDetector::Settings{};
  s.failure_percentage_threshold = 0.0;
  EXPECT_EQ(OutlierDetector::validate(s), "failure_percentage_threshold must be in (0, 100]");
}

TEST(OutlierDetector, ClassifiesHttpStatuses) {
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(200), HostOutcome::Success);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(404), HostOutcome::Success);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(499), HostOutcome::Success);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(500), HostOutcome::ServerError);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(501), HostOutcome::ServerError);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(502), HostOutcome::GatewayFailure);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(503), HostOutcome::GatewayFailure);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(504), HostOutcome::GatewayFailure);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(505), HostOutcome::ServerError);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(599), HostOutcome::ServerError);
  EXPECT_EQ(OutlierDetector::classifyHttpStatus(600), HostOutcome::Success);
}

// Verifies the consecutive boundary: 4 failures in a row keep the host, the 5th ejects it.
TEST(OutlierDetector, EjectsOnTheNthConsecutive5xx) {
  OutlierDetector d(consecutiveOnly(5), kT0);
  const HostId h = d.addHost();
  EXPECT_EQ(fail(d, h, 4, kT0), std::nullopt);
  EXPECT_FALSE(d.isEjected(h, kT0));
  EXPECT_EQ(d.record(h, HostOutcome::GatewayFailure, kT0), Reason::Consecutive5xx);
  EXPECT_TRUE(d.isEjected(h, kT0));
}

TEST(OutlierDetector, SuccessResetsTheRun) {
  OutlierDetector d(consecutiveOnly(3), kT0);
  const HostId h = d.addHost();
  (void)fail(d, h, 2, kT0);
  (void)d.record(h, HostOutcome::Success, kT0);
  EXPECT_EQ(fail(d, h, 2, kT0), std::nullopt);
  EXPECT_EQ(d.record(h, HostOutcome::ServerError, kT0), Reason::Consecutive5xx);
}

TEST(OutlierDetector, GatewayRunIsBrokenByOtherOutcomes) {
  auto s = consecutiveOnly(0);
  s.consecutive_gateway_failure = 3;
  OutlierDetector d(s, kT0);
  const HostId h = d.addHost();
  (void)fail(d, h, 2, kT0, HostOutcome::GatewayFailure);
  (void)d.record(h, HostOutcome::ServerError, kT0);  // a 500 breaks a 502/503/504 run
  EXPECT_EQ(fail(d, h, 2, kT0, HostOutcome::GatewayFailure), std::nullopt);
  EXPECT_EQ(d.record(h, HostOutcome::GatewayFailure, kT0), Reason::ConsecutiveGatewayFailure);
}

TEST(OutlierDetector, DisabledDetectorsNeverEject) {
  auto s = consecutiveOnly(0);
  OutlierDetector d(s, kT0);
  const HostId h = d.addHost();
  EXPECT_EQ(fail(d, h, 1000, kT0, HostOutcome::GatewayFailure), std::nullopt);
  EXPECT_TRUE(d.evaluate(kT0 + seconds(10)).empty());
}

// Verifies the readmission boundary: ejected at until - 1 ns, readmitted at until.
TEST(OutlierDetector, ReadmitsExactlyWhenTheEjectionTimeIsUp) {
  OutlierDetector d(consecutiveOnly(1), kT0);
  const HostId h = d.addHost();
  (void)d.record(h, HostOutcome::ServerError, kT0);
  EXPECT_EQ(d.hostStatus(h, kT0)->ejected_until, kT0 + seconds(30));
  EXPECT_TRUE(d.isEjected(h, kT0 + seconds(30) - nanoseconds(1)));
  EXPECT_FALSE(d.isEjected(h, kT0 + seconds(30)));
  EXPECT_EQ(d.ejectedCount(kT0 + seconds(30)), 0U);
}

TEST(OutlierDetector, OutcomesAgainstAnEjectedHostAreIgnored) {
  OutlierDetector d(consecutiveOnly(2), kT0);
  const HostId h = d.addHost();
  (void)fail(d, h, 2, kT0);
  (void)fail(d, h, 50, kT0 + seconds(1));
  const auto status = d.hostStatus(h, kT0 + seconds(1));
  EXPECT_EQ(status->times_ejected, 1U);
  EXPECT_EQ(status->consecutive_5xx, 0U);
  EXPECT_EQ(status->interval_requests, 2U);
}

TEST(OutlierDetector, ConsecutiveRunsStartAfreshAfterReadmission) {
  OutlierDetector d(consecutiveOnly(3), kT0);
  const HostId h = d.addHost();
  (void)fail(d, h, 3, kT0);
  const TimePoint back = kT0 + seconds(30);
  EXPECT_EQ(fail(d, h, 2, back), std::nullopt);
  EXPECT_EQ(d.record(h, HostOutcome::ServerError, back), Reason::Consecutive5xx);
}

TEST(OutlierDetector, EjectionTimeGrowsWithEachEjectionUpToTheCap) {
  OutlierDetector d(consecutiveOnly(1), kT0);  // base 30 s, max 100 s -> m at most 4
  const HostId h = d.addHost();
  TimePoint now = kT0;
  std::vector<Duration> durations;
  for (int i = 0; i < 6; ++i) {
    (void)d.record(h, HostOutcome::ServerError, now);
    const TimePoint until = d.hostStatus(h, now)->ejected_until;
    durations.push_back(until - now);
    now = until;  // fail again the moment it is back (no sweep in between: no decay)
  }
  EXPECT_EQ(durations, (std::vector<Duration>{seconds(30), seconds(60), seconds(90), seconds(100),
                                              seconds(100), seconds(100)}));
  EXPECT_EQ(d.hostStatus(h, now)->multiplier, 4U);
  EXPECT_EQ(d.hostStatus(h, now)->times_ejected, 6U);
}

TEST(OutlierDetector, MultiplierDecaysOncePerIntervalWhileTheHostIsHealthy) {
  auto s = consecutiveOnly(1);
  s.interval = seconds(10);
  OutlierDetector d(s, kT0);
  const HostId h = d.addHost();
  (void)d.record(h, HostOutcome::ServerError, kT0);                // m = 1, until +30 s
  (void)d.record(h, HostOutcome::ServerError, kT0 + seconds(30));  // m = 2, until +60 s
  const TimePoint back = kT0 + seconds(90);
  EXPECT_EQ(d.hostStatus(h, back)->multiplier, 2U);
  // A sweep less than one interval after readmission does not forgive yet.
  (void)d.evaluate(back + seconds(10) - nanoseconds(1));
  EXPECT_EQ(d.hostStatus(h, back)->multiplier, 2U);
  (void)d.evaluate(back + seconds(20));
  EXPECT_EQ(d.hostStatus(h, back)->multiplier, 1U);
  (void)d.evaluate(back + seconds(30));
  EXPECT_EQ(d.hostStatus(h, back)->multiplier, 0U);
  (void)d.evaluate(back + seconds(40));
  EXPECT_EQ(d.hostStatus(h, back)->multiplier, 0U);
  // Forgiven: the next ejection is back to the base time.
  (void)d.record(h, HostOutcome::ServerError, back + seconds(41));
  EXPECT_EQ(d.hostStatus(h, back + seconds(41))->ejected_until, back + seconds(71));
}

// Verifies the cap boundary (ejected + 1) * 100 <= max_percent * hosts with 10 %: 9 hosts allow
// no ejection, 10 hosts allow one, and not two.
TEST(OutlierDetector, MaxEjectionPercentCapsEjections) {
  auto s = consecutiveOnly(1);
  s.max_ejection_percent = 10;
  {
    OutlierDetector d(s, kT0);
    const auto hosts = addHosts(d, 9);
    EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), std::nullopt);
    EXPECT_EQ(d.ejectedCount(kT0), 0U);
  }
  {
    OutlierDetector d(s, kT0);
    const auto hosts = addHosts(d, 10);
    EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), Reason::Consecutive5xx);
    EXPECT_EQ(d.record(hosts[1], HostOutcome::ServerError, kT0), std::nullopt);
    EXPECT_EQ(d.ejectedCount(kT0), 1U);
    // Once the first host is back, the second may go.
    EXPECT_EQ(d.record(hosts[1], HostOutcome::ServerError, kT0 + seconds(30)),
              Reason::Consecutive5xx);
  }
}

TEST(OutlierDetector, AlwaysEjectOneHostLiftsTheCapForTheFirst) {
  auto s = consecutiveOnly(1);
  s.max_ejection_percent = 10;
  s.always_eject_one_host = true;
  OutlierDetector d(s, kT0);
  const auto hosts = addHosts(d, 3);
  EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), Reason::Consecutive5xx);
  EXPECT_EQ(d.record(hosts[1], HostOutcome::ServerError, kT0), std::nullopt);
}

TEST(OutlierDetector, ZeroPercentNeverEjects) {
  auto s = consecutiveOnly(1);
  s.max_ejection_percent = 0;
  OutlierDetector d(s, kT0);
  const auto hosts = addHosts(d, 100);
  EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), std::nullopt);
}

TEST(OutlierDetector, RemovingAnEjectedHostFreesTheCap) {
  auto s = consecutiveOnly(1);
  s.max_ejection_percent = 50;
  OutlierDetector d(s, kT0);
  const auto hosts = addHosts(d, 2);
  EXPECT_TRUE(d.record(hosts[0], HostOutcome::ServerError, kT0));
  EXPECT_TRUE(d.removeHost(hosts[0]));
  EXPECT_FALSE(d.removeHost(hosts[0]));
  const HostId fresh = d.addHost();
  EXPECT_NE(fresh, hosts[0]);  // ids are never reused
  EXPECT_TRUE(d.record(hosts[1], HostOutcome::ServerError, kT0));
  EXPECT_FALSE(d.isEjected(hosts[0], kT0));  // unknown
  EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), std::nullopt);
  EXPECT_EQ(d.hostStatus(hosts[0], kT0), std::nullopt);
}

// Failure-percentage: 5 hosts x 100 requests; threshold 85 %.
class FailurePercentage : public ::testing::Test {
 protected:
  FailurePercentage() : detector_(settings(), kT0), hosts_(addHosts(detector_, 5)) {}

  static OutlierDetector::Settings settings() {
    OutlierDetector::Settings s;
    s.consecutive_5xx = 0;
    s.failure_percentage_threshold = 85.0;
    s.failure_percentage_minimum_hosts = 5;
    s.failure_percentage_request_volume = 50;
    s.max_ejection_percent = 100;
    s.interval = seconds(10);
    return s;
  }

  void load(HostId h, int failures, int successes) {
    for (int i = 0; i < failures; ++i) {
      (void)detector_.record(h, HostOutcome::ServerError, kT0);
    }
    for (int i = 0; i < successes; ++i) {
      (void)detector_.record(h, HostOutcome::Success, kT0);
    }
  }

  OutlierDetector detector_;
  std::vector<HostId> hosts_;
};

// Verifies the percentage boundary: 85 of 100 failed is ejected, 84 of 100 is not.
TEST_F(FailurePercentage, EjectsAtTheThresholdNotBelow) {
  load(hosts_[0], 85, 15);
  load(hosts_[1], 84, 16);
  for (int i = 2; i < 5; ++i) {
    load(hosts_[i], 0, 100);
  }
  const auto ejections = detector_.evaluate(kT0 + seconds(10));
  ASSERT_EQ(ejections.size(), 1U);
  EXPECT_EQ(ejections[0].host, hosts_[0]);
  EXPECT_EQ(ejections[0].reason, Reason::FailurePercentage);
  EXPECT_EQ(ejections[0].until, kT0 + seconds(10) + seconds(30));
  EXPECT_TRUE(detector_.isEjected(hosts_[0], kT0 + seconds(10)));
  EXPECT_FALSE(detector_.isEjected(hosts_[1], kT0 + seconds(10)));
}

TEST_F(FailurePercentage, NeedsTheMinimumNumberOfHostsWithEnoughVolume) {
  load(hosts_[0], 100, 0);
  for (int i = 1; i < 4; ++i) {
    load(hosts_[i], 0, 100);
  }
  load(hosts_[4], 0, 49);  // one request short of the volume: only 4 hosts qualify
  EXPECT_TRUE(detector_.evaluate(kT0 + seconds(10)).empty());
}

TEST_F(FailurePercentage, HostsBelowTheVolumeAreNotJudged) {
  load(hosts_[0], 49, 0);  // 100 % failures but only 49 requests
  for (int i = 1; i < 5; ++i) {
    load(hosts_[i], 0, 50);
  }
  EXPECT_TRUE(detector_.evaluate(kT0 + seconds(10)).empty());
}

TEST_F(FailurePercentage, SweepRunsOnlyWhenDueAndStartsANewInterval) {
  load(hosts_[0], 100, 0);
  for (int i = 1; i < 5; ++i) {
    load(hosts_[i], 0, 100);
  }
  EXPECT_EQ(detector_.nextEvaluation(), kT0 + seconds(10));
  EXPECT_TRUE(detector_.evaluate(kT0 + seconds(10) - nanoseconds(1)).empty());
  EXPECT_EQ(detector_.evaluate(kT0 + seconds(10)).size(), 1U);
  EXPECT_EQ(detector_.nextEvaluation(), kT0 + seconds(20));
  EXPECT_EQ(detector_.hostStatus(hosts_[1], kT0 + seconds(10))->interval_requests, 0U);
}

TEST_F(FailurePercentage, CapEjectsTheWorstHostsFirst) {
  auto s = settings();
  s.max_ejection_percent = 20;  // one host of five
  OutlierDetector d(s, kT0);
  const auto hosts = addHosts(d, 5);
  for (int i = 0; i < 90; ++i) {
    (void)d.record(hosts[0], HostOutcome::ServerError, kT0);
  }
  for (int i = 0; i < 10; ++i) {
    (void)d.record(hosts[0], HostOutcome::Success, kT0);
  }
  for (int i = 0; i < 100; ++i) {
    (void)d.record(hosts[3], HostOutcome::ServerError, kT0);
  }
  for (int i : {1, 2, 4}) {
    for (int k = 0; k < 100; ++k) {
      (void)d.record(hosts[i], HostOutcome::Success, kT0);
    }
  }
  const auto ejections = d.evaluate(kT0 + seconds(10));
  ASSERT_EQ(ejections.size(), 1U);
  EXPECT_EQ(ejections[0].host, hosts[3]);  // 100 % beats 90 %
}

// Property: over seeded random traffic on 20 hosts, the ejected count never exceeds the cap and
// every ejection lasts between base and max ejection time.
TEST(OutlierDetector, NeverExceedsTheCapUnderRandomTraffic) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    std::mt19937_64 rng(seed);
    OutlierDetector::Settings s;
    s.consecutive_5xx = 3;
    s.consecutive_gateway_failure = 2;
    s.failure_percentage_threshold = 40.0;
    s.failure_percentage_minimum_hosts = 3;
    s.failure_percentage_request_volume = 5;
    s.max_ejection_percent = 25;
    s.interval = seconds(1);
    s.base_ejection_time = seconds(2);
    s.max_ejection_time = seconds(7);
    OutlierDetector d(s, kT0);
    const auto hosts = addHosts(d, 20);
    TimePoint now = kT0;
    for (int step = 0; step < 20000; ++step) {
      now += std::chrono::milliseconds(rng() % 5);
      const HostId h = hosts[rng() % hosts.size()];
      const auto roll = rng() % 10;
      const HostOutcome outcome = roll < 6   ? HostOutcome::Success
                                  : roll < 8 ? HostOutcome::ServerError
                                             : HostOutcome::GatewayFailure;
      if (d.record(h, outcome, now)) {
        const Duration length = d.hostStatus(h, now)->ejected_until - now;
        ASSERT_GE(length, seconds(2));
        ASSERT_LE(length, seconds(7));
      }
      for (const auto& e : d.evaluate(now)) {
        ASSERT_GE(e.until - now, seconds(2));
        ASSERT_LE(e.until - now, seconds(7));
      }
      ASSERT_LE(d.ejectedCount(now) * 100, 25U * hosts.size()) << "seed " << seed;
    }
  }
}

TEST(OutlierDetectorStress, ConcurrentRecordsAndSweepsKeepTheCap) {
  OutlierDetector::Settings s;
  s.consecutive_5xx = 2;
  s.failure_percentage_threshold = 30.0;
  s.failure_percentage_minimum_hosts = 2;
  s.failure_percentage_request_volume = 5;
  s.max_ejection_percent = 30;
  s.interval = std::chrono::milliseconds(100);
  s.base_ejection_time = std::chrono::milliseconds(300);
  ManualClock clock;
  OutlierDetector d(s, clock.now());
  const auto hosts = addHosts(d, 10);
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  threads.reserve(3);

  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 11);
      for (int i = 0; i < 5000; ++i) {
        const TimePoint now = clock.now();
        (void)d.record(hosts[rng() % hosts.size()],
                       rng() % 2 == 0 ? HostOutcome::Success : HostOutcome::ServerError, now);
        if (d.ejectedCount(now) * 100 > 30U * hosts.size()) {
          violations.fetch_add(1);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      clock.advance(std::chrono::milliseconds(7));
      (void)d.evaluate(clock.now());
      std::this_thread::yield();
    }
  });
  for (int t = 0; t < 3; ++t) {
    threads[t].join();
  }
  stop.store(true);
  threads.back().join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(d.hostCount(), 10U);
}

// ---- reconfigure ---------------------------------------------------------------------------

// Verifies: an ejection in progress keeps its readmission time and multiplier under new ejection
// times; the next ejection uses the new base with the multiplier kept.
TEST(OutlierDetector, ReconfigureKeepsEjectionsAndTheirEndTime) {
  OutlierDetector d(consecutiveOnly(3), kT0);
  const auto hosts = addHosts(d, 2);
  ASSERT_EQ(fail(d, hosts[0], 3, kT0), Reason::Consecutive5xx);  // until kT0 + 30 s
  auto s = consecutiveOnly(3);
  s.base_ejection_time = seconds(5);
  s.max_ejection_time = seconds(50);
  d.reconfigure(s, kT0 + seconds(1));
  EXPECT_EQ(d.settings().base_ejection_time, seconds(5));
  const auto status = d.hostStatus(hosts[0], kT0 + seconds(1));
  EXPECT_EQ(status->ejected_until, kT0 + seconds(30));
  EXPECT_EQ(status->multiplier, 1U);
  EXPECT_TRUE(d.isEjected(hosts[0], kT0 + seconds(29)));
  EXPECT_FALSE(d.isEjected(hosts[0], kT0 + seconds(30)));
  ASSERT_EQ(fail(d, hosts[0], 3, kT0 + seconds(30)), Reason::Consecutive5xx);  // m = 2
  EXPECT_EQ(d.hostStatus(hosts[0], kT0 + seconds(30))->ejected_until, kT0 + seconds(40));
}

// Verifies: multipliers are capped at the new ceil(max / base).
TEST(OutlierDetector, ReconfigureCapsMultipliersAtTheNewMaximum) {
  OutlierDetector d(consecutiveOnly(1), kT0);  // 30 s, max 100 s: m up to 4
  const HostId host = d.addHost();
  TimePoint t = kT0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(fail(d, host, 1, t), Reason::Consecutive5xx);
    t = d.hostStatus(host, t)->ejected_until;
  }
  ASSERT_EQ(d.hostStatus(host, t)->multiplier, 3U);
  auto s = consecutiveOnly(1);
  s.base_ejection_time = seconds(10);
  s.max_ejection_time = seconds(20);  // m up to 2
  d.reconfigure(s, t);
  EXPECT_EQ(d.hostStatus(host, t)->multiplier, 2U);
  ASSERT_EQ(fail(d, host, 1, t), Reason::Consecutive5xx);
  EXPECT_EQ(d.hostStatus(host, t)->ejected_until, t + seconds(20));
}

// Verifies: consecutive runs survive; a run already at a lowered threshold ejects at the next
// failure (not at reconfigure), and a success still resets a run.
TEST(OutlierDetector, ReconfigureKeepsConsecutiveRunsForALowerThreshold) {
  OutlierDetector d(consecutiveOnly(5), kT0);
  const auto hosts = addHosts(d, 2);
  EXPECT_EQ(fail(d, hosts[0], 3, kT0), std::nullopt);
  EXPECT_EQ(fail(d, hosts[1], 3, kT0), std::nullopt);
  d.reconfigure(consecutiveOnly(3), kT0);
  EXPECT_EQ(d.hostStatus(hosts[0], kT0)->consecutive_5xx, 3U);
  EXPECT_FALSE(d.isEjected(hosts[0], kT0));
  EXPECT_EQ(d.record(hosts[0], HostOutcome::ServerError, kT0), Reason::Consecutive5xx);
  EXPECT_EQ(d.record(hosts[1], HostOutcome::Success, kT0), std::nullopt);
  EXPECT_EQ(fail(d, hosts[1], 2, kT0), std::nullopt);
  EXPECT_EQ(fail(d, hosts[1], 1, kT0), Reason::Consecutive5xx);
}

// Verifies: under a raised threshold the run continues from where it was.
TEST(OutlierDetector, ReconfigureKeepsConsecutiveRunsForAHigherThreshold) {
  OutlierDetector d(consecutiveOnly(5), kT0);
  const HostId host = d.addHost();
  EXPECT_EQ(fail(d, host, 4, kT0, HostOutcome::GatewayFailure), std::nullopt);
  d.reconfigure(consecutiveOnly(8), kT0);
  EXPECT_EQ(fail(d, host, 3, kT0, HostOutcome::GatewayFailure), std::nullopt);
  EXPECT_EQ(fail(d, host, 1, kT0, HostOutcome::GatewayFailure), Reason::Consecutive5xx);
}

// Verifies: a lower cap keeps the hosts already ejected and blocks new ejections until enough
// are readmitted.
TEST(OutlierDetector, ReconfigureToALowerCapKeepsEjectedHosts) {
  OutlierDetector d(consecutiveOnly(1), kT0);
  const auto hosts = addHosts(d, 4);
  ASSERT_TRUE(fail(d, hosts[0], 1, kT0));
  ASSERT_TRUE(fail(d, hosts[1], 1, kT0));
  auto s = consecutiveOnly(1);
  s.max_ejection_percent = 25;
  d.reconfigure(s, kT0);
  EXPECT_EQ(d.ejectedCount(kT0), 2U);
  EXPECT_EQ(fail(d, hosts[2], 1, kT0), std::nullopt);
  EXPECT_EQ(fail(d, hosts[2], 1, kT0 + seconds(30)), Reason::Consecutive5xx);  // 2 readmitted
}

// Verifies: a shorter interval brings the due sweep forward; a longer one keeps it.
TEST(OutlierDetector, ReconfigureNeverDelaysTheDueSweep) {
  auto s = consecutiveOnly();  // interval 10 s
  OutlierDetector d(s, kT0);
  s.interval = seconds(60);
  d.reconfigure(s, kT0 + seconds(2));
  EXPECT_EQ(d.nextEvaluation(), kT0 + seconds(10));
  s.interval = seconds(1);
  d.reconfigure(s, kT0 + seconds(2));
  EXPECT_EQ(d.nextEvaluation(), kT0 + seconds(3));
  (void)d.evaluate(kT0 + seconds(3));
  EXPECT_EQ(d.nextEvaluation(), kT0 + seconds(4));
}

// Verifies: the interval's counts survive and are judged by the new threshold at the sweep.
TEST_F(FailurePercentage, ReconfigureKeepsTheIntervalCountsForTheNewThreshold) {
  load(hosts_[0], 60, 40);
  for (int i = 1; i < 5; ++i) {
    load(hosts_[i], 0, 100);
  }
  auto s = settings();
  s.failure_percentage_threshold = 60.0;
  detector_.reconfigure(s, kT0 + seconds(5));
  EXPECT_EQ(detector_.hostStatus(hosts_[0], kT0 + seconds(5))->interval_requests, 100U);
  EXPECT_FALSE(detector_.isEjected(hosts_[0], kT0 + seconds(5)));
  const auto ejections = detector_.evaluate(kT0 + seconds(10));
  ASSERT_EQ(ejections.size(), 1U);
  EXPECT_EQ(ejections[0].host, hosts_[0]);
}

// Records, sweeps and reconfigurations race (the settings flip between two caps): the larger
// cap is never exceeded.
TEST(OutlierDetectorStress, ReconfigureRacingRecordsAndSweepsKeepsTheCap) {
  OutlierDetector::Settings a;
  a.consecutive_5xx = 2;
  a.failure_percentage_threshold = 30.0;
  a.failure_percentage_minimum_hosts = 2;
  a.failure_percentage_request_volume = 5;
  a.max_ejection_percent = 30;
  a.interval = std::chrono::milliseconds(100);
  a.base_ejection_time = std::chrono::milliseconds(300);
  OutlierDetector::Settings b = a;
  b.consecutive_5xx = 3;
  b.failure_percentage_threshold = std::nullopt;
  b.max_ejection_percent = 20;
  b.interval = std::chrono::milliseconds(50);
  b.base_ejection_time = std::chrono::milliseconds(100);
  ManualClock clock;
  OutlierDetector d(a, clock.now());
  const auto hosts = addHosts(d, 10);
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  threads.reserve(3);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 5);
      for (int i = 0; i < 5000; ++i) {
        const TimePoint now = clock.now();
        (void)d.record(hosts[rng() % hosts.size()],
                       rng() % 2 == 0 ? HostOutcome::Success : HostOutcome::ServerError, now);
        if (d.ejectedCount(now) * 100 > 30U * hosts.size()) {
          violations.fetch_add(1);
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; !stop.load(); ++i) {
      clock.advance(std::chrono::milliseconds(7));
      d.reconfigure(i % 2 == 0 ? b : a, clock.now());
      (void)d.evaluate(clock.now());
      std::this_thread::yield();
    }
  });
  threads[0].join();
  threads[1].join();
  stop.store(true);
  threads.back().join();
  EXPECT_EQ(violations.load(), 0);
}

TEST(OutlierDetector, ReasonsHaveNames) {
  EXPECT_STREQ(toString(Reason::Consecutive5xx), "consecutive_5xx");
  EXPECT_STREQ(toString(Reason::ConsecutiveGatewayFailure), "consecutive_gateway_failure");
  EXPECT_STREQ(toString(Reason::FailurePercentage), "failure_percentage");
}

}  // namespace
}  // namespace sluice::resilience
