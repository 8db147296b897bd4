#include "gateway/server/cpu_limit.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace sluice::gateway::server {
namespace {

namespace fs = std::filesystem;

TEST(CpuLimit, ParsesCpuMax) {
  EXPECT_EQ(parseCpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(parseCpuMax("100000 100000\n"), 1.0);
  EXPECT_EQ(parseCpuMax("150000 100000"), 1.5);
  EXPECT_EQ(parseCpuMax("50000 100000\n"), 0.5);
  EXPECT_EQ(parseCpuMax(""), std::nullopt);
  EXPECT_EQ(parseCpuMax("100000"), std::nullopt);
  EXPECT_EQ(parseCpuMax("-1 100000"), std::nullopt);
  EXPECT_EQ(parseCpuMax("100000 0"), std::nullopt);
  EXPECT_EQ(parseCpuMax("1e5 100000"), std::nullopt);
}

TEST(CpuLimit, WorkersAreTheAffinityCappedByTheQuotaRoundedUp) {
  EXPECT_EQ(workersFor(64, std::nullopt), 64U);
  EXPECT_EQ(workersFor(64, 1.0), 1U);
  EXPECT_EQ(workersFor(64, 1.5), 2U);
  EXPECT_EQ(workersFor(64, 0.25), 1U);
  EXPECT_EQ(workersFor(2, 8.0), 2U);  // a quota above the affinity changes nothing
  EXPECT_EQ(workersFor(0, std::nullopt), 1U);
}

class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("sluice-cgroup-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "kubepods.slice/pod1/container");
  }
  void TearDown() override { fs::remove_all(root_); }
  void cpuMax(const fs::path& dir, const std::string& text) {
    std::ofstream(root_ / dir / "cpu.max") << text;
  }
  fs::path root_;
};

TEST_F(CgroupTree, TheTightestQuotaOfTheCgroupAndItsAncestorsWins) {
  const std::string self = "0::/kubepods.slice/pod1/container\n";
  EXPECT_EQ(cgroupCpuQuota(self, root_), std::nullopt);  // no cpu.max anywhere
  cpuMax("kubepods.slice/pod1/container", "max 100000\n");
  EXPECT_EQ(cgroupCpuQuota(self, root_), std::nullopt);
  cpuMax("kubepods.slice/pod1", "200000 100000\n");
  EXPECT_EQ(cgroupCpuQuota(self, root_), 2.0);
  cpuMax("kubepods.slice/pod1/container", "150000 100000\n");
  EXPECT_EQ(cgroupCpuQuota(self, root_), 1.5);
  cpuMax("kubepods.slice", "50000 100000\n");
  EXPECT_EQ(cgroupCpuQuota(self, root_), 0.5);
}

TEST_F(CgroupTree, OnlyTheUnifiedHierarchyCounts) {
  cpuMax("kubepods.slice/pod1", "100000 100000\n");
  // cgroup v1 lines alone (no "0::"): no quota from cpu.max.
  EXPECT_EQ(cgroupCpuQuota("4:cpu,cpuacct:/kubepods.slice/pod1\n", root_), std::nullopt);
  // In a cgroup namespace the process sees itself at the root of the tree.
  EXPECT_EQ(cgroupCpuQuota("1:name=systemd:/\n0::/kubepods.slice/pod1\n", root_), 1.0);
  EXPECT_EQ(cgroupCpuQuota("0::/\n", root_), std::nullopt);
  EXPECT_EQ(cgroupCpuQuota("0::/../../etc\n", root_), std::nullopt);
}

TEST(CpuLimit, DetectsThisProcess) {
  const CpuLimit limit = detectCpuLimit();
  EXPECT_GE(limit.affinity, 1U);
  EXPECT_GE(limit.workers, 1U);
  EXPECT_LE(limit.workers, limit.affinity);
}

}  // namespace
}  // namespace sluice::gateway::server
