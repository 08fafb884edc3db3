#include <chrono>
#include <functional>
#include <future>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <herald/common/strings.h>
#include <herald/redis/client.h>
#include <herald/testing/queue_jobs.h>

namespace herald::testing {

namespace {

// Runs `body` with a queue client of the single redis-server at `redis_port`, on an io_context
// of its own.
absl::Status WithQueue(
    uint16_t redis_port,
    const std::function<boost::asio::awaitable<absl::Status>(queue::Queue&)>& body) {
  boost::asio::io_context io;
  redis::Client client(io.get_executor(), {.address = {"127.0.0.1", redis_port}});
  client.Start();
  queue::Queue q(client, {});
  auto done = boost::asio::co_spawn(io, body(q), boost::asio::use_future);
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  const absl::Status status = done.get();
  client.Stop();
  io.run();
  return status;
}

}  // namespace

absl::Status PlaceJob(uint16_t redis_port, queue::JobSpec spec, bool dead_letter) {
  return WithQueue(redis_port, [&](queue::Queue& q) -> boost::asio::awaitable<absl::Status> {
    const int shard = q.ShardOf(spec.team);
    absl::StatusOr<queue::EnqueueResult> r = co_await q.Enqueue(std::move(spec));
    if (!r.ok()) co_return r.status();
    if (*r != queue::EnqueueResult::kEnqueued) co_return absl::InternalError("not enqueued");
    if (!dead_letter) co_return absl::OkStatus();
    absl::StatusOr<queue::LeaseBatch> batch = co_await q.Lease(shard, 1);
    if (!batch.ok()) co_return batch.status();
    if (batch->jobs.size() != 1) co_return absl::InternalError("nothing leased");
    absl::StatusOr<queue::NackResult> nacked =
        co_await q.DeadLetter(batch->jobs[0].ref(), "the worker died on the last attempt");
    if (!nacked.ok()) co_return nacked.status();
    co_return absl::OkStatus();
  });
}

absl::Status PutOffWithOutcomeUnknown(uint16_t redis_port, const std::string& team,
                                      std::string_view kind) {
  return WithQueue(redis_port, [&](queue::Queue& q) -> boost::asio::awaitable<absl::Status> {
    absl::StatusOr<queue::LeaseBatch> batch = co_await q.Lease(q.ShardOf(team), 16);
    if (!batch.ok()) co_return batch.status();
    bool put_off = false;
    std::vector<queue::NackRequest> nacks;
    for (const queue::LeasedJob& job : batch->jobs) {
      if (!put_off && job.kind == kind) {
        put_off = true;
        nacks.push_back(queue::Queue::DeferRequest(job.ref(), "Herald's store was unavailable",
                                                   absl::Milliseconds(1),
                                                   /*outcome_unknown=*/true));
      } else {
        nacks.push_back(queue::Queue::ReleaseRequest(job.ref()));
      }
    }
    if (!nacks.empty()) {
      absl::StatusOr<std::vector<queue::NackResult>> nacked = co_await q.Nack(std::move(nacks));
      if (!nacked.ok()) co_return nacked.status();
    }
    if (!put_off) {
      std::string leased;
      for (const queue::LeasedJob& job : batch->jobs) leased += StrCat(" ", job.kind);
      const std::string next_due =
          batch->next_due ? absl::FormatDuration(*batch->next_due) : "never";
      co_return absl::NotFoundError(
          StrCat("no ", kind, " job of ", team, " leased (leased:", leased,
                 "; throttled by account ", batch->throttled_by_account, ", by team ",
                 batch->throttled_by_team, "; next due in ", next_due, ")"));
    }
    co_return absl::OkStatus();
  });
}

}  // namespace herald::testing
