#!/usr/bin/env bash
# A segment campaign's list building, beside a baseline herald in the same run: one campaign to
# the expired fans of one account with --fans fans (the simulator leaves about a fifth of them
# expired), run by `herald serve --role=all` against upstream-sim with limits that do not bind.
# The delivery scans the account's "expired" list (100 fans a page), makes the segment's list,
# adds its fans 100 a call, then sends. For each herald, on a fresh redis-server and simulator:
#
#   seconds          from CreateCampaign to the campaign's COMPLETED
#   upstream_calls   the herald's upstream calls over that time
#   herald_cpu_ms    the herald process's CPU over that time (/proc)
#   redis_cpu_ms     redis-server's CPU over that time (INFO cpu, main process)
#   redis_out_kb     bytes redis-server sent over that time (INFO stats), in KiB
#   redis_commands   commands redis-server ran over that time (scripts' commands included)
#
# then, with --baseline, each figure of BUILD_DIR's herald over the baseline's.
#
#   tools/bench/segment.sh [BUILD_DIR] [--fans=50000] [--baseline=HERALD_BINARY] [--rounds=1]
#                          [--delivery_rate=1000000]
#
# --baseline: another herald binary (e.g. one built from an earlier commit), run first in each
#   round. --rounds: how many times each herald runs, alternately. --delivery_rate: recipients
#   the simulator reaches per second (the default sends at once; a lower rate makes the
#   delivery's progress checks part of the time measured).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$root/build"
fans=50000
baseline=""
rounds=1
delivery_rate=1000000
for arg in "$@"; do
  case "$arg" in
    --fans=*) fans="${arg#--fans=}" ;;
    --baseline=*) baseline="${arg#--baseline=}" ;;
    --rounds=*) rounds="${arg#--rounds=}" ;;
    --delivery_rate=*) delivery_rate="${arg#--delivery_rate=}" ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "segment.sh: unknown flag $arg" >&2; exit 2 ;;
    *) build="$(cd "$arg" && pwd)" ;;
  esac
done

# shellcheck source=../lib.sh
source "$root/tools/lib.sh"

herald="$build/services/herald/herald"
sim="$build/tools/upstream-sim/upstream-sim"
heraldctl="$build/tools/heraldctl/heraldctl"
for bin in "$herald" "$sim" "$heraldctl" ${baseline:+"$baseline"}; do
  [[ -x "$bin" ]] || { echo "missing $bin" >&2; exit 1; }
done

work_dir
admin_key="bench-admin-$(random_hex 12)"
encryption_key="$(random_hex 32)"

redis_info() { redis-cli -p "$redis_port" info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
redis_cpu_ms() {
  awk -v s="$(redis_info cpu used_cpu_sys)" -v u="$(redis_info cpu used_cpu_user)" \
    'BEGIN {printf "%d\n", (s + u) * 1000}'
}
# CPU time of process $1 so far, in ms (utime + stime, fields 14 and 15 of /proc/PID/stat).
process_cpu_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%d\n", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"
}

# run HERALD NAME: one campaign on a fresh stack; prints "NAME: figure value ..." lines.
run() {
  local bin="$1" name="$2" dir
  dir="$(mktemp -d -p "$work" "$name.XXXX")"
  mkdir -p "$dir/redis"
  redis_port="$(free_port)"
  start_redis "$dir/redis" "$redis_port" >/dev/null
  local sim_port grpc_port
  sim_port="$(free_port)"
  "$sim" --listen="127.0.0.1:$sim_port" --teams=1 --accounts_per_team=1 \
    --fans_per_account="$fans" --rate_limit_per_minute=10000000 --delivery_rate="$delivery_rate" \
    --log_level=warn >/dev/null 2>"$dir/sim.log" &
  pids+=($!)
  wait_for 60 curl -sf "http://127.0.0.1:$sim_port/_sim/health"
  grpc_port="$(free_port)"
  admin_port="$(free_port)"
  HERALD_ADMIN_KEY="$admin_key" HERALD_ENCRYPTION_KEY="$encryption_key" \
    "$bin" serve --role=all --grpc_address="127.0.0.1:$grpc_port" \
    --admin_address="127.0.0.1:$admin_port" --ingest_address="127.0.0.1:$(free_port)" \
    --redis_address="127.0.0.1:$redis_port" --upstream_url="http://127.0.0.1:$sim_port" \
    --log_level=warn --log_format=text --reconcile_schedule= --poll_interval=50ms \
    >/dev/null 2>"$dir/herald.log" &
  local herald_pid=$!
  pids+=("$herald_pid")
  wait_for 30 curl -sf "http://127.0.0.1:$admin_port/readyz" || { cat "$dir/herald.log" >&2; exit 1; }

  export HERALD_SERVER="127.0.0.1:$grpc_port"
  HERALD_API_KEY="$admin_key" "$heraldctl" tenants create bench --display-name=Bench >/dev/null
  HERALD_API_KEY="$admin_key" "$heraldctl" keys create bench --display-name=bench --json \
    >"$dir/key.json"
  HERALD_API_KEY="$(jq -r .secret "$dir/key.json")"
  export HERALD_API_KEY HERALD_TENANT=bench SIM_TEAM_KEY=sim-key-1
  "$heraldctl" teams create main --display-name=Main --upstream-key-env=SIM_TEAM_KEY \
    --rate-limit=100000 >/dev/null
  "$heraldctl" accounts sync --team=main >/dev/null
  local account
  account="$("$heraldctl" accounts list --json | jq -r '.accounts[0].name | split("/") | last')"
  "$heraldctl" accounts update "$account" --pace=0 --max-in-flight=0 >/dev/null
  "$heraldctl" segments create Lapsed --expired-only --json >"$dir/segment.json"

  local cpu0 herald0 out0 cmd0 calls0 start
  cpu0="$(redis_cpu_ms)"
  herald0="$(process_cpu_ms "$herald_pid")"
  out0="$(redis_info stats total_net_output_bytes)"
  cmd0="$(redis_info stats total_commands_processed)"
  calls0="$(upstream_calls "$admin_port")"
  start="$(date +%s.%N)"
  "$heraldctl" campaigns create --text="Come back" --accounts="$account" \
    --segment="$(jq -r .name "$dir/segment.json")" --json >"$dir/campaign.json"
  local campaign state
  campaign="$(jq -r .name "$dir/campaign.json")"
  for ((i = 0; i < 6000; i++)); do
    state="$("$heraldctl" campaigns get "$campaign" --json | jq -r .state)"
    [[ "$state" == COMPLETED || "$state" == FAILED || "$state" == PARTIALLY_FAILED ]] && break
    sleep 0.05
  done
  local end
  end="$(date +%s.%N)"
  [[ "$state" == COMPLETED ]] || { echo "$name: the campaign ended $state" >&2; exit 1; }
  "$heraldctl" campaigns deliveries "$campaign" --json >"$dir/deliveries.json"
  echo "$name: recipients $(jq -r '.deliveries[0].recipients' "$dir/deliveries.json")"
  echo "$name: seconds $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')"
  echo "$name: upstream_calls $(( $(upstream_calls "$admin_port") - calls0 ))"
  echo "$name: herald_cpu_ms $(( $(process_cpu_ms "$herald_pid") - herald0 ))"
  echo "$name: redis_cpu_ms $(( $(redis_cpu_ms) - cpu0 ))"
  echo "$name: redis_out_kb $(( ($(redis_info stats total_net_output_bytes) - out0) / 1024 ))"
  echo "$name: redis_commands $(( $(redis_info stats total_commands_processed) - cmd0 ))"
  unset HERALD_API_KEY HERALD_TENANT
  stop_all
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
  "load $(cut -d' ' -f1-3 /proc/loadavg); $fans fans"
# Each run's figures go to a file first: a pipeline would run it in a subshell, out of reach of
# the clean-up on exit.
for ((r = 1; r <= rounds; r++)); do
  if [[ -n "$baseline" ]]; then
    run "$baseline" baseline >"$work/run"
    cat "$work/run" >>"$work/figures"
    cat "$work/run"
  fi
  run "$herald" herald >"$work/run"
  cat "$work/run" >>"$work/figures"
  cat "$work/run"
done
if [[ -n "$baseline" ]]; then
  awk '{sub(":", "", $1); sum[$1 " " $2] += $3}
       END {for (k in sum) {split(k, p, " "); if (p[1] == "herald" && sum["baseline " p[2]] > 0)
              printf "ratio %s: %.3f\n", p[2], sum[k] / sum["baseline " p[2]]}}' \
    "$work/figures" | sort
fi
