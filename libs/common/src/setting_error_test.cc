#include <gtest/gtest.h>

#include <herald/common/setting_error.h>

namespace herald::config {
namespace {

TEST(SettingError, NamesTheSettingAndMapsToAFlag) {
  const absl::Status s = SettingError("worker.batch_size", "must be in [1, 1000] (got 1001)");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "worker.batch_size: must be in [1, 1000] (got 1001)");
  EXPECT_EQ(SettingOf(s), "worker.batch_size");
  EXPECT_EQ(NameFlag(s, {{"worker.batch_size", "worker_batch"}}).message(),
            "--worker_batch: must be in [1, 1000] (got 1001)");
  // Unmapped settings and other statuses pass through.
  EXPECT_EQ(NameFlag(s, {{"other", "x"}}), s);
  const absl::Status plain = absl::InternalError("boom");
  EXPECT_EQ(SettingOf(plain), std::nullopt);
  EXPECT_EQ(NameFlag(plain, {{"worker.batch_size", "worker_batch"}}), plain);
}

}  // namespace
}  // namespace herald::config
