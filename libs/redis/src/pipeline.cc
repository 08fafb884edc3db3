#include "pipeline.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <herald/common/strings.h>

namespace herald::redis::internal {

// The parser builds replies in place: the root in Pipeline::root_, every element appended to its
// parent's element vector as it arrives, so parsing allocates only the strings and vectors
// themselves.
struct ReplyBuilder {
  static std::vector<Reply>& Elements(Reply& r) { return r.elements_; }
};

namespace {

// Output buffers above this size are released after use rather than kept for reuse.
constexpr size_t kMaxRetainedBuffer = 4 << 20;
// The reader keeps up to this much free buffer between reads instead of reallocating.
constexpr size_t kReaderMaxBuffer = 1 << 20;
// An array header may announce up to 2^31-1 elements in a dozen bytes: room for more elements than
// this is made only as they arrive, so memory follows the bytes received, not the header.
constexpr size_t kMaxArrayReserve = 1024;

// A broken invariant of the pipeline is a programming error: stop before replies are matched to
// the wrong commands.
void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "herald::redis::Pipeline: %s\n", what);
  std::abort();
}

}  // namespace

Pipeline::Pipeline() { NewReader(); }

Pipeline::~Pipeline() { redisReaderFree(reader_); }

void Pipeline::NewReader() {
  if (reader_ != nullptr) redisReaderFree(reader_);
  static redisReplyObjectFunctions functions = {&CreateString, &CreateArray, &CreateInteger,
                                                &CreateNil, &FreeObject};
  reader_ = redisReaderCreateWithFunctions(&functions);
  Check(reader_ != nullptr, "out of memory creating the reply reader");
  reader_->privdata = this;
  reader_->maxbuf = kReaderMaxBuffer;
}

// Elements arrive in order, and the reader holds pointers only to the arrays still being filled
// (each the last element of its parent), so appending never moves an object the reader still
// refers to.
Reply* Pipeline::Slot(const ::redisReadTask* task) {
  if (task->parent == nullptr) return &static_cast<Pipeline*>(task->privdata)->root_;
  Reply* parent = static_cast<Reply*>(task->parent->obj);
  std::vector<Reply>& elements = ReplyBuilder::Elements(*parent);
  Check(static_cast<size_t>(task->idx) == elements.size(), "array elements out of order");
  return &elements.emplace_back();
}

void* Pipeline::CreateString(const ::redisReadTask* task, char* str, size_t len) {
  Reply* slot = Slot(task);
  std::string text(str, len);
  switch (task->type) {
    case REDIS_REPLY_STATUS:
      *slot = Reply::Status(std::move(text));
      break;
    case REDIS_REPLY_ERROR:
      *slot = Reply::Error(std::move(text));
      break;
    default:
      *slot = Reply::String(std::move(text));
      break;
  }
  return slot;
}

void* Pipeline::CreateArray(const ::redisReadTask* task, int elements) {
  Reply* slot = Slot(task);
  std::vector<Reply> children;
  children.reserve(std::min(static_cast<size_t>(elements), kMaxArrayReserve));
  *slot = Reply::Array(std::move(children));
  return slot;
}

void* Pipeline::CreateInteger(const ::redisReadTask* task, long long value) {  // NOLINT
  Reply* slot = Slot(task);
  *slot = Reply::Integer(value);
  return slot;
}

void* Pipeline::CreateNil(const ::redisReadTask* task) {
  Reply* slot = Slot(task);
  *slot = Reply::Nil();
  return slot;
}

// Every object lives inside root_ or a parent's element vector: nothing to free.
void Pipeline::FreeObject(void*) {}

namespace {

// RESP's "<prefix><n>\r\n".
void AppendHeader(std::string& out, char prefix, size_t n) {
  char buffer[2 + std::numeric_limits<size_t>::digits10 + 3];
  buffer[0] = prefix;
  char* end = std::to_chars(buffer + 1, buffer + sizeof(buffer) - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buffer, static_cast<size_t>(end - buffer));
}

// A command as RESP's array of bulk strings, appended straight to `out`.
template <typename Args>
void AppendCommand(std::string& out, const Args& args) {
  size_t bytes = 16;
  for (const auto& a : args) bytes += a.size() + 16;
  out.reserve(out.size() + bytes);  // grows geometrically: appends stay amortised O(1)
  AppendHeader(out, '*', args.size());
  for (const auto& a : args) {
    AppendHeader(out, '$', a.size());
    out.append(a.data(), a.size());
    out.append("\r\n", 2);
  }
}

}  // namespace

void Pipeline::Encode(std::span<const std::string_view> argv) {
  Check(!argv.empty(), "an empty command has no reply");
  AppendCommand(out_, argv);
  ++encoded_;
}

void Pipeline::Encode(const Command& command) {
  Check(!command.args().empty(), "an empty command has no reply");
  AppendCommand(out_, command.args());
  ++encoded_;
}

Pipeline::Entry Pipeline::MakeEntry(PipelineRequest* request) {
  Check(request != nullptr, "null request");
  Check(encoded_ > 0, "a request needs at least one command");
  const Entry entry{.request = request,
                    .expected = encoded_,
                    .remaining = encoded_,
                    .bytes = out_.size() - pushed_bytes_};
  if (encoded_ > 1) {
    request->replies.clear();
    request->replies.reserve(encoded_);
  }
  encoded_ = 0;
  return entry;
}

void Pipeline::Push(PipelineRequest* request) {
  entries_.push_back(MakeEntry(request));
  pushed_bytes_ = out_.size();
}

void Pipeline::PushFront(PipelineRequest* request) {
  const Entry entry = MakeEntry(request);
  std::rotate(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(pushed_bytes_), out_.end());
  pushed_bytes_ = out_.size();
  entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(sent_), entry);
}

std::string_view Pipeline::PrepareWrite(size_t max_requests) {
  Check(writing_.empty(), "PrepareWrite while a write is outstanding");
  Check(encoded_ == 0, "PrepareWrite between Encode and Push");
  const size_t count = std::min(max_requests, unsent_requests());
  if (count == unsent_requests()) {
    writing_.swap(out_);  // out_ keeps the previous write's capacity for the next commands
    out_.clear();
    pushed_bytes_ = 0;
  } else {
    size_t len = 0;
    for (size_t i = sent_; i < sent_ + count; ++i) len += entries_[i].bytes;
    writing_.assign(out_, 0, len);
    out_.erase(0, len);
    pushed_bytes_ -= len;
  }
  for (size_t i = sent_; i < sent_ + count; ++i) entries_[i].bytes = 0;
  sent_ += count;
  return writing_;
}

void Pipeline::WriteDone() {
  writing_.clear();
  if (writing_.capacity() > kMaxRetainedBuffer) std::string().swap(writing_);
}

absl::Status Pipeline::Feed(std::string_view bytes, std::vector<PipelineRequest*>& completed) {
  if (!bytes.empty() && redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) {
    return absl::InternalError(StrCat("redis protocol error: ", reader_->errstr));
  }
  while (true) {
    void* object = nullptr;
    if (redisReaderGetReply(reader_, &object) != REDIS_OK) {
      return absl::InternalError(StrCat("redis protocol error: ", reader_->errstr));
    }
    if (object == nullptr) return absl::OkStatus();
    if (sent_ == 0) {
      return absl::InternalError(
          StrCat("redis sent a reply no command was waiting for: ", root_.DebugString()));
    }
    Entry& entry = entries_.front();
    if (entry.request != nullptr) {
      if (entry.expected == 1) {
        entry.request->reply = std::move(root_);
      } else {
        entry.request->replies.push_back(std::move(root_));
      }
    }
    if (--entry.remaining == 0) {
      if (entry.request != nullptr) completed.push_back(entry.request);
      entries_.pop_front();
      --sent_;
    }
  }
}

PipelineRequest* Pipeline::Abandon(uint64_t id) {
  if (id == 0) return nullptr;
  for (size_t i = 0; i < entries_.size(); ++i) {
    PipelineRequest* request = entries_[i].request;
    if (request == nullptr || request->id != id) continue;
    entries_[i].request = nullptr;
    if (i >= sent_) DropDetachedUnsent();
    return request;
  }
  return nullptr;
}

Deadline Pipeline::Expire(Deadline now, std::vector<PipelineRequest*>& expired) {
  Deadline next = kNoDeadline;
  bool dropped_unsent = false;
  for (size_t i = 0; i < entries_.size(); ++i) {
    PipelineRequest* request = entries_[i].request;
    if (request == nullptr) continue;
    if (request->deadline <= now) {
      expired.push_back(request);
      entries_[i].request = nullptr;
      dropped_unsent |= i >= sent_;
    } else {
      next = std::min(next, request->deadline);
    }
  }
  if (dropped_unsent) DropDetachedUnsent();
  return next;
}

void Pipeline::DropDetachedUnsent() {
  std::string kept;
  kept.reserve(out_.size());
  size_t offset = 0;
  size_t write = sent_;
  for (size_t read = sent_; read < entries_.size(); ++read) {
    const Entry& entry = entries_[read];
    if (entry.request != nullptr) {
      kept.append(out_, offset, entry.bytes);
      entries_[write++] = entry;
    }
    offset += entry.bytes;
  }
  entries_.resize(write);
  pushed_bytes_ = kept.size();
  kept.append(out_, offset);  // commands encoded but not pushed yet
  out_.swap(kept);
}

void Pipeline::Reset(std::vector<PipelineRequest*>& out) {
  for (const Entry& entry : entries_) {
    if (entry.request != nullptr) out.push_back(entry.request);
  }
  entries_.clear();
  sent_ = 0;
  out_.clear();
  pushed_bytes_ = 0;
  encoded_ = 0;
  writing_.clear();
  root_ = Reply();
  NewReader();
}

}  // namespace herald::redis::internal
