#include <absl/strings/cord.h>

#include <herald/common/setting_error.h>
#include <herald/common/strings.h>

namespace herald::config {
namespace {

constexpr std::string_view kSettingPayload = "type.herald.dev/setting";
constexpr std::string_view kMessagePayload = "type.herald.dev/setting_message";

}  // namespace

absl::Status SettingError(std::string_view setting, std::string_view message) {
  absl::Status status = absl::InvalidArgumentError(StrCat(setting, ": ", message));
  status.SetPayload(ToAbsl(kSettingPayload), absl::Cord(ToAbsl(setting)));
  status.SetPayload(ToAbsl(kMessagePayload), absl::Cord(ToAbsl(message)));
  return status;
}

std::optional<std::string> SettingOf(const absl::Status& status) {
  auto setting = status.GetPayload(ToAbsl(kSettingPayload));
  if (!setting) return std::nullopt;
  return std::string(*setting);
}

absl::Status NameFlag(const absl::Status& status, const std::map<std::string, std::string>& flags) {
  std::optional<std::string> setting = SettingOf(status);
  if (!setting) return status;
  auto flag = flags.find(*setting);
  if (flag == flags.end()) return status;
  auto message = status.GetPayload(ToAbsl(kMessagePayload));
  return absl::InvalidArgumentError(
      StrCat("--", flag->second, ": ", message ? std::string(*message) : status.message()));
}

}  // namespace herald::config
