#include <chrono>
#include <future>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <herald/redis/client.h>
#include <herald/testing/queue_jobs.h>

namespace herald::testing {

// Through the queue library, on an io_context of its own.
absl::Status PlaceJob(uint16_t redis_port, queue::JobSpec spec, bool dead_letter) {
  boost::asio::io_context io;
  redis::Client client(io.get_executor(), {.address = {"127.0.0.1", redis_port}});
  client.Start();
  queue::Queue q(client, {});
  auto place = [&]() -> boost::asio::awaitable<absl::Status> {
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
  };
  auto done = boost::asio::co_spawn(io, place(), boost::asio::use_future);
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  const absl::Status status = done.get();
  client.Stop();
  io.run();
  return status;
}

}  // namespace herald::testing
