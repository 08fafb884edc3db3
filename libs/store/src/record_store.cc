#include <algorithm>
#include <map>
#include <mutex>

#include <absl/strings/numbers.h>
#include <boost/json.hpp>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/store/record_store.h>

#include "store_lua.h"

namespace herald::store {
std::string TenantKeyPrefix(std::string_view tenant) {
  return tenant.empty() ? std::string("hd:{platform}:") : StrCat("hd:{t:", tenant, "}:");
}

namespace {

namespace asio = boost::asio;

// ---------------------------------------------------------------------------------------------
// Redis

std::string TableKey(const Table& t) { return StrCat(TenantKeyPrefix(t.tenant), t.name); }
std::string IndexKey(const Table& t) { return StrCat(TableKey(t), ":idx"); }
std::string RequestKey(const Table& t, std::string_view request_id) {
  return StrCat(TableKey(t), ":req:", request_id);
}

// Beside the request-id key: the fingerprint of the request that made it (create.lua). Its own
// prefix, so that no request id names another's fingerprint (as "<id>:fp" would).
std::string FingerprintKey(const Table& t, std::string_view request_id) {
  return StrCat(TableKey(t), ":reqfp:", request_id);
}
std::string RevisionKey(std::string_view tenant, std::string_view name) {
  return StrCat(TenantKeyPrefix(tenant), "rev:", name);
}
std::string BlobKey(std::string_view tenant, std::string_view id) {
  return StrCat(TenantKeyPrefix(tenant), "blob:", id);
}

absl::Status ProtocolError(std::string_view script, const redis::Reply& reply) {
  return absl::InternalError(StrCat(script, ": unexpected reply ", reply.DebugString()));
}

// An array reply of `size` bulk strings or nils.
absl::StatusOr<std::vector<std::optional<std::string>>> OptionalStrings(std::string_view what,
                                                                        const redis::Reply& reply,
                                                                        size_t size) {
  if (reply.type() != redis::Reply::Type::kArray || reply.elements().size() != size) {
    return ProtocolError(what, reply);
  }
  std::vector<std::optional<std::string>> out;
  out.reserve(size);
  for (const redis::Reply& r : reply.elements()) out.push_back(r.AsOptionalString());
  return out;
}

absl::Status CheckOneTenant(const std::vector<Lookup>& lookups) {
  for (const Lookup& l : lookups) {
    if (l.table.tenant != lookups.front().table.tenant) {
      return absl::InvalidArgumentError(StrCat("tables of two tenants in one read: '",
                                               lookups.front().table.tenant, "' and '",
                                               l.table.tenant, "'"));
    }
  }
  return absl::OkStatus();
}

// Rows written and tables read beside a write to `table` must be of its tenant (`what`: "a
// create", "a replace").
absl::Status CheckSameTenant(std::string_view what, const Table& table,
                             const std::vector<TableRows>& writes,
                             const std::vector<Lookup>& reads) {
  for (const TableRows& rows : writes) {
    if (rows.table.tenant != table.tenant) {
      return absl::InvalidArgumentError(StrCat(what, " in tenant '", table.tenant,
                                               "' writes to table '", rows.table.name,
                                               "' of tenant '", rows.table.tenant, "'"));
    }
  }
  for (const Lookup& read : reads) {
    if (read.table.tenant != table.tenant) {
      return absl::InvalidArgumentError(StrCat(what, " in tenant '", table.tenant,
                                               "' reads table '", read.table.name, "' of tenant '",
                                               read.table.tenant, "'"));
    }
  }
  return absl::OkStatus();
}

// CheckSameTenant for a create, its references and followed table included.
absl::Status CheckCreate(const Table& table, const CreateRequest& request) {
  HERALD_RETURN_IF_ERROR(CheckSameTenant("a create", table, request.rows, request.reads));
  HERALD_RETURN_IF_ERROR(CheckSameTenant("a create", table, {}, request.references));
  if (request.follow) {
    if (request.follow->of >= request.references.size()) {
      return absl::InvalidArgumentError(StrCat("a create follows references[", request.follow->of,
                                               "] of ", request.references.size()));
    }
    HERALD_RETURN_IF_ERROR(
        CheckSameTenant("a create", table, {}, {Lookup{.table = request.follow->table}}));
  }
  return absl::OkStatus();
}

// Records (tenants, campaigns, ...) are acknowledged to API callers: replicated writes.
// tables.lua (how rows and reads are passed) comes first in each.
const redis::Script& CreateScript() {
  static const redis::Script script{StrCat(lua::kTables, "\n", lua::kCreate),
                                    redis::Script::Durability::kReplicated};
  return script;
}
const redis::Script& PutReplicatedScript() {
  static const redis::Script script{"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\nreturn 1",
                                    redis::Script::Durability::kReplicated};
  return script;
}
const redis::Script& ReplaceScript() {
  static const redis::Script script{StrCat(lua::kTables, "\n", lua::kReplace),
                                    redis::Script::Durability::kReplicated};
  return script;
}

// Appends the keys and arguments of rows and reads as create.lua and replace.lua take them:
// a key per table; per table of rows a count and (id, JSON) pairs, then per read a count and ids
// (the lookups of each of `reads` in turn: a create's reads, then its references).
void AppendRowsAndReads(std::vector<TableRows>& writes,
                        std::initializer_list<std::vector<Lookup>*> reads,
                        std::vector<std::string>& keys, std::vector<std::string>& args) {
  size_t arg_count = args.size();
  for (const TableRows& rows : writes) {
    keys.push_back(TableKey(rows.table));
    arg_count += 1 + 2 * rows.documents.size();
  }
  for (const std::vector<Lookup>* lookups : reads) {
    for (const Lookup& read : *lookups) {
      keys.push_back(TableKey(read.table));
      arg_count += 1 + read.ids.size();
    }
  }
  args.reserve(arg_count);
  for (TableRows& rows : writes) {
    args.push_back(std::to_string(rows.documents.size()));
    for (auto& [id, doc] : rows.documents) {
      args.push_back(std::move(id));
      args.push_back(std::move(doc));
    }
  }
  for (std::vector<Lookup>* lookups : reads) {
    for (Lookup& read : *lookups) {
      args.push_back(std::to_string(read.ids.size()));
      for (std::string& id : read.ids) args.push_back(std::move(id));
    }
  }
}

// A script's reads (per Lookup, an array of bulk strings or nils).
absl::StatusOr<LookupResults> ScriptReads(std::string_view script, const redis::Reply& reply,
                                          const std::vector<Lookup>& reads) {
  if (reply.type() != redis::Reply::Type::kArray || reply.elements().size() != reads.size()) {
    return ProtocolError(script, reply);
  }
  LookupResults out;
  out.reserve(reads.size());
  for (size_t i = 0; i < reads.size(); ++i) {
    HERALD_ASSIGN_OR_RETURN(auto docs,
                            OptionalStrings(script, reply.elements()[i], reads[i].ids.size()));
    out.push_back(std::move(docs));
  }
  return out;
}

// The EXEC reply of a MULTI … EXEC batch, once none of its commands failed.
absl::StatusOr<const redis::Reply*> Executed(const std::vector<redis::Reply>& replies) {
  const redis::Reply& exec = replies.back();
  if (exec.is_error()) return exec.ToStatus();
  if (exec.type() != redis::Reply::Type::kArray) return ProtocolError("EXEC", exec);
  for (const redis::Reply& r : exec.elements()) {
    if (r.is_error()) return r.ToStatus();
  }
  return &exec;
}

class RedisRecordStore final : public RecordStore {
 public:
  using RecordStore::Replace;

  explicit RedisRecordStore(redis::Client& client) : client_(client) {}

  Op<CreateOutcome> Create(Table table, CreateRequest request) override {
    HERALD_CO_RETURN_IF_ERROR(CheckCreate(table, request));
    const std::string table_key = TableKey(table);
    const bool has_request = !request.request_id.empty();
    std::vector<std::string> keys;
    keys.reserve(5 + request.rows.size() + request.reads.size() + request.references.size());
    keys.push_back(table_key);
    keys.push_back(has_request ? RequestKey(table, request.request_id) : table_key);
    keys.push_back(request.index_score ? IndexKey(table) : table_key);
    keys.push_back(request.revision ? RevisionKey(table.tenant, *request.revision) : table_key);
    std::vector<std::string> args;
    args.push_back(request.id);
    args.push_back(request.document);
    args.push_back(has_request ? "1" : "0");
    args.push_back(
        std::to_string(std::max<int64_t>(1, absl::ToInt64Seconds(request.request_id_ttl))));
    args.push_back(request.index_score ? StrCat(*request.index_score) : "0");
    args.push_back(std::to_string(request.rows.size()));
    args.push_back(std::to_string(request.reads.size()));
    args.push_back(std::to_string(request.references.size()));
    args.push_back(request.follow ? std::to_string(request.follow->of + 1) : "0");
    args.push_back(request.follow ? request.follow->field : "");
    args.push_back(request.request_fingerprint);
    AppendRowsAndReads(request.rows, {&request.reads, &request.references}, keys, args);
    if (request.follow) keys.push_back(TableKey(request.follow->table));
    keys.push_back(has_request ? FingerprintKey(table, request.request_id) : table_key);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Eval(CreateScript(), keys, std::move(args)));
    const auto& e = reply.elements();
    if (reply.type() != redis::Reply::Type::kArray || e.size() != 6 ||
        e[0].type() != redis::Reply::Type::kInteger ||
        e[2].type() != redis::Reply::Type::kInteger || e[5].type() != redis::Reply::Type::kArray) {
      co_return ProtocolError("create.lua", reply);
    }
    CreateOutcome out;
    switch (e[0].integer()) {
      case 0:
        out.code = CreateCode::kCreated;
        out.document = std::move(request.document);
        out.revision = e[2].integer();
        break;
      case 1:
        out.code = CreateCode::kReplayed;
        out.document = e[1].AsOptionalString();
        break;
      case 2:
        out.code = CreateCode::kExists;
        break;
      case 3:
        out.code = CreateCode::kMissingReference;
        break;
      case 4: {
        out.code = CreateCode::kRequestReused;
        HERALD_CO_ASSIGN_OR_RETURN(out.reused_by, e[1].AsString());
        break;
      }
      default:
        co_return ProtocolError("create.lua", reply);
    }
    HERALD_CO_ASSIGN_OR_RETURN(out.reads, ScriptReads("create.lua", e[3], request.reads));
    HERALD_CO_ASSIGN_OR_RETURN(out.references, ScriptReads("create.lua", e[4], request.references));
    HERALD_CO_ASSIGN_OR_RETURN(out.followed,
                               OptionalStrings("create.lua", e[5], e[5].elements().size()));
    co_return out;
  }

  Op<std::optional<std::string>> Get(Table table, std::string id) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"HGET", TableKey(table), id}));
    if (reply.is_nil()) co_return std::nullopt;
    HERALD_CO_ASSIGN_OR_RETURN(std::string doc, reply.AsString());
    co_return doc;
  }

  Op<std::optional<RequestRecord>> CreatedBy(Table table, std::string request_id) override {
    if (request_id.empty()) co_return std::nullopt;
    // One slot (the tenant's): one MGET.
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"MGET", RequestKey(table, request_id),
                                                      FingerprintKey(table, request_id)}));
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> values,
                               OptionalStrings("MGET", reply, 2));
    if (!values[0]) co_return std::nullopt;
    co_return RequestRecord{.id = *std::move(values[0]), .fingerprint = values[1].value_or("")};
  }

  Op<std::vector<std::optional<std::string>>> GetMany(Table table,
                                                      std::vector<std::string> ids) override {
    if (ids.empty()) co_return std::vector<std::optional<std::string>>();
    redis::Command cmd{"HMGET", TableKey(table)};
    cmd.Args(ids);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await client_.Exec(std::move(cmd)));
    co_return OptionalStrings("HMGET", reply, ids.size());
  }

  Op<LookupResults> GetTables(std::vector<Lookup> lookups) override {
    HERALD_CO_RETURN_IF_ERROR(CheckOneTenant(lookups));
    std::vector<redis::Command> batch;
    batch.reserve(lookups.size());
    for (const Lookup& l : lookups) {
      if (l.ids.empty()) continue;
      redis::Command& cmd = batch.emplace_back("HMGET", TableKey(l.table));
      cmd.Args(l.ids);
    }
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                               co_await client_.ExecBatch(std::move(batch)));
    LookupResults out(lookups.size());
    size_t next = 0;
    for (size_t i = 0; i < lookups.size(); ++i) {
      if (lookups[i].ids.empty()) continue;
      if (next >= replies.size()) co_return absl::InternalError("HMGET: a reply is missing");
      const redis::Reply& reply = replies[next++];
      if (reply.is_error()) co_return reply.ToStatus();
      HERALD_CO_ASSIGN_OR_RETURN(out[i], OptionalStrings("HMGET", reply, lookups[i].ids.size()));
    }
    co_return out;
  }

  Op<std::vector<std::pair<std::string, std::string>>> GetAll(Table table) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"HGETALL", TableKey(table)}));
    const auto& e = reply.elements();
    if (reply.type() != redis::Reply::Type::kArray || e.size() % 2 != 0) {
      co_return ProtocolError("HGETALL", reply);
    }
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(e.size() / 2);
    for (size_t i = 0; i < e.size(); i += 2) {
      out.emplace_back(std::string(e[i].str()), std::string(e[i + 1].str()));
    }
    std::sort(out.begin(), out.end());
    co_return out;
  }

  Op<int64_t> Put(Table table, std::string id, std::string document,
                  std::optional<std::string> revision) override {
    std::vector<std::pair<std::string, std::string>> docs;
    docs.emplace_back(std::move(id), std::move(document));
    co_return co_await PutMany(std::move(table), std::move(docs), std::move(revision));
  }

  Op<int64_t> PutMany(Table table, std::vector<std::pair<std::string, std::string>> documents,
                      std::optional<std::string> revision) override {
    redis::Command hset{"HSET", TableKey(table)};
    for (const auto& [id, doc] : documents) hset.Arg(id).Arg(doc);
    if (documents.empty() && !revision) co_return 0;
    std::vector<redis::Command> batch;
    batch.emplace_back("MULTI");
    if (!documents.empty()) batch.push_back(std::move(hset));
    if (revision) batch.emplace_back("INCR", RevisionKey(table.tenant, *revision));
    batch.emplace_back("EXEC");
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                               co_await client_.ExecBatch(std::move(batch)));
    HERALD_CO_ASSIGN_OR_RETURN(const redis::Reply* exec, Executed(replies));
    if (!revision) co_return 0;
    co_return exec->elements().back().AsInteger();
  }

  boost::asio::awaitable<absl::Status> PutReplicated(Table table, std::string id,
                                                     std::string document) override {
    std::vector<std::string> keys{TableKey(table)};
    std::vector<std::string> args{std::move(id), std::move(document)};
    absl::StatusOr<redis::Reply> reply =
        co_await client_.Eval(PutReplicatedScript(), std::move(keys), std::move(args));
    co_return reply.status();
  }

  boost::asio::awaitable<absl::Status> PutExpiring(Table table, std::string id,
                                                   std::string document,
                                                   absl::Duration ttl) override {
    const std::string key = TableKey(table);
    std::vector<redis::Command> batch;
    batch.emplace_back("MULTI");
    batch.emplace_back("HSET", key, id, document);
    const int64_t ttl_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl));
    batch.emplace_back("PEXPIRE", key, std::to_string(ttl_ms));
    batch.emplace_back("EXEC");
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                               co_await client_.ExecBatch(std::move(batch)));
    co_return Executed(replies).status();
  }

  Op<ReplaceOutcome> Replace(Table table, ReplaceRequest request) override {
    HERALD_CO_RETURN_IF_ERROR(CheckSameTenant("a replace", table, request.rows, request.reads));
    const std::string table_key = TableKey(table);
    std::vector<std::string> keys;
    keys.reserve(2 + request.rows.size() + request.reads.size());
    keys.push_back(table_key);
    keys.push_back(request.revision ? RevisionKey(table.tenant, *request.revision) : table_key);
    std::vector<std::string> args;
    args.push_back(std::move(request.id));
    args.push_back(std::move(request.expected));
    args.push_back(std::move(request.document));
    args.push_back(std::to_string(request.rows.size()));
    AppendRowsAndReads(request.rows, {&request.reads}, keys, args);
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Eval(ReplaceScript(), keys, std::move(args)));
    const auto& e = reply.elements();
    if (reply.type() != redis::Reply::Type::kArray || e.size() != 2 ||
        e[0].type() != redis::Reply::Type::kInteger) {
      co_return ProtocolError("replace.lua", reply);
    }
    ReplaceOutcome out;
    switch (e[0].integer()) {
      case 0:
        out.code = ReplaceCode::kReplaced;
        break;
      case 1:
        out.code = ReplaceCode::kConflict;
        break;
      case 2:
        out.code = ReplaceCode::kNotFound;
        break;
      default:
        co_return ProtocolError("replace.lua", reply);
    }
    HERALD_CO_ASSIGN_OR_RETURN(out.reads, ScriptReads("replace.lua", e[1], request.reads));
    co_return out;
  }

  Op<bool> Delete(Table table, std::string id) override {
    std::vector<redis::Command> batch;
    batch.emplace_back("MULTI");
    batch.emplace_back("HDEL", TableKey(table), id);
    batch.emplace_back("ZREM", IndexKey(table), id);
    batch.emplace_back("EXEC");
    HERALD_CO_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies,
                               co_await client_.ExecBatch(std::move(batch)));
    HERALD_CO_ASSIGN_OR_RETURN(const redis::Reply* exec, Executed(replies));
    if (exec->elements().empty()) co_return ProtocolError("EXEC", *exec);
    HERALD_CO_ASSIGN_OR_RETURN(int64_t removed, exec->elements()[0].AsInteger());
    co_return removed > 0;
  }

  Op<bool> DeleteTable(Table table) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"DEL", TableKey(table), IndexKey(table)}));
    HERALD_CO_ASSIGN_OR_RETURN(const int64_t removed, reply.AsInteger());
    co_return removed > 0;
  }

  Op<std::vector<std::pair<std::string, double>>> IndexBefore(Table table,
                                                              std::optional<double> before,
                                                              int limit) override {
    const std::string max = before ? StrCat("(", *before) : "+inf";
    redis::Command range{"ZREVRANGEBYSCORE", IndexKey(table), max, "-inf",
                         "WITHSCORES",       "LIMIT",         "0", limit};
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply, co_await client_.Exec(std::move(range)));
    const auto& e = reply.elements();
    if (reply.type() != redis::Reply::Type::kArray || e.size() % 2 != 0) {
      co_return ProtocolError("ZREVRANGEBYSCORE", reply);
    }
    std::vector<std::pair<std::string, double>> out;
    for (size_t i = 0; i < e.size(); i += 2) {
      double score = 0;
      if (!absl::SimpleAtod(ToAbsl(e[i + 1].str()), &score))
        co_return ProtocolError("score", e[i + 1]);
      out.emplace_back(std::string(e[i].str()), score);
    }
    co_return out;
  }

  Op<int64_t> Revision(std::string tenant, std::string name) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"GET", RevisionKey(tenant, name)}));
    if (reply.is_nil()) co_return 0;
    co_return reply.AsInteger();
  }

  Op<bool> PutBlob(std::string tenant, std::string id, std::string bytes) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"SET", BlobKey(tenant, id), bytes}));
    co_return !reply.is_error();
  }

  Op<std::optional<std::string>> GetBlob(std::string tenant, std::string id) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"GET", BlobKey(tenant, id)}));
    co_return reply.AsOptionalString();
  }

  Op<bool> DeleteBlob(std::string tenant, std::string id) override {
    HERALD_CO_ASSIGN_OR_RETURN(redis::Reply reply,
                               co_await client_.Exec({"DEL", BlobKey(tenant, id)}));
    HERALD_CO_ASSIGN_OR_RETURN(const int64_t removed, reply.AsInteger());
    co_return removed == 1;
  }

 private:
  redis::Client& client_;
};

// ---------------------------------------------------------------------------------------------
// Memory

class MemoryRecordStore final : public RecordStore {
 public:
  using RecordStore::Replace;

  Op<CreateOutcome> Create(Table table, CreateRequest request) override {
    HERALD_CO_RETURN_IF_ERROR(CheckCreate(table, request));
    std::lock_guard lock(mu_);
    LookupResults references;
    for (const Lookup& l : request.references) references.push_back(FindMany(l));
    CreateOutcome out = CreateLocked(table, request, references);
    for (const Lookup& read : request.reads) out.reads.push_back(FindMany(read));
    if (out.code == CreateCode::kCreated && request.follow) {
      out.followed = Follow(*request.follow, references[request.follow->of]);
    }
    out.references = std::move(references);
    co_return out;
  }

  Op<std::optional<std::string>> Get(Table table, std::string id) override {
    std::lock_guard lock(mu_);
    co_return Find(TableKey(table), id);
  }

  Op<std::optional<RequestRecord>> CreatedBy(Table table, std::string request_id) override {
    std::lock_guard lock(mu_);
    auto it = requests_.find(RequestKey(table, request_id));
    if (request_id.empty() || it == requests_.end()) co_return std::nullopt;
    co_return it->second;
  }

  Op<std::vector<std::optional<std::string>>> GetMany(Table table,
                                                      std::vector<std::string> ids) override {
    std::lock_guard lock(mu_);
    co_return FindMany(Lookup{.table = std::move(table), .ids = std::move(ids)});
  }

  Op<LookupResults> GetTables(std::vector<Lookup> lookups) override {
    HERALD_CO_RETURN_IF_ERROR(CheckOneTenant(lookups));
    std::lock_guard lock(mu_);
    LookupResults out;
    for (const Lookup& l : lookups) out.push_back(FindMany(l));
    co_return out;
  }

  Op<std::vector<std::pair<std::string, std::string>>> GetAll(Table table) override {
    std::lock_guard lock(mu_);
    const auto& rows = tables_[TableKey(table)];
    co_return std::vector<std::pair<std::string, std::string>>(rows.begin(), rows.end());
  }

  Op<int64_t> Put(Table table, std::string id, std::string document,
                  std::optional<std::string> revision) override {
    std::vector<std::pair<std::string, std::string>> docs;
    docs.emplace_back(std::move(id), std::move(document));
    co_return co_await PutMany(std::move(table), std::move(docs), std::move(revision));
  }

  Op<int64_t> PutMany(Table table, std::vector<std::pair<std::string, std::string>> documents,
                      std::optional<std::string> revision) override {
    std::lock_guard lock(mu_);
    auto& rows = tables_[TableKey(table)];
    for (auto& [id, doc] : documents) rows[id] = std::move(doc);
    co_return revision ? ++revisions_[RevisionKey(table.tenant, *revision)] : 0;
  }

  boost::asio::awaitable<absl::Status> PutExpiring(Table table, std::string id,
                                                   std::string document,
                                                   absl::Duration /*ttl*/) override {
    std::lock_guard lock(mu_);
    tables_[TableKey(table)][id] = std::move(document);
    co_return absl::OkStatus();
  }

  Op<ReplaceOutcome> Replace(Table table, ReplaceRequest request) override {
    HERALD_CO_RETURN_IF_ERROR(CheckSameTenant("a replace", table, request.rows, request.reads));
    std::lock_guard lock(mu_);
    ReplaceOutcome out{.code = ReplaceLocked(table, request)};
    for (const Lookup& read : request.reads) out.reads.push_back(FindMany(read));
    co_return out;
  }

  Op<bool> Delete(Table table, std::string id) override {
    std::lock_guard lock(mu_);
    indexes_[TableKey(table)].erase(id);
    co_return tables_[TableKey(table)].erase(id) > 0;
  }

  Op<bool> DeleteTable(Table table) override {
    std::lock_guard lock(mu_);
    indexes_.erase(TableKey(table));
    auto it = tables_.find(TableKey(table));
    if (it == tables_.end()) co_return false;
    const bool had_documents = !it->second.empty();
    tables_.erase(it);
    co_return had_documents;
  }

  Op<std::vector<std::pair<std::string, double>>> IndexBefore(Table table,
                                                              std::optional<double> before,
                                                              int limit) override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, double>> all;
    for (const auto& [id, score] : indexes_[TableKey(table)]) {
      if (!before || score < *before) all.emplace_back(id, score);
    }
    // Redis orders equal scores by member; highest first, as ZREVRANGEBYSCORE does.
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first > b.first;
    });
    // A negative limit is no limit, as LIMIT 0 -1 is in Redis.
    if (limit >= 0 && all.size() > static_cast<size_t>(limit)) all.resize(limit);
    co_return all;
  }

  Op<int64_t> Revision(std::string tenant, std::string name) override {
    std::lock_guard lock(mu_);
    co_return revisions_[RevisionKey(tenant, name)];
  }

  Op<bool> PutBlob(std::string tenant, std::string id, std::string bytes) override {
    std::lock_guard lock(mu_);
    blobs_[BlobKey(tenant, id)] = std::move(bytes);
    co_return true;
  }

  Op<std::optional<std::string>> GetBlob(std::string tenant, std::string id) override {
    std::lock_guard lock(mu_);
    auto it = blobs_.find(BlobKey(tenant, id));
    co_return it == blobs_.end() ? std::nullopt : std::optional(it->second);
  }

  Op<bool> DeleteBlob(std::string tenant, std::string id) override {
    std::lock_guard lock(mu_);
    co_return blobs_.erase(BlobKey(tenant, id)) == 1;
  }

 private:
  // create.lua's follow: the documents of the ids that `field` names in `documents`.
  std::vector<std::optional<std::string>> Follow(
      const store::Follow& follow, const std::vector<std::optional<std::string>>& documents) {
    Lookup named{.table = follow.table};
    for (const auto& doc : documents) {
      boost::system::error_code ec;
      const boost::json::value v = boost::json::parse(*doc, ec);
      const boost::json::string* id = nullptr;
      if (!ec && v.is_object()) {
        if (const boost::json::value* f = v.as_object().if_contains(follow.field)) {
          id = f->if_string();
        }
      }
      if (id == nullptr) continue;
      const std::string value(id->data(), id->size());
      if (std::find(named.ids.begin(), named.ids.end(), value) == named.ids.end()) {
        named.ids.push_back(value);
      }
    }
    return FindMany(named);
  }

  CreateOutcome CreateLocked(const Table& table, CreateRequest& request,
                             const LookupResults& references) {
    const std::string key = TableKey(table);
    auto& rows = tables_[key];
    if (!request.request_id.empty()) {
      auto prior = requests_.find(RequestKey(table, request.request_id));
      if (prior != requests_.end()) {
        const RequestRecord& first = prior->second;
        if (!first.fingerprint.empty() && !request.request_fingerprint.empty() &&
            first.fingerprint != request.request_fingerprint) {
          return {.code = CreateCode::kRequestReused, .reused_by = first.id};
        }
        auto row = rows.find(first.id);
        return {.code = CreateCode::kReplayed,
                .document = row == rows.end() ? std::nullopt : std::optional(row->second)};
      }
    }
    if (rows.contains(request.id)) return {.code = CreateCode::kExists};
    for (const auto& docs : references) {
      for (const auto& doc : docs) {
        if (!doc) return {.code = CreateCode::kMissingReference};
      }
    }
    rows[request.id] = request.document;
    if (request.index_score) indexes_[key][request.id] = *request.index_score;
    for (TableRows& more : request.rows) {
      auto& other = tables_[TableKey(more.table)];
      for (auto& [id, doc] : more.documents) other[id] = std::move(doc);
    }
    int64_t revision = 0;
    if (request.revision) revision = ++revisions_[RevisionKey(table.tenant, *request.revision)];
    if (!request.request_id.empty()) {
      requests_[RequestKey(table, request.request_id)] =
          RequestRecord{.id = request.id, .fingerprint = request.request_fingerprint};
    }
    return {.code = CreateCode::kCreated,
            .document = std::move(request.document),
            .revision = revision};
  }

  ReplaceCode ReplaceLocked(const Table& table, ReplaceRequest& request) {
    auto& rows = tables_[TableKey(table)];
    auto it = rows.find(request.id);
    if (it == rows.end()) return ReplaceCode::kNotFound;
    if (it->second != request.expected) return ReplaceCode::kConflict;
    it->second = std::move(request.document);
    for (TableRows& more : request.rows) {
      auto& other = tables_[TableKey(more.table)];
      for (auto& [id, doc] : more.documents) other[id] = std::move(doc);
    }
    if (request.revision) ++revisions_[RevisionKey(table.tenant, *request.revision)];
    return ReplaceCode::kReplaced;
  }

  std::vector<std::optional<std::string>> FindMany(const Lookup& lookup) {
    const std::string table = TableKey(lookup.table);
    std::vector<std::optional<std::string>> out;
    out.reserve(lookup.ids.size());
    for (const auto& id : lookup.ids) out.push_back(Find(table, id));
    return out;
  }

  std::optional<std::string> Find(const std::string& table, const std::string& id) {
    auto& rows = tables_[table];
    auto it = rows.find(id);
    return it == rows.end() ? std::nullopt : std::optional(it->second);
  }

  std::mutex mu_;
  std::map<std::string, std::map<std::string, std::string>> tables_;
  std::map<std::string, std::map<std::string, double>> indexes_;
  std::map<std::string, RequestRecord> requests_;
  std::map<std::string, int64_t> revisions_;
  std::map<std::string, std::string> blobs_;
};

}  // namespace

boost::asio::awaitable<absl::Status> RecordStore::PutReplicated(Table table, std::string id,
                                                                std::string document) {
  co_return (co_await Put(std::move(table), std::move(id), std::move(document))).status();
}

RecordStore::Op<ReplaceCode> RecordStore::Replace(Table table, std::string id, std::string expected,
                                                  std::string document,
                                                  std::optional<std::string> revision) {
  // A named local: g++ 12 destroys a braced temporary inside a co_await expression twice.
  ReplaceRequest request{.id = std::move(id),
                         .expected = std::move(expected),
                         .document = std::move(document),
                         .revision = std::move(revision)};
  HERALD_CO_ASSIGN_OR_RETURN(ReplaceOutcome out,
                             co_await Replace(std::move(table), std::move(request)));
  co_return out.code;
}

std::unique_ptr<RecordStore> MakeRedisRecordStore(redis::Client& client) {
  return std::make_unique<RedisRecordStore>(client);
}

std::unique_ptr<RecordStore> MakeMemoryRecordStore() {
  return std::make_unique<MemoryRecordStore>();
}

}  // namespace herald::store
