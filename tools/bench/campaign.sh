#!/usr/bin/env bash
# The campaign API's two benchmarks, each beside a baseline measured in the same run:
#
# api:    CreateCampaign with 10 target accounts (a real send: parse, store the campaign and its
#         deliveries, enqueue one job per account) against `herald serve --role=api` (no
#         workers, so nothing is sent), beside grpc.health.v1.Health/Check on the same server
#         through the same client code: maximum throughput with --inflight calls in flight, then
#         p50/p99 at a fixed open-loop --rate (target: CreateCampaign p99 < 10 ms at 1,000/s).
# fanout: one priced campaign with one media asset to 10,000 accounts in 200 teams against
#         upstream-sim with limits that do not bind, run by `herald serve --role=all`: time from
#         CreateCampaign to the simulator's last mass message, and upstream calls/s over that
#         time, beside upstream_client_bench's raw call rate (GET /api/{account}/mass-messaging)
#         against the same simulator just before (target: >= 50%), and after it the raw rate of
#         the calls a delivery makes (--call=delivery: upload, send, queue read), with herald
#         stopped so only the client calls.
#
#   tools/bench/campaign.sh [BUILD_DIR] [--only=api|fanout] [--inflight=64] [--seconds=5]
#                           [--rate=1000] [--open_seconds=10] [--fanout_teams=200]
#                           [--fanout_timeout=300] [--draft] [--timeline] [--profile]
#                           [--redis_profile] [--herald_flag=--name=value]...
#                           [--redis_flag='--name value']...
#
# --profile: samples herald with perf for 2 s of the fan-out proper (from its 2,000th upstream
#   call: the set-up before it, 200 teams and 10,000 accounts created over gRPC, looks nothing
#   like it) and prints the split by binary and the top symbols.
# --redis_profile: logs every Redis command for 2 s of the fan-out proper (after --profile's
#   window when both are given) and prints Redis' time per upstream call by Herald script and
#   by command (tools/bench/redis_profile.py).
# --draft: the api part creates drafts (save_as_draft: stored, nothing enqueued).
# --timeline: after each api phase, the 100 ms slots of its window that had calls over 10 ms:
#   whether a p99 comes from a uniform tail or from bursts where calls queue.
# --fanout_teams=N: the fan-out targets the first N simulator teams (50 accounts each).
# --herald_flag: one more flag for both herald runs (repeatable).
# --redis_flag: one more redis-server option for both parts, name and value (repeatable), e.g.
#   --redis_flag='--auto-aof-rewrite-percentage 0': no AOF rewrite (a fresh server's growing AOF
#   otherwise forks a rewrite that takes most of a core during the run).
#
# Each part gets a fresh redis-server (AOF on, appendfsync everysec), upstream-sim and herald on
# free ports of 127.0.0.1; every process is stopped on exit. Needs herald, upstream-sim,
# campaign_bench and upstream_client_bench (-DHERALD_BUILD_BENCH=ON).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
only=""
inflight=64
seconds=5
rate=1000
open_seconds=10
fanout_teams=200
fanout_timeout=300
draft=0
timeline=0
profile=0
redis_profile=0
extra_flags=()
redis_flags=()
for arg in "$@"; do
  case "$arg" in
    --only=*) only="${arg#--only=}" ;;
    --inflight=*) inflight="${arg#--inflight=}" ;;
    --seconds=*) seconds="${arg#--seconds=}" ;;
    --rate=*) rate="${arg#--rate=}" ;;
    --open_seconds=*) open_seconds="${arg#--open_seconds=}" ;;
    --draft) draft=1 ;;
    --timeline) timeline=1 ;;
    --profile) profile=1 ;;
    --redis_profile) redis_profile=1 ;;
    --fanout_teams=*) fanout_teams="${arg#--fanout_teams=}" ;;
    --fanout_timeout=*) fanout_timeout="${arg#--fanout_timeout=}" ;;
    --herald_flag=*) extra_flags+=("${arg#--herald_flag=}") ;;
    --redis_flag=*) read -r -a words <<<"${arg#--redis_flag=}"; redis_flags+=("${words[@]}") ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    -*) echo "campaign.sh: unknown flag $arg" >&2; exit 2 ;;
    *) build="$(cd "$arg" && pwd)" ;;
  esac
done

# shellcheck source=../lib.sh
source "$root/tools/lib.sh"

herald="$build/services/herald/herald"
sim="$build/tools/upstream-sim/upstream-sim"
bench="$build/tools/bench/campaign_bench"
client_bench="$build/tools/bench/upstream_client_bench"
for bin in "$herald" "$sim" "$bench" "$client_bench"; do
  if [[ ! -x "$bin" ]]; then
    echo "missing $bin (build with -DHERALD_BUILD_BENCH=ON)" >&2
    exit 1
  fi
done

work_dir
admin_key="bench-admin-$(random_hex 12)"
encryption_key="$(random_hex 32)"

# start_stack DIR SIM_FLAGS... -- HERALD_FLAGS...: redis-server, upstream-sim and herald; sets
# redis_port, redis_pid, sim_port, sim_pid, herald_pid, grpc_port, admin_port.
start_stack() {
  local dir="$1"
  shift
  local sim_flags=() herald_flags=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do sim_flags+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift
  herald_flags=("$@" ${extra_flags[@]+"${extra_flags[@]}"})
  mkdir -p "$dir/redis"
  redis_port="$(free_port)"
  start_redis "$dir/redis" "$redis_port" ${redis_flags[@]+"${redis_flags[@]}"}
  redis_pid="$(redis-cli -p "$redis_port" info server | awk -F: '/^process_id/ {print $2}' | tr -d '\r')"
  sim_port="$(free_port)"
  "$sim" --listen="127.0.0.1:$sim_port" "${sim_flags[@]}" --log_level=warn 2>"$dir/sim.log" &
  sim_pid=$!
  pids+=("$sim_pid")
  wait_for 20 curl -sf "http://127.0.0.1:$sim_port/_sim/health"
  grpc_port="$(free_port)"
  admin_port="$(free_port)"
  ingest_port="$(free_port)"
  HERALD_ADMIN_KEY="$admin_key" HERALD_ENCRYPTION_KEY="$encryption_key" \
    "$herald" serve --grpc_address="127.0.0.1:$grpc_port" --admin_address="127.0.0.1:$admin_port" \
    --ingest_address="127.0.0.1:$ingest_port" --redis_address="127.0.0.1:$redis_port" --upstream_url="http://127.0.0.1:$sim_port" \
    --drain_timeout=5s --log_level=warn --log_format=text --api_tenant_rate=0 "${herald_flags[@]}" \
    2>"$dir/herald.log" &
  herald_pid=$!
  pids+=("$herald_pid")
  if ! wait_for 30 curl -sf "http://127.0.0.1:$admin_port/readyz"; then
    cat "$dir/herald.log" >&2
    return 1
  fi
}

# redis_per_unit N UNIT: the running redis-server's commands and their time per UNIT, from INFO
# commandstats over the whole run (set-up makes next to none). Commands run by scripts are counted
# (calls and time) as commands too, and EVALSHA's time includes theirs.
redis_per_unit() {
  redis-cli -p "$redis_port" info commandstats | tr -d '\r' |
    awk -F'[:=,]' -v n="$1" -v unit="$2" '/^cmdstat_/ {
        sub("cmdstat_", "", $1); c[$1] = $3; u[$1] = $5; t += $3
      }
      END {printf "redis_commands_per_%s: %.1f (", unit, t / n
           for (k in c) if (c[k] / n >= 0.05) printf " %s %.2f", k, c[k] / n; print " )"
           printf "redis_command_us_per_%s: evalsha %.1f (scripts, their commands included);", \
             unit, u["evalsha"] / n
           for (k in c) if (c[k] / n >= 0.05 && k != "evalsha") printf " %s %.1f", k, u[k] / n
           print ""}'
}

# Waits until the fan-out (run by PID $1) is past its 2,000th upstream call; fails if it ended.
wait_fanout_under_way() {
  local bench_pid="$1" i
  for ((i = 0; i < 1200; i++)); do
    (( $(upstream_calls "$admin_port") > 2000 )) && return 0
    kill -0 "$bench_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# --profile: 2 s of perf samples of herald.
profile_fanout() {
  if ! perf record -F 999 -g -o "$work/herald.perf" -p "$herald_pid" -- sleep 2 \
      >"$work/perf.log" 2>&1; then
    echo "profile: perf record failed: $(tail -n 1 "$work/perf.log")" >&2
    return 0
  fi
  # The reports are read to their ends: head would cut perf's pipe and fail the pipeline.
  perf report -i "$work/herald.perf" --no-children --sort=dso -g none 2>/dev/null |
    awk '!/^#/ && NF && n++ < 8 {sub(/^ +/, ""); print "herald_profile_binary: " $0}'
  perf report -i "$work/herald.perf" --no-children --sort=sym -g none 2>/dev/null |
    awk '!/^#/ && NF && n++ < 15 {sub(/^ +/, ""); print "herald_profile_symbol: " substr($0, 1, 120)}'
}

value() { awk -F': ' -v k="$1" '$1 == k {print $2}' "$2"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

wanted() { [[ -z "$only" || "$only" == "$1" ]]; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "load $(load)"

if wanted api; then
  api_flags=(--role=api)
  mode="real send, no workers"
  [[ $draft == 1 ]] && mode="draft"
  echo "== campaign api: CreateCampaign (10 accounts, $mode) vs Health/Check"
  echo "herald $(printf '%s ' "${api_flags[@]}")(defaults otherwise); load at start $(load)"
  start_stack "$work/api" --teams=1 --accounts_per_team=10 --fans_per_account=40 -- \
    "${api_flags[@]}"
  if ! "$bench" api --target="127.0.0.1:$grpc_port" --admin_key="$admin_key" --accounts=10 \
      --draft="$draft" --inflight="$inflight" --seconds="$seconds" --rate="$rate" \
      --open_seconds="$open_seconds" --timeline="$timeline" \
      --pids="herald:$herald_pid,redis:$redis_pid" | tee "$work/api.out"; then
    echo "api benchmark failed; herald's log ends:" >&2
    tail -n 20 "$work/api/herald.log" >&2
    exit 1
  fi
  # Redis work per CreateCampaign (set-up and Health/Check make next to none).
  creates=$(( $(value create_closed_all_calls "$work/api.out") +
              $(value create_open_all_calls "$work/api.out") ))
  redis_per_unit "$creates" create
  echo "load at end $(load)"
  stop_all
fi

if wanted fanout; then
  fanout_flags=(--role=all --worker_loops=8 --worker_batch=128 --redis_connections=4
                --poll_interval=500ms)
  echo "== campaign fan-out: 1 campaign, 1 media asset, $((fanout_teams * 50)) accounts in" \
    "$fanout_teams teams"
  echo "herald $(printf '%s ' "${fanout_flags[@]}")(defaults otherwise); load at start $(load)"
  start_stack "$work/fanout" --teams=200 --accounts_per_team=50 --fans_per_account=5 \
    --rate_limit_per_minute=1000000 -- "${fanout_flags[@]}"
  account="$(curl -sf -H 'Authorization: Bearer sim-key-1' \
    "http://127.0.0.1:$sim_port/api/accounts" |
    grep -o 'acct_[0-9a-zA-Z]*' | head -1)"
  echo "-- raw upstream client: upstream_client_bench --call=queue (8 connections, 64 coroutines," \
    "1 thread, 5 s) against the same simulator"
  "$client_bench" --base_url="http://127.0.0.1:$sim_port" --api_key=sim-key-1 --call=queue \
    --account="$account" --connections=8 --concurrency=64 --threads=1 --seconds=5 \
    | tee "$work/client.out"
  echo "-- herald fan-out (load $(load))"
  "$bench" fanout --target="127.0.0.1:$grpc_port" --admin_key="$admin_key" \
    --sim="127.0.0.1:$sim_port" --teams="$fanout_teams" --timeout_seconds="$fanout_timeout" \
    --pids="herald:$herald_pid,redis:$redis_pid,sim:$sim_pid" >"$work/fanout.out" 2>&1 &
  fanout_pid=$!
  if [[ $profile == 1 || $redis_profile == 1 ]] && wait_fanout_under_way "$fanout_pid"; then
    if [[ $profile == 1 ]]; then profile_fanout; fi
    if [[ $redis_profile == 1 ]]; then
      "$root/tools/bench/redis_profile.py" --port="$redis_port" --seconds=2 \
        --metrics="http://127.0.0.1:$admin_port/metrics" \
        --metric=herald_upstream_requests_total --unit=upstream_call || true
    fi
  fi >"$work/profile.out"
  fanout_ok=1
  wait "$fanout_pid" || fanout_ok=0
  cat "$work/fanout.out"
  cat "$work/profile.out" 2>/dev/null || true
  if [[ $fanout_ok == 0 ]]; then
    echo "fan-out failed; herald's log ends:" >&2
    tail -n 20 "$work/fanout/herald.log" >&2
    echo "redis SLOWLOG:" >&2
    redis-cli -p "$redis_port" slowlog get 5 | head -60 >&2
    exit 1
  fi
  upstream_metric="$(upstream_calls "$admin_port")"
  echo "herald_upstream_requests_total (at the end): $upstream_metric"
  redis_per_unit "$upstream_metric" upstream_call
  # The same calls as the fan-out's deliveries, made by the client alone. After the fan-out, since
  # it sends mass messages of its own.
  kill "$herald_pid"
  wait "$herald_pid" 2>/dev/null || true
  echo "-- raw upstream client, a delivery's calls: upstream_client_bench --call=delivery" \
    "--teams=$fanout_teams (upload, send, queue read; 8 connections per team, 64 coroutines," \
    "1 thread, 5 s; herald stopped first)"
  "$client_bench" --base_url="http://127.0.0.1:$sim_port" --call=delivery \
    --teams="$fanout_teams" --connections=8 --concurrency=64 --threads=1 --seconds=5 \
    | tee "$work/client_delivery.out"
  awk -v h="$(value upstream_requests_per_s "$work/fanout.out")" \
    -v c="$(value requests_per_s "$work/client.out")" \
    -v d="$(value requests_per_s "$work/client_delivery.out")" 'BEGIN {
    printf "ratio_fanout_calls_to_raw_client: %.2f  (target >= 0.50)\n", h / c
    printf "ratio_fanout_calls_to_raw_client_delivery_calls: %.2f\n", h / d
  }'
  echo "load at end $(load)"
  stop_all
fi
