#include <boost/json/parse.hpp>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/sim_ledger.h>

namespace herald::testing {

namespace json = boost::json;

namespace {

absl::StatusOr<json::value> GetJson(uint16_t sim_port, const std::string& target,
                                    const std::map<std::string, std::string>& headers = {}) {
  auto r = HttpRequest(sim_port, "GET", target, "", headers);
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

absl::StatusOr<std::set<int64_t>> ReadListMembers(uint16_t sim_port, std::string_view account,
                                                  std::string_view list, std::string_view api_key) {
  absl::StatusOr<json::value> page =
      GetJson(sim_port, StrCat("/api/", account, "/user-lists/", list, "/users?limit=100"),
              {{"Authorization", StrCat("Bearer ", api_key)}});
  if (!page.ok()) return page.status();
  std::set<int64_t> ids;
  for (const json::value& fan : page->at("data").at("list").as_array()) {
    ids.insert(fan.at("id").to_number<int64_t>());
  }
  return ids;
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
