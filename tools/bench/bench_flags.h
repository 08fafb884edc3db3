// Command-line flags of the end-to-end benchmark binaries: `--name=value` pairs, read by name
// with a fallback. A malformed argument or value ends the process with status 2 and a message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <herald/common/strings.h>

namespace herald::bench {

struct Flags {
  std::map<std::string, std::string> values;

  // Parses argv[first..argc) as --name=value pairs; nullopt (after a message) on a bad one.
  static std::optional<Flags> Parse(int argc, char** argv, int first) {
    Flags flags;
    for (int i = first; i < argc; ++i) {
      const std::string_view arg = argv[i];
      const size_t eq = arg.find('=');
      if (!arg.starts_with("--") || eq == std::string_view::npos) {
        std::fprintf(stderr, "bad argument %s (want --name=value)\n", argv[i]);
        return std::nullopt;
      }
      flags.values[std::string(arg.substr(2, eq - 2))] = std::string(arg.substr(eq + 1));
    }
    return flags;
  }

  std::string Str(const std::string& name, std::string fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }

  // Every numeric flag of the benchmarks is a count, a size or a duration: never negative.
  int64_t Int(const std::string& name, int64_t fallback) const {
    auto it = values.find(name);
    if (it == values.end()) return fallback;
    auto v = ParseInt<int64_t>(it->second);
    if (!v || *v < 0) {
      std::fprintf(stderr, "--%s: not a non-negative integer: %s\n", name.c_str(),
                   it->second.c_str());
      std::exit(2);
    }
    return *v;
  }
};

}  // namespace herald::bench
