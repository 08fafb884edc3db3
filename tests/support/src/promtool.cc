#include <cstdio>
#include <fstream>

#include <sys/wait.h>

#include <herald/common/strings.h>
#include <herald/testing/promtool.h>
#include <herald/testing/subprocess.h>

namespace herald::testing {

absl::Status PromtoolCheckMetrics(const std::string& exposition) {
  const std::string path = MakeTempDir("promtool") + "/metrics.txt";
  std::ofstream(path) << exposition;
  const std::string command = StrCat("promtool check metrics < ", path, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("cannot run promtool");
  std::string output;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) output.append(buf, n);
  const int status = pclose(pipe);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(StrCat("promtool rejected the metrics:\n", output));
}

}  // namespace herald::testing
