// A gtest fixture whose tests share one HeraldStack, started once for the suite (starting the
// processes is the slow part; each test works in tenants of its own).
//
//   class CampaignTest : public testing::HeraldStackSuite<CampaignTest> {
//    public:
//     static HeraldStack::Options StackOptions() { return {.admin_key = kAdminKey, ...}; }
//   };
//
// `Suite` (CRTP) gives the options, and each suite its own stack. A stack that did not start is
// reported as a failure by every test of the suite, never turned into a skip. Header-only: it
// needs gtest, which the library does not link.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <herald/testing/herald_stack.h>

namespace herald::testing {

template <typename Suite>
class HeraldStackSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto stack = HeraldStack::Start(Suite::StackOptions());
    if (!stack.ok()) {
      setup_error_ = stack.status().ToString();
      return;
    }
    stack_ = stack->release();
  }

  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  void SetUp() override {
    if (stack_ == nullptr) FAIL() << "the suite's processes did not start: " << setup_error_;
  }

  static inline HeraldStack* stack_ = nullptr;
  static inline std::string setup_error_;
};

// The Redis an end-to-end suite runs on, for suites that run on both.
enum class RedisKind { kSingleNode, kCluster };

inline std::string RedisKindName(const ::testing::TestParamInfo<RedisKind>& info) {
  return info.param == RedisKind::kCluster ? "Cluster" : "SingleNode";
}

// As HeraldStackSuite, for TEST_P suites that run every test on a single Redis and on a Redis
// Cluster: one stack per kind, started when the first test of that kind runs, and `stack_`
// pointing at the current test's.
//
//   class CampaignTest : public testing::HeraldStackSuiteOnEachRedis<CampaignTest> { ... };
//   TEST_P(CampaignTest, ...) { ... stack_->channel() ... }
//   INSTANTIATE_TEST_SUITE_P(Redis, CampaignTest, testing::kEachRedis, testing::RedisKindName);
template <typename Suite>
class HeraldStackSuiteOnEachRedis : public ::testing::TestWithParam<RedisKind> {
 protected:
  static void TearDownTestSuite() {
    stack_ = nullptr;
    stacks_.clear();
  }

  void SetUp() override {
    const RedisKind kind = GetParam();
    if (!stacks_.contains(kind)) {
      HeraldStack::Options options = Suite::StackOptions();
      options.redis_cluster = kind == RedisKind::kCluster;
      auto stack = HeraldStack::Start(std::move(options));
      if (!stack.ok()) errors_[kind] = stack.status().ToString();
      stacks_[kind] = stack.ok() ? std::move(*stack) : nullptr;
    }
    stack_ = stacks_[kind].get();
    if (stack_ == nullptr) FAIL() << "the suite's processes did not start: " << errors_[kind];
  }

  static inline HeraldStack* stack_ = nullptr;
  static inline std::map<RedisKind, std::unique_ptr<HeraldStack>> stacks_;
  static inline std::map<RedisKind, std::string> errors_;
};

inline const auto kEachRedis = ::testing::Values(RedisKind::kSingleNode, RedisKind::kCluster);

}  // namespace herald::testing
