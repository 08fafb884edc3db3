#!/usr/bin/env bash
# Webhook ingest throughput: signed events/s through `herald serve --role=ingest` (signature
# check, decoding, dedupe and attribution in Redis) beside nginx answering a static 200 to the
# same wrk load in the same run, with the ratio and Herald's p99, the CPU each of Herald and Redis
# spends per event, and the ratio Redis' cost alone would allow (redis_bound_ratio_to_nginx).
#
#   tools/bench/ingest.sh [BUILD_DIR] [--seconds=S] [--connections=N] [--ingest_batch=B]
#                         [--io_threads=T]
#
# --ingest_batch: herald's group commit size (1: each event written on its own).
# --io_threads: herald's I/O threads (default: one per core).
#
# The load: wrk with 64 keep-alive connections (2 threads) posting realistic deliveries
# (messages.sent, unlocks, transactions, queue progress), each signed with the team's secret and
# each with its own idempotency key (tools/bench/ingest_bodies.cc writes the script). Herald
# runs with a fresh redis-server (AOF, appendfsync everysec); the team is created through the
# API, which registers its webhook with upstream-sim and so generates the secret.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
seconds=20
connections=64
ingest_batch=64
io_threads=0
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds="${arg#--seconds=}" ;;
    --connections=*) connections="${arg#--connections=}" ;;
    --ingest_batch=*) ingest_batch="${arg#--ingest_batch=}" ;;
    --io_threads=*) io_threads="${arg#--io_threads=}" ;;
    -*) echo "ingest.sh: unknown flag $arg" >&2; exit 2 ;;
    *) build="$(cd "$arg" && pwd)" ;;
  esac
done
# shellcheck source=../lib.sh
source "$root/tools/lib.sh"

herald="$build/services/herald/herald"
heraldctl="$build/tools/heraldctl/heraldctl"
sim="$build/tools/upstream-sim/upstream-sim"
bodies="$build/tools/bench/ingest_bodies"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
for bin in "$herald" "$heraldctl" "$sim" "$bodies" "$nginx"; do
  [[ -x "$bin" ]] || { echo "missing $bin (nginx, wrk: tools/install-deps --bench)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "missing wrk (tools/install-deps --bench)" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

redis_port="$(free_port)"
redis-server --port "$redis_port" --save '' --appendonly yes --appendfsync everysec \
  --dir "$work" --daemonize no --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for 10 redis-cli -p "$redis_port" ping
sim_port="$(free_port)"
"$sim" --listen="127.0.0.1:$sim_port" --teams=1 --accounts_per_team=1 --log_level=warn \
  2>"$work/sim.log" &
pids+=($!)
wait_for 10 curl -sf "http://127.0.0.1:$sim_port/_sim/health"

grpc_port="$(free_port)"
admin_port="$(free_port)"
ingest_port="$(free_port)"
admin_key="bench-admin"
encryption_key="$(random_hex 32)"
HERALD_ADMIN_KEY="$admin_key" HERALD_ENCRYPTION_KEY="$encryption_key" \
  "$herald" serve --role=api,ingest --grpc_address="127.0.0.1:$grpc_port" \
  --admin_address="127.0.0.1:$admin_port" --ingest_address="127.0.0.1:$ingest_port" \
  --public_webhook_url="http://127.0.0.1:$ingest_port/webhooks" \
  --redis_address="127.0.0.1:$redis_port" --upstream_url="http://127.0.0.1:$sim_port" \
  --ingest_batch="$ingest_batch" --io_threads="$io_threads" --log_level=warn --log_format=text 2>"$work/herald.log" &
herald_pid=$!
pids+=("$herald_pid")
wait_for 20 curl -sf "http://127.0.0.1:$admin_port/readyz" || { cat "$work/herald.log"; exit 1; }

export HERALD_SERVER="127.0.0.1:$grpc_port"
HERALD_API_KEY="$admin_key" "$heraldctl" tenants create bench >/dev/null
HERALD_API_KEY="$admin_key" "$heraldctl" keys create bench --json >"$work/key.json"
HERALD_API_KEY="$(jq -r .secret "$work/key.json")" HERALD_TENANT=bench SIM_KEY=sim-key-1 \
  "$heraldctl" teams create main --upstream-key-env=SIM_KEY --json >"$work/team.json"
[[ -n "$(jq -r '.webhook_id // empty' "$work/team.json")" ]] ||
  { echo "the team's webhook was not registered" >&2; cat "$work/team.json" >&2; exit 1; }
sealed="$(redis-cli -p "$redis_port" hget 'hd:{t:bench}:teams' main | jq -r .sealed_webhook_secret)"
"$bodies" --sealed_secret="$sealed" --encryption_key="$encryption_key" \
  --endpoint=/webhooks/bench.main --account=acct_bench --count=1000 >"$work/ingest.lua"

nginx_port="$(free_port)"
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 200 'applied\n'; }
  }
}
CONF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
pids+=($!)
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nginx_port"

# run NAME PORT: one wrk run; prints requests/s, p99 and the non-2xx count.
run() {
  wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/ingest.lua" \
    "http://127.0.0.1:$2" >"$work/$1.out"
  local rate p99 errors
  rate="$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$work/$1.out")"
  p99="$(awk '$1 == "99%" {print $2}' "$work/$1.out")"
  errors="$(awk '/Non-2xx/ {print $NF}' "$work/$1.out")"
  echo "$1_per_s: $rate"
  echo "$1_p99: $p99"
  echo "$1_non_2xx: ${errors:-0}"
}

clk_tck="$(getconf CLK_TCK)"
# cpu_ticks PID: user + system clock ticks the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load: wrk -t2 -c$connections -d${seconds}s, 1,000 signed bodies, a new idempotency key per request"
echo "herald: --ingest_batch=$ingest_batch --io_threads=$io_threads (0: one per core)"
run nginx "$nginx_port"
herald_before="$(cpu_ticks "$herald_pid")"
redis_before="$(cpu_ticks "$redis_pid")"
redis-cli -p "$redis_port" config resetstat >/dev/null
run herald "$ingest_port"
herald_ticks=$(( $(cpu_ticks "$herald_pid") - herald_before ))
redis_ticks=$(( $(cpu_ticks "$redis_pid") - redis_before ))
metrics="$(curl -s "http://127.0.0.1:$admin_port/metrics")"
# Applied events, attributed to a mass message or not (yet).
applied="$(awk '/^herald_webhook_events_total\{.*result="(applied|unattributed)"/ {s += $2}
  END {printf "%d", s}' <<<"$metrics")"
echo "herald_applied_events: $applied"
# Purchases whose message was not linked yet: the bodies' purchases follow their messages.
awk '/^herald_webhook_events_total\{.*result="unattributed"/ {s += $2} END {printf "herald_unattributed_events: %d\n", s}' <<<"$metrics"
awk '/^herald_ingest_batch_size_sum/ {s = $2} /^herald_ingest_batch_size_count/ {n = $2}
  END {if (n > 0) printf "herald_events_per_redis_call: %.1f\n", s / n}' <<<"$metrics"
awk -v h="$herald_ticks" -v r="$redis_ticks" -v n="$applied" -v hz="$clk_tck" 'BEGIN {
  printf "herald_cpu_us_per_event: %.1f\nredis_cpu_us_per_event: %.1f\n", h * 1e6 / hz / n,
    r * 1e6 / hz / n}'
# Time inside the script calls as Redis measures it (no network, no AOF write): the steadiest
# figure for the script's own cost.
redis-cli -p "$redis_port" info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$applied" '
  $1 == "cmdstat_evalsha" || $1 == "cmdstat_eval" {us += $5}
  END {printf "redis_script_us_per_event: %.1f\n", us / n}'
awk -v h="$(awk '/^Requests\/sec:/ {print $2}' "$work/herald.out")" \
  -v n="$(awk '/^Requests\/sec:/ {print $2}' "$work/nginx.out")" \
  'BEGIN {printf "ratio_herald_to_nginx: %.2f\n", h / n}'
# The most one tenant's events can reach with this Redis cost per event: its keys share one
# slot, so one Redis core applies them all. Herald at no cost, Redis alone on a core.
awk -v r="$redis_ticks" -v e="$applied" -v hz="$clk_tck" \
  -v n="$(awk '/^Requests\/sec:/ {print $2}' "$work/nginx.out")" 'BEGIN {
  bound = e * hz / r
  printf "redis_bound_events_per_s: %d\nredis_bound_ratio_to_nginx: %.2f\n", bound, bound / n}'
