// Where Herald's records live: tables of JSON documents, one table per kind and tenant.
//
// RecordStore is the seam between the domain and Redis. It knows tables (id -> document, with an
// optional time index), idempotent creates and compare-and-set, and nothing about what the
// documents mean; Store (store.h) adds the types. RedisRecordStore keeps each table in a Redis
// hash under the tenant's hash tag, so every operation on one tenant touches one hash slot and
// the layout stays valid on Redis Cluster; MemoryRecordStore keeps them in memory for tests of
// the layers above. Both pass the same contract tests (tests/integration/record_store_test.cc).
//
// Errors: kUnavailable / kDeadlineExceeded when Redis cannot be reached in time (the operation
// may or may not have happened; creates with a request id and compare-and-set are safe to
// retry); kInternal for a reply that does not follow the scripts' protocol.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/awaitable.hpp>

namespace herald::redis {
class Client;
}  // namespace herald::redis

namespace herald::store {

// The prefix of every key of `tenant` ("hd:{t:<tenant>}:"; "hd:{platform}:" for the empty
// tenant): the hash tag keeps all of a tenant's keys, its records and its analytics, in one
// cluster slot.
std::string TenantKeyPrefix(std::string_view tenant);

// A table: the documents of one kind of one tenant ("teams" of "acme"). `tenant` is empty for
// the platform's own tables (the tenants, the key index).
struct Table {
  std::string tenant;
  std::string name;
};

enum class CreateCode {
  kCreated,
  kReplayed,          // a create with the same request id happened before; `document` is its record
  kExists,            // the id is taken (and the request id is new): nothing changed
  kMissingReference,  // a document of CreateRequest::references is absent: nothing changed
  kRequestReused,     // the request id was used by another request (another fingerprint), whose
                      // record's id is `reused_by`: nothing changed
};

// Documents of one table, by id.
struct TableRows {
  Table table;
  std::vector<std::pair<std::string, std::string>> documents;
};

// Ids to read from one table.
struct Lookup {
  Table table;
  std::vector<std::string> ids;
};

// For each Lookup, its documents in the order of its ids; nullopt for each id that does not exist.
using LookupResults = std::vector<std::vector<std::optional<std::string>>>;

struct CreateOutcome {
  CreateCode code = CreateCode::kCreated;
  std::optional<std::string> document;  // kCreated: the new one; kReplayed: the earlier one
  int64_t revision = 0;                 // kCreated with CreateRequest::revision: its new value
  LookupResults reads;                  // CreateRequest::reads, whatever the code
  LookupResults references;             // CreateRequest::references, whatever the code
  // kCreated with CreateRequest::follow: the followed table's document (nullopt when absent) of
  // each id the followed field names, each id once, in the order first named.
  std::vector<std::optional<std::string>> followed;
  std::string reused_by;  // kRequestReused: the id the request id's first create made
};

// Ids named by the documents of a create's references (CreateRequest::follow).
struct Follow {
  size_t of = 0;      // the position of the references' lookup in CreateRequest::references
  std::string field;  // a top-level string field of its documents, naming ids of `table`
  Table table;
};

struct CreateRequest {
  std::string id;
  std::string document;
  std::string request_id;  // empty: not idempotent
  // What a retry repeats unchanged (a digest of the caller's request); empty: any request with
  // the id is taken for a retry.
  std::string request_fingerprint;
  std::optional<double> index_score;  // set: also indexed by this score (e.g. create time)
  absl::Duration request_id_ttl = absl::Hours(24);
  // Written in the same atomic step as the record, and only when it is created (not on a replay,
  // not when the id is taken): documents of other tables of the record's tenant, set
  // unconditionally, and a counter of the tenant bumped once.
  std::vector<TableRows> rows;
  std::optional<std::string> revision;
  // Read in the same step, after the write: documents of tables of the record's tenant that the
  // caller needs beside the outcome (CreateOutcome::reads).
  std::vector<Lookup> reads;
  // Documents of the record's tenant it refers to, read in the same step before the write: when
  // one is absent nothing is written (kMissingReference). A replay is found first, whatever the
  // references.
  std::vector<Lookup> references;
  // Read after the write when the record is created: the documents that the references of one
  // lookup name in a field of theirs (CreateOutcome::followed).
  std::optional<Follow> follow;
};

// What a create with a request id left behind (RecordStore::CreatedBy).
struct RequestRecord {
  std::string id;           // the record it made
  std::string fingerprint;  // CreateRequest::request_fingerprint (empty when it had none)
};

enum class ReplaceCode {
  kReplaced,
  kConflict,  // the document changed since it was read: read again and retry
  kNotFound,
};

struct ReplaceRequest {
  std::string id;
  std::string expected;                 // the document as the caller read it
  std::string document;                 // what replaces it
  std::optional<std::string> revision;  // set: a counter of the tenant bumped on success
  // Written in the same atomic step, and only when the document is replaced: documents of other
  // tables of the record's tenant, set unconditionally.
  std::vector<TableRows> rows;
  // Read in the same step, after the write, whatever the outcome: documents of tables of the
  // record's tenant (ReplaceOutcome::reads).
  std::vector<Lookup> reads;
};

struct ReplaceOutcome {
  ReplaceCode code = ReplaceCode::kReplaced;
  LookupResults reads;  // ReplaceRequest::reads, whatever the code
};

class RecordStore {
 public:
  template <typename T>
  using Op = boost::asio::awaitable<absl::StatusOr<T>>;

  virtual ~RecordStore() = default;

  // Tables of `request.rows`, `request.reads`, `request.references` and `request.follow` must be
  // of `table`'s tenant (kInvalidArgument otherwise, nothing written).
  virtual Op<CreateOutcome> Create(Table table, CreateRequest request) = 0;
  virtual Op<std::optional<std::string>> Get(Table table, std::string id) = 0;
  // The id a create of `table` with `request_id` made, and that create's fingerprint, while the
  // request id is remembered (CreateRequest::request_id_ttl); nullopt when there was none.
  virtual Op<std::optional<RequestRecord>> CreatedBy(Table table, std::string request_id) = 0;
  // Several ids at once; nullopt for each id that does not exist. In the order of `ids`.
  virtual Op<std::vector<std::optional<std::string>>> GetMany(Table table,
                                                              std::vector<std::string> ids) = 0;
  // GetMany of several tables of one tenant, in one round trip (not a snapshot: a write may land
  // between two tables' reads). Lookups of different tenants are kInvalidArgument.
  virtual Op<LookupResults> GetTables(std::vector<Lookup> lookups) = 0;
  // Every document, sorted by id.
  virtual Op<std::vector<std::pair<std::string, std::string>>> GetAll(Table table) = 0;
  // Sets `id` unconditionally (no index change). `revision`, when set, names a counter of the
  // tenant bumped in the same step.
  virtual Op<int64_t> Put(Table table, std::string id, std::string document,
                          std::optional<std::string> revision = std::nullopt) = 0;
  // Put without a revision, acknowledged only once the replicas the store waits for
  // (--redis_wait_replicas) have it: for a write a caller is told succeeded before it is read
  // back, such as the index entry of an API key handed out. The default is Put.
  virtual boost::asio::awaitable<absl::Status> PutReplicated(Table table, std::string id,
                                                             std::string document);
  // Sets `id` unconditionally, and has the whole table expire `ttl` after this write (each write
  // starts the time again): for documents nobody needs once their reader has gone. The memory
  // store keeps them until the table is deleted.
  virtual boost::asio::awaitable<absl::Status> PutExpiring(Table table, std::string id,
                                                           std::string document,
                                                           absl::Duration ttl) = 0;
  // Sets several documents unconditionally in one step; bumps `revision` once when set.
  virtual Op<int64_t> PutMany(Table table,
                              std::vector<std::pair<std::string, std::string>> documents,
                              std::optional<std::string> revision = std::nullopt) = 0;
  // Replaces `request.id` only if its document is still `request.expected`, with its rows, in
  // one atomic step, then makes its reads. Tables of `request.rows` and `request.reads` must be
  // of `table`'s tenant (kInvalidArgument otherwise, nothing written).
  virtual Op<ReplaceOutcome> Replace(Table table, ReplaceRequest request) = 0;
  // The same with nothing written beside the document and nothing read.
  Op<ReplaceCode> Replace(Table table, std::string id, std::string expected, std::string document,
                          std::optional<std::string> revision = std::nullopt);
  // Removes `id` and its index entry; true if it existed.
  virtual Op<bool> Delete(Table table, std::string id) = 0;
  // Removes every document of `table` and its index in one step; true if it had any. The request
  // ids of its creates stay remembered until they expire (CreateRequest::request_id_ttl).
  virtual Op<bool> DeleteTable(Table table) = 0;
  // Ids of the index with score < `before` (all when unset), highest score first, at most
  // `limit`, with their scores.
  virtual Op<std::vector<std::pair<std::string, double>>> IndexBefore(Table table,
                                                                      std::optional<double> before,
                                                                      int limit) = 0;
  // The tenant's counter `name` (0 when never bumped).
  virtual Op<int64_t> Revision(std::string tenant, std::string name) = 0;
  // Opaque bytes of the tenant (media files), and their removal.
  virtual Op<bool> PutBlob(std::string tenant, std::string id, std::string bytes) = 0;
  virtual Op<std::optional<std::string>> GetBlob(std::string tenant, std::string id) = 0;
  // True if the blob existed.
  virtual Op<bool> DeleteBlob(std::string tenant, std::string id) = 0;
};

// Records in Redis. The client must outlive the store.
std::unique_ptr<RecordStore> MakeRedisRecordStore(redis::Client& client);
// Records in this process's memory (tests).
std::unique_ptr<RecordStore> MakeMemoryRecordStore();

}  // namespace herald::store
