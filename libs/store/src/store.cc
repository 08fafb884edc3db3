#include <algorithm>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/store.h>

#include "codec.h"

namespace herald::store {
namespace {

// Where each kind of record lives, and how it is named in messages.
template <typename T>
struct Kind;
template <>
struct Kind<Tenant> {
  static constexpr std::string_view kTable = "tenants";
  static constexpr std::string_view kNoun = "tenant";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const Tenant&) { return {}; }
};
template <>
struct Kind<ApiKey> {
  static constexpr std::string_view kTable = "api_keys";
  static constexpr std::string_view kNoun = "API key";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const ApiKey& r) { return r.tenant; }
};
template <>
struct Kind<Team> {
  static constexpr std::string_view kTable = "teams";
  static constexpr std::string_view kNoun = "team";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const Team& r) { return r.tenant; }
};
template <>
struct Kind<Account> {
  static constexpr std::string_view kTable = "accounts";
  static constexpr std::string_view kNoun = "account";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const Account& r) { return r.tenant; }
};
template <>
struct Kind<MediaAsset> {
  static constexpr std::string_view kTable = "media";
  static constexpr std::string_view kNoun = "media asset";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const MediaAsset& r) { return r.tenant; }
};
template <>
struct Kind<Segment> {
  static constexpr std::string_view kTable = "segments";
  static constexpr std::string_view kNoun = "segment";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const Segment& r) { return r.tenant; }
};
template <>
struct Kind<Automation> {
  static constexpr std::string_view kTable = "automations";
  static constexpr std::string_view kNoun = "automation";
  static constexpr bool kIndexed = false;
  static std::string TenantOf(const Automation& r) { return r.tenant; }
};
template <>
struct Kind<Campaign> {
  static constexpr std::string_view kTable = "campaigns";
  static constexpr std::string_view kNoun = "campaign";
  static constexpr bool kIndexed = true;
  static std::string TenantOf(const Campaign& r) { return r.tenant; }
};

// The platform table mapping a key's secret hash to "tenant/key".
const Table kKeyIndex{"", "api_key_hashes"};

template <typename T>
Table TableOf(std::string tenant) {
  return {std::move(tenant), std::string(Kind<T>::kTable)};
}

Table DeliveryTable(std::string tenant, std::string_view campaign) {
  return {std::move(tenant), StrCat("c:", campaign, ":deliveries")};
}
std::string CampaignRevisionName(std::string_view campaign) { return StrCat("c:", campaign); }

template <typename T>
std::optional<std::string> RevisionOf(std::string_view id) {
  if constexpr (std::is_same_v<T, Campaign>) return CampaignRevisionName(id);
  return std::nullopt;
}

template <typename T>
absl::Status NotFound(std::string_view id) {
  return absl::NotFoundError(StrCat(Kind<T>::kNoun, " '", id, "' not found"));
}

constexpr int kUpdateAttempts = 8;

Table PendingDispatchTable(std::string tenant) { return {std::move(tenant), "pending_dispatch"}; }

Table TargetTable(std::string tenant, std::string_view campaign) {
  return {std::move(tenant), StrCat("c:", campaign, ":targets")};
}

// The stored document of a record: a campaign's targets are kept apart (TargetTable).
template <typename T>
std::string EncodeRecord(const T& record) {
  if constexpr (std::is_same_v<T, Campaign>) {
    if (!record.targets.empty()) {
      Campaign head;  // every field but the targets, which are not copied
      head.tenant = record.tenant;
      head.id = record.id;
      head.display_name = record.display_name;
      head.content = record.content;
      head.send_time_ms = record.send_time_ms;
      head.grace_period_ms = record.grace_period_ms;
      head.upstream_lead_ms = record.upstream_lead_ms;
      head.phase = record.phase;
      head.phase_reason = record.phase_reason;
      head.generation = record.generation;
      head.create_time_ms = record.create_time_ms;
      head.update_time_ms = record.update_time_ms;
      head.dispatch_time_ms = record.dispatch_time_ms;
      head.end_time_ms = record.end_time_ms;
      return Encode(head);
    }
  }
  return Encode(record);
}

// The rows of a campaign's targets table.
TableRows TargetRows(const std::string& tenant, const Campaign& campaign) {
  TableRows rows{.table = TargetTable(tenant, campaign.id)};
  rows.documents.reserve(campaign.targets.size());
  for (size_t i = 0; i < campaign.targets.size(); ++i) {
    rows.documents.emplace_back(
        campaign.targets[i].account,
        Encode(TargetDocument{.index = static_cast<int32_t>(i), .target = campaign.targets[i]}));
  }
  return rows;
}

// A create replayed by its request id whose record has been deleted since.
absl::Status ReplayedRecordDeleted(std::string_view noun) {
  return absl::NotFoundError(StrCat("the ", noun, " this request created has been deleted since"));
}

absl::Status RequestIdReused(std::string_view request_id, std::string_view noun,
                             std::string_view made) {
  return absl::AlreadyExistsError(
      StrCat("request_id: '", request_id, "' was used by a different request, which created ", noun,
             " '", made,
             "'; a retry must repeat its request unchanged, and a new request "
             "needs a new request_id"));
}

}  // namespace

bool IsFinal(DeliveryState state) {
  return state == DeliveryState::kCompleted || state == DeliveryState::kFailed ||
         state == DeliveryState::kCancelled;
}

template <typename T>
Store::Op<Created<T>> Store::Create(T record, RequestId request_id) {
  if constexpr (std::is_same_v<T, Campaign>) {
    std::vector<Delivery> no_deliveries;
    HERALD_CO_ASSIGN_OR_RETURN(
        CampaignCreated created,
        co_await CreateCampaign(std::move(record), no_deliveries, std::move(request_id)));
    co_return Created<Campaign>{.value = std::move(created.campaign), .replayed = created.replayed};
  } else {
    const std::string tenant = Kind<T>::TenantOf(record);
    CreateRequest request{.id = record.id,
                          .document = EncodeRecord(record),
                          .request_id = request_id.id,
                          .request_fingerprint = request_id.fingerprint};
    if constexpr (Kind<T>::kIndexed) {
      request.index_score = static_cast<double>(record.create_time_ms);
    }
    Table table = TableOf<T>(tenant);
    if constexpr (std::is_same_v<T, ApiKey>) {
      // The hash's index entry first: a key stored without one could never authenticate, and
      // a replay (which answers the stored key) would not write it. An entry whose key was
      // certainly not stored (a replay, a reused request id) names no key and is removed below.
      // After an error the key may have been stored all the same (an answer lost, a write not
      // confirmed by a replica), so the entry stays: one naming no key refuses the secret
      // nobody was given, as a failed removal would.
      std::string ref = StrCat(record.tenant, "/", record.id);
      // Replicated: the key is handed out once its create is, and the index must outlive a
      // failover of its own shard ({platform}), not only the key record's.
      HERALD_CO_RETURN_IF_ERROR(
          co_await records_.PutReplicated(kKeyIndex, record.secret_sha256, std::move(ref)));
    }
    absl::StatusOr<CreateOutcome> created =
        co_await records_.Create(std::move(table), std::move(request));
    if constexpr (std::is_same_v<T, ApiKey>) {
      if (created.ok() && created->code != CreateCode::kCreated) {
        std::string hash = record.secret_sha256;
        static_cast<void>(co_await records_.Delete(kKeyIndex, std::move(hash)));
      }
    }
    HERALD_CO_ASSIGN_OR_RETURN(CreateOutcome out, std::move(created));
    switch (out.code) {
      case CreateCode::kCreated:
        break;
      case CreateCode::kReplayed: {
        if (!out.document) {
          co_return ReplayedRecordDeleted(Kind<T>::kNoun);
        }
        HERALD_CO_ASSIGN_OR_RETURN(T prior, Decode<T>(*out.document));
        co_return Created<T>{.value = std::move(prior), .replayed = true};
      }
      case CreateCode::kExists:
        co_return absl::AlreadyExistsError(
            StrCat(Kind<T>::kNoun, " '", record.id, "' already exists"));
      case CreateCode::kRequestReused:
        co_return RequestIdReused(request_id.id, Kind<T>::kNoun, out.reused_by);
      case CreateCode::kMissingReference:  // the request names no references
        co_return absl::InternalError("a create without references missed one");
    }
    co_return Created<T>{.value = std::move(record)};
  }
}

Store::Op<CampaignCreated> Store::CreateCampaign(Campaign campaign,
                                                 const std::vector<Delivery>& deliveries,
                                                 RequestId request_id, CampaignCreateReads reads,
                                                 std::optional<PendingDispatch> dispatch) {
  const std::string tenant = campaign.tenant;
  CreateRequest request{.id = campaign.id,
                        .document = EncodeRecord(campaign),
                        .request_id = request_id.id,
                        .request_fingerprint = request_id.fingerprint,
                        .index_score = static_cast<double>(campaign.create_time_ms),
                        .references = std::move(reads.references),
                        .follow = std::move(reads.follow)};
  // One step: the campaign is never seen without its targets or deliveries.
  request.rows.push_back(TargetRows(tenant, campaign));
  if (!deliveries.empty()) {
    TableRows& rows =
        request.rows.emplace_back(TableRows{.table = DeliveryTable(tenant, campaign.id)});
    rows.documents.reserve(deliveries.size());
    for (const Delivery& d : deliveries) rows.documents.emplace_back(d.account, Encode(d));
    request.revision = CampaignRevisionName(campaign.id);
  }
  if (dispatch) {
    request.rows.push_back(TableRows{.table = PendingDispatchTable(tenant),
                                     .documents = {{dispatch->id, Encode(*dispatch)}}});
  }
  Table table = TableOf<Campaign>(tenant);
  HERALD_CO_ASSIGN_OR_RETURN(CreateOutcome out,
                             co_await records_.Create(std::move(table), std::move(request)));
  CampaignCreated created{.revision = out.revision,
                          .references = std::move(out.references),
                          .followed = std::move(out.followed)};
  switch (out.code) {
    case CreateCode::kCreated:
      created.campaign = std::move(campaign);
      co_return created;
    case CreateCode::kMissingReference:
      created.campaign = std::move(campaign);
      created.missing_reference = true;
      co_return created;
    case CreateCode::kReplayed: {
      if (!out.document) {
        co_return ReplayedRecordDeleted(Kind<Campaign>::kNoun);
      }
      HERALD_CO_ASSIGN_OR_RETURN(created.campaign, Decode<Campaign>(*out.document));
      HERALD_CO_ASSIGN_OR_RETURN(created.campaign.targets,
                                 co_await CampaignTargets(tenant, created.campaign.id));
      created.replayed = true;
      co_return created;
    }
    case CreateCode::kRequestReused:
      co_return RequestIdReused(request_id.id, Kind<Campaign>::kNoun, out.reused_by);
    case CreateCode::kExists:
      break;
  }
  co_return absl::AlreadyExistsError(StrCat("campaign '", campaign.id, "' already exists"));
}

boost::asio::awaitable<absl::Status> Store::AddPendingDispatch(std::string tenant,
                                                               PendingDispatch dispatch) {
  std::string id = dispatch.id;
  std::string document = Encode(dispatch);
  co_return (co_await records_.Put(PendingDispatchTable(std::move(tenant)), std::move(id),
                                   std::move(document)))
      .status();
}

Store::Op<bool> Store::RemovePendingDispatch(std::string tenant, std::string id) {
  co_return co_await records_.Delete(PendingDispatchTable(std::move(tenant)), std::move(id));
}

Store::Op<std::vector<PendingDispatch>> Store::PendingDispatches(std::string tenant) {
  HERALD_CO_ASSIGN_OR_RETURN(auto rows,
                             co_await records_.GetAll(PendingDispatchTable(std::move(tenant))));
  std::vector<PendingDispatch> out;
  out.reserve(rows.size());
  for (const auto& [id, doc] : rows) {
    HERALD_CO_ASSIGN_OR_RETURN(PendingDispatch entry, Decode<PendingDispatch>(doc));
    out.push_back(std::move(entry));
  }
  co_return out;
}

template <typename T>
Lookup Store::LookupOf(std::string tenant, std::vector<std::string> ids) {
  return {.table = TableOf<T>(std::move(tenant)), .ids = std::move(ids)};
}

template <typename T>
absl::StatusOr<std::vector<std::optional<T>>> Store::DecodeMany(
    const std::vector<std::optional<std::string>>& documents) {
  std::vector<std::optional<T>> out;
  out.reserve(documents.size());
  for (const auto& doc : documents) {
    if (!doc) {
      out.emplace_back();
      continue;
    }
    HERALD_ASSIGN_OR_RETURN(T record, Decode<T>(*doc));
    out.emplace_back(std::move(record));
  }
  return out;
}

template <typename T>
Store::Op<T> Store::Get(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> doc,
                             co_await records_.Get(TableOf<T>(tenant), id));
  if (!doc) co_return NotFound<T>(id);
  HERALD_CO_ASSIGN_OR_RETURN(T record, Decode<T>(*doc));
  if constexpr (std::is_same_v<T, Campaign>) {
    HERALD_CO_ASSIGN_OR_RETURN(record.targets, co_await CampaignTargets(tenant, id));
  }
  co_return record;
}

template <typename T>
Store::Op<std::vector<std::optional<T>>> Store::GetMany(std::string tenant,
                                                        std::vector<std::string> ids) {
  HERALD_CO_ASSIGN_OR_RETURN(
      auto docs, co_await records_.GetMany(TableOf<T>(std::move(tenant)), std::move(ids)));
  co_return DecodeMany<T>(docs);
}

template <typename T>
Store::Op<std::vector<T>> Store::List(std::string tenant) {
  HERALD_CO_ASSIGN_OR_RETURN(auto rows, co_await records_.GetAll(TableOf<T>(std::move(tenant))));
  std::vector<T> out;
  out.reserve(rows.size());
  for (const auto& [id, doc] : rows) {
    HERALD_CO_ASSIGN_OR_RETURN(T record, Decode<T>(doc));
    out.push_back(std::move(record));
  }
  co_return out;
}

template <typename T>
Store::Op<T> Store::Update(std::string tenant, std::string id,
                           std::function<absl::Status(T&)> mutate) {
  const Table table = TableOf<T>(tenant);
  for (int attempt = 0; attempt < kUpdateAttempts; ++attempt) {
    HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> doc, co_await records_.Get(table, id));
    if (!doc) co_return NotFound<T>(id);
    std::string later;
    HERALD_CO_ASSIGN_OR_RETURN(T record, Decode<T>(*doc, &later));
    HERALD_CO_RETURN_IF_ERROR(mutate(record));
    std::string updated = WithLaterFields(EncodeRecord(record), later);
    bool replaced = updated == *doc;
    if (!replaced) {
      HERALD_CO_ASSIGN_OR_RETURN(
          ReplaceCode code,
          co_await records_.Replace(table, id, *doc, std::move(updated), RevisionOf<T>(id)));
      if (code == ReplaceCode::kNotFound) co_return NotFound<T>(id);
      replaced = code == ReplaceCode::kReplaced;
    }
    if (!replaced) continue;
    if constexpr (std::is_same_v<T, Campaign>) {
      if (!record.targets.empty()) {  // `mutate` set the targets: they replace the stored ones
        HERALD_CO_ASSIGN_OR_RETURN(std::vector<AccountTarget> previous,
                                   co_await CampaignTargets(tenant, id));
        absl::StatusOr<int64_t> put =
            co_await PutCampaignTargets(tenant, id, record.targets, previous);
        HERALD_CO_RETURN_IF_ERROR(put.status());
      }
    }
    co_return record;
  }
  co_return absl::AbortedError(
      StrCat(Kind<T>::kNoun, " '", id, "' is being changed concurrently; try again"));
}

template <typename T>
Store::Op<bool> Store::Delete(std::string tenant, std::string id) {
  co_return co_await records_.Delete(TableOf<T>(std::move(tenant)), std::move(id));
}

Store::Op<int64_t> Store::PutCampaignTargets(const std::string& tenant, const std::string& campaign,
                                             const std::vector<AccountTarget>& targets,
                                             const std::vector<AccountTarget>& previous) {
  const Table table = TargetTable(tenant, campaign);
  for (const AccountTarget& old : previous) {
    const bool kept = std::any_of(targets.begin(), targets.end(),
                                  [&](const AccountTarget& t) { return t.account == old.account; });
    if (kept) continue;
    absl::StatusOr<bool> removed = co_await records_.Delete(table, old.account);
    HERALD_CO_RETURN_IF_ERROR(removed.status());
  }
  std::vector<std::pair<std::string, std::string>> docs;
  docs.reserve(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    docs.emplace_back(targets[i].account, Encode(TargetDocument{.index = static_cast<int32_t>(i),
                                                                .target = targets[i]}));
  }
  // A create writes targets before the campaign exists: nothing to tell watchers yet.
  std::optional<std::string> revision;
  if (!previous.empty()) revision = CampaignRevisionName(campaign);
  co_return co_await records_.PutMany(table, std::move(docs), std::move(revision));
}

template <typename T>
Store::Op<std::optional<T>> Store::CreatedBy(std::string tenant, RequestId request_id) {
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<RequestRecord> first,
                             co_await records_.CreatedBy(TableOf<T>(tenant), request_id.id));
  if (!first) co_return std::nullopt;
  if (!first->fingerprint.empty() && !request_id.fingerprint.empty() &&
      first->fingerprint != request_id.fingerprint) {
    co_return RequestIdReused(request_id.id, Kind<T>::kNoun, first->id);
  }
  absl::StatusOr<T> record = co_await Get<T>(std::move(tenant), std::move(first->id));
  if (absl::IsNotFound(record.status())) co_return ReplayedRecordDeleted(Kind<T>::kNoun);
  HERALD_CO_RETURN_IF_ERROR(record.status());
  co_return std::optional<T>(*std::move(record));
}

Store::Op<Campaign> Store::GetCampaignHead(std::string tenant, std::string id) {
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> doc,
                             co_await records_.Get(TableOf<Campaign>(std::move(tenant)), id));
  if (!doc) co_return NotFound<Campaign>(id);
  co_return Decode<Campaign>(*doc);
}

Store::Op<std::vector<AccountTarget>> Store::CampaignTargets(std::string tenant,
                                                             std::string campaign) {
  HERALD_CO_ASSIGN_OR_RETURN(auto rows,
                             co_await records_.GetAll(TargetTable(std::move(tenant), campaign)));
  std::vector<TargetDocument> docs;
  docs.reserve(rows.size());
  for (const auto& [account, doc] : rows) {
    HERALD_CO_ASSIGN_OR_RETURN(TargetDocument d, Decode<TargetDocument>(doc));
    docs.push_back(std::move(d));
  }
  std::sort(docs.begin(), docs.end(),
            [](const TargetDocument& a, const TargetDocument& b) { return a.index < b.index; });
  std::vector<AccountTarget> out;
  out.reserve(docs.size());
  for (TargetDocument& d : docs) out.push_back(std::move(d.target));
  co_return out;
}

Store::Op<std::optional<AccountTarget>> Store::CampaignTarget(std::string tenant,
                                                              std::string campaign,
                                                              std::string account) {
  HERALD_CO_ASSIGN_OR_RETURN(
      std::optional<std::string> doc,
      co_await records_.Get(TargetTable(std::move(tenant), campaign), std::move(account)));
  if (!doc) co_return std::optional<AccountTarget>();
  HERALD_CO_ASSIGN_OR_RETURN(TargetDocument d, Decode<TargetDocument>(*doc));
  co_return std::optional<AccountTarget>(std::move(d.target));
}

Store::Op<std::vector<bool>> Store::CampaignsTargeting(std::string tenant,
                                                       const std::vector<std::string>& campaigns,
                                                       std::string account) {
  std::vector<Lookup> lookups;
  lookups.reserve(campaigns.size());
  for (const std::string& campaign : campaigns) {
    lookups.push_back({.table = TargetTable(tenant, campaign), .ids = {account}});
  }
  std::vector<bool> out;
  out.reserve(campaigns.size());
  if (lookups.empty()) co_return out;
  HERALD_CO_ASSIGN_OR_RETURN(LookupResults found, co_await records_.GetTables(std::move(lookups)));
  for (const auto& docs : found) out.push_back(!docs.empty() && docs.front().has_value());
  co_return out;
}

Store::Op<std::optional<ApiKey>> Store::FindApiKey(std::string secret_sha256) {
  std::optional<std::string> ref;
  {
    std::lock_guard lock(key_refs_mu_);
    auto it = key_refs_.find(secret_sha256);
    if (it != key_refs_.end()) ref = it->second;
  }
  if (!ref) {
    HERALD_CO_ASSIGN_OR_RETURN(ref, co_await records_.Get(kKeyIndex, secret_sha256));
    if (!ref) co_return std::nullopt;
    // An index entry never changes once written (a secret hash names one key for good), so it
    // is remembered; the key itself is read every time, so a revocation applies at once.
    std::lock_guard lock(key_refs_mu_);
    if (key_refs_.size() >= kKeyRefsKept) key_refs_.clear();
    key_refs_.emplace(secret_sha256, *ref);
  }
  const size_t slash = ref->find('/');
  if (slash == std::string::npos) co_return absl::DataLossError("malformed API key index entry");
  std::string tenant = ref->substr(0, slash);
  std::string id = ref->substr(slash + 1);
  auto key = co_await Get<ApiKey>(std::move(tenant), std::move(id));
  if (absl::IsNotFound(key.status())) co_return std::nullopt;
  HERALD_CO_RETURN_IF_ERROR(key.status());
  co_return std::move(*key);
}

Store::Op<CampaignPage> Store::ListCampaigns(std::string tenant, std::optional<double> before,
                                             int limit) {
  const Table table = TableOf<Campaign>(tenant);
  if (limit < 1) co_return absl::InvalidArgumentError("campaign page size must be positive");
  // `next_before` is exclusive, so a page never ends inside a run of equal create times (the
  // next page would skip the rest of the run): such a page grows until the run is complete.
  int fetch = limit + 1;
  HERALD_CO_ASSIGN_OR_RETURN(auto ids, co_await records_.IndexBefore(table, before, fetch));
  while (static_cast<int>(ids.size()) == fetch && ids.back().second == ids[limit - 1].second) {
    fetch *= 2;
    HERALD_CO_ASSIGN_OR_RETURN(ids, co_await records_.IndexBefore(table, before, fetch));
  }
  CampaignPage page;
  size_t end = static_cast<size_t>(limit);
  while (end < ids.size() && ids[end].second == ids[limit - 1].second) ++end;
  if (end < ids.size()) {
    ids.resize(end);
    page.next_before = ids.back().second;
  }
  std::vector<std::string> keys;
  for (const auto& [id, score] : ids) keys.push_back(id);
  HERALD_CO_ASSIGN_OR_RETURN(auto docs, co_await records_.GetMany(table, std::move(keys)));
  for (const auto& doc : docs) {
    if (!doc) continue;  // deleted between the index read and this one
    HERALD_CO_ASSIGN_OR_RETURN(Campaign c, Decode<Campaign>(*doc));
    page.campaigns.push_back(std::move(c));
  }
  co_return page;
}

Store::Op<int64_t> Store::PutDeliveries(std::string tenant, std::string campaign,
                                        std::vector<Delivery> deliveries) {
  std::vector<std::pair<std::string, std::string>> docs;
  docs.reserve(deliveries.size());
  for (const Delivery& d : deliveries) docs.emplace_back(d.account, Encode(d));
  co_return co_await records_.PutMany(DeliveryTable(tenant, campaign), std::move(docs),
                                      CampaignRevisionName(campaign));
}

Store::Op<Delivery> Store::GetDelivery(std::string tenant, std::string campaign,
                                       std::string account) {
  HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> doc,
                             co_await records_.Get(DeliveryTable(tenant, campaign), account));
  if (!doc) {
    co_return absl::NotFoundError(
        StrCat("campaign '", campaign, "' has no delivery to account '", account, "'"));
  }
  co_return Decode<Delivery>(*doc);
}

Store::Op<std::vector<Delivery>> Store::ListDeliveries(std::string tenant, std::string campaign) {
  HERALD_CO_ASSIGN_OR_RETURN(auto rows, co_await records_.GetAll(DeliveryTable(tenant, campaign)));
  std::vector<Delivery> out;
  out.reserve(rows.size());
  for (const auto& [id, doc] : rows) {
    HERALD_CO_ASSIGN_OR_RETURN(Delivery d, Decode<Delivery>(doc));
    out.push_back(std::move(d));
  }
  co_return out;
}

Store::Op<Delivery> Store::UpdateDelivery(std::string tenant, std::string campaign,
                                          std::string account,
                                          std::function<absl::Status(Delivery&)> mutate) {
  UpdateExtras none;  // named: g++ 12 destroys a temporary in a co_await operand twice
  HERALD_CO_ASSIGN_OR_RETURN(
      DeliveryUpdate updated,
      co_await UpdateDeliveryFrom(std::move(tenant), std::move(campaign), std::move(account),
                                  nullptr, std::move(mutate), std::move(none)));
  co_return std::move(updated.delivery);
}

Store::Op<Delivery> Store::UpdateDelivery(std::string tenant, std::string campaign,
                                          std::string account, Delivery current,
                                          std::function<absl::Status(Delivery&)> mutate) {
  UpdateExtras none;  // named, as above
  HERALD_CO_ASSIGN_OR_RETURN(
      DeliveryUpdate updated,
      co_await UpdateDeliveryFrom(std::move(tenant), std::move(campaign), std::move(account),
                                  &current, std::move(mutate), std::move(none)));
  co_return std::move(updated.delivery);
}

Store::Op<DeliveryUpdate> Store::UpdateDelivery(std::string tenant, std::string campaign,
                                                std::string account, Delivery current,
                                                std::function<absl::Status(Delivery&)> mutate,
                                                UpdateExtras extras) {
  co_return co_await UpdateDeliveryFrom(std::move(tenant), std::move(campaign), std::move(account),
                                        &current, std::move(mutate), std::move(extras));
}

Store::Op<DeliveryUpdate> Store::UpdateDeliveryFrom(std::string tenant, std::string campaign,
                                                    std::string account, const Delivery* current,
                                                    std::function<absl::Status(Delivery&)> mutate,
                                                    UpdateExtras extras) {
  const Table table = DeliveryTable(tenant, campaign);
  auto not_found = [&] {
    return absl::NotFoundError(
        StrCat("campaign '", campaign, "' has no delivery to account '", account, "'"));
  };
  // The caller's copy is tried first; every later attempt starts from a read.
  for (int attempt = 0; attempt < kUpdateAttempts + (current != nullptr ? 1 : 0); ++attempt) {
    const bool from_caller = attempt == 0 && current != nullptr;
    std::string stored, later;
    DeliveryUpdate out;
    if (from_caller) {
      stored = Encode(*current);
      out.delivery = *current;
    } else {
      HERALD_CO_ASSIGN_OR_RETURN(std::optional<std::string> doc,
                                 co_await records_.Get(table, account));
      if (!doc) co_return not_found();
      stored = *std::move(doc);
      HERALD_CO_ASSIGN_OR_RETURN(out.delivery, Decode<Delivery>(stored, &later));
    }
    HERALD_CO_RETURN_IF_ERROR(mutate(out.delivery));
    std::string updated = WithLaterFields(Encode(out.delivery), later);
    if (updated == stored) {
      // Nothing to write from what the caller saw: what is stored may differ, so read it.
      if (from_caller) continue;
      if (!extras.reads.empty()) {
        HERALD_CO_ASSIGN_OR_RETURN(out.reads, co_await records_.GetTables(std::move(extras.reads)));
      }
      co_return out;
    }
    ReplaceRequest replace{.id = account,
                           .expected = std::move(stored),
                           .document = std::move(updated),
                           .revision = CampaignRevisionName(campaign),
                           .rows = extras.rows,
                           .reads = extras.reads};
    HERALD_CO_ASSIGN_OR_RETURN(ReplaceOutcome outcome,
                               co_await records_.Replace(table, std::move(replace)));
    if (outcome.code == ReplaceCode::kReplaced) {
      out.reads = std::move(outcome.reads);
      co_return out;
    }
    if (outcome.code == ReplaceCode::kNotFound) co_return not_found();
  }
  co_return absl::AbortedError(StrCat("delivery of campaign '", campaign, "' to '", account,
                                      "' is being changed concurrently"));
}

Store::Op<DeliveryRecords> Store::ReadDeliveryRecords(std::string tenant, std::string campaign,
                                                      std::string account, std::string team,
                                                      std::string media) {
  std::vector<std::string> team_ids, media_ids;
  if (!team.empty()) team_ids.push_back(std::move(team));
  if (!media.empty()) media_ids.push_back(std::move(media));
  std::vector<Lookup> lookups;
  lookups.reserve(6);
  lookups.push_back({.table = TableOf<Campaign>(tenant), .ids = {campaign}});
  lookups.push_back({.table = DeliveryTable(tenant, campaign), .ids = {account}});
  lookups.push_back({.table = TargetTable(tenant, campaign), .ids = {account}});
  lookups.push_back({.table = TableOf<Account>(tenant), .ids = {account}});
  lookups.push_back({.table = TableOf<Team>(tenant), .ids = std::move(team_ids)});
  lookups.push_back({.table = TableOf<MediaAsset>(tenant), .ids = std::move(media_ids)});
  HERALD_CO_ASSIGN_OR_RETURN(LookupResults found, co_await records_.GetTables(std::move(lookups)));
  DeliveryRecords out;
  if (found[0][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(out.campaign, Decode<Campaign>(*found[0][0]));
  }
  if (found[1][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(out.delivery, Decode<Delivery>(*found[1][0]));
  }
  if (found[2][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(TargetDocument d, Decode<TargetDocument>(*found[2][0]));
    out.target = std::move(d.target);
  }
  if (found[3][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(out.account, Decode<Account>(*found[3][0]));
  }
  if (!found[4].empty() && found[4][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(out.team, Decode<Team>(*found[4][0]));
  }
  if (!found[5].empty() && found[5][0]) {
    HERALD_CO_ASSIGN_OR_RETURN(out.media, Decode<MediaAsset>(*found[5][0]));
  }
  co_return out;
}

Store::Op<int64_t> Store::CampaignRevision(std::string tenant, std::string campaign) {
  co_return co_await records_.Revision(std::move(tenant), CampaignRevisionName(campaign));
}

Store::Op<bool> Store::PutMediaBytes(std::string tenant, std::string media, std::string bytes) {
  co_return co_await records_.PutBlob(std::move(tenant), StrCat("media:", media), std::move(bytes));
}

Store::Op<std::optional<std::string>> Store::GetMediaBytes(std::string tenant, std::string media) {
  co_return co_await records_.GetBlob(std::move(tenant), StrCat("media:", media));
}

Store::Op<bool> Store::DeleteMediaBytes(std::string tenant, std::string media) {
  co_return co_await records_.DeleteBlob(std::move(tenant), StrCat("media:", media));
}

#define HERALD_STORE_INSTANTIATE(T)                                                              \
  template Store::Op<Created<T>> Store::Create<T>(T, RequestId);                                 \
  template Store::Op<T> Store::Get<T>(std::string, std::string);                                 \
  template Store::Op<std::vector<std::optional<T>>> Store::GetMany<T>(std::string,               \
                                                                      std::vector<std::string>); \
  template Store::Op<std::vector<T>> Store::List<T>(std::string);                                \
  template Store::Op<T> Store::Update<T>(std::string, std::string,                               \
                                         std::function<absl::Status(T&)>);                       \
  template Store::Op<bool> Store::Delete<T>(std::string, std::string);                           \
  template Store::Op<std::optional<T>> Store::CreatedBy<T>(std::string, RequestId);              \
  template Lookup Store::LookupOf<T>(std::string, std::vector<std::string>);                     \
  template absl::StatusOr<std::vector<std::optional<T>>> Store::DecodeMany<T>(                   \
      const std::vector<std::optional<std::string>>&);

HERALD_STORE_INSTANTIATE(Tenant)
HERALD_STORE_INSTANTIATE(ApiKey)
HERALD_STORE_INSTANTIATE(Team)
HERALD_STORE_INSTANTIATE(Account)
HERALD_STORE_INSTANTIATE(MediaAsset)
HERALD_STORE_INSTANTIATE(Segment)
HERALD_STORE_INSTANTIATE(Automation)
HERALD_STORE_INSTANTIATE(Campaign)
#undef HERALD_STORE_INSTANTIATE

std::string WithLaterFields(std::string updated, std::string_view later) {
  if (later.empty()) return updated;
  boost::system::error_code ec;
  boost::json::value document = boost::json::parse(updated, ec);
  const boost::json::value fields = ec ? boost::json::value() : boost::json::parse(later, ec);
  if (ec || !document.is_object() || !fields.is_object()) return updated;
  for (const auto& [key, value] : fields.as_object()) {
    document.as_object().emplace(key, value);  // never over a field this build wrote
  }
  return boost::json::serialize(document);
}

}  // namespace herald::store
