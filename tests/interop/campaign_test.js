#!/usr/bin/env node
// Herald's gRPC API from a second language: a Node.js client (@grpc/grpc-js, the .proto files
// loaded at run time, no generated code) creates a campaign, follows it with WatchCampaign and
// reads it back, against the real herald binary, a real redis-server and the upstream simulator,
// whose ledger is the ground truth.
//
//   node campaign_test.js --herald=PATH --upstream_sim=PATH --redis_server=PATH --proto_dir=DIR
//
// Exits 0 when every assertion holds, 1 (with the reason and the processes' logs) otherwise.
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

let grpc;
let protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  console.error(`interop: ${e.message}`);
  console.error(`interop: run tools/install-deps (or npm ci in ${__dirname}) first.`);
  process.exit(1);
}

const ACCOUNTS = 3;             // --accounts_per_team of the simulator's only team
const TEST_DEADLINE_MS = 45000; // the whole run, set-up and tear-down included
const START_DEADLINE_MS = 20000;
const RPC_DEADLINE_MS = 10000;
const WATCH_DEADLINE_MS = 30000;

// ---------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const want = ['herald', 'upstream_sim', 'redis_server', 'proto_dir'];
  const args = {};
  for (const arg of argv) {
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m || !want.includes(m[1])) usage(`unknown argument '${arg}'`);
    args[m[1]] = m[2];
  }
  for (const name of want) {
    if (!args[name]) usage(`--${name} is required`);
  }
  for (const name of ['herald', 'upstream_sim', 'redis_server']) {
    try {
      fs.accessSync(args[name], fs.constants.X_OK);
    } catch {
      usage(`--${name}=${args[name]} is not an executable file`);
    }
  }
  return args;
}

function usage(message) {
  console.error(`interop: ${message}`);
  console.error('usage: node campaign_test.js --herald=PATH --upstream_sim=PATH ' +
                '--redis_server=PATH --proto_dir=DIR');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Assertions: each failure throws, main() reports it and exits non-zero.

class AssertionFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new AssertionFailed(message);
}

function checkEqual(actual, expected, what) {
  check(actual === expected,
        `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

// ---------------------------------------------------------------------------------------------
// Child processes: started with captured output, all killed at the end whatever happened.

const children = [];
let tmpDir;

function start(name, file, args, env) {
  const child = childProcess.spawn(file, args, {
    env: {...process.env, ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const record = {name, child, output: '', exited: null};
  const keep = (chunk) => {
    record.output += chunk.toString();
    if (record.output.length > 200000) record.output = record.output.slice(-100000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('error', (e) => { record.exited = `could not start: ${e.message}`; });
  child.on('exit', (code, signal) => { record.exited = signal ? `signal ${signal}` : `code ${code}`; });
  children.push(record);
  return record;
}

function killAll(signal) {
  for (const r of children) {
    if (r.exited === null && r.child.pid !== undefined) {
      try {
        r.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }
}

// SIGTERM, then SIGKILL for whatever has not exited within two seconds.
async function stopAll() {
  killAll('SIGTERM');
  const until = Date.now() + 2000;
  while (children.some((r) => r.exited === null && r.child.pid !== undefined) &&
         Date.now() < until) {
    await sleep(20);
  }
  killAll('SIGKILL');
}

// Last resort (an uncaught error, a signal): never leave a process behind.
process.on('exit', () => {
  killAll('SIGKILL');
  if (tmpDir) fs.rmSync(tmpDir, {recursive: true, force: true});
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`interop: FAILED: interrupted by ${sig}`);
    process.exit(1);
  });
}

function dumpLogs() {
  for (const r of children.filter((c) => !c.portReservation)) {
    const tail = r.output.split('\n').slice(-60).join('\n');
    console.error(`----- ${r.name} (${r.exited === null ? 'running' : 'exited, ' + r.exited}) -----`);
    console.error(tail);
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting: poll a condition until a deadline; a child that exits meanwhile fails at once.

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what, record, probe, deadlineMs = START_DEADLINE_MS) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (record && record.exited !== null) {
      throw new AssertionFailed(`${what}: ${record.name} exited (${record.exited})`);
    }
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) {
      throw new AssertionFailed(`${what}: not ready after ${deadlineMs} ms`);
    }
    await sleep(25);
  }
}

const PORT_RESERVATIONS = '/tmp/herald-test-ports';
const LOWEST_PORT = 10000;

function bindable(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.on('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// A port for a server that cannot report the one it bound, reserved as the C++ harness reserves
// its own (tests/support/src/net.cc): below the kernel's ephemeral range, so no outgoing
// connection takes it, and under a lock file held by a flock(1) child until the test ends, so no
// test running beside this one picks it.
async function freePort() {
  const range = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  const ephemeralStart = Number(range.trim().split(/\s+/)[0]);
  fs.mkdirSync(PORT_RESERVATIONS, {recursive: true});
  for (let attempt = 0; attempt < 50; ++attempt) {
    const port = LOWEST_PORT + crypto.randomInt(ephemeralStart - LOWEST_PORT);
    // --no-fork: the lock's only holder is the process killed at the end. It outlives no run.
    const holder = start(`reservation of port ${port}`, '/usr/bin/flock',
                         ['--nonblock', '--no-fork', path.join(PORT_RESERVATIONS, String(port)),
                          '--command', `echo held && exec sleep ${TEST_DEADLINE_MS / 1000 + 60}`]);
    holder.portReservation = true;  // nothing to show in the logs of a failure
    while (holder.exited === null && !holder.output.includes('held')) await sleep(5);
    if (holder.exited === null && await bindable(port)) return port;
    holder.child.kill('SIGKILL');
  }
  throw new AssertionFailed('no free port below the ephemeral range after 50 attempts');
}

function redisPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect({host: '127.0.0.1', port});
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function httpGet(port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get({host: '127.0.0.1', port, path: urlPath, timeout: 2000}, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({status: res.statusCode, body}));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// gRPC

function loadApi(protoDir) {
  const files = ['tenant', 'account', 'media', 'campaign'].map((f) => `herald/v1/${f}.proto`);
  const definition = protoLoader.loadSync(files, {
    includeDirs: [protoDir],
    keepCase: true,     // fields keep the .proto names: delivery_counts, upstream_message_id
    enums: String,      // 'COMPLETED', not 6
    longs: String,      // int64 fields arrive as decimal strings
    defaults: true,     // unset scalars read as their zero values
    oneofs: true,       // WatchCampaignResponse.change names the member that is set
  });
  return grpc.loadPackageDefinition(definition).herald.v1;
}

function metadata(key) {
  const md = new grpc.Metadata();
  if (key) md.add('authorization', `Bearer ${key}`);
  return md;
}

// A unary call as a promise; rejects with the grpc-js error (code, details).
function call(client, method, request, key) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata(key), {deadline: Date.now() + RPC_DEADLINE_MS},
                   (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// The same, for calls that must succeed: a failure names the method and the status.
async function mustCall(client, method, request, key) {
  try {
    return await call(client, method, request, key);
  } catch (e) {
    throw new AssertionFailed(`${method} failed: ${grpcStatusName(e.code)} (${e.code}): ` +
                              `${e.details || e.message}`);
  }
}

function grpcStatusName(code) {
  return Object.keys(grpc.status).find((k) => grpc.status[k] === code) || String(code);
}

// Follows WatchCampaign until the server ends the stream; returns every update.
function watch(client, name, key) {
  return new Promise((resolve, reject) => {
    const updates = [];
    const stream = client.WatchCampaign({name}, metadata(key),
                                        {deadline: Date.now() + WATCH_DEADLINE_MS});
    stream.on('data', (u) => updates.push(u));
    stream.on('error', (e) => reject(new AssertionFailed(
        `WatchCampaign failed after ${updates.length} updates: ${grpcStatusName(e.code)} ` +
        `(${e.code}): ${e.details || e.message}`)));
    stream.on('status', (s) => {
      if (s.code === grpc.status.OK) resolve(updates);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The test

async function startProcesses(args) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-interop-'));

  const redisPort = await freePort();
  const redis = start('redis-server', args.redis_server,
                      ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
                       '--appendonly', 'no', '--dir', tmpDir]);
  await waitFor('redis-server', redis, () => redisPing(redisPort));

  const portFile = path.join(tmpDir, 'upstream-sim.port');
  const sim = start('upstream-sim', args.upstream_sim,
                    ['--listen=127.0.0.1:0', `--port_file=${portFile}`, '--teams=1',
                     `--accounts_per_team=${ACCOUNTS}`, '--fans_per_account=40',
                     '--delivery_rate=2000']);
  const simPort = await waitFor('upstream-sim', sim, async () => {
    const port = Number(fs.readFileSync(portFile, 'utf8').trim());
    return port > 0 && port < 65536 ? port : false;
  });

  const adminKey = crypto.randomBytes(24).toString('hex');
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const herald = start('herald', args.herald,
                       ['serve', '--role=all', `--grpc_address=127.0.0.1:${grpcPort}`,
                        `--admin_address=127.0.0.1:${adminPort}`,
                        `--redis_address=127.0.0.1:${redisPort}`,
                        `--upstream_url=http://127.0.0.1:${simPort}`, '--poll_interval=50ms'],
                       {HERALD_ADMIN_KEY: adminKey,
                        HERALD_ENCRYPTION_KEY: crypto.randomBytes(32).toString('hex')});
  await waitFor('herald /readyz', herald,
                async () => (await httpGet(adminPort, '/readyz')).status === 200);

  return {simPort, grpcTarget: `127.0.0.1:${grpcPort}`, adminKey};
}

// Mass messages per upstream account id, from the simulator's ledger.
async function ledger(simPort) {
  const res = await httpGet(simPort, '/_sim/ledger?all=true');
  checkEqual(res.status, 200, 'GET /_sim/ledger status');
  const out = new Map();
  for (const a of JSON.parse(res.body).accounts) out.set(String(a.account_id), a.mass_messages);
  return out;
}

async function run(args) {
  const api = loadApi(args.proto_dir);
  const {simPort, grpcTarget, adminKey} = await startProcesses(args);
  const creds = grpc.credentials.createInsecure();
  const tenants = new api.TenantService(grpcTarget, creds);
  const accounts = new api.AccountService(grpcTarget, creds);
  const media = new api.MediaService(grpcTarget, creds);
  const campaigns = new api.CampaignService(grpcTarget, creds);

  try {
    // A tenant and its key, with the platform-admin key.
    const tenant = await mustCall(tenants, 'CreateTenant',
                                  {tenant_id: 'interop', tenant: {display_name: 'Interop (Node)'}},
                                  adminKey);
    checkEqual(tenant.name, 'tenants/interop', 'CreateTenant name');
    const created = await mustCall(tenants, 'CreateApiKey', {parent: tenant.name}, adminKey);
    check(created.secret.length > 0, 'CreateApiKey returned an empty secret');
    const key = created.secret;

    // A team on the simulator's first team, and its accounts imported from the upstream.
    const team = await mustCall(accounts, 'CreateTeam', {
      parent: tenant.name,
      team_id: 'main',
      team: {upstream_api_key: 'sim-key-1', rate_limit_per_minute: 60000},
    }, key);
    const synced = await mustCall(accounts, 'SyncAccounts', {team: team.name}, key);
    checkEqual(synced.created.length, ACCOUNTS, 'SyncAccounts created accounts');
    const accountNames = synced.created.map((a) => a.name).sort();
    const upstreamId = (name) => name.slice(name.lastIndexOf('/') + 1);

    const asset = await mustCall(media, 'CreateMediaAsset', {
      parent: tenant.name,
      media_asset: {type: 'VIDEO', source_url: 'https://cdn.example.com/interop.mp4'},
    }, key);
    check(asset.name.startsWith(`${tenant.name}/`), `media asset name ${asset.name}`);

    const before = await ledger(simPort);
    for (const id of accountNames.map(upstreamId)) {
      check(before.has(id), `account ${id} is not in the simulator's ledger`);
      checkEqual(before.get(id).length, 0, `mass messages of ${id} before the campaign`);
    }

    // The campaign: a PPV message to the "fans" list of every account, sent now.
    const text = `Hello from Node.js ${process.version}`;
    const campaign = await mustCall(campaigns, 'CreateCampaign', {
      parent: tenant.name,
      request_id: 'interop-create-1',
      campaign: {
        display_name: 'interop',
        content: {text, price_cents: '1500', media: [asset.name]},
        targets: accountNames.map((account) => ({account, user_lists: ['fans']})),
      },
    }, key);
    check(campaign.name.startsWith(`${tenant.name}/campaigns/`), `campaign name ${campaign.name}`);
    checkEqual(campaign.delivery_counts.total, ACCOUNTS, 'CreateCampaign delivery_counts.total');

    // WatchCampaign: a server stream of campaign and delivery changes, ended by the server once
    // the campaign is final.
    const updates = await watch(campaigns, campaign.name, key);
    const states = updates.filter((u) => u.change === 'campaign').map((u) => u.campaign.state);
    check(states.length > 0, `WatchCampaign sent no campaign update (${updates.length} updates)`);
    const last = updates.filter((u) => u.change === 'campaign').pop().campaign;
    checkEqual(last.state, 'COMPLETED',
               `final state in WatchCampaign (states seen: ${states.join(' > ')}; ` +
               `reason: ${last.state_reason})`);
    checkEqual(last.name, campaign.name, 'watched campaign name');

    // GetCampaign reads the same final campaign.
    const got = await mustCall(campaigns, 'GetCampaign', {name: campaign.name}, key);
    checkEqual(got.state, 'COMPLETED', 'GetCampaign state');
    checkEqual(got.delivery_counts.completed, ACCOUNTS, 'GetCampaign delivery_counts.completed');
    checkEqual(got.delivery_counts.failed, 0, 'GetCampaign delivery_counts.failed');
    check(BigInt(got.delivery_counts.recipients) > 0n,
          `GetCampaign delivery_counts.recipients is ${got.delivery_counts.recipients}`);
    checkEqual(got.delivery_counts.recipients_pending, '0',
               'GetCampaign delivery_counts.recipients_pending');
    checkEqual(got.content.text, text, 'GetCampaign content.text');
    checkEqual(got.content.price_cents, '1500', 'GetCampaign content.price_cents');

    // ListDeliveries (every page): one COMPLETED delivery per account, each with the id of the
    // message the upstream created.
    const deliveries = [];
    let pageToken = '';
    do {
      const page = await mustCall(campaigns, 'ListDeliveries',
                                  {parent: campaign.name, page_size: 2, page_token: pageToken},
                                  key);
      deliveries.push(...page.deliveries);
      pageToken = page.next_page_token;
      check(deliveries.length <= ACCOUNTS, `ListDeliveries returned ${deliveries.length} so far`);
    } while (pageToken);
    checkEqual(deliveries.length, ACCOUNTS, 'ListDeliveries count');
    checkEqual(JSON.stringify(deliveries.map((d) => d.account).sort()),
               JSON.stringify(accountNames), 'ListDeliveries accounts');
    const messageIds = new Map();
    for (const d of deliveries) {
      checkEqual(d.state, 'COMPLETED', `delivery ${d.name} state (error: ${d.error})`);
      check(typeof d.upstream_message_id === 'string' && /^[0-9]+$/.test(d.upstream_message_id) &&
                BigInt(d.upstream_message_id) !== 0n,
            `delivery ${d.name} upstream_message_id is ${JSON.stringify(d.upstream_message_id)}`);
      checkEqual(d.send_attempts, 1, `delivery ${d.name} send_attempts`);
      messageIds.set(upstreamId(d.account), d.upstream_message_id);
    }

    // The upstream's ground truth: exactly one mass message per targeted account, the one the
    // delivery recorded, with the campaign's text.
    const after = await ledger(simPort);
    for (const id of accountNames.map(upstreamId)) {
      const messages = after.get(id) || [];
      checkEqual(messages.length, 1, `mass messages the upstream holds for ${id}`);
      checkEqual(String(messages[0].id), messageIds.get(id), `upstream message id for ${id}`);
      checkEqual(messages[0].text, text, `upstream message text for ${id}`);
    }

    // An error path: no authorization metadata is UNAUTHENTICATED, and so is an unknown key.
    for (const [what, badKey] of [['no authorization metadata', ''], ['an unknown key', 'nope']]) {
      const err = await call(campaigns, 'GetCampaign', {name: campaign.name}, badKey).then(
          () => null, (e) => e);
      check(err !== null, `GetCampaign with ${what} succeeded`);
      checkEqual(err.code, grpc.status.UNAUTHENTICATED,
                 `GetCampaign with ${what}: status code (${err.details})`);
    }

    return {updates: updates.length, states};
  } finally {
    for (const c of [tenants, accounts, media, campaigns]) c.close();
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const overall = setTimeout(() => {
    console.error(`interop: FAILED: the test did not finish within ${TEST_DEADLINE_MS} ms`);
    dumpLogs();
    process.exit(1); // the exit handler kills the processes
  }, TEST_DEADLINE_MS);
  let failure = null;
  let result;
  try {
    result = await run(args);
  } catch (e) {
    failure = e;
  }
  await stopAll();
  clearTimeout(overall);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (failure) {
    const message = failure instanceof AssertionFailed ? failure.message : failure.stack;
    console.error(`interop: FAILED: ${message}`);
    dumpLogs();
    process.exit(1);
  }
  console.log(`interop: PASSED in ${seconds} s: ${ACCOUNTS} accounts, ` +
              `${result.updates} watch updates (${result.states.join(' > ')})`);
  process.exit(0);
}

main();
