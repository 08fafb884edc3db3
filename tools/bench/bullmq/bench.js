// BullMQ baseline for tools/bench/run: the same job count, accounts and teams as queue_bench
// throughput, against the same redis-server, with BullMQ's best settings for no-op jobs
// (addBulk, a tuned worker concurrency, removeOnComplete).
//
//   node tools/bench/bullmq/bench.js --port=P [--jobs=1000000 --accounts=10000 --teams=200
//                                              --concurrency=200 --bulk=1000 --parallel=4]
'use strict';

const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

function flags() {
  const out = { port: 6379, jobs: 1000000, accounts: 10000, teams: 200, concurrency: 200,
                bulk: 1000, parallel: 4, workers: 1, maxlen: 100, skip_checks: 0 };
  for (const arg of process.argv.slice(2)) {
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m || !(m[1] in out)) throw new Error(`bad argument ${arg}`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

// Redis' own CPU time (user + sys) in seconds.
async function redisCpu(client) {
  const info = await client.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function main() {
  const f = flags();
  const connection = { host: '127.0.0.1', port: f.port, maxRetriesPerRequest: null };
  const name = `bench_${Date.now()}`;
  const queue = new Queue(name, { connection, streams: { events: { maxLen: f.maxlen } } });
  await queue.waitUntilReady();
  const client = new IORedis(connection);
  const cpu0 = await redisCpu(client);

  // Enqueue: addBulk chunks, `parallel` in flight.
  const opts = { removeOnComplete: true, removeOnFail: true };
  let next = 0;
  const enqueueStart = process.hrtime.bigint();
  async function producer() {
    while (next < f.jobs) {
      const start = next;
      const end = Math.min(f.jobs, start + f.bulk);
      next = end;
      const bulk = [];
      for (let i = start; i < end; i++) {
        const account = i % f.accounts;
        bulk.push({ name: 'send_mass_message',
                    data: { account: `acct_${account}`, team: `team_${account % f.teams}` },
                    opts });
      }
      await queue.addBulk(bulk);
    }
  }
  await Promise.all(Array.from({ length: f.parallel }, producer));
  const enqueueSeconds = Number(process.hrtime.bigint() - enqueueStart) / 1e9;
  const cpu1 = await redisCpu(client);

  // Process: `workers` Worker instances (each with its own connections), each with `concurrency`
  // no-op jobs in flight.
  let done = 0;
  let resolveDone;
  const allDone = new Promise((resolve) => { resolveDone = resolve; });
  const processStart = process.hrtime.bigint();
  const workers = [];
  for (let w = 0; w < f.workers; w++) {
    const worker = new Worker(name, async () => {}, {
      connection, concurrency: f.concurrency, removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 }, skipStalledCheck: f.skip_checks === 1,
      skipLockRenewal: f.skip_checks === 1,
    });
    worker.on('completed', () => { if (++done === f.jobs) resolveDone(); });
    worker.on('error', (err) => console.error('worker error', err));
    workers.push(worker);
  }
  await allDone;
  const processSeconds = Number(process.hrtime.bigint() - processStart) / 1e9;
  const cpu2 = await redisCpu(client);
  await Promise.all(workers.map((w) => w.close()));
  await queue.obliterate({ force: true });
  await queue.close();
  client.disconnect();

  console.log(`bullmq_enqueue_per_s: ${Math.round(f.jobs / enqueueSeconds)}`);
  console.log(`bullmq_process_per_s: ${Math.round(f.jobs / processSeconds)}`);
  console.log(`bullmq_redis_cpu_us_per_enqueue: ${((cpu1 - cpu0) * 1e6 / f.jobs).toFixed(1)}`);
  console.log(`bullmq_redis_cpu_us_per_process: ${((cpu2 - cpu1) * 1e6 / f.jobs).toFixed(1)}`);
  console.log(JSON.stringify({ enqueue_per_s: Math.round(f.jobs / enqueueSeconds),
                               process_per_s: Math.round(f.jobs / processSeconds) }));
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
