// media, lists and segments: MediaService and AudienceService.
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>

#include "session.h"

namespace herald::heraldctl {
namespace {

constexpr size_t kUploadChunkBytes = 64 * 1024;

std::unique_ptr<v1::MediaService::Stub> MediaStub(Session& s) {
  return v1::MediaService::NewStub(s.channel());
}
std::unique_ptr<v1::AudienceService::Stub> AudienceStub(Session& s) {
  return v1::AudienceService::NewStub(s.channel());
}

std::string_view Extension(std::string_view path) {
  const size_t dot = path.rfind('.');
  const size_t slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return "";
  return path.substr(dot + 1);
}

// What the file name says about the media: type and MIME type ({UNSPECIFIED, ""} if unknown).
std::pair<v1::MediaAsset::Type, std::string> GuessMedia(std::string_view path) {
  static constexpr struct {
    std::string_view ext;
    v1::MediaAsset::Type type;
    std::string_view mime;
  } kKnown[] = {
      {"jpg", v1::MediaAsset::IMAGE, "image/jpeg"},
      {"jpeg", v1::MediaAsset::IMAGE, "image/jpeg"},
      {"png", v1::MediaAsset::IMAGE, "image/png"},
      {"gif", v1::MediaAsset::IMAGE, "image/gif"},
      {"webp", v1::MediaAsset::IMAGE, "image/webp"},
      {"mp4", v1::MediaAsset::VIDEO, "video/mp4"},
      {"m4v", v1::MediaAsset::VIDEO, "video/mp4"},
      {"mov", v1::MediaAsset::VIDEO, "video/quicktime"},
      {"webm", v1::MediaAsset::VIDEO, "video/webm"},
      {"mp3", v1::MediaAsset::AUDIO, "audio/mpeg"},
      {"m4a", v1::MediaAsset::AUDIO, "audio/mp4"},
      {"wav", v1::MediaAsset::AUDIO, "audio/wav"},
      {"ogg", v1::MediaAsset::AUDIO, "audio/ogg"},
  };
  const std::string ext = AsciiLower(Extension(path));
  for (const auto& known : kKnown) {
    if (known.ext == ext) return {known.type, std::string(known.mime)};
  }
  return {v1::MediaAsset::TYPE_UNSPECIFIED, ""};
}

absl::StatusOr<v1::MediaAsset::Type> MediaType(const ParsedCommand& c, std::string_view path) {
  if (!c.Has("type")) {
    const v1::MediaAsset::Type guessed = GuessMedia(path).first;
    if (guessed == v1::MediaAsset::TYPE_UNSPECIFIED) {
      return absl::InvalidArgumentError("--type is required (image, video or audio)");
    }
    return guessed;
  }
  v1::MediaAsset::Type type;
  if (!v1::MediaAsset::Type_Parse(AsciiUpper(c.Get("type")), &type) ||
      type == v1::MediaAsset::TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        StrCat("--type: '", c.Get("type"), "' is not image, video or audio"));
  }
  return type;
}

int MediaCreate(Session& s, const ParsedCommand& c) {
  v1::CreateMediaAssetRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  if (!c.Has("url")) return s.Usage(absl::InvalidArgumentError("--url is required"));
  v1::MediaAsset* asset = request.mutable_media_asset();
  asset->set_source_url(c.Get("url"));
  const std::string url_path = c.Get("url").substr(0, c.Get("url").find('?'));
  HCTL_ASSIGN_OR_USAGE(const v1::MediaAsset::Type type, s, MediaType(c, url_path));
  asset->set_type(type);
  asset->set_file_name(c.Get("file-name"));
  request.set_request_id(c.Get("request-id"));
  v1::MediaAsset response;
  auto context = s.Context();
  const grpc::Status status = MediaStub(s)->CreateMediaAsset(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int MediaUpload(Session& s, const ParsedCommand& c) {
  const std::string& path = c.args[0];
  if (path == "-" && (!c.Has("type") || !c.Has("file-name"))) {
    return s.Usage(absl::InvalidArgumentError("uploading stdin needs --type and --file-name"));
  }
  v1::UploadMediaAssetRequest first;
  v1::UploadMediaAssetRequest::Metadata* metadata = first.mutable_metadata();
  HCTL_ASSIGN_OR_USAGE(*metadata->mutable_parent(), s, s.names().Parent());
  // The file first: a missing one is the problem to report, not the type it would have had.
  HCTL_ASSIGN_OR_USAGE(const std::string bytes, s, ReadFile(path));
  HCTL_ASSIGN_OR_USAGE(const v1::MediaAsset::Type type, s, MediaType(c, path));
  v1::MediaAsset* asset = metadata->mutable_media_asset();
  asset->set_type(type);
  const size_t slash = path.rfind('/');
  asset->set_file_name(
      c.Get("file-name", slash == std::string::npos ? path : path.substr(slash + 1)));
  // The extension's content type, unless it names another kind than --type (voice.mp4 sent as
  // audio): then the kind is left unsaid rather than contradicted.
  const auto [guessed_type, guessed_content_type] = GuessMedia(asset->file_name());
  std::string content_type =
      c.Get("content-type", guessed_type == type ? guessed_content_type : std::string());
  if (content_type.empty()) content_type = "application/octet-stream";
  asset->set_content_type(content_type);
  metadata->set_request_id(c.Get("request-id"));

  // Uploads can be long: the deadline grows with the size (at least --timeout, plus a second per
  // MiB).
  auto context = s.Context(false);
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::seconds(s.global().timeout_seconds + static_cast<int64_t>(bytes.size() >> 20)));
  v1::MediaAsset response;
  auto writer = MediaStub(s)->UploadMediaAsset(context.get(), &response);
  bool open = writer->Write(first);
  for (size_t offset = 0; open && offset < bytes.size(); offset += kUploadChunkBytes) {
    v1::UploadMediaAssetRequest chunk;
    chunk.set_chunk(bytes.substr(offset, kUploadChunkBytes));
    open = writer->Write(chunk);
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int MediaGet(Session& s, const ParsedCommand& c) {
  v1::GetMediaAssetRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("media", c.args[0]));
  v1::MediaAsset response;
  auto context = s.Context();
  const grpc::Status status = MediaStub(s)->GetMediaAsset(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int MediaList(Session& s, const ParsedCommand&) {
  v1::ListMediaAssetsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  auto stub = MediaStub(s);
  return ListAllPages<v1::ListMediaAssetsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListMediaAssets(context, r, response);
      });
}

int MediaDelete(Session& s, const ParsedCommand& c) {
  v1::DeleteMediaAssetRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("media", c.args[0]));
  v1::DeleteMediaAssetResponse response;
  auto context = s.Context();
  const grpc::Status status = MediaStub(s)->DeleteMediaAsset(context.get(), request, &response);
  return status.ok() ? s.PrintDone(response, StrCat("deleted ", request.name())) : s.Fail(status);
}

int ListsList(Session& s, const ParsedCommand& c) {
  v1::ListUserListsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s, s.names().Resolve("accounts", c.args[0]));
  auto stub = AudienceStub(s);
  return ListAllPages<v1::ListUserListsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListUserLists(context, r, response);
      });
}

int ListsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateUserListRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s, s.names().Resolve("accounts", c.args[0]));
  request.set_display_name(c.args[1]);
  request.set_request_id(c.Get("request-id"));
  v1::UserList response;
  auto context = s.Context();
  const grpc::Status status = AudienceStub(s)->CreateUserList(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int ListsAdd(Session& s, const ParsedCommand& c) {
  v1::AddFansToUserListRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_account(), s, s.names().Resolve("accounts", c.args[0]));
  request.set_user_list_id(c.args[1]);
  if (c.Has("fans") == c.Has("fans-file")) {
    return s.Usage(absl::InvalidArgumentError("give --fans or --fans-file (one of them)"));
  }
  std::string text = c.Get("fans");
  if (c.Has("fans-file")) {
    HCTL_ASSIGN_OR_USAGE(text, s, ReadFile(c.Get("fans-file")));
  }
  HCTL_ASSIGN_OR_USAGE(const std::vector<int64_t> ids, s,
                       ParseFanIds(c.Has("fans") ? "fans" : "fans-file", text));
  request.mutable_fan_ids()->Add(ids.begin(), ids.end());
  v1::AddFansToUserListResponse response;
  // One upstream call per 100 fans, each under the rate limits: allow for it.
  auto context = s.Context(false);
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::seconds(s.global().timeout_seconds + static_cast<int64_t>(ids.size() / 100)));
  const grpc::Status status = AudienceStub(s)->AddFansToUserList(context.get(), request, &response);
  if (!status.ok()) return s.Fail(status);
  return s.PrintDone(response,
                     StrCat("added ", ids.size(), " fan ids in ", response.batches(),
                            " upstream calls; the list reports ", response.fans_added(), " fans"));
}

// The segment flags given, set on `segment`, with the field each sets added to `paths`.
absl::Status ApplySegmentFlags(const ParsedCommand& c, v1::Segment* segment,
                               std::vector<std::string>* paths) {
  if (c.Has("display-name")) {
    segment->set_display_name(c.Get("display-name"));
    paths->push_back("display_name");
  }
  if (c.Has("min-spend") && c.Has("min-spend-cents")) {
    return absl::InvalidArgumentError("give --min-spend or --min-spend-cents, not both");
  }
  if (c.Has("min-spend")) {
    absl::StatusOr<int64_t> cents = ParsePriceCents("min-spend", c.Get("min-spend"));
    if (!cents.ok()) return cents.status();
    segment->set_min_lifetime_spend_cents(*cents);
    paths->push_back("min_lifetime_spend_cents");
  }
  HERALD_RETURN_IF_ERROR(ApplyCountFlag(c, "min-spend-cents", segment,
                                        &v1::Segment::set_min_lifetime_spend_cents,
                                        "min_lifetime_spend_cents", paths));
  HERALD_RETURN_IF_ERROR(ApplyCountFlag(c, "subscribed-within-days", segment,
                                        &v1::Segment::set_subscribed_within_days,
                                        "subscribed_within_days", paths));
  if (c.Has("expired-only")) {
    segment->set_expired_only(c.GetBool("expired-only"));
    paths->push_back("expired_only");
  }
  return ApplyCountFlag(c, "top-spenders", segment, &v1::Segment::set_top_spenders, "top_spenders",
                        paths);
}

int SegmentsCreate(Session& s, const ParsedCommand& c) {
  v1::CreateSegmentRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  v1::Segment* segment = request.mutable_segment();
  std::vector<std::string> paths;
  if (absl::Status st = ApplySegmentFlags(c, segment, &paths); !st.ok()) return s.Usage(st);
  // The name as the argument, or as --display-name (as `segments update` takes it).
  if (c.args.empty() == !c.Has("display-name")) {
    return s.Usage(absl::InvalidArgumentError("give the name as DISPLAY_NAME or --display-name"));
  }
  if (!c.args.empty()) segment->set_display_name(c.args[0]);
  request.set_request_id(c.Get("request-id"));
  v1::Segment response;
  auto context = s.Context();
  const grpc::Status status = AudienceStub(s)->CreateSegment(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int SegmentsUpdate(Session& s, const ParsedCommand& c) {
  v1::UpdateSegmentRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_segment()->mutable_name(), s,
                       s.names().Resolve("segments", c.args[0]));
  std::vector<std::string> paths;
  if (absl::Status st = ApplySegmentFlags(c, request.mutable_segment(), &paths); !st.ok()) {
    return s.Usage(st);
  }
  if (paths.empty()) return s.Usage(absl::InvalidArgumentError("nothing to update; see --help"));
  for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
  v1::Segment response;
  auto context = s.Context();
  const grpc::Status status = AudienceStub(s)->UpdateSegment(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int SegmentsGet(Session& s, const ParsedCommand& c) {
  v1::GetSegmentRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("segments", c.args[0]));
  v1::Segment response;
  auto context = s.Context();
  const grpc::Status status = AudienceStub(s)->GetSegment(context.get(), request, &response);
  return status.ok() ? s.Print(response) : s.Fail(status);
}

int SegmentsList(Session& s, const ParsedCommand&) {
  v1::ListSegmentsRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_parent(), s, s.names().Parent());
  auto stub = AudienceStub(s);
  return ListAllPages<v1::ListSegmentsResponse>(
      s, request, [&](grpc::ClientContext* context, const auto& r, auto* response) {
        return stub->ListSegments(context, r, response);
      });
}

int SegmentsDelete(Session& s, const ParsedCommand& c) {
  v1::DeleteSegmentRequest request;
  HCTL_ASSIGN_OR_USAGE(*request.mutable_name(), s, s.names().Resolve("segments", c.args[0]));
  v1::DeleteSegmentResponse response;
  auto context = s.Context();
  const grpc::Status status = AudienceStub(s)->DeleteSegment(context.get(), request, &response);
  return status.ok() ? s.PrintDone(response, StrCat("deleted ", request.name())) : s.Fail(status);
}

}  // namespace

void AddContentCommands(std::vector<CommandSpec>& commands) {
  const FlagSpec request_id{"request-id", "ID", "idempotency id: a retry returns the first result"};
  const FlagSpec type{"type", "TYPE", "image, video or audio (default: from the file extension)"};
  const FlagSpec file_name{"file-name", "NAME", "file name given to the upstream"};
  commands.push_back(
      {"media",
       "create",
       "",
       0,
       0,
       "Register a media asset the upstream downloads from a URL",
       "",
       {{"url", "URL", "required: the http(s) URL the upstream downloads the file from"},
        type,
        file_name,
        request_id},
       MediaCreate});
  commands.push_back({"media",
                      "upload",
                      "FILE",
                      1,
                      1,
                      "Upload a file as a media asset (streamed in 64 KiB chunks)",
                      "FILE may be - for standard input (then give --type and --file-name).",
                      {type,
                       file_name,
                       {"content-type", "MIME", "MIME type (default: from the file extension)"},
                       request_id},
                      MediaUpload});
  commands.push_back({"media", "list", "", 0, 0, "List media assets", "", {}, MediaList});
  commands.push_back({"media", "get", "MEDIA", 1, 1, "Show a media asset", "", {}, MediaGet});
  commands.push_back({"media",
                      "delete",
                      "MEDIA",
                      1,
                      1,
                      "Delete a media asset no unfinished campaign uses",
                      "",
                      {},
                      MediaDelete});

  commands.push_back({"lists",
                      "list",
                      "ACCOUNT",
                      1,
                      1,
                      "List an account's upstream user lists (system lists first)",
                      "",
                      {},
                      ListsList});
  commands.push_back({"lists",
                      "create",
                      "ACCOUNT NAME",
                      2,
                      2,
                      "Create a custom user list on an upstream account",
                      "",
                      {request_id},
                      ListsCreate});
  commands.push_back({"lists",
                      "add",
                      "ACCOUNT LIST_ID",
                      2,
                      2,
                      "Add fans to a custom user list (in upstream batches of 100)",
                      "",
                      {{"fans", "IDS", "fan ids, comma separated"},
                       {"fans-file", "FILE",
                        "fan ids from FILE (comma, space or newline "
                        "separated; - for stdin)"}},
                      ListsAdd});

  const FlagSpec min_spend{"min-spend", "DOLLARS",
                           "lifetime spend on the account at least this, e.g. 50.00"};
  const FlagSpec min_spend_cents{"min-spend-cents", "CENTS", "the same in cents"};
  const FlagSpec subscribed{"subscribed-within-days", "N",
                            "subscribed within the last N days (1-3650)"};
  const FlagSpec expired{"expired-only", "", "only fans whose subscription has expired"};
  const FlagSpec top{"top-spenders", "N",
                     "of those, only the N biggest spenders of each account (1-100000)"};
  commands.push_back(
      {"segments",
       "create",
       "[DISPLAY_NAME]",
       0,
       1,
       "Create a segment: a rule over fan data (every condition given must hold)",
       "Herald assigns the segment's id; the output shows its name. The display name is the\n"
       "argument or --display-name.",
       {{"display-name", "NAME", "the segment's name (instead of the argument)"},
        min_spend,
        min_spend_cents,
        subscribed,
        expired,
        top,
        request_id},
       SegmentsCreate});
  commands.push_back(
      {"segments",
       "update",
       "SEGMENT",
       1,
       1,
       "Change a segment's display name or conditions (only those given)",
       "A condition set to 0 (or --expired-only=false) is dropped; at least one must remain. "
       "Refused while a launched campaign that is not finished uses the segment.",
       {{"display-name", "NAME", "the segment's new name"},
        min_spend,
        min_spend_cents,
        subscribed,
        expired,
        top},
       SegmentsUpdate});
  commands.push_back({"segments", "list", "", 0, 0, "List segments", "", {}, SegmentsList});
  commands.push_back({"segments", "get", "SEGMENT", 1, 1, "Show a segment", "", {}, SegmentsGet});
  commands.push_back({"segments",
                      "delete",
                      "SEGMENT",
                      1,
                      1,
                      "Delete a segment no unfinished campaign uses",
                      "",
                      {},
                      SegmentsDelete});
}

}  // namespace herald::heraldctl
