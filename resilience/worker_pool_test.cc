#include "resilience/worker_pool.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "resilience/clock.h"

namespace sluice::resilience {
namespace {

using SubmitStatus = WorkerPool::SubmitStatus;
using TaskStatus = WorkerPool::TaskStatus;
using Mode = WorkerPool::ShutdownMode;

// Spins (yielding, never sleeping) until `done` holds; the condition is set by another thread.
template <typename Pred>
void waitFor(Pred done) {
  while (!done()) {
    std::this_thread::yield();
  }
}

// A pool with one worker held busy by a blocker task until release() is called, so that tests
// can fill the queue deterministically.
struct BusyPool {
  explicit BusyPool(std::size_t queue_capacity)
      : pool({.threads = 1, .queue_capacity = queue_capacity}) {
    EXPECT_EQ(pool.trySubmit([this](TaskStatus s) {
                    blocker_status = s;
                    started.count_down();
                    gate.wait();
                  })
                  .status,
              SubmitStatus::Accepted);
    started.wait();
  }
  BusyPool(const BusyPool&) = delete;
  BusyPool& operator=(const BusyPool&) = delete;
  BusyPool(BusyPool&&) = delete;
  BusyPool& operator=(BusyPool&&) = delete;
  // Releases the blocker if the test did not, so that the pool's draining destructor finishes.
  ~BusyPool() { release(); }
  void release() {
    if (!released) {
      released = true;
      gate.count_down();
    }
  }

  bool released = false;
  std::latch started{1};
  std::latch gate{1};
  TaskStatus blocker_status = TaskStatus::Cancelled;
  WorkerPool pool;
};

TEST(WorkerPool, ValidateRejectsOutOfRangeSettings) {
  EXPECT_EQ(WorkerPool::validate({.threads = 1, .queue_capacity = 1}), std::nullopt);
  EXPECT_TRUE(WorkerPool::validate({.threads = 0, .queue_capacity = 1}).has_value());
  EXPECT_TRUE(WorkerPool::validate({.threads = WorkerPool::kMaxThreads + 1}).has_value());
  EXPECT_TRUE(WorkerPool::validate({.threads = 1, .queue_capacity = 0}).has_value());
  EXPECT_TRUE(
      WorkerPool::validate({.threads = 1, .queue_capacity = WorkerPool::kMaxQueueCapacity + 1}));
}

TEST(WorkerPool, RunsEveryTaskOnAWorkerThreadWithRun) {
  constexpr int kTasks = 100;
  std::latch done(kTasks);
  std::atomic<int> on_caller_thread{0};
  std::atomic<int> not_run{0};
  const auto caller = std::this_thread::get_id();
  WorkerPool pool({.threads = 3, .queue_capacity = kTasks});
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(pool.trySubmit([&](TaskStatus s) {
                    if (std::this_thread::get_id() == caller) {
                      ++on_caller_thread;
                    }
                    if (s != TaskStatus::Run) {
                      ++not_run;
                    }
                    done.count_down();
                  })
                  .status,
              SubmitStatus::Accepted);
  }
  done.wait();
  EXPECT_EQ(on_caller_thread.load(), 0);
  EXPECT_EQ(not_run.load(), 0);
  pool.shutdown(Mode::Drain);
  EXPECT_EQ(pool.stats().ran, static_cast<std::uint64_t>(kTasks));
}

TEST(WorkerPool, SingleWorkerRunsTasksInSubmissionOrder) {
  std::vector<int> order;
  {
    BusyPool busy(10);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(busy.pool.trySubmit([&order, i](TaskStatus) { order.push_back(i); }).status,
                SubmitStatus::Accepted);
    }
    busy.release();
    busy.pool.shutdown(Mode::Drain);
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(WorkerPool, TrySubmitFailsFastWhenFullAndHandsTheTaskBack) {
  BusyPool busy(2);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  bool invoked = false;
  TaskStatus got = TaskStatus::Run;
  auto r = busy.pool.trySubmit([&](TaskStatus s) {
    invoked = true;
    got = s;
  });
  EXPECT_EQ(r.status, SubmitStatus::QueueFull);
  ASSERT_TRUE(r.task);
  EXPECT_FALSE(invoked);          // the pool never invokes a task it did not accept
  r.task(TaskStatus::Cancelled);  // the caller decides what to do with it
  EXPECT_TRUE(invoked);
  EXPECT_EQ(got, TaskStatus::Cancelled);
  EXPECT_EQ(busy.pool.stats().rejected_full, 1U);
  EXPECT_EQ(busy.pool.stats().queued, 2U);
  busy.release();
}

TEST(WorkerPool, SubmitUntilAPastDeadlineTimesOutWithoutWaiting) {
  BusyPool busy(1);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  auto r = busy.pool.submitUntil([](TaskStatus) {}, Clock::now() - std::chrono::seconds(1));
  EXPECT_EQ(r.status, SubmitStatus::TimedOut);
  EXPECT_TRUE(r.task);
  EXPECT_EQ(busy.pool.stats().timed_out, 1U);
  busy.release();
}

// The one real-time wait in the library: a short deadline expires while the queue stays full.
TEST(WorkerPool, SubmitUntilTimesOutAtTheDeadlineWhenTheQueueStaysFull) {
  BusyPool busy(1);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  const TimePoint deadline = Clock::now() + std::chrono::milliseconds(20);
  auto r = busy.pool.submitUntil([](TaskStatus) {}, deadline);
  EXPECT_EQ(r.status, SubmitStatus::TimedOut);
  EXPECT_GE(Clock::now(), deadline);
  busy.release();
}

TEST(WorkerPool, SubmitUntilWithRoomAcceptsAtOnce) {
  WorkerPool pool({.threads = 1, .queue_capacity = 4});
  std::latch ran(1);
  EXPECT_EQ(pool.submitUntil([&](TaskStatus) { ran.count_down(); }, TimePoint::min()).status,
            SubmitStatus::Accepted);
  ran.wait();
}

TEST(WorkerPool, BlockedSubmitterIsAcceptedWhenASlotFrees) {
  BusyPool busy(1);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  std::latch ran(1);
  SubmitStatus result = SubmitStatus::ShutDown;
  std::thread submitter([&] {
    result = busy.pool.submitUntil([&](TaskStatus) { ran.count_down(); }, TimePoint::max()).status;
  });
  waitFor([&] { return busy.pool.stats().blocked_submitters == 1; });
  busy.release();  // the worker finishes the blocker and takes the queued task: a slot frees
  submitter.join();
  EXPECT_EQ(result, SubmitStatus::Accepted);
  ran.wait();
}

TEST(WorkerPool, DrainRunsEveryAcceptedTaskAndRejectsNewOnes) {
  BusyPool busy(8);
  std::atomic<int> ran{0};
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(busy.pool
                  .trySubmit([&](TaskStatus s) {
                    if (s == TaskStatus::Run) {
                      ++ran;
                    }
                  })
                  .status,
              SubmitStatus::Accepted);
  }
  std::thread stopper([&] { busy.pool.shutdown(Mode::Drain); });
  waitFor([&] { return !busy.pool.stats().accepting; });
  auto late = busy.pool.trySubmit([](TaskStatus) {});
  EXPECT_EQ(late.status, SubmitStatus::ShutDown);
  EXPECT_TRUE(late.task);
  busy.release();
  stopper.join();
  EXPECT_EQ(ran.load(), 5);
  EXPECT_EQ(busy.blocker_status, TaskStatus::Run);
  const auto stats = busy.pool.stats();
  EXPECT_EQ(stats.accepted, 6U);
  EXPECT_EQ(stats.ran, 6U);
  EXPECT_EQ(stats.cancelled, 0U);
  EXPECT_EQ(stats.rejected_shutdown, 1U);
  EXPECT_EQ(stats.queued, 0U);
  EXPECT_EQ(stats.running, 0U);
}

TEST(WorkerPool, CancelInvokesQueuedTasksWithCancelledAndLetsRunningOnesFinish) {
  BusyPool busy(8);
  std::vector<TaskStatus> statuses;
  std::mutex statuses_mutex;
  std::vector<int> cancel_order;
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(busy.pool
                  .trySubmit([&, i](TaskStatus s) {
                    const std::lock_guard lock(statuses_mutex);
                    statuses.push_back(s);
                    cancel_order.push_back(i);
                  })
                  .status,
              SubmitStatus::Accepted);
  }
  std::thread stopper([&] { busy.pool.shutdown(Mode::Cancel); });
  // Cancellations happen on the stopping thread while the blocker is still running.
  waitFor([&] {
    const std::lock_guard lock(statuses_mutex);
    return statuses.size() == 4;
  });
  busy.release();
  stopper.join();
  EXPECT_EQ(statuses, std::vector<TaskStatus>(4, TaskStatus::Cancelled));
  EXPECT_EQ(cancel_order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(busy.blocker_status, TaskStatus::Run);
  const auto stats = busy.pool.stats();
  EXPECT_EQ(stats.accepted, 5U);
  EXPECT_EQ(stats.ran, 1U);
  EXPECT_EQ(stats.cancelled, 4U);
}

TEST(WorkerPool, CancelCanEscalateADrainInProgress) {
  BusyPool busy(8);
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(busy.pool
                  .trySubmit([&](TaskStatus s) {
                    if (s == TaskStatus::Cancelled) {
                      ++cancelled;
                    }
                  })
                  .status,
              SubmitStatus::Accepted);
  }
  std::thread drainer([&] { busy.pool.shutdown(Mode::Drain); });
  waitFor([&] { return !busy.pool.stats().accepting; });
  std::thread canceller([&] { busy.pool.shutdown(Mode::Cancel); });
  waitFor([&] { return cancelled.load() == 3; });
  busy.release();
  drainer.join();
  canceller.join();
  const auto stats = busy.pool.stats();
  EXPECT_EQ(stats.ran + stats.cancelled, stats.accepted);
  EXPECT_EQ(stats.cancelled, 3U);
}

TEST(WorkerPool, ShutdownReleasesBlockedSubmittersWithTheirTask) {
  BusyPool busy(1);
  ASSERT_EQ(busy.pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::Accepted);
  WorkerPool::SubmitResult result;
  std::thread submitter(
      [&] { result = busy.pool.submitUntil([](TaskStatus) {}, TimePoint::max()); });
  waitFor([&] { return busy.pool.stats().blocked_submitters == 1; });
  std::thread stopper([&] { busy.pool.shutdown(Mode::Cancel); });
  submitter.join();
  EXPECT_EQ(result.status, SubmitStatus::ShutDown);
  EXPECT_TRUE(result.task);
  busy.release();
  stopper.join();
}

TEST(WorkerPool, ShutdownIsIdempotentAndSubmitAfterwardsReportsShutDown) {
  WorkerPool pool({.threads = 2, .queue_capacity = 4});
  pool.shutdown(Mode::Drain);
  pool.shutdown(Mode::Cancel);
  pool.shutdown(Mode::Drain);
  EXPECT_EQ(pool.trySubmit([](TaskStatus) {}).status, SubmitStatus::ShutDown);
  EXPECT_EQ(pool.submitUntil([](TaskStatus) {}, TimePoint::max()).status, SubmitStatus::ShutDown);
}

TEST(WorkerPool, DestructorDrainsAcceptedTasks) {
  std::atomic<int> ran{0};
  {
    BusyPool busy(16);
    for (int i = 0; i < 16; ++i) {
      ASSERT_EQ(
          busy.pool.trySubmit([&](TaskStatus s) { ran += s == TaskStatus::Run ? 1 : 0; }).status,
          SubmitStatus::Accepted);
    }
    busy.release();
  }
  EXPECT_EQ(ran.load(), 16);
}

TEST(WorkerPool, ShutdownFromInsideATaskDoesNotDeadlock) {
  std::atomic<int> ran{0};
  std::latch shut(1);
  {
    WorkerPool pool({.threads = 2, .queue_capacity = 8});
    ASSERT_EQ(pool.trySubmit([&](TaskStatus) {
                    pool.shutdown(Mode::Drain);
                    shut.count_down();
                  })
                  .status,
              SubmitStatus::Accepted);
    shut.wait();
    EXPECT_EQ(pool.trySubmit([&](TaskStatus) { ++ran; }).status, SubmitStatus::ShutDown);
  }  // the destructor joins both workers
  EXPECT_EQ(ran.load(), 0);
}

TEST(WorkerPool, AcceptsMoveOnlyTasks) {
  WorkerPool pool({.threads = 1, .queue_capacity = 2});
  auto value = std::make_unique<int>(7);
  std::atomic<int> seen{0};
  std::latch done(1);
  ASSERT_EQ(pool.trySubmit([v = std::move(value), &seen, &done](TaskStatus) {
                  seen = *v;
                  done.count_down();
                })
                .status,
            SubmitStatus::Accepted);
  done.wait();
  EXPECT_EQ(seen.load(), 7);
}

TEST(WorkerPool, TaskIsInvokedAtMostOnce) {
  int calls = 0;
  WorkerPool::Task task([&](TaskStatus) { ++calls; });
  task(TaskStatus::Run);
  task(TaskStatus::Run);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(task);
}

// Verifies under contention (3 submitters mixing trySubmit and blocking submitUntil, 2 workers,
// a small queue) that every accepted task runs exactly once and no rejected task is invoked.
TEST(WorkerPoolStress, EveryAcceptedTaskRunsExactlyOnce) {
  constexpr int kSubmitters = 3;
  constexpr int kPerSubmitter = 3000;
  std::vector<std::atomic<int>> runs(std::size_t{kSubmitters} * kPerSubmitter);
  std::atomic<int> accepted{0};
  std::atomic<int> returned{0};
  WorkerPool pool({.threads = 2, .queue_capacity = 8});
  std::latch start(kSubmitters);
  std::vector<std::thread> submitters;
  submitters.reserve(kSubmitters);
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&, s] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerSubmitter; ++i) {
        const auto id = static_cast<std::size_t>(s) * kPerSubmitter + static_cast<std::size_t>(i);
        WorkerPool::Task task([&runs, id](TaskStatus) { runs[id].fetch_add(1); });
        auto r = (i % 2 == 0) ? pool.trySubmit(std::move(task))
                              : pool.submitUntil(std::move(task), TimePoint::max());
        if (r.status == SubmitStatus::Accepted) {
          ++accepted;
        } else {
          ++returned;
          ASSERT_TRUE(r.task);
        }
      }
    });
  }
  for (auto& t : submitters) {
    t.join();
  }
  pool.shutdown(Mode::Drain);
  int ran = 0;
  for (const auto& r : runs) {
    ASSERT_LE(r.load(), 1);
    ran += r.load();
  }
  EXPECT_EQ(ran, accepted.load());
  EXPECT_EQ(accepted.load() + returned.load(), kSubmitters * kPerSubmitter);
  const auto stats = pool.stats();
  EXPECT_EQ(stats.accepted, static_cast<std::uint64_t>(accepted.load()));
  EXPECT_EQ(stats.ran, stats.accepted);
}

// Verifies that a Cancel shutdown racing with submitters and workers still accounts for every
// accepted task exactly once (ran or cancelled) and never invokes a rejected one. Submitters keep
// going until they are told ShutDown, so the shutdown always lands in the middle of submissions.
TEST(WorkerPoolStress, CancelRacingSubmittersAccountsForEveryTask) {
  constexpr int kSubmitters = 3;
  struct Record {
    std::atomic<int> runs{0};
    std::atomic<int> cancels{0};
    bool accepted = false;  // written and read by the submitting thread only
  };
  WorkerPool pool({.threads = 2, .queue_capacity = 16});
  std::latch start(kSubmitters + 1);
  std::atomic<int> submitted{0};
  std::vector<std::vector<std::shared_ptr<Record>>> records(kSubmitters);
  std::vector<std::thread> submitters;
  submitters.reserve(kSubmitters);
  for (int s = 0; s < kSubmitters; ++s) {
    submitters.emplace_back([&, s] {
      start.arrive_and_wait();
      while (true) {
        auto record = std::make_shared<Record>();
        auto r = pool.submitUntil(
            [record](TaskStatus st) {
              (st == TaskStatus::Run ? record->runs : record->cancels).fetch_add(1);
            },
            TimePoint::max());
        record->accepted = r.status == SubmitStatus::Accepted;
        records[static_cast<std::size_t>(s)].push_back(std::move(record));
        ++submitted;
        if (r.status == SubmitStatus::ShutDown) {
          break;
        }
      }
    });
  }
  start.arrive_and_wait();
  waitFor([&] { return submitted.load() >= 3000; });
  pool.shutdown(Mode::Cancel);
  for (auto& t : submitters) {
    t.join();
  }
  std::uint64_t total_accepted = 0;
  for (const auto& per_submitter : records) {
    for (const auto& record : per_submitter) {
      const int invocations = record->runs.load() + record->cancels.load();
      ASSERT_EQ(invocations, record->accepted ? 1 : 0);
      total_accepted += record->accepted ? 1 : 0;
    }
  }
  const auto stats = pool.stats();
  EXPECT_EQ(stats.accepted, total_accepted);
  EXPECT_EQ(stats.ran + stats.cancelled, stats.accepted);
  EXPECT_EQ(stats.rejected_shutdown, static_cast<std::uint64_t>(kSubmitters));
}

}  // namespace
}  // namespace sluice::resilience
