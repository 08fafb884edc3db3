// Errors about one setting of a library's config struct, so that the binary that filled the
// struct from its flags can say which flag was wrong.
//
//   // in a library's Validate:
//   if (c.batch_size < 1 || c.batch_size > 1000) {
//     return SettingError("worker.batch_size", StrCat("must be in [1, 1000] (got ", ...));
//   }
//   // in main:
//   status = NameFlag(ValidateWorkerConfig(c), {{"worker.batch_size", "worker_batch"}});
//   // -> "--worker_batch: must be in [1, 1000] (got 1001)"
//
// A setting's range is checked once, in its library; the binary only maps names.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <absl/status/status.h>

namespace herald::config {

// kInvalidArgument "<setting>: <message>", with `setting` attached as a payload.
absl::Status SettingError(std::string_view setting, std::string_view message);

// The setting of a SettingError; nullopt for every other status.
std::optional<std::string> SettingOf(const absl::Status& status);

// A SettingError whose setting `flags` maps to a flag name becomes "--<flag>: <message>";
// every other status is returned unchanged.
absl::Status NameFlag(const absl::Status& status, const std::map<std::string, std::string>& flags);

}  // namespace herald::config
