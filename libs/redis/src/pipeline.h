// The protocol state of one Redis connection, with no I/O: what to write, and which request
// each reply belongs to.
//
//   pipeline.Encode(argv);  pipeline.Push(&request, 1);   // queue a request
//   std::string_view out = pipeline.PrepareWrite();       // bytes for the socket
//   ... write ...  pipeline.WriteDone();
//   pipeline.Feed(bytes_read, completed);                 // requests whose replies are in
//
// Redis answers the commands of one connection in order (RESP2, no Pub/Sub), so replies are
// matched to requests first in, first out. A request may expect several replies (a batch).
// Abandoning a request (deadline, cancellation) detaches it: if it was not written yet its
// bytes are removed and Redis never sees it; if it was, its replies are parsed and dropped when
// they arrive, so they can never be taken for the replies of a later request.
//
// The driver (Connection) owns the requests; the pipeline only points at them, from Push() until
// it hands them back through Feed(), Abandon(), Expire() or Reset(). Not thread-safe: one
// connection's strand uses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>

#include <herald/redis/client.h>
#include <herald/redis/reply.h>

struct redisReader;
struct redisReadTask;

namespace herald::redis::internal {

using Deadline = std::chrono::steady_clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

// What the pipeline needs of a request: where its replies go and when it expires.
struct PipelineRequest {
  uint64_t id = 0;  // for Abandon(); 0: cannot be abandoned by id
  Deadline deadline = kNoDeadline;
  Reply reply;                 // the reply, for a request that expects one
  std::vector<Reply> replies;  // the replies in order, for a request that expects several
};

class Pipeline {
 public:
  Pipeline();
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Encodes one command (RESP: an array of bulk strings) straight onto the end of the unsent
  // output. The commands encoded since the last Push() belong to the next one.
  void Encode(std::span<const std::string_view> argv);
  void Encode(const Command& command);

  // Queues `request` for the replies to the commands encoded since the last Push (at least one).
  void Push(PipelineRequest* request);
  // The same, but ahead of every unsent request: a new connection's AUTH goes before the
  // commands that were waiting for the connection.
  void PushFront(PipelineRequest* request);

  bool has_unsent() const { return unsent_requests() > 0; }
  size_t unsent_requests() const { return entries_.size() - sent_; }
  // Requests written (or being written) whose replies have not all arrived, abandoned included.
  size_t sent_requests() const { return sent_; }

  // Hands out the bytes of the first `max_requests` unsent requests, which count as sent from
  // now on (their replies may arrive before the write completes). The view stays valid until
  // WriteDone(); only one write may be outstanding.
  std::string_view PrepareWrite(size_t max_requests = SIZE_MAX);
  void WriteDone();

  // Parses bytes read from the connection and appends every request whose replies are now
  // complete to `completed`, in order. Replies to abandoned requests are dropped. Fails on a
  // protocol error or a reply no request is waiting for; the connection is then unusable and
  // the driver must drop it (and call Reset()). Requests completed before the error are still
  // appended.
  absl::Status Feed(std::string_view bytes, std::vector<PipelineRequest*>& completed);

  // Detaches the request with `id` (not 0) and returns it; nullptr if no pending request has it.
  PipelineRequest* Abandon(uint64_t id);
  // Detaches every request whose deadline is at or before `now`, appending them to `expired`.
  // Returns the earliest deadline among the requests still pending (kNoDeadline if none).
  Deadline Expire(Deadline now, std::vector<PipelineRequest*>& expired);

  // Forgets everything, for a connection that is gone: appends every pending request (sent or
  // not) to `out`, drops the unsent output and any partly parsed reply.
  void Reset(std::vector<PipelineRequest*>& out);

 private:
  struct Entry {
    PipelineRequest* request;  // nullptr once abandoned
    uint32_t expected;         // replies the request expects
    uint32_t remaining;        // replies still to come
    size_t bytes;              // size of its encoded commands (while unsent)
  };

  static void* CreateString(const ::redisReadTask* task, char* str, size_t len);
  static void* CreateArray(const ::redisReadTask* task, int elements);
  static void* CreateInteger(const ::redisReadTask* task, long long value);  // NOLINT
  static void* CreateNil(const ::redisReadTask* task);
  static void FreeObject(void* object);
  static Reply* Slot(const ::redisReadTask* task);

  void NewReader();
  Entry MakeEntry(PipelineRequest* request);
  // Removes unsent entries whose request is nullptr, with their bytes.
  void DropDetachedUnsent();

  redisReader* reader_ = nullptr;
  Reply root_;  // the reply being parsed; the reader builds replies in place, not on the heap
  std::deque<Entry> entries_;  // sent entries first, then unsent ones
  size_t sent_ = 0;            // entries_[0, sent_) are sent
  std::string out_;            // bytes of the unsent entries, then of commands not yet pushed
  size_t pushed_bytes_ = 0;    // out_[0, pushed_bytes_) belongs to pushed entries
  uint32_t encoded_ = 0;       // commands encoded since the last push
  std::string writing_;        // bytes handed to the current write
};

}  // namespace herald::redis::internal
