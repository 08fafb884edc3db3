// libFuzzer target: the RESP reply reader of a Redis connection (redis/src/pipeline.h, hiredis'
// reader building Herald's Reply trees) never crashes, never allocates beyond what the bytes
// received justify, and parses the same replies however the bytes are split into reads.
//
// Input: a header, then the bytes "Redis" sends.
//   byte 0: bits 0-1: commands per request (1-4, a batch above 1); bit 2: the second request is
//           abandoned once written (its replies must be parsed and dropped)
//   byte 1: n, the number of reads before the last one (n % 64)
//   n bytes: the length of each of those reads (0-255); the last read takes the rest
//   the rest: the byte stream
// The stream is parsed once in a single read and once in the reads above: both must complete the
// same requests with the same replies and end with the same status. Every completed reply is
// written back as RESP and must parse to an equal reply.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>

#include <herald/redis/reply.h>

#include "pipeline.h"

namespace {

using herald::redis::Reply;
using herald::redis::internal::Pipeline;
using herald::redis::internal::PipelineRequest;

constexpr size_t kRequests = 16;

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

void AppendResp(std::string& out, const Reply& r) {
  switch (r.type()) {
    case Reply::Type::kNil:
      out += "$-1\r\n";
      break;
    case Reply::Type::kString:
      out += "$" + std::to_string(r.str().size()) + "\r\n";
      out += r.str();
      out += "\r\n";
      break;
    case Reply::Type::kStatus:
      out += "+";
      out += r.str();
      out += "\r\n";
      break;
    case Reply::Type::kError:
      out += "-";
      out += r.str();
      out += "\r\n";
      break;
    case Reply::Type::kInteger:
      out += ":" + std::to_string(r.integer()) + "\r\n";
      break;
    case Reply::Type::kArray:
      out += "*" + std::to_string(r.elements().size()) + "\r\n";
      for (const Reply& e : r.elements()) AppendResp(out, e);
      break;
  }
}

// Touches every accessor of a reply tree; an error reply always maps to a non-OK status.
void Inspect(const Reply& r) {
  (void)r.DebugString();
  (void)r.AsString();
  (void)r.AsInteger();
  (void)r.AsOptionalString();
  Check(r.ToStatus().ok() != r.is_error());
  for (const Reply& e : r.elements()) Inspect(e);
}

struct Run {
  std::vector<PipelineRequest> requests = std::vector<PipelineRequest>(kRequests);
  std::vector<PipelineRequest*> completed;
  absl::Status status;
};

// Queues and "writes" kRequests requests of `batch` commands each, then feeds `reads`.
void Parse(uint32_t batch, bool abandon_second, const std::vector<std::string_view>& reads,
           Run& run) {
  Pipeline pipeline;
  for (size_t i = 0; i < kRequests; ++i) {
    run.requests[i].id = i + 1;
    for (uint32_t c = 0; c < batch; ++c) {
      const std::string_view argv[] = {"GET", "key"};
      pipeline.Encode(argv);
    }
    pipeline.Push(&run.requests[i]);
  }
  (void)pipeline.PrepareWrite();
  pipeline.WriteDone();
  if (abandon_second) Check(pipeline.Abandon(2) == &run.requests[1]);
  for (const std::string_view read : reads) {
    run.status = pipeline.Feed(read, run.completed);
    if (!run.status.ok()) break;
  }
  std::vector<PipelineRequest*> rest;
  pipeline.Reset(rest);
  Check(run.completed.size() + rest.size() + (abandon_second ? 1 : 0) == kRequests);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t batch = (data[0] & 3) + 1;
  const bool abandon_second = (data[0] & 4) != 0;
  const size_t splits = data[1] % 64;
  if (size < 2 + splits) return 0;
  const uint8_t* lengths = data + 2;
  const std::string_view stream(reinterpret_cast<const char*>(data + 2 + splits),
                                size - 2 - splits);

  std::vector<std::string_view> chunks;
  size_t offset = 0;
  for (size_t i = 0; i < splits; ++i) {
    const size_t len = std::min<size_t>(lengths[i], stream.size() - offset);
    chunks.push_back(stream.substr(offset, len));
    offset += len;
  }
  chunks.push_back(stream.substr(offset));

  Run whole;
  Parse(batch, abandon_second, {stream}, whole);
  Run split;
  Parse(batch, abandon_second, chunks, split);

  Check(whole.status == split.status);
  Check(whole.completed.size() == split.completed.size());
  for (size_t i = 0; i < whole.completed.size(); ++i) {
    const PipelineRequest& a = *whole.completed[i];
    const PipelineRequest& b = *split.completed[i];
    Check(a.id == b.id);
    Check(a.reply == b.reply);
    Check(a.replies == b.replies);
    Check(batch == 1 ? a.replies.empty() : a.replies.size() == batch);
    std::string resp;
    if (batch == 1) {
      Inspect(a.reply);
      AppendResp(resp, a.reply);
    } else {
      for (const Reply& r : a.replies) {
        Inspect(r);
        AppendResp(resp, r);
      }
    }
    // Written back as one request of the same batch, the replies parse to the same values.
    Pipeline again;
    PipelineRequest request;
    for (uint32_t c = 0; c < batch; ++c) {
      const std::string_view argv[] = {"GET", "key"};
      again.Encode(argv);
    }
    again.Push(&request);
    (void)again.PrepareWrite();
    again.WriteDone();
    std::vector<PipelineRequest*> done;
    Check(again.Feed(resp, done).ok());
    Check(done.size() == 1 && done[0] == &request);
    Check(request.reply == a.reply && request.replies == a.replies);
  }
  return 0;
}
