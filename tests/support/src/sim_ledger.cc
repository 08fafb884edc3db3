#include <boost/json/parse.hpp>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/sim_ledger.h>

namespace herald::testing {

namespace json = boost::json;

namespace {

absl::StatusOr<json::value> GetJson(uint16_t sim_port, const std::string& target) {
  auto r = HttpGet(sim_port, target);
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return absl::UnavailableError(StrCat("GET ", target, ": ", r->status, " ", r->body));
  }
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (ec) return absl::InternalError(StrCat("GET ", target, ": not JSON: ", ec.message()));
  return v;
}

}  // namespace

absl::StatusOr<json::value> ReadLedger(uint16_t sim_port, std::string_view query) {
  return GetJson(sim_port, StrCat("/_sim/ledger?", query));
}

absl::StatusOr<json::value> ReadSimStats(uint16_t sim_port) {
  return GetJson(sim_port, "/_sim/stats");
}

std::map<std::string, int> MassMessagesPerAccount(const json::value& ledger) {
  std::map<std::string, int> out;
  for (const auto& a : ledger.at("accounts").as_array()) {
    out[std::string(a.at("account_id").as_string())] =
        static_cast<int>(a.at("mass_messages").as_array().size());
  }
  return out;
}

}  // namespace herald::testing
