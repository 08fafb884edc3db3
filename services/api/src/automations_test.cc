// AutomationService's pure steps: a CreateAutomationRequest's rule parsed and checked, and a rule
// written back. The RPCs themselves run in tests/e2e/automations_test.cc.
#include "automations.h"

#include <gtest/gtest.h>

namespace herald::api {
namespace {

v1::Automation Valid() {
  v1::Automation a;
  a.set_account("tenants/acme/accounts/acct_a1");
  a.set_trigger(v1::Automation::NEW_SUBSCRIBER);
  a.set_user_list_id("42");
  return a;
}

TEST(ParseAutomationTest, AValidRuleBecomesTheTenantsRecord) {
  v1::Automation in = Valid();
  in.set_name("tenants/acme/automations/ignored");  // output only
  in.set_fans_added(99);
  absl::StatusOr<store::Automation> rule = ParseAutomation("acme", in);
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_EQ(rule->tenant, "acme");
  EXPECT_EQ(rule->id, "");  // Herald assigns it
  EXPECT_EQ(rule->account, "acct_a1");
  EXPECT_EQ(rule->trigger, store::AutomationTrigger::kNewSubscriber);
  EXPECT_EQ(rule->list_id, "42");
  EXPECT_EQ(rule->action, store::AutomationAction::kAddToList);  // not set: adds
}

TEST(ParseAutomationTest, EachMistakeIsRefusedNamingItsField) {
  struct Case {
    std::function<void(v1::Automation&)> change;
    std::string message;
    absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  };
  const std::vector<Case> cases = {
      {[](v1::Automation& a) { a.clear_account(); }, "automation.account is required"},
      {[](v1::Automation& a) { a.set_account("acct_a1"); },
       "automation.account: 'acct_a1' is not a name of the form "
       "tenants/{tenant}/accounts/{id}"},
      {[](v1::Automation& a) { a.set_account("tenants/other/accounts/acct_a1"); },
       "automation.account: account 'tenants/other/accounts/acct_a1' not found",
       absl::StatusCode::kNotFound},
      {[](v1::Automation& a) { a.set_trigger(v1::Automation::TRIGGER_UNSPECIFIED); },
       "automation.trigger: required (NEW_SUBSCRIBER, SUBSCRIPTION_RENEWED, "
       "SUBSCRIPTION_EXPIRED or PPV_UNLOCKED)"},
      {[](v1::Automation& a) { a.set_trigger(static_cast<v1::Automation::Trigger>(7)); },
       "automation.trigger: unknown value 7"},
      {[](v1::Automation& a) { a.set_action(static_cast<v1::Automation::Action>(9)); },
       "automation.action: unknown value 9"},
      {[](v1::Automation& a) { a.clear_user_list_id(); },
       "automation.user_list_id: a custom list's numeric id is required (got '')"},
      {[](v1::Automation& a) { a.set_user_list_id("fans"); },
       "automation.user_list_id: a custom list's numeric id is required (got 'fans')"},
  };
  for (const Case& c : cases) {
    v1::Automation in = Valid();
    c.change(in);
    absl::StatusOr<store::Automation> rule = ParseAutomation("acme", in);
    EXPECT_EQ(rule.status().code(), c.code) << c.message;
    EXPECT_EQ(rule.status().message(), c.message);
  }
}

TEST(AutomationToProtoTest, NamesTheRuleAndItsAccountInTheTenant) {
  automation::AutomationView view{
      .automation = {.tenant = "acme",
                     .id = "01j0000000000000000000000a",
                     .account = "acct_a1",
                     .trigger = store::AutomationTrigger::kNewSubscriber,
                     .list_id = "42",
                     .create_time_ms = 1'700'000'000'123},
      .fans = 3};
  const v1::Automation out = ToProto(view);
  EXPECT_EQ(out.name(), "tenants/acme/automations/01j0000000000000000000000a");
  EXPECT_EQ(out.account(), "tenants/acme/accounts/acct_a1");
  EXPECT_EQ(out.trigger(), v1::Automation::NEW_SUBSCRIBER);
  EXPECT_EQ(out.user_list_id(), "42");
  EXPECT_EQ(out.create_time().seconds(), 1'700'000'000);
  EXPECT_EQ(out.create_time().nanos(), 123'000'000);
  EXPECT_EQ(out.action(), v1::Automation::ADD_TO_LIST);
  EXPECT_EQ(out.fans_added(), 3);
  EXPECT_EQ(out.fans_removed(), 0);
  // What ToProto writes parses back to the same rule.
  absl::StatusOr<store::Automation> back = ParseAutomation("acme", out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->account, "acct_a1");
  EXPECT_EQ(back->list_id, "42");
}

TEST(AutomationToProtoTest, EveryTriggerMapsBothWays) {
  const std::pair<v1::Automation::Trigger, store::AutomationTrigger> triggers[] = {
      {v1::Automation::NEW_SUBSCRIBER, store::AutomationTrigger::kNewSubscriber},
      {v1::Automation::SUBSCRIPTION_RENEWED, store::AutomationTrigger::kRenewal},
      {v1::Automation::SUBSCRIPTION_EXPIRED, store::AutomationTrigger::kExpiry},
      {v1::Automation::PPV_UNLOCKED, store::AutomationTrigger::kPpvUnlock},
  };
  for (const auto& [wire, stored] : triggers) {
    v1::Automation in = Valid();
    in.set_trigger(wire);
    absl::StatusOr<store::Automation> rule = ParseAutomation("acme", in);
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->trigger, stored) << v1::Automation::Trigger_Name(wire);
    EXPECT_EQ(ToProto({.automation = *rule}).trigger(), wire);
  }
}

TEST(AutomationToProtoTest, EveryActionMapsBothWaysAndCountsItsFans) {
  const std::pair<v1::Automation::Action, store::AutomationAction> actions[] = {
      {v1::Automation::ADD_TO_LIST, store::AutomationAction::kAddToList},
      {v1::Automation::REMOVE_FROM_LIST, store::AutomationAction::kRemoveFromList},
  };
  for (const auto& [wire, stored] : actions) {
    v1::Automation in = Valid();
    in.set_action(wire);
    absl::StatusOr<store::Automation> rule = ParseAutomation("acme", in);
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->action, stored) << v1::Automation::Action_Name(wire);
    const v1::Automation out = ToProto({.automation = *rule, .fans = 4});
    EXPECT_EQ(out.action(), wire);
    // The count goes where the action says.
    EXPECT_EQ(out.fans_added() + out.fans_removed(), 4);
    EXPECT_EQ(out.fans_removed() == 4, wire == v1::Automation::REMOVE_FROM_LIST);
  }
}

}  // namespace
}  // namespace herald::api
