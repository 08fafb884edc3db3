#!/usr/bin/env bash
# Upstream client throughput over keep-alive, with same-run baselines:
#   1. Herald's typed client (upstream_client_bench --call=accounts) against nginx serving a
#      static 200 '{"data":[]}' for every path: the client's own ceiling on this machine;
#   2. the same calls through upstream::HttpClient alone (--call=http), without JSON parsing;
#   3. the typed client against upstream-sim with zero latency (GET /api/accounts);
#   4. wrk against the same nginx, if installed: what the machine can do over HTTP/1.1.
# The four run in turn, `rounds` times (the machine may be shared: interleaving spreads other
# load over all of them); the summary gives each one's median rate, the client's and the
# server's CPU time per request, and the ratios of the medians. nginx runs from a generated
# config in a temp dir (never the system one).
#
#   tools/bench/upstream_client.sh [BUILD_DIR] [--seconds=5] [--rounds=3] [--connections=8]
#                                  [--concurrency=64] [--threads=1]
#
# Needs nginx (Debian's nginx-light; tools/install-deps --bench) and the built
# upstream_client_bench and upstream-sim (-DHERALD_BUILD_BENCH=ON).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
seconds=5
rounds=3
connections=8
concurrency=64
threads=1
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds="${arg#--seconds=}" ;;
    --rounds=*) rounds="${arg#--rounds=}" ;;
    --connections=*) connections="${arg#--connections=}" ;;
    --concurrency=*) concurrency="${arg#--concurrency=}" ;;
    --threads=*) threads="${arg#--threads=}" ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "upstream_client.sh: unknown flag $arg" >&2; exit 2 ;;
    *) build="$(cd "$arg" && pwd)" ;;
  esac
done

# shellcheck source=../lib.sh
source "$root/tools/lib.sh"

bench="$build/tools/bench/upstream_client_bench"
sim="$build/tools/upstream-sim/upstream-sim"
nginx="$(command -v nginx || echo /usr/sbin/nginx)"
for bin in "$bench" "$sim" "$nginx"; do
  if [[ ! -x "$bin" ]]; then
    echo "missing $bin (build with -DHERALD_BUILD_BENCH=ON; nginx: tools/install-deps --bench)" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
nginx_pid=""
sim_pid=""
cleanup() {
  for pid in "$sim_pid" "$nginx_pid"; do
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

nginx_port="$(free_port)"
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
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
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$nginx_port;
    default_type application/json;
    location / { return 200 '{"data":[]}'; }
  }
}
EOF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" &
nginx_pid=$!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$nginx_port"

sim_port="$(free_port)"
"$sim" --listen="127.0.0.1:$sim_port" --threads=1 --teams=1 --accounts_per_team=2 \
  --fans_per_account=100 --rate_limit_per_minute=2000000000 --credits=1000000000000 \
  --log_level=warn 2>"$work/sim.log" &
sim_pid=$!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$sim_port"

value() { awk -F': ' -v k="$1" '$1 == k {print $2}' "$2"; }
clk_tck="$(getconf CLK_TCK)"
# cpu_ticks PID...: user + system clock ticks the processes have used so far.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
# median FILE COLUMN
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

wait_for 10 pgrep -P "$nginx_pid"  # the worker
# shellcheck disable=SC2207
nginx_pids=("$nginx_pid" $(pgrep -P "$nginx_pid"))
common=(--connections="$connections" --concurrency="$concurrency" --threads="$threads"
        --seconds="$seconds" --api_key=sim-key-1)

# client_run NAME PORT CALL SERVER_PID...: one bench run; appends "rate client_cpu server_cpu"
# (µs per request) to $work/NAME.runs.
client_run() {
  local name="$1" port="$2" call="$3"
  shift 3
  local out="$work/$name.out" before after
  before="$(cpu_ticks "$@")"
  "$bench" --base_url="http://127.0.0.1:$port" --call="$call" "${common[@]}" >"$out"
  after="$(cpu_ticks "$@")"
  awk -v r="$(value requests_per_s "$out")" -v c="$(value client_cpu_us_per_request "$out")" \
    -v t=$((after - before)) -v n="$(value requests_all "$out")" -v hz="$clk_tck" \
    'BEGIN {printf "%s %s %.1f\n", r, c, t * 1e6 / hz / n}' | tee -a "$work/$name.runs" |
    awk -v name="$name" -v p50="$(value latency_p50_us "$out")" -v p99="$(value latency_p99_us "$out")" \
      '{printf "  %-13s %7d req/s  p50 %5d us  p99 %6d us  client %5.1f us/req  server %5.1f us/req\n",
        name, $1, p50, p99, $2, $3}'
}

wrk_run() {
  local before after
  before="$(cpu_ticks "${nginx_pids[@]}")"
  TIMEFORMAT='%U %S'
  { time wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$nginx_port/api/accounts" \
      >"$work/wrk.out"; } 2>"$work/wrk.time"
  after="$(cpu_ticks "${nginx_pids[@]}")"
  local n rate
  n="$(awk '/requests in/ {print $1}' "$work/wrk.out")"
  rate="$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")"
  awk -v r="$rate" -v n="$n" -v t=$((after - before)) -v hz="$clk_tck" \
    -v c="$(cat "$work/wrk.time")" 'BEGIN {split(c, u, " ");
      printf "%.0f %.1f %.1f\n", r, (u[1] + u[2]) * 1e6 / n, t * 1e6 / hz / n}' |
    tee -a "$work/wrk_nginx.runs" |
    awk '{printf "  %-13s %7d req/s  %31s client %5.1f us/req  server %5.1f us/req\n",
      "wrk_nginx", $1, "", $2, $3}'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "nginx: $("$nginx" -v 2>&1 | sed 's/.*: //'), wrk: $(command -v wrk >/dev/null && echo yes || echo no)"
echo "load: GET /api/accounts, ${seconds}s per run x $rounds rounds, $connections keep-alive" \
  "connections, $concurrency coroutines, $threads client thread(s); nginx 1 worker," \
  "upstream-sim 1 thread"
series=(client_nginx http_nginx client_sim)
command -v wrk >/dev/null && series+=(wrk_nginx)
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  client_run client_nginx "$nginx_port" accounts "${nginx_pids[@]}"
  client_run http_nginx "$nginx_port" http "${nginx_pids[@]}"
  client_run client_sim "$sim_port" accounts "$sim_pid"
  if command -v wrk >/dev/null; then wrk_run; fi
done

echo "== summary: medians of $rounds rounds (load at the end $(cut -d' ' -f1-3 /proc/loadavg))"
for name in "${series[@]}"; do
  echo "${name}_per_s: $(median "$work/$name.runs" 1)"
  echo "${name}_client_cpu_us: $(median "$work/$name.runs" 2)"
  echo "${name}_server_cpu_us: $(median "$work/$name.runs" 3)"
done
awk -v n="$(median "$work/client_nginx.runs" 1)" -v h="$(median "$work/http_nginx.runs" 1)" \
  -v s="$(median "$work/client_sim.runs" 1)" \
  -v w="$( [[ -f "$work/wrk_nginx.runs" ]] && median "$work/wrk_nginx.runs" 1 || echo 0)" 'BEGIN {
  printf "ratio_client_sim_to_client_nginx: %.2f\n", s / n
  printf "ratio_client_to_http_only (nginx): %.2f\n", n / h
  if (w > 0) printf "ratio_client_to_wrk (nginx): %.2f\n", n / w
}'
