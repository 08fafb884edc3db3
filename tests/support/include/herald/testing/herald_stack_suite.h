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

}  // namespace herald::testing
