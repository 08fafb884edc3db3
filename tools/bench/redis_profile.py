#!/usr/bin/env python3
"""Where a running redis-server spends its time over a window, by Herald script and command.

    tools/bench/redis_profile.py --port=P [--seconds=2] [--metrics=URL --metric=NAME --unit=U]

    tools/bench/redis_profile.py --port=6379 --seconds=2 \\
        --metrics=http://127.0.0.1:9090/metrics --metric=herald_upstream_requests_total \\
        --unit=upstream_call

Logs every command for --seconds with Redis' SLOWLOG (threshold 0), then reads the log back
and puts Redis' defaults back (slowlog-log-slower-than 10000, slowlog-max-len 128). Each
EVALSHA is named after the Herald script it runs: the SHA1 of every script is computed from
the Lua sources of this checkout, assembled as Herald loads them (herald_lua.py).

With --metrics, the figures are per unit: the increase of the Prometheus counter --metric
(summed over its labels) on that page over the same window; otherwise per second.

Prints, for commands sent by clients (a script counts with the commands it runs) and then for
the commands scripts run, one line each, largest first: calls and microseconds per unit, the
mean per call, and the share of the window's client-command time.

The durations are Redis' wall-clock time in each command: on a machine whose cores are all
busy, a script that loses its core part-way counts the time it waited, so long scripts look
costlier than their CPU time. Logging every command also costs Redis some time of its own.
"""

import argparse
import sys
import time
import urllib.request
from collections import defaultdict

from herald_lua import names_by_sha
from resp import Connection


def counter(url, metric):
    """The sum of a Prometheus counter over its labels, from a text exposition page."""
    total = 0.0
    with urllib.request.urlopen(url, timeout=10) as page:
        for line in page.read().decode().splitlines():
            if line.startswith(metric) and line[len(metric):len(metric) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--metrics", help="a Prometheus page counting the units of work")
    parser.add_argument("--metric", help="the counter on that page")
    parser.add_argument("--unit", default="unit", help="what the counter counts (for labels)")
    parser.add_argument("--max_entries", type=int, default=2_000_000)
    options = parser.parse_args()
    if bool(options.metrics) != bool(options.metric):
        sys.exit("redis_profile.py: --metrics and --metric go together")

    names = names_by_sha()
    conn = Connection(options.port)
    conn.call("CONFIG", "SET", "slowlog-max-len", options.max_entries)
    conn.call("SLOWLOG", "RESET")
    units_before = counter(options.metrics, options.metric) if options.metrics else 0.0
    conn.call("CONFIG", "SET", "slowlog-log-slower-than", 0)
    time.sleep(options.seconds)
    conn.call("CONFIG", "SET", "slowlog-log-slower-than", 10000)
    units = (counter(options.metrics, options.metric) - units_before if options.metrics
             else options.seconds)
    entries = conn.call("SLOWLOG", "GET", -1)
    conn.call("SLOWLOG", "RESET")
    conn.call("CONFIG", "SET", "slowlog-max-len", 128)
    unit = options.unit if options.metrics else "second"
    if units <= 0:
        sys.exit("redis_profile.py: no %s counted in the window" % unit)

    # An entry: id, unix time, microseconds, argv, client address, client name. Commands a
    # script runs carry the address "?:0".
    outer, inner = defaultdict(list), defaultdict(list)
    for entry in entries:
        micros, argv, address = entry[2], entry[3], entry[4]
        if not argv:
            continue
        command = argv[0].decode(errors="replace").upper()
        if command == "EVALSHA" and len(argv) > 1:
            sha = argv[1].decode(errors="replace")
            command = names.get(sha, "script " + sha[:8])
        from_client = address and not address.startswith(b"?")
        (outer if from_client else inner)[command].append(micros)

    total = sum(sum(v) for v in outer.values())
    print("redis_profile_window: %.1f s, %.0f %ss, %d commands logged%s"
          % (options.seconds, units, unit, len(entries),
             " (the log filled up: raise --max_entries)" if len(entries) >= options.max_entries
             else ""))
    for label, table in (("redis_profile", outer), ("redis_profile_in_scripts", inner)):
        for command, micros in sorted(table.items(), key=lambda kv: -sum(kv[1]))[:12]:
            print("%s: %-28s calls/%s %7.3f  us/%s %7.1f  mean %8.1f us  share %5.1f%%"
                  % (label, command, unit, len(micros) / units, unit, sum(micros) / units,
                     sum(micros) / len(micros), 100.0 * sum(micros) / total))


if __name__ == "__main__":
    main()
