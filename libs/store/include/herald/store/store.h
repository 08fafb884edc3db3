// Typed access to Herald's records over a RecordStore.
//
//   store::Store store(records);
//   HERALD_CO_ASSIGN_OR_RETURN(store::Created<store::Team> team,
//                              co_await store.Create(team_value, request_id));
//   co_await store.Update<store::Account>(tenant, id, [](store::Account& a) {
//     a.paused = true;
//     return absl::OkStatus();
//   });
//
// Errors: kNotFound ("team 'x' not found"), kAlreadyExists (an id taken by another create),
// kAborted (an update lost to concurrent writers too many times in a row), whatever a mutation
// returns, and the RecordStore's errors. A document that does not decode is kDataLoss.
//
// Thread safety: as the RecordStore's. The RecordStore must outlive the Store.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <boost/asio/awaitable.hpp>

#include <herald/store/model.h>
#include <herald/store/record_store.h>

namespace herald::store {

template <typename T>
struct Created {
  T value;
  bool replayed = false;  // an earlier create with the same request id
};

// What makes a create idempotent: the caller's request id (empty: not idempotent) and a
// fingerprint of the rest of its request. A create with the id of an earlier one and the same
// fingerprint is a retry, answered with the earlier record; with another fingerprint it is a
// different request, refused with ALREADY_EXISTS. An empty fingerprint (creates Herald makes
// itself) is taken for a retry of whatever used the id.
struct RequestId {
  RequestId() = default;
  // Implicit, so that a bare id reads as one without a fingerprint.
  RequestId(std::string id) : id(std::move(id)) {}  // NOLINT(google-explicit-constructor)
  RequestId(const char* id) : id(id) {}             // NOLINT(google-explicit-constructor)
  RequestId(std::string id, std::string fingerprint)
      : id(std::move(id)), fingerprint(std::move(fingerprint)) {}

  bool empty() const { return id.empty(); }

  std::string id;
  std::string fingerprint;
};

// What Store::CreateCampaign reads in its step.
struct CampaignCreateReads {
  // Records the campaign refers to (its media, accounts, segments), read before the write: when
  // one is absent, nothing is written (CampaignCreated::missing_reference).
  std::vector<Lookup> references;
  // Records the references name (the accounts' teams), read after the write.
  std::optional<Follow> follow;
};

// What Store::CreateCampaign did.
struct CampaignCreated {
  // The new campaign; on a replay the earlier one (targets included); with a missing reference,
  // the one asked for (not stored).
  Campaign campaign;
  bool replayed = false;           // an earlier create with the same request id
  bool missing_reference = false;  // a reference is absent: nothing was written
  int64_t revision = 0;      // the campaign's revision (Store::CampaignRevision) after a create
  LookupResults references;  // CampaignCreateReads::references, whatever happened
  std::vector<std::optional<std::string>> followed;  // CreateOutcome::followed, after a create
};

// The records a delivery's job starts from (Store::ReadDeliveryRecords); each nullopt when absent.
struct DeliveryRecords {
  std::optional<Campaign> campaign;  // its head, without targets
  std::optional<Delivery> delivery;
  std::optional<AccountTarget> target;
  std::optional<Account> account;
  std::optional<Team> team;
  std::optional<MediaAsset> media;  // the media asset asked for, if any
};

// What rides along with a delivery update, in its round trip (Store::UpdateDelivery).
struct UpdateExtras {
  // Documents of other tables of the tenant, written in the same atomic step as the delivery
  // and only when the delivery is written.
  std::vector<TableRows> rows;
  // Tables of the tenant read after the update, whatever it did (DeliveryUpdate::reads).
  std::vector<Lookup> reads;
};

struct DeliveryUpdate {
  Delivery delivery;    // as stored after the update
  LookupResults reads;  // UpdateExtras::reads
};

// A page of campaigns, newest first.
struct CampaignPage {
  std::vector<Campaign> campaigns;
  std::optional<double> next_before;  // pass as `before` for the next page; unset: last page
};

class Store {
 public:
  template <typename T>
  using Op = boost::asio::awaitable<absl::StatusOr<T>>;

  explicit Store(RecordStore& records) : records_(records) {}

  // Records of every kind: Tenant (tenant id empty), ApiKey, Team, Account, MediaAsset, Segment,
  // Automation, Campaign. Create with an empty request_id is not idempotent.
  //
  // A campaign's targets (up to thousands) live in a table of their own, so that reading a
  // campaign's state stays cheap: Create and Get return campaigns whole; GetMany, List and
  // ListCampaigns return them without
  // targets (CampaignTargets reads them); Update hands `mutate` the campaign without targets,
  // and writes targets only when `mutate` sets some.
  template <typename T>
  Op<Created<T>> Create(T record, RequestId request_id);
  template <typename T>
  Op<T> Get(std::string tenant, std::string id);
  // Several records in one round trip; nullopt for each id that does not exist. In the order
  // of `ids`.
  template <typename T>
  Op<std::vector<std::optional<T>>> GetMany(std::string tenant, std::vector<std::string> ids);
  // Sorted by id.
  template <typename T>
  Op<std::vector<T>> List(std::string tenant);
  // Reads, applies `mutate`, writes back if nothing changed meanwhile (else reads again, a few
  // times). `mutate` may refuse with a status, which is returned and nothing is written.
  template <typename T>
  Op<T> Update(std::string tenant, std::string id, std::function<absl::Status(T&)> mutate);
  template <typename T>
  Op<bool> Delete(std::string tenant, std::string id);
  // The record (a campaign with its targets) that a Create with `request_id` made, while the
  // request id is remembered; nullopt when none did, NotFound when it has been deleted since,
  // AlreadyExists when it was made by another request (another fingerprint). For a retry that
  // no longer passes the checks its first attempt passed.
  template <typename T>
  Op<std::optional<T>> CreatedBy(std::string tenant, RequestId request_id);

  // Reads of several kinds in one round trip: LookupOf<T> names records of kind T, the
  // RecordStore's GetTables (or a create's reads) reads them, and DecodeMany<T> decodes one
  // lookup's documents (kDataLoss when one does not decode).
  template <typename T>
  static Lookup LookupOf(std::string tenant, std::vector<std::string> ids);
  template <typename T>
  static absl::StatusOr<std::vector<std::optional<T>>> DecodeMany(
      const std::vector<std::optional<std::string>>& documents);

  // A new campaign (its id must be set), its targets and `deliveries` in one atomic step, once
  // its references are found, idempotent by `request_id` as Create is: a replay changes nothing
  // and returns the earlier campaign. `reads` (tables of the campaign's tenant) are read in the
  // same step. `deliveries` must stay alive until the operation completes. `dispatch`, when set,
  // enters the dispatch outbox in the same step (only when the campaign is created).
  Op<CampaignCreated> CreateCampaign(Campaign campaign, const std::vector<Delivery>& deliveries,
                                     RequestId request_id, CampaignCreateReads reads = {},
                                     std::optional<PendingDispatch> dispatch = std::nullopt);

  // The tenant's dispatch outbox (PendingDispatch): Add enters an entry, Remove takes it out
  // (false when it was not there), PendingDispatches lists them by id.
  boost::asio::awaitable<absl::Status> AddPendingDispatch(std::string tenant,
                                                          PendingDispatch dispatch);
  Op<bool> RemovePendingDispatch(std::string tenant, std::string id);
  Op<std::vector<PendingDispatch>> PendingDispatches(std::string tenant);

  // A campaign without its targets (cheap, whatever the number of targets).
  Op<Campaign> GetCampaignHead(std::string tenant, std::string id);
  // A campaign's targets, in their order.
  Op<std::vector<AccountTarget>> CampaignTargets(std::string tenant, std::string campaign);
  // One account's target of a campaign; nullopt when the account is not a target.
  Op<std::optional<AccountTarget>> CampaignTarget(std::string tenant, std::string campaign,
                                                  std::string account);

  // Whether each of `campaigns` has `account` among its targets, in one round trip.
  Op<std::vector<bool>> CampaignsTargeting(std::string tenant,
                                           const std::vector<std::string>& campaigns,
                                           std::string account);

  // The key whose secret hashes to `secret_sha256`, if any (revoked ones included).
  Op<std::optional<ApiKey>> FindApiKey(std::string secret_sha256);

  // Campaigns (without targets), newest first, created before `before` (a score from a previous
  // page). A page
  // holds more than `limit` when campaigns created in the same millisecond straddle its end, so
  // that the exclusive `next_before` skips none of them. `limit` must be positive.
  Op<CampaignPage> ListCampaigns(std::string tenant, std::optional<double> before, int limit);

  // Deliveries of a campaign. Every write bumps the campaign's revision (CampaignRevision).
  Op<int64_t> PutDeliveries(std::string tenant, std::string campaign,
                            std::vector<Delivery> deliveries);
  Op<Delivery> GetDelivery(std::string tenant, std::string campaign, std::string account);
  // Sorted by account id.
  Op<std::vector<Delivery>> ListDeliveries(std::string tenant, std::string campaign);
  Op<Delivery> UpdateDelivery(std::string tenant, std::string campaign, std::string account,
                              std::function<absl::Status(Delivery&)> mutate);
  // The same, from `current`, the delivery as the caller last read or wrote it: while that is
  // still the stored one, the update is one round trip (a compare-and-set against it) instead of
  // a read and a write. Otherwise it reads and goes on as above, so `mutate` may run twice.
  Op<Delivery> UpdateDelivery(std::string tenant, std::string campaign, std::string account,
                              Delivery current, std::function<absl::Status(Delivery&)> mutate);
  // The same, with `extras` written and read in the update's round trip. When `mutate` leaves
  // the stored delivery as it was, nothing is written (its rows neither) and the reads take a
  // round trip of their own.
  Op<DeliveryUpdate> UpdateDelivery(std::string tenant, std::string campaign, std::string account,
                                    Delivery current, std::function<absl::Status(Delivery&)> mutate,
                                    UpdateExtras extras);
  // What a job of `campaign`'s delivery to `account` starts from, in one round trip: the
  // campaign's head, the delivery, the account's target, the account, the team `team` (the
  // account's team as the caller knows it: it checks it against the account's), and the media
  // asset `media` (none when empty).
  Op<DeliveryRecords> ReadDeliveryRecords(std::string tenant, std::string campaign,
                                          std::string account, std::string team, std::string media);
  // Bumped by every change of the campaign or of one of its deliveries.
  Op<int64_t> CampaignRevision(std::string tenant, std::string campaign);

  // Uploaded media bytes.
  Op<bool> PutMediaBytes(std::string tenant, std::string media, std::string bytes);
  Op<std::optional<std::string>> GetMediaBytes(std::string tenant, std::string media);
  Op<bool> DeleteMediaBytes(std::string tenant, std::string media);

  RecordStore& records() { return records_; }

 private:
  // UpdateDelivery's one implementation: from `*current` when not null (see above), else from a
  // read. `current` must outlive the operation.
  Op<DeliveryUpdate> UpdateDeliveryFrom(std::string tenant, std::string campaign,
                                        std::string account, const Delivery* current,
                                        std::function<absl::Status(Delivery&)> mutate,
                                        UpdateExtras extras);
  Op<int64_t> PutCampaignTargets(const std::string& tenant, const std::string& campaign,
                                 const std::vector<AccountTarget>& targets,
                                 const std::vector<AccountTarget>& previous);

  // FindApiKey's index entries (secret hash -> "tenant/key"), at most kKeyRefsKept.
  static constexpr size_t kKeyRefsKept = 10'000;
  std::mutex key_refs_mu_;
  std::unordered_map<std::string, std::string> key_refs_;

  RecordStore& records_;
};

}  // namespace herald::store
