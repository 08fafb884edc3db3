#!/usr/bin/env node
// Writes Herald's Grafana dashboards, deploy/grafana/dashboards/*.json, from the definitions
// below. The JSON files are what Grafana loads and what reviewers read; this script keeps their
// shared parts (data source, template variables, selectors, links, layout) identical.
//
//   node tools/dashboards/generate.mjs           rewrite the JSON files
//   node tools/dashboards/generate.mjs --check   exit 1 if a file differs from what it would write
//
// Every query selects with SEL (the namespace, role and instance template variables), metrics
// labelled by tenant or team also with the tenant and team variables, and every range is
// $__rate_interval; tests/deploy's dashboard lint checks both, and the e2e test
// deploy_observability_e2e_test runs every query against a real Prometheus scraping Herald.
//
// Queue metrics (herald_queue_*) are read from Redis by every Herald process, so every process
// reports the same queue-wide values: queries take the max over processes (per namespace, one
// Redis each), never the sum.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/grafana/dashboards');

const DS = { type: 'prometheus', uid: '${datasource}' };
const SEL = 'namespace=~"$namespace", role=~"$role", instance=~"$instance"';
const RI = '[$__rate_interval]';

// A selector of `metric` with the template variables and `extra` matchers.
function m(metric, extra = '') {
  return `${metric}{${SEL}${extra ? ', ' + extra : ''}}`;
}
function rate(metric, extra = '') {
  return `rate(${m(metric, extra)}${RI})`;
}
// The tenant and team variables, for the metrics that carry those labels.
const TENANT = 'tenant=~"$tenant"';
const TEAM = 'tenant=~"$tenant", team=~"$team"';
function increase(metric, extra = '') {
  return `increase(${m(metric, extra)}${RI})`;
}
// Quantile `q` of histogram `metric` (base name) grouped by `by` (besides le).
function quantile(q, metric, by = [], extra = '') {
  const labels = ['le', ...by].join(', ');
  return `histogram_quantile(${q}, sum by (${labels}) (${rate(metric + '_bucket', extra)}))`;
}

const WEBHOOK_APPLIED = 'result=~"applied|unattributed"';
const WEBHOOK_REJECTED =
  'result=~"bad_signature|malformed|unknown_endpoint|unsupported_type|unavailable|shed|failed"';

// Links to the other dashboards, keeping the time range and the variables.
function dashboardLink(uid, title) {
  return {
    title: `${title} dashboard`,
    url:
      `/d/${uid}?\${__url_time_range}&\${namespace:queryparam}&\${role:queryparam}` +
      `&\${instance:queryparam}&\${tenant:queryparam}&\${team:queryparam}`,
  };
}

// --- Panels -----------------------------------------------------------------------------------

// A time series panel. `targets`: [{expr, legend}].
function timeseries(title, description, unit, targets, opts = {}) {
  return { kind: 'timeseries', title, description, unit, targets, ...opts };
}
// A single value (the last of a range query).
function stat(title, description, unit, targets, opts = {}) {
  return { kind: 'stat', title, description, unit, targets, w: 4, h: 4, ...opts };
}
// A latency heatmap of a histogram's buckets.
function heatmap(title, description, metric, extra = '') {
  return {
    kind: 'heatmap',
    title,
    description,
    unit: 's',
    targets: [{ expr: `sum by (le) (${increase(metric + '_bucket', extra)})`, legend: '{{le}}' }],
  };
}
// A table of the current value of each series.
function table(title, description, unit, targets, opts = {}) {
  return { kind: 'table', title, description, unit, targets, w: 24, h: 6, ...opts };
}

// --- Dashboards -------------------------------------------------------------------------------

const overview = {
  uid: 'herald-overview',
  title: 'Herald / Overview',
  description: 'Campaign delivery at a glance: sends, fans reached, unlocks, backlog and errors.',
  panels: [
    stat(
      'Processes by role',
      'Herald processes reporting, by the roles they run (herald_build_info).',
      'short',
      [{ expr: `count by (roles) (${m('herald_build_info')})`, legend: '{{roles}}' }],
      { link: ['herald-process', 'Process'] },
    ),
    stat(
      'Mass messages sent',
      'Upstream send_mass_message calls that succeeded, per second: one per account and campaign.',
      'reqps',
      [{ expr: `sum(${rate('herald_upstream_requests_total', 'endpoint="send_mass_message", outcome="ok"')})` }],
      { link: ['herald-limits', 'Limits and upstream'] },
    ),
    stat(
      'Fans reached',
      'Messages delivered to fans per second, from the upstream\'s messages.sent webhook events.',
      'cps',
      [{ expr: `sum(${rate('herald_webhook_events_total', `type="messages.sent", ${WEBHOOK_APPLIED}`)})` }],
      { link: ['herald-ingest', 'Ingest'] },
    ),
    stat(
      'Revenue / min',
      'What fans paid per minute (gross, before the platform\'s fee), from the transactions.new ' +
        'webhook events recorded; tenant variable applies. A campaign\'s own figures are in its ' +
        'stats (GetCampaignStats).',
      'currencyUSD',
      [{ expr: `60 * sum(${rate('herald_revenue_gross_cents_total', TENANT)}) / 100` }],
      { link: ['herald-ingest', 'Ingest'] },
    ),
    stat(
      'Unlocks',
      'PPV messages unlocked (purchased) per minute, from messages.ppv.unlocked webhook events.',
      'cpm',
      [{ expr: `60 * sum(${rate('herald_webhook_events_total', `type="messages.ppv.unlocked", ${WEBHOOK_APPLIED}`)})` }],
      { link: ['herald-ingest', 'Ingest'] },
    ),
    stat(
      'Unlock rate',
      'Unlocks per message delivered in the window (webhook events). Purchases trail deliveries, ' +
        'so over short windows during a send this reads low.',
      'percentunit',
      [
        {
          expr:
            `sum(${rate('herald_webhook_events_total', `type="messages.ppv.unlocked", ${WEBHOOK_APPLIED}`)})` +
            ` / sum(${rate('herald_webhook_events_total', `type="messages.sent", ${WEBHOOK_APPLIED}`)})`,
        },
      ],
    ),
    stat(
      'Ready jobs',
      'Jobs waiting for a worker, all shards (queue-wide; every process reports it, so the max ' +
        'over processes is taken).',
      'short',
      [{ expr: `sum(max by (namespace, shard) (${m('herald_queue_jobs', 'state="ready"')}))` }],
      { link: ['herald-queue', 'Queue'] },
    ),
    timeseries(
      'Campaigns by state entered',
      'Campaigns per minute moved into each state (tenant variable applies): created as DRAFT, ' +
        'SCHEDULED or DISPATCHING, launched, paused, resumed or CANCELLED through the API; ' +
        'DISPATCHING at their send time or MISSED by the workers. How campaigns end is in ' +
        '"Deliveries finished by state".',
      'cpm',
      [{ expr: `60 * sum by (state) (${rate('herald_campaigns_total', TENANT)})`, legend: '{{state}}' }],
    ),
    timeseries(
      'Deliveries finished by state',
      'Deliveries (one campaign on one account) ending per minute: completed, failed (the ' +
        'reason is on the delivery) or cancelled. A campaign is final when all of its deliveries ' +
        'are.',
      'cpm',
      [{ expr: `60 * sum by (state) (${rate('herald_deliveries_finished_total')})`, legend: '{{state}}' }],
    ),
    timeseries(
      'Revenue per minute',
      'Money per minute from the transactions.new events recorded (tenant variable applies): ' +
        'gross (what fans paid) and net (what the creators received after the platform\'s fee).',
      'currencyUSD',
      [
        { expr: `60 * sum(${rate('herald_revenue_gross_cents_total', TENANT)}) / 100`, legend: 'gross' },
        { expr: `60 * sum(${rate('herald_revenue_net_cents_total', TENANT)}) / 100`, legend: 'net' },
      ],
      { link: ['herald-ingest', 'Ingest'] },
    ),
    timeseries(
      'Upstream sends by outcome',
      'send_mass_message calls per second by outcome: ok, retryable (5xx, timeouts), ' +
        'rate_limited (429), out_of_credits (402), unauthorized (401), terminal, unknown_outcome.',
      'reqps',
      [{ expr: `sum by (outcome) (${rate('herald_upstream_requests_total', 'endpoint="send_mass_message"')})`, legend: '{{outcome}}' }],
      { link: ['herald-limits', 'Limits and upstream'] },
    ),
    timeseries(
      'Fans reached and unlocks',
      'Per second, from webhook events: messages delivered to fans and PPV unlocks.',
      'cps',
      [
        { expr: `sum(${rate('herald_webhook_events_total', `type="messages.sent", ${WEBHOOK_APPLIED}`)})`, legend: 'delivered' },
        { expr: `sum(${rate('herald_webhook_events_total', `type="messages.ppv.unlocked", ${WEBHOOK_APPLIED}`)})`, legend: 'unlocked' },
      ],
      { link: ['herald-ingest', 'Ingest'] },
    ),
    timeseries(
      'Errors',
      'Failures per second: upstream calls that did not succeed, jobs dead-lettered (queue-wide), ' +
        'gRPC requests answered with an error, webhook deliveries refused, and campaigns the ' +
        "dispatch sweep could not finish (their request stopped before enqueueing their jobs).",
      'ops',
      [
        { expr: `sum(${rate('herald_upstream_requests_total', 'outcome!="ok"')})`, legend: 'upstream calls' },
        { expr: `sum(max by (namespace, kind) (${rate('herald_queue_finished_jobs_total', 'outcome="dead"')}))`, legend: 'jobs dead-lettered' },
        { expr: `sum(${rate('herald_grpc_requests_total', 'code!="OK"')})`, legend: 'gRPC errors' },
        { expr: `sum(${rate('herald_webhook_events_total', WEBHOOK_REJECTED)})`, legend: 'webhooks refused' },
        { expr: `sum(${rate('herald_dispatch_sweep_campaigns_total', 'result="failed"')})`, legend: 'campaign dispatches failed' },
      ],
    ),
    timeseries(
      'Queue backlog',
      'Jobs in the queue by state, all shards (queue-wide: max over processes).',
      'short',
      [{ expr: `sum by (state) (max by (namespace, shard, state) (${m('herald_queue_jobs')}))`, legend: '{{state}}' }],
      { link: ['herald-queue', 'Queue'] },
    ),
    timeseries(
      'Jobs finished by outcome',
      'Jobs the workers finished per second, by outcome (ok, retry, dead, rate_limited, released, ' +
        'fenced).',
      'ops',
      [{ expr: `sum by (outcome) (${rate('herald_jobs_total')})`, legend: '{{outcome}}' }],
      { link: ['herald-queue', 'Queue'] },
    ),
    timeseries(
      'API requests by code',
      'gRPC requests finished per second, by status code.',
      'reqps',
      [{ expr: `sum by (code) (${rate('herald_grpc_requests_total')})`, legend: '{{code}}' }],
      { link: ['herald-process', 'Process'] },
    ),
  ],
};

const queue = {
  uid: 'herald-queue',
  title: 'Herald / Queue',
  description: 'The job queue in Redis: depth by shard and state, age, lease and ack rates, ' +
    'reaped leases, dead letters, and what the workers did.',
  panels: [
    timeseries(
      'Ready jobs by shard',
      'Jobs due and waiting for a worker, per shard (queue-wide: max over processes).',
      'short',
      [{ expr: `max by (namespace, shard) (${m('herald_queue_jobs', 'state="ready"')})`, legend: 'shard {{shard}}' }],
    ),
    timeseries(
      'Delayed jobs by shard',
      'Jobs scheduled for later (retries with backoff, rate-limited jobs, later steps), per shard.',
      'short',
      [{ expr: `max by (namespace, shard) (${m('herald_queue_jobs', 'state="delayed"')})`, legend: 'shard {{shard}}' }],
    ),
    timeseries(
      'In flight',
      'Leased jobs per shard (queue-wide), and job handlers running in each process.',
      'short',
      [
        { expr: `max by (namespace, shard) (${m('herald_queue_jobs', 'state="leased"')})`, legend: 'leased, shard {{shard}}' },
        { expr: `sum by (instance) (${m('herald_jobs_in_flight')})`, legend: 'running in {{instance}}' },
      ],
    ),
    timeseries(
      'Dead letters',
      'Dead-lettered jobs held per shard, and new dead letters by kind per interval (queue-wide). ' +
        '`herald queue dead` lists their reasons.',
      'short',
      [
        { expr: `max by (namespace, shard) (${m('herald_queue_jobs', 'state="dead"')})`, legend: 'held, shard {{shard}}' },
        { expr: `sum by (kind) (max by (namespace, kind) (${increase('herald_queue_finished_jobs_total', 'outcome="dead"')}))`, legend: 'new: {{kind}}' },
      ],
    ),
    timeseries(
      'Oldest ready job age',
      'Approximately how long the oldest ready job per shard has waited since it was due. ' +
        'Growing age means too few workers or ' +
        'accounts held back by their limits (alert HeraldQueueBacklogAging).',
      's',
      [{ expr: `max by (namespace, shard) (${m('herald_queue_oldest_ready_age_seconds')})`, legend: 'shard {{shard}}' }],
    ),
    timeseries(
      'Accounts with ready work',
      'Accounts waiting for a turn of the round-robin, per shard.',
      'short',
      [{ expr: `max by (namespace, shard) (${m('herald_queue_ready_accounts')})`, legend: 'shard {{shard}}' }],
    ),
    timeseries(
      'Enqueued by kind',
      'Jobs enqueued per second by kind (queue-wide).',
      'ops',
      [{ expr: `sum by (kind) (max by (namespace, kind) (${rate('herald_queue_enqueued_jobs_total')}))`, legend: '{{kind}}' }],
    ),
    timeseries(
      'Leases and acks',
      'Jobs leased per second and lease calls per second (all workers), and jobs acknowledged ' +
        '(leases ended ok, queue-wide).',
      'ops',
      [
        { expr: `sum(${rate('herald_queue_lease_batch_size_sum')})`, legend: 'jobs leased' },
        { expr: `sum(${rate('herald_queue_lease_batch_size_count')})`, legend: 'lease calls' },
        { expr: `sum(max by (namespace, kind) (${rate('herald_queue_finished_jobs_total', 'outcome="ok"')}))`, legend: 'acked' },
      ],
    ),
    timeseries(
      'Leases ended by outcome',
      'Leases ended per second by outcome, queue-wide: ok, retry, dead, rate_limited, released, ' +
        'expired (reaped after the worker stopped heartbeating).',
      'ops',
      [{ expr: `sum by (outcome) (max by (namespace, kind, outcome) (${rate('herald_queue_finished_jobs_total')}))`, legend: '{{outcome}}' }],
    ),
    timeseries(
      'Reaped leases',
      'Leases that expired per interval, by kind (queue-wide): their jobs come back flagged ' +
        '"previous outcome unknown" (alert HeraldLeasesExpiring).',
      'short',
      [{ expr: `sum by (kind) (max by (namespace, kind) (${increase('herald_queue_finished_jobs_total', 'outcome="expired"')}))`, legend: '{{kind}}' }],
    ),
    timeseries(
      'Jobs finished by kind and outcome',
      'Jobs the workers of the selected processes finished per second.',
      'ops',
      [{ expr: `sum by (kind, outcome) (${rate('herald_jobs_total')})`, legend: '{{kind}} {{outcome}}' }],
    ),
    timeseries(
      'Job duration p99 by kind',
      '99th percentile of handler run time, by job kind (mostly the upstream call).',
      's',
      [{ expr: quantile(0.99, 'herald_job_duration_seconds', ['kind']), legend: '{{kind}}' }],
    ),
    timeseries(
      'Jobs per lease call',
      'Mean jobs returned per lease call: low values with a deep backlog mean the limits hold ' +
        'accounts back.',
      'short',
      [{ expr: `sum(${rate('herald_queue_lease_batch_size_sum')}) / sum(${rate('herald_queue_lease_batch_size_count')})`, legend: 'mean' }],
    ),
    timeseries(
      'Worker and poller errors',
      'Failed queue calls of the workers by operation, lease loops restarted, and failed reads ' +
        'of queue statistics (alert HeraldQueueStatsFailing).',
      'ops',
      [
        { expr: `sum by (op) (${rate('herald_queue_worker_errors_total')})`, legend: '{{op}}' },
        { expr: `sum(${rate('herald_worker_loop_restarts_total')})`, legend: 'loop restarts' },
        { expr: `sum(${rate('herald_queue_stats_poll_errors_total')})`, legend: 'stats poll errors' },
      ],
    ),
  ],
};

const limits = {
  uid: 'herald-limits',
  title: 'Herald / Limits and upstream',
  description: 'Upstream API calls by endpoint and outcome, 429s, Herald\'s own pacing, ' +
    'credits and latency.',
  panels: [
    timeseries(
      'Calls by endpoint',
      'Upstream API calls per second, by endpoint.',
      'reqps',
      [{ expr: `sum by (endpoint) (${rate('herald_upstream_requests_total')})`, legend: '{{endpoint}}' }],
    ),
    timeseries(
      'Calls by outcome',
      'Upstream API calls per second, by outcome: ok, retryable (5xx, timeouts), rate_limited ' +
        '(429), out_of_credits (402), unauthorized (401), terminal (other 4xx), unknown_outcome ' +
        '(the request was written and the answer lost), cancelled.',
      'reqps',
      [{ expr: `sum by (outcome) (${rate('herald_upstream_requests_total')})`, legend: '{{outcome}}' }],
    ),
    timeseries(
      'Responses by HTTP status',
      'Upstream HTTP responses per second, by status code (calls with no response, such as ' +
        'timeouts and resets, are in "Calls by outcome").',
      'reqps',
      [{ expr: `sum by (code) (${rate('herald_upstream_responses_total')})`, legend: '{{code}}' }],
    ),
    timeseries(
      '429s by endpoint',
      'Calls the upstream answered 429 per second. Herald paces under each team\'s configured ' +
        'limit, so sustained 429s mean that limit is above the upstream\'s (alert ' +
        'HeraldUpstreamRateLimited).',
      'reqps',
      [{ expr: `sum by (endpoint) (${rate('herald_upstream_requests_total', 'outcome="rate_limited"')})`, legend: '{{endpoint}}' }],
    ),
    timeseries(
      'Throttled by Herald\'s limiter',
      'Accounts deferred per second because their limiter bucket (account or team scope) was ' +
        'empty: Herald holding itself under the limits, as intended.',
      'ops',
      [{ expr: `sum by (scope) (${rate('herald_ratelimit_throttled_total')})`, legend: '{{scope}}' }],
    ),
    timeseries(
      'Jobs put back by limits',
      'Jobs returned to the queue per second after a 429 (rate_limited: they wait for ' +
        'Retry-After) or a paused team (released).',
      'ops',
      [{ expr: `sum by (outcome) (${rate('herald_jobs_total', 'outcome=~"rate_limited|released"')})`, legend: '{{outcome}}' }],
    ),
    timeseries(
      'Retry-After',
      'The waits the upstream asked for in its 429 and 5xx responses (Retry-After): median and ' +
        '99th percentile. Jobs put back by a 429 wait this long.',
      's',
      [
        { expr: quantile(0.5, 'herald_upstream_retry_after_seconds'), legend: 'p50' },
        { expr: quantile(0.99, 'herald_upstream_retry_after_seconds'), legend: 'p99' },
      ],
    ),
    timeseries(
      'Upstream requests used vs limit, per team',
      'Per team, the upstream\'s per-minute limit for its key (X-Rate-Limit-Limit-Minute) and ' +
        'what the current minute has used of it (limit minus X-Rate-Limit-Remaining-Minute), as ' +
        'the last responses reported, beside the most calls Herald lets the team make in a ' +
        'minute (its configured rate plus its burst less one). Herald above the upstream\'s ' +
        'limit: alert HeraldTeamLimitAboveUpstream.',
      'short',
      [
        {
          expr:
            `max by (tenant, team) (${m('herald_upstream_rate_limit_limit', TEAM)})` +
            ` - min by (tenant, team) (${m('herald_upstream_rate_limit_remaining', TEAM)})`,
          legend: 'used {{tenant}}/{{team}}',
        },
        { expr: `max by (tenant, team) (${m('herald_upstream_rate_limit_limit', TEAM)})`, legend: 'limit {{tenant}}/{{team}}' },
        { expr: `max by (tenant, team) (${m('herald_team_minute_calls_max', TEAM)})`, legend: 'Herald\'s most {{tenant}}/{{team}}' },
      ],
    ),
    timeseries(
      'Credits balance per team',
      'Each team\'s upstream credit balance, as the last response for its key reported ' +
        '(X-OFAPI-Credits-Balance). Alert HeraldUpstreamCreditsLow.',
      'short',
      [{ expr: `min by (tenant, team) (${m('herald_upstream_credits_balance', TEAM)})`, legend: '{{tenant}}/{{team}}' }],
    ),
    heatmap(
      'Call latency',
      'Upstream call latency distribution (all endpoints), connection set-up included.',
      'herald_upstream_request_duration_seconds',
    ),
    timeseries(
      'Call latency p99 by endpoint',
      '99th percentile of upstream call latency by endpoint.',
      's',
      [{ expr: quantile(0.99, 'herald_upstream_request_duration_seconds', ['endpoint']), legend: '{{endpoint}}' }],
    ),
    timeseries(
      'Automation actions by result',
      'Automation jobs (add a fan to a list) per second, by result.',
      'ops',
      [{ expr: `sum by (result) (${rate('herald_automation_actions_total')})`, legend: '{{result}}' }],
    ),
  ],
};

const ingest = {
  uid: 'herald-ingest',
  title: 'Herald / Ingest',
  description: 'Webhook events from the upstream: by type and result, latency, group commit ' +
    'and what reconciliation had to repair.',
  panels: [
    timeseries(
      'Events by type',
      'Webhook deliveries received per second, by event type.',
      'cps',
      [{ expr: `sum by (type) (${rate('herald_webhook_events_total')})`, legend: '{{type}}' }],
    ),
    timeseries(
      'Events by result',
      'Webhook deliveries per second by result: applied, unattributed (applied; the message is ' +
        'not known yet), duplicate, ignored_*, and the refusals (bad_signature, malformed, ' +
        'unknown_endpoint, unsupported_type, unavailable, shed, failed).',
      'cps',
      [{ expr: `sum by (result) (${rate('herald_webhook_events_total')})`, legend: '{{result}}' }],
    ),
    timeseries(
      'Refused deliveries',
      'Deliveries refused per second, by event and result. bad_signature usually means a ' +
        'rotated signing secret; unavailable means Redis could not record the event, shed that ' +
        'recording was too slow to try (--ingest_shed_latency), failed that Redis could not ' +
        'apply this event (the ingest log says why); the upstream retries all three.',
      'cps',
      [{ expr: `sum by (type, result) (${rate('herald_webhook_events_total', WEBHOOK_REJECTED)})`, legend: '{{type}} {{result}}' }],
    ),
    timeseries(
      'Ingest latency',
      'Time to verify, decode and record one delivery: p50 and p99 of applied events.',
      's',
      [
        { expr: quantile(0.5, 'herald_ingest_duration_seconds', [], 'result="applied"'), legend: 'p50' },
        { expr: quantile(0.99, 'herald_ingest_duration_seconds', [], 'result="applied"'), legend: 'p99' },
      ],
    ),
    timeseries(
      'Group commit size',
      'Events written per Redis script call (--ingest_batch): mean and p99. Larger batches ' +
        'under load are the group commit at work.',
      'short',
      [
        { expr: `sum(${rate('herald_ingest_batch_size_sum')}) / sum(${rate('herald_ingest_batch_size_count')})`, legend: 'mean' },
        { expr: quantile(0.99, 'herald_ingest_batch_size'), legend: 'p99' },
      ],
    ),
    timeseries(
      'Reconciliation corrections',
      'Purchases reconciliation found whose webhooks never arrived, per interval. Non-zero ' +
        'means events were lost on the way (upstream retries exhausted, ingest down).',
      'short',
      [{ expr: `sum(${increase('herald_reconciled_purchases_total')})`, legend: 'purchases repaired' }],
    ),
    timeseries(
      'Automation triggers by result',
      'Automation jobs the ingest enqueued per second for upstream events, by result.',
      'ops',
      [{ expr: `sum by (result) (${rate('herald_automation_triggers_total')})`, legend: '{{result}}' }],
    ),
    timeseries(
      'Requests refused before they are events',
      'Requests to the ingest port per second that never became an event, by HTTP status: 404 a ' +
        'path that is not /webhooks/{endpoint}, 405 not a POST, 413 a body over ' +
        '--webhook_max_body_bytes, 431 headers too large, 400 not HTTP, 503 too many bodies ' +
        'being read at once (--webhook_max_body_bytes_in_flight). A steady rate is a ' +
        'misconfigured webhook URL or a scan.',
      'reqps',
      [{ expr: `sum by (status) (${rate('herald_webhook_requests_refused_total')})`, legend: '{{status}}' }],
    ),
  ],
};

const processes = {
  uid: 'herald-process',
  title: 'Herald / Process',
  description: 'Each Herald process: CPU, memory, Redis client latency and connections, gRPC.',
  panels: [
    table(
      'Processes',
      'Version and roles of each process (herald_build_info).',
      'none',
      [{ expr: m('herald_build_info'), format: 'table', instant: true }],
    ),
    timeseries(
      'CPU',
      'CPU time used per second by each process (1 = one core).',
      'percentunit',
      [{ expr: `sum by (instance) (${rate('process_cpu_seconds_total')})`, legend: '{{instance}}' }],
    ),
    timeseries(
      'Resident memory',
      'Resident set size of each process.',
      'bytes',
      [{ expr: `sum by (instance) (${m('process_resident_memory_bytes')})`, legend: '{{instance}}' }],
    ),
    timeseries(
      'Open file descriptors and threads',
      'Open file descriptors (sockets included) and OS threads of each process.',
      'short',
      [
        { expr: `sum by (instance) (${m('process_open_fds')})`, legend: 'fds {{instance}}' },
        { expr: `sum by (instance) (${m('process_threads')})`, legend: 'threads {{instance}}' },
      ],
    ),
    timeseries(
      'Uptime',
      'Time since each process started; a drop is a restart.',
      's',
      [{ expr: `time() - max by (instance) (${m('process_start_time_seconds')})`, legend: '{{instance}}' }],
    ),
    timeseries(
      'Redis command latency',
      'p50 and p99 of the time from issuing a Redis operation (command, batch or script) to its ' +
        'completion, per process.',
      's',
      [
        { expr: quantile(0.5, 'herald_redis_command_duration_seconds', ['instance']), legend: 'p50 {{instance}}' },
        { expr: quantile(0.99, 'herald_redis_command_duration_seconds', ['instance']), legend: 'p99 {{instance}}' },
      ],
    ),
    timeseries(
      'Redis commands by outcome',
      'Redis commands finished per second by outcome (ok, error_reply, timeout, unavailable, ' +
        'cancelled).',
      'ops',
      [{ expr: `sum by (outcome) (${rate('herald_redis_commands_total')})`, legend: '{{outcome}}' }],
    ),
    timeseries(
      'Redis connections and reconnects',
      'Connections established per process, whether the process can use Redis (1 or 0; 0 for a ' +
        'minute: alert HeraldRedisUnavailable), and reconnection attempts per interval.',
      'short',
      [
        { expr: `sum by (instance) (${m('herald_redis_connections')})`, legend: 'connections {{instance}}' },
        { expr: `min by (instance) (${m('herald_ready', 'component="redis"')})`, legend: 'usable {{instance}}' },
        { expr: `sum by (instance) (${increase('herald_redis_reconnects_total')})`, legend: 'reconnects {{instance}}' },
      ],
    ),
    timeseries(
      'API latency p99 by method',
      '99th percentile of the time from a gRPC request\'s arrival to its status, by method; ' +
        'streams (WatchCampaign, Subscribe), which last as long as their callers watch, are left out.',
      's',
      [
        {
          expr: quantile(0.99, 'herald_grpc_request_duration_seconds', ['method'],
            'method!~"WatchCampaign|Subscribe"'),
          legend: '{{method}}',
        },
      ],
    ),
    timeseries(
      'API requests by method',
      'gRPC requests finished per second, by method.',
      'reqps',
      [{ expr: `sum by (method) (${rate('herald_grpc_requests_total')})`, legend: '{{method}}' }],
    ),
    timeseries(
      'Open streams by pod',
      'WatchCampaign and Subscribe streams open in each api pod; --api_max_streams (10,000) bounds ' +
        'each pod\'s sum, --api_max_streams_per_tenant (1,000) one tenant\'s share of it.',
      'short',
      [{ expr: `sum by (instance, method) (${m('herald_grpc_streams_open')})`, legend: '{{method}} {{instance}}' }],
    ),
  ],
};

const DASHBOARDS = [overview, queue, limits, ingest, processes];
const TITLES = Object.fromEntries(DASHBOARDS.map((d) => [d.uid, d.title.replace('Herald / ', '')]));

// --- Rendering --------------------------------------------------------------------------------

function variable(name, label, query) {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    definition: query,
    query,
    refresh: 2,
    sort: 1,
    includeAll: true,
    allValue: '.*',
    multi: true,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    regex: '',
  };
}

function templating() {
  return {
    list: [
      {
        name: 'datasource',
        label: 'Data source',
        type: 'datasource',
        query: 'prometheus',
        current: {},
        options: [],
        hide: 0,
        refresh: 1,
        regex: '',
        includeAll: false,
        multi: false,
      },
      variable('namespace', 'Namespace', 'label_values(herald_build_info, namespace)'),
      variable('role', 'Role', 'label_values(herald_build_info{namespace=~"$namespace"}, role)'),
      variable(
        'instance',
        'Instance',
        'label_values(herald_build_info{namespace=~"$namespace", role=~"$role"}, instance)',
      ),
      variable('tenant', 'Tenant', 'label_values(herald_campaigns_total{namespace=~"$namespace"}, tenant)'),
      variable(
        'team',
        'Team',
        'label_values(herald_upstream_rate_limit_limit{namespace=~"$namespace", tenant=~"$tenant"}, team)',
      ),
    ],
  };
}

function renderTarget(t, i) {
  const out = { datasource: DS, refId: String.fromCharCode(65 + i), expr: t.expr };
  if (t.format) out.format = t.format;
  if (t.legend !== undefined) out.legendFormat = t.legend;
  out.range = !t.instant;
  out.instant = !!t.instant;
  return out;
}

function renderPanel(p, id, gridPos) {
  const panel = {
    id,
    type: p.kind,
    title: p.title,
    description: p.description,
    datasource: DS,
    gridPos,
    fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
  };
  if (p.kind === 'timeseries') {
    panel.fieldConfig.defaults.custom = { drawStyle: 'line', fillOpacity: 10, showPoints: 'never' };
    panel.options = {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    };
  } else if (p.kind === 'stat') {
    panel.options = {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'area',
      textMode: 'auto',
    };
  } else if (p.kind === 'heatmap') {
    panel.options = {
      calculate: false,
      yAxis: { unit: p.unit },
      cellGap: 1,
      color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
      tooltip: { show: true, yHistogram: true },
    };
    p.targets = p.targets.map((t) => ({ ...t, format: 'heatmap' }));
  } else if (p.kind === 'table') {
    panel.options = { showHeader: true };
    panel.transformations = [
      {
        id: 'organize',
        options: { excludeByName: { Time: true, Value: true, __name__: true } },
      },
    ];
  }
  if (p.link) {
    const [uid] = p.link;
    panel.links = [dashboardLink(uid, TITLES[uid])];
  }
  panel.targets = p.targets.map(renderTarget);
  return panel;
}

// Lays panels out left to right in rows of 24 columns: timeseries and heatmaps 12 wide, stats
// 4 wide, tables the full width.
function layout(panels) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((p, i) => {
    const w = p.w ?? 12;
    const h = p.h ?? 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { h, w, x, y };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return renderPanel(p, i + 1, gridPos);
  });
}

function render(d) {
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['herald'],
    editable: false,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    timezone: 'utc',
    links: [
      {
        title: 'Herald dashboards',
        type: 'dashboards',
        tags: ['herald'],
        asDropdown: true,
        includeVars: true,
        keepTime: true,
        targetBlank: false,
        icon: 'external link',
        tooltip: '',
        url: '',
      },
    ],
    annotations: { list: [] },
    templating: templating(),
    panels: layout(d.panels),
  };
}

// JSON with two-space indentation, where any array or object that fits on one line of at most
// 100 characters is written on one line: short enough to review, stable for diffs.
function pretty(value, indent = '') {
  const line = flat(value);
  if (typeof value !== 'object' || value === null || indent.length + line.length <= 100) {
    return line;
  }
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + pretty(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value).map(
    ([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`,
  );
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

// `value` as JSON on one line, with a space after each separator.
function flat(value) {
  if (Array.isArray(value)) return `[${value.map(flat).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${flat(v)}`)
      .join(', ')}}`;
  }
  return JSON.stringify(value);
}

const check = process.argv.slice(2).includes('--check');
const stale = [];
for (const d of DASHBOARDS) {
  const file = join(OUT_DIR, `${d.uid.replace('herald-', '')}.json`);
  const text = pretty(render(d)) + '\n';
  if (check) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = '';
    }
    if (current !== text) stale.push(file);
  } else {
    writeFileSync(file, text);
  }
}
if (stale.length > 0) {
  console.error(
    `generate.mjs: out of date (run node tools/dashboards/generate.mjs): ${stale.join(', ')}`,
  );
  process.exit(1);
}
