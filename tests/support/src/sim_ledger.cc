#include <boost/json/parse.hpp>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/sim_ledger.h>

namespace herald::testing {

namespace json = boost::json;

absl::StatusOr<json::value> ReadLedger(uint16_t sim_port, std::string_view query) {
  auto r = HttpGet(sim_port, StrCat("/_sim/ledger?", query));
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return absl::UnavailableError(StrCat("GET /_sim/ledger: ", r->status, " ", r->body));
  }
  boost::system::error_code ec;
  json::value ledger = json::parse(r->body, ec);
  if (ec) return absl::InternalError(StrCat("the ledger is not JSON: ", ec.message()));
  return ledger;
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
