#!/usr/bin/env python3
"""Two versions of libs/webhooks/lua/apply_event.lua, timed against each other on one Redis.

    tools/bench/apply_event_ab.py OLD.lua NEW.lua [--batch=10] [--rounds=12] [--calls=300]
                                  [--attributed]

    git show HEAD~1:libs/webhooks/lua/apply_event.lua >/tmp/old.lua
    tools/bench/apply_event_ab.py /tmp/old.lua libs/webhooks/lua/apply_event.lua

Starts a redis-server (AOF on, appendfsync everysec, as ingest.sh runs it) on a free port,
loads both scripts and sends them the same stream of events -- the ingest benchmark's mix: 70%
messages.sent, 10% each unlock, transaction and queue progress, each with its own idempotency
key -- in pipelined rounds of --calls script calls of --batch events, alternating which version
goes first.

By default, as in the ingest benchmark, no purchase names a message that was sent, so each is
applied unattributed. With --attributed each unlock and transaction buys the message of the
messages.sent seven or eight events before it and is credited to its mass message, as most
purchases are in production.

Prints each version's median, fastest and slowest round in microseconds per event, and the
ratio of the medians: first by this client's clock (which includes reading the replies), then
by Redis' own time in the script calls (INFO commandstats, reset before each round), the
steadier figure. Interleaving the rounds keeps a shared machine's drift out of the comparison;
running a script against itself shows the noise left.
"""

import argparse
import re
import time

from resp import command_usec, encode, redis_server


def event(serial, i, attributed):
    """The script arguments of one event (recorder.cc's AppendEventArgs), as many as the
    newest script reads; main() gives an older script the ones it reads."""
    key = "k%d" % serial
    queue, chat, fan = 5_000_000 + i // 50, 9_000_000 + i % 1000, 100_000 + i % 1000
    shape = i % 10
    if attributed:
        # Every message is new; a purchase buys the one sent at the start of its ten.
        bought = i - shape if shape in (7, 8) else i
        chat, fan = 9_000_000 + bought, 100_000 + bought % 1000
    if shape == 7:
        return [key, 3, "acct", 0, chat, fan, 0, 1500, -1, -1, 4550, -1, 0, 0, 0, 0,
                "messages.ppv.unlocked", 1_799_999_999_000]
    if shape == 8:
        return [key, 4, "acct", 0, chat, fan, 0, 1500, 1200, 300, 4550, -1, 0, 0, 0, 0,
                "transactions.new", 1_799_999_999_000]
    if shape == 9:
        return [key, 1, "acct", queue, 0, 0, 0, -1, -1, -1, -1, -1, 1000, 1000 - i % 1000, 0, 0,
                "chat_queue.updated", -1]
    return [key, 2, "acct", queue, chat, fan, 1500, -1, -1, -1, -1, -1, 0, 0, 0, 0,
            "messages.sent", -1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--batch", type=int, default=10, help="events per script call")
    parser.add_argument("--rounds", type=int, default=12, help="rounds per version")
    parser.add_argument("--calls", type=int, default=300, help="script calls per round")
    parser.add_argument("--attributed", action="store_true",
                        help="purchases buy messages that were sent (credited, not unattributed)")
    options = parser.parse_args()
    scripts = {name: open(path).read() for name, path in (("old", options.old),
                                                          ("new", options.new))}
    # Arguments per event each script reads (`local FIELDS = N`; 17 before it was declared).
    fields = {name: int((re.search(r"local FIELDS = (\d+)", text) or [0, 17])[1])
              for name, text in scripts.items()}
    with redis_server("--appendonly", "yes", "--appendfsync", "everysec") as conn:
        sha = {name: conn.call("SCRIPT", "LOAD", text).decode() for name, text in scripts.items()}

        serial = 0
        position = 0
        timings = {"old": [], "new": []}
        inside = {"old": [], "new": []}  # Redis' own time in the script calls
        for round_ in range(options.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for name in order:
                payload = []
                for _ in range(options.calls):
                    args = ["EVALSHA", sha[name], 1, "hd:{t:bench}:", 604800, 2592000,
                            1_800_000_000_000, 100_000, 20, options.batch]
                    for _ in range(options.batch):
                        serial += 1
                        args += event(serial, position, options.attributed)[:fields[name]]
                        position += 1
                    payload.append(encode(args))
                data = b"".join(payload)
                conn.call("CONFIG", "RESETSTAT")
                start = time.perf_counter()
                conn.sock.sendall(data)
                for _ in range(options.calls):
                    conn.reply()
                elapsed = time.perf_counter() - start
                events = options.calls * options.batch
                timings[name].append(elapsed * 1e6 / events)
                inside[name].append(command_usec(conn) / events)

    for label, figures in (("", timings), ("redis_", inside)):
        medians = {}
        for name in ("old", "new"):
            values = sorted(figures[name])
            medians[name] = values[len(values) // 2]
            print("%s%s_us_per_event: median %.2f, fastest %.2f, slowest %.2f"
                  % (label, name, medians[name], values[0], values[-1]))
        print("%sratio_new_to_old: %.2f" % (label, medians["new"] / medians["old"]))


if __name__ == "__main__":
    main()
