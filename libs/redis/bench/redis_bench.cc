// Throughput of herald::redis::Client against a local redis-server, next to hiredis' blocking
// client driving the same commands with the same number in flight from one thread (the best a
// hand-pipelined loop on one connection does, with none of the client's concurrency).
//
//   build/libs/redis/redis_bench
//
// Every iteration runs 20,000 INCRs. BM_ClientExec/N: N coroutines on 2 io threads each
// co_await Exec() in a loop (N commands in flight). BM_HiredisWindow/N: one thread appends N
// commands, reads N replies, repeats.
//
// BM_PipelineEncode/B encodes one command into the pipeline's output (no I/O): an HMGET
// (B = 0) or an EVALSHA carrying two 400-byte documents (B = 400), as a delivery's
// compare-and-set does; its baseline BM_HiredisFormat/B formats the same command with hiredis'
// redisFormatCommandArgv and appends it, as the pipeline did before.
#include <atomic>
#include <future>
#include <thread>

#include <benchmark/benchmark.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <hiredis/hiredis.h>

#include <herald/redis/client.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>

#include "../src/pipeline.h"
#include "ratio_main.h"

namespace herald::redis {
namespace {

namespace asio = boost::asio;
constexpr int kCommandsPerIteration = 20000;

testing::RedisServer& Server() {
  static testing::RedisServer* server = [] {
    auto s = testing::RedisServer::Start();
    if (!s.ok()) {
      std::fprintf(stderr, "cannot start redis-server: %s\n", s.status().ToString().c_str());
      std::abort();
    }
    return s->release();
  }();
  return *server;
}

void BM_HiredisWindow(benchmark::State& state) {
  const int window = static_cast<int>(state.range(0));
  redisContext* c = redisConnect("127.0.0.1", Server().port());
  if (c == nullptr || c->err) {
    state.SkipWithError("connect failed");
    return;
  }
  for (auto _ : state) {
    for (int done = 0; done < kCommandsPerIteration; done += window) {
      for (int i = 0; i < window; ++i) redisAppendCommand(c, "INCR bench:hiredis");
      for (int i = 0; i < window; ++i) {
        void* reply = nullptr;
        if (redisGetReply(c, &reply) != REDIS_OK) {
          state.SkipWithError("redisGetReply failed");
          redisFree(c);
          return;
        }
        freeReplyObject(reply);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kCommandsPerIteration);
  redisFree(c);
}
BENCHMARK(BM_HiredisWindow)->Arg(1)->Arg(16)->Arg(128)->Arg(512)->UseRealTime();

asio::awaitable<void> ExecLoop(Client& client, int count, std::atomic<int>& errors) {
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<Reply> r = co_await client.Exec({"INCR", "bench:client"});
    if (!r.ok()) ++errors;
  }
}

void BM_ClientExec(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  asio::io_context ioc;
  auto guard = asio::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  {
    ClientConfig config;
    config.address = {"127.0.0.1", Server().port()};
    Client client(ioc.get_executor(), config);
    client.Start();
    testing::WaitFor([&] { return client.connected(); });
    std::atomic<int> errors{0};
    for (auto _ : state) {
      std::vector<std::future<void>> loops;
      for (int i = 0; i < concurrency; ++i) {
        loops.push_back(asio::co_spawn(
            ioc, ExecLoop(client, kCommandsPerIteration / concurrency, errors), asio::use_future));
      }
      for (auto& f : loops) f.get();
    }
    if (errors.load() > 0) state.SkipWithError("commands failed");
    state.SetItemsProcessed(state.iterations() * kCommandsPerIteration);
  }
  guard.reset();
  for (auto& t : threads) t.join();
}
BENCHMARK(BM_ClientExec)->Arg(1)->Arg(16)->Arg(128)->Arg(512)->UseRealTime();
HERALD_BENCH_BASELINE(BM_ClientExec, BM_HiredisWindow);

// The command BM_PipelineEncode/B and BM_HiredisFormat/B encode (see the top of the file).
Command EncodedCommand(int64_t document_bytes) {
  if (document_bytes == 0) {
    return Command{"HMGET", "hd:{t:tenant}:accounts", "acct_16d81bf3d151d1e3dafe6f0d656d3aab"};
  }
  const std::string document(static_cast<size_t>(document_bytes), 'd');
  return Command{"EVALSHA",
                 "59cf714a122e00ca6becdaf91c7b9e88efdb325d",
                 "2",
                 "hd:{t:tenant}:c:01m8smx6dhbnkvqqgk26h6hjy5:deliveries",
                 "hd:{t:tenant}:rev:c:01m8smx6dhbnkvqqgk26h6hjy5",
                 "acct_16d81bf3d151d1e3dafe6f0d656d3aab",
                 document,
                 document,
                 "0"};
}

void BM_HiredisFormat(benchmark::State& state) {
  const Command command = EncodedCommand(state.range(0));
  std::string out;
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (auto _ : state) {
    argv.clear();
    lengths.clear();
    for (const std::string& a : command.args()) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    char* formatted = nullptr;
    const int n = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(),
                                         lengths.data());
    out.append(formatted, static_cast<size_t>(n));
    redisFreeCommand(formatted);
    if (out.size() > (1 << 20)) out.clear();
  }
  benchmark::DoNotOptimize(out.data());
}
BENCHMARK(BM_HiredisFormat)->Arg(0)->Arg(400);

void BM_PipelineEncode(benchmark::State& state) {
  const Command command = EncodedCommand(state.range(0));
  internal::Pipeline pipeline;
  std::vector<internal::PipelineRequest> requests(1024);
  std::vector<internal::PipelineRequest*> dropped;
  size_t next = 0;
  for (auto _ : state) {
    pipeline.Encode(command);
    pipeline.Push(&requests[next]);
    if (++next == requests.size()) {
      // As a connection that wrote them: the output starts over (the baseline clears its
      // string at 1 MiB).
      state.PauseTiming();
      pipeline.Reset(dropped);
      dropped.clear();
      next = 0;
      state.ResumeTiming();
    }
  }
}
BENCHMARK(BM_PipelineEncode)->Arg(0)->Arg(400);
HERALD_BENCH_BASELINE(BM_PipelineEncode, BM_HiredisFormat);

}  // namespace
}  // namespace herald::redis
