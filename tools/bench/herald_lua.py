"""Herald's Redis scripts as Herald loads them, assembled from this checkout's Lua sources.

    from herald_lua import scripts
    scripts()["queue/enqueue.lua"]      # the text Herald sends with SCRIPT LOAD

libs/queue: gcra.lua and common.lua before each script (libs/queue/src/scripts.cc);
libs/store: tables.lua before create.lua and replace.lua (libs/store/src/record_store.cc);
libs/webhooks: each script alone (libs/webhooks/src/recorder.cc).
"""

import hashlib
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def _read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def queue_preamble():
    """What every queue script starts with: gcra.lua and common.lua."""
    return _read("libs/ratelimit/lua/gcra.lua") + "\n" + _read("libs/queue/lua/common.lua")


def scripts():
    """Script name ("queue/lease.lua", ...) -> source text."""
    out = {}
    preamble = queue_preamble()
    for file in sorted(os.listdir(os.path.join(ROOT, "libs/queue/lua"))):
        if file.endswith(".lua") and file != "common.lua":
            out["queue/" + file] = preamble + "\n" + _read("libs/queue/lua/" + file)
    tables = _read("libs/store/lua/tables.lua")
    for file in ("create.lua", "replace.lua"):
        out["store/" + file] = tables + "\n" + _read("libs/store/lua/" + file)
    for file in ("apply_event.lua", "reconcile_buyers.lua"):
        out["webhooks/" + file] = _read("libs/webhooks/lua/" + file)
    return out


def names_by_sha():
    """SHA1 (as EVALSHA takes it) -> script name."""
    return {hashlib.sha1(text.encode()).hexdigest(): name for name, text in scripts().items()}
