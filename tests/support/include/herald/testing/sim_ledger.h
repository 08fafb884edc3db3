// The upstream simulator's ledger (GET /_sim/ledger): what the upstream really did, the ground
// truth end-to-end tests compare Herald's figures with.
//
//   auto ledger = ReadLedger(sim->port());                      // every account, as JSON
//   std::map<std::string, int> sent = MassMessagesPerAccount(*ledger);
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>
#include <boost/json/value.hpp>

namespace herald::testing {

// GET /_sim/ledger?<query> from the simulator on 127.0.0.1:`sim_port`, parsed. `query` selects
// what the ledger holds (e.g. "all=true", "purchases=true", "all=true&account=acct_1"). An error
// when the request fails, the answer is not 200, or its body is not JSON.
absl::StatusOr<boost::json::value> ReadLedger(uint16_t sim_port,
                                              std::string_view query = "all=true");

// GET /_sim/stats from the simulator, parsed: request counts (`requests.in_flight` those not yet
// answered), per-team counts (`teams`), faults served. Errors as ReadLedger's.
absl::StatusOr<boost::json::value> ReadSimStats(uint16_t sim_port);

// The fan ids in upstream list `list` of `account` (its first 100 members), read with the
// team's API key `api_key` as an upstream client would. Errors as ReadLedger's.
absl::StatusOr<std::set<int64_t>> ReadListMembers(uint16_t sim_port, std::string_view account,
                                                  std::string_view list, std::string_view api_key);

// How many mass messages the ledger holds per upstream account id.
std::map<std::string, int> MassMessagesPerAccount(const boost::json::value& ledger);

}  // namespace herald::testing
