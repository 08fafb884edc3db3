// A job's record as the queue's scripts keep it in Redis (the value of P:jd, lua/common.lua),
// decoded on the C++ side: the lease script returns records whole, so the hot path in Redis never
// decodes or re-encodes one.
//
// Encoding (built by the scripts only):
//   byte 1      '1' when the previous attempt's outcome is unknown, else '0'
//   byte 2      length of the kind (1..255), then the kind
//   next byte   length of the account (1..255), then the account
//   text        failed ':' max ':' ready_ms ':' dead_ms ':' reason_length ':' reason
//   the rest    the payload, binary
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace herald::queue {

struct JobRecord {
  bool previous_outcome_unknown = false;
  std::string_view kind;
  std::string_view account;
  int64_t failed_attempts = 0;  // attempts that ended in failure or expiry
  int64_t max_attempts = 0;
  int64_t ready_ms = 0;     // Unix ms: enqueue, end of delay or backoff, or back from a lease
  int64_t dead_ms = 0;      // Unix ms; 0 unless dead-lettered
  std::string_view reason;  // the last failure's
  std::string_view payload;
};

// Decodes `record`; nullopt when it is malformed. The views point into `record`.
std::optional<JobRecord> DecodeJobRecord(std::string_view record);

}  // namespace herald::queue
