# Shell helpers shared by tools/demo and the benchmarks. Source it; do not run it.

# Prints a TCP port on 127.0.0.1 with nothing listening on it, below the kernel's ephemeral
# range (32768 and up), so no outgoing connection can be holding it when it is bound.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# wait_for SECONDS COMMAND...: runs COMMAND until it succeeds or SECONDS pass.
wait_for() {
  local deadline=$(( $(date +%s) + $1 ))
  shift
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      echo "timed out waiting for: $*" >&2
      return 1
    fi
    sleep 0.1
  done
}

# start_redis DIR PORT [ARG...]: a throw-away redis-server with AOF in DIR; ARGs are more
# redis-server options (e.g. --auto-aof-rewrite-percentage 0). Its pid is added to the caller's
# `pids` before it is waited for, so a server that never answers is still stopped.
start_redis() {
  local dir="$1" port="$2"
  shift 2
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly yes \
    --daemonize no --logfile "$dir/redis.log" "$@" &
  pids+=($!)
  wait_for 10 redis-cli -p "$port" ping
}

# stop_all: stops the background processes whose pids the caller added to the array `pids`, and
# empties it.
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

# work_dir: sets `work` to a new temporary directory and `pids` to no processes; on exit the
# processes in `pids` are stopped (stop_all) and the directory removed.
work_dir() {
  work="$(mktemp -d)"
  pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
}

# random_hex BYTES: that many random bytes, as lowercase hex.
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# upstream_calls ADMIN_PORT: the upstream calls a herald has made so far (its metric).
upstream_calls() {
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk '/^herald_upstream_requests_total/ {s += $NF} END {printf "%d\n", s}'
}
