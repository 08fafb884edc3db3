#!/usr/bin/env python3
"""What Herald's Redis scripts cost per call, and how long the largest ones hold Redis.

    tools/bench/script_cost.py [--calls=20000] [--rounds=3] [--accounts=10000] [--chunk=256]

Starts a redis-server of its own (no persistence: the figures are Redis' own time in each
call, INFO commandstats, which the AOF does not change) and loads the scripts as Herald does
(herald_lua.py). Each figure is the median of --rounds rounds.

The price of one call (microseconds of Redis time per call, --calls calls in a pipeline):
  noop_enqueue_args_us        `return 0` with the arguments of an enqueue of 10 jobs (85)
  queue_preamble_us           gcra.lua and common.lua, then finish(), with those arguments
  enqueue_10_jobs_us          queue/enqueue.lua of 10 jobs of accounts that already have jobs
  noop_replace_args_us        `return 0` with a delivery compare-and-set's arguments (3 keys,
                              two 600-byte documents, one id to read back)
  replace_hit_us              store/replace.lua with them, the expected value matching
  replace_commands_us         the commands it runs (HGET, HSET, HMGET), sent on their own
  create_10_targets_us        store/create.lua of a campaign of 10 targets, with its targets
                              and deliveries, and nothing checked
  create_10_targets_checked_us  the same with its references checked (one media asset, the
                              accounts) and the accounts' teams read, as CreateCampaign makes it
  apply_event_us_per_event    webhooks/apply_event.lua with batches of ten events in the ingest
                              benchmark's mix (seven messages.sent, one purchase's unlock and
                              transaction, credited to its message, one queue progress), per event

How long one campaign holds Redis (milliseconds of Redis time):
  enqueue_one_call_ms         one job for each of --accounts registered accounts of one team
                              (one shard) in one queue/enqueue.lua call
  enqueue_chunked_longest_ms  the same jobs in calls of --chunk (QueueConfig's
  enqueue_chunked_total_ms    max_jobs_per_enqueue_call): the longest call, and all of them
  create_campaign_ms          store/create.lua of a campaign with --accounts targets and
                              deliveries (one atomic step)
"""

import argparse
import statistics

from herald_lua import queue_preamble, scripts
from resp import command_usec, encode, redis_server

PAYLOAD = ('{"tenant":"t1","campaign":"01m8sx89gmrf28r28v4y24k39r",'
           '"account":"acct_4f36628af39416ad1f9c437d7cb4c251","media":"m1"}')
DOCUMENT = '{"account":"acct_4f36628af39416ad1f9c437d7cb4c251","state":"SENT","x":"%s"}' % (
    "y" * 520)


def per_call(conn, commands, calls, measured=("evalsha",)):
    """Redis' time per call of `commands` (a list of argument lists, sent round-robin)."""
    conn.call("CONFIG", "RESETSTAT")
    payload = b"".join(encode(commands[i % len(commands)]) for i in range(calls))
    conn.sock.sendall(payload)
    for _ in range(calls):
        conn.reply()
    return sum(command_usec(conn, m) for m in measured) / calls


def enqueue_args(sha, tag, jobs):
    """EVALSHA of queue/enqueue.lua for `jobs`: (id, account, team) triples of tenant t1."""
    args = ["EVALSHA", sha, 1, tag, "", 86_400_000]
    for job_id, account, team in jobs:
        args += [job_id, "delivery_upload_media", "t1/" + account, "t1/" + team, "t1", PAYLOAD,
                 6, 0]
    return args


ACCOUNT = ('{"tenant":"t1","id":"acct_%d","team":"main%d","display_name":"A creator",'
           '"sends_per_minute":0,"max_in_flight":0,"paused":false,"upstream_username":"creator",'
           '"create_time_ms":1700000000000}')


def create_args(sha, campaign, checked):
    """EVALSHA of store/create.lua for a campaign of 10 targets, its targets and deliveries;
    `checked`: with its references (one media asset, the 10 accounts, no segment) and the
    accounts' teams followed, as CreateCampaign makes it."""
    keys = ["campaigns", "campaigns", "index", "rev:" + campaign, "targets:" + campaign,
            "deliveries:" + campaign]
    accounts = ["acct_%d" % i for i in range(10)]
    references = [("media", ["m1"]), ("accounts", accounts), ("segments", [])] if checked else []
    keys += [table for table, _ in references] + (["teams"] if checked else [])
    keys.append("campaigns")  # no request id: no fingerprint key
    args = [campaign, DOCUMENT, 0, 0, 1_700_000_000_000, 2, 0, len(references),
            2 if checked else 0, "team" if checked else "", ""]
    args.append(len(accounts))
    for i, a in enumerate(accounts):
        args += [a, '{"index":%d,"target":{"account":"%s","user_lists":["fans"]}}' % (i, a)]
    args.append(len(accounts))
    for a in accounts:
        args += [a, '{"account":"%s","state":"kPending","x":"%s"}' % (a, "y" * 300)]
    for _, ids in references:
        args += [len(ids)] + ids
    return ["EVALSHA", sha, len(keys)] + keys + args


def apply_event_args(sha, batch):
    """EVALSHA of webhooks/apply_event.lua for the ten events of `batch` (ingest_bodies' mix)."""
    args = ["EVALSHA", sha, 1, "hd:{t:t1}:", 86_400, 604_800, 1_796_000_000_000, 10_000, 20, 10]
    queue, first = 5_000_000 + batch // 5, 9_000_000 + batch * 10

    def event(i, code, chat, fan, price=0, amount=-1, net=-1, fee=-1, spend=-1, progress=(0, 0),
              name="messages.sent"):
        return ["k%d_%d" % (batch, i), code, "acct_1", queue if code in (1, 2) else 0, chat, fan,
                price, amount, net, fee, spend, -1, progress[0], progress[1], 0, 0, name]

    for i in range(7):
        args += event(i, 2, first + i, 100_000 + i, price=1500)
    args += event(7, 3, first, 100_000, amount=1500, spend=4550, name="messages.ppv.unlocked")
    args += event(8, 4, first, 100_000, amount=1500, net=1200, fee=300, spend=4550,
                  name="transactions.new")
    args += event(9, 1, 0, 0, progress=(1000, 1000 - batch % 1000), name="chat_queue.updated")
    return args


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=256)
    options = parser.parse_args()
    source = scripts()
    figures = {}

    def record(name, value):
        figures.setdefault(name, []).append(value)

    with redis_server() as conn:
        sha = {name: conn.call("SCRIPT", "LOAD", text).decode() for name, text in source.items()}
        noop = conn.call("SCRIPT", "LOAD", "return 0").decode()
        preamble = conn.call("SCRIPT", "LOAD", queue_preamble() + "\nfinish()\nreturn 0").decode()
        configure = sha["queue/configure.lua"]

        # Ten accounts of one team with jobs queued already: each enqueue appends to their lists.
        small = "{hd:s0}"
        conn.call("EVALSHA", configure, 1, small, "", "team", "t1/main", 1_000_000, 1_000)
        for round_ in range(options.rounds):
            serial = iter(range(10**9))

            def ten_jobs():
                return [("r%d_%d" % (round_, next(serial)), "acct_%d" % a, "main")
                        for a in range(10)]

            conn.call(*enqueue_args(sha["queue/enqueue.lua"], small, ten_jobs()))
            record("noop_enqueue_args_us",
                   per_call(conn, [enqueue_args(noop, small, ten_jobs())], options.calls))
            record("queue_preamble_us",
                   per_call(conn, [enqueue_args(preamble, small, ten_jobs())], options.calls))
            record("enqueue_10_jobs_us", per_call(
                conn, [enqueue_args(sha["queue/enqueue.lua"], small, ten_jobs())
                       for _ in range(options.calls)], options.calls))

            # A delivery's compare-and-set that finds what it expects (and writes it back).
            conn.call("HSET", "deliveries", "a1", DOCUMENT)
            conn.call("HSET", "campaigns", "c1", DOCUMENT)
            replace = ["deliveries", "deliveries", "campaigns", "a1", DOCUMENT, DOCUMENT, 0, 1,
                       "c1"]
            record("noop_replace_args_us",
                   per_call(conn, [["EVALSHA", noop, 3] + replace], options.calls))
            record("replace_hit_us",
                   per_call(conn, [["EVALSHA", sha["store/replace.lua"], 3] + replace],
                            options.calls))
            record("replace_commands_us",
                   3 * per_call(conn, [["HGET", "deliveries", "a1"],
                                       ["HSET", "deliveries", "a1", DOCUMENT],
                                       ["HMGET", "campaigns", "c1"]], options.calls,
                                measured=("hget", "hset", "hmget")))

            # A CreateCampaign of 10 targets as the API makes it, with and without its
            # references (media, accounts, segments) checked and the accounts' teams followed.
            for i in range(10):
                conn.call("HSET", "accounts", "acct_%d" % i, ACCOUNT % (i, i % 2))
            conn.call("HSET", "teams", "main0", DOCUMENT, "main1", DOCUMENT)
            conn.call("HSET", "media", "m1", DOCUMENT)
            serial = iter(range(10**9))
            record("create_10_targets_us", per_call(
                conn, [create_args(sha["store/create.lua"], "p%d_%d" % (round_, next(serial)),
                                   checked=False) for _ in range(options.calls)], options.calls))
            record("create_10_targets_checked_us", per_call(
                conn, [create_args(sha["store/create.lua"], "q%d_%d" % (round_, next(serial)),
                                   checked=True) for _ in range(options.calls)], options.calls))

            record("apply_event_us_per_event", per_call(
                conn, [apply_event_args(sha["webhooks/apply_event.lua"], round_ * options.calls + n)
                       for n in range(options.calls)], options.calls) / 10)

            # One campaign to every account of one big team: its jobs, then its creation.
            tag = "{hd:s%d}" % (round_ + 1)
            conn.call("EVALSHA", configure, 1, tag, "", "team", "t1/big", 1_000_000, 1_000)
            accounts = ["big_%d" % i for i in range(options.accounts)]
            for account in accounts:
                conn.sock.sendall(encode(["EVALSHA", configure, 1, tag, "", "account",
                                          "t1/" + account, "t1/big", "t1", 1_000_000, 1_000, 0]))
            for _ in accounts:
                conn.reply()
            for chunk, prefix in ((len(accounts), "one"), (options.chunk, "chunked")):
                calls = []
                for first in range(0, len(accounts), chunk):
                    jobs = [("%s_%s" % (prefix, a), a, "big") for a in accounts[first:first + chunk]]
                    conn.call("CONFIG", "RESETSTAT")
                    conn.call(*enqueue_args(sha["queue/enqueue.lua"], tag, jobs))
                    calls.append(command_usec(conn) / 1000)
                if prefix == "one":
                    record("enqueue_one_call_ms", calls[0])
                else:
                    record("enqueue_chunked_longest_ms", max(calls))
                    record("enqueue_chunked_total_ms", sum(calls))
            create = ["EVALSHA", sha["store/create.lua"], 7, "campaigns", "campaigns", "index",
                      "campaigns", "targets:%d" % round_, "deliveries:%d" % round_, "campaigns",
                      "c_%d" % round_, DOCUMENT, 0, 0, 0, 2, 0, 0, 0, "", "", len(accounts)]
            for a in accounts:
                create += [a, '{"account":"%s","lists":["fans"]}' % a]
            create.append(len(accounts))
            for a in accounts:
                create += [a, '{"account":"%s","state":"PENDING"}' % a]
            conn.call("CONFIG", "RESETSTAT")
            conn.call(*create)
            record("create_campaign_ms", command_usec(conn) / 1000)

    for name, values in figures.items():
        print("%s: %.1f  (rounds: %s)" % (name, statistics.median(values),
                                          ", ".join("%.1f" % v for v in values)))


if __name__ == "__main__":
    main()
