"""A minimal blocking Redis client for the benchmark tools: RESP2 over one TCP connection.

    from resp import Connection
    conn = Connection(6379)
    conn.call("PING")            # b"PONG"

Replies come back as Python values: bulk strings and simple strings as bytes, integers as
int, arrays as lists, nil as None; an error reply raises RuntimeError. Requests may be
pipelined: send several `encode(...)` payloads with `conn.sock.sendall`, then read as many
`conn.reply()`s.
"""

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def encode(args):
    """One command as RESP: an array of bulk strings (str and int arguments are encoded)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Connection:
    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port))
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"*":
            return [self.reply() for _ in range(max(int(rest), 0))]
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise RuntimeError(rest.decode())
        return rest

    def call(self, *args):
        self.sock.sendall(encode(args))
        return self.reply()


def command_usec(conn, command="evalsha"):
    """Microseconds Redis spent in `command` (lower case) since the last CONFIG RESETSTAT, from
    INFO commandstats; a script's time includes the commands it runs."""
    for line in conn.call("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_%s:" % command):
            return int(dict(f.split("=") for f in line.split(":", 1)[1].split(","))["usec"])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def redis_server(*flags):
    """A redis-server of its own on a free port of 127.0.0.1, in a temporary directory, stopped
    on exit; yields a Connection to it. `flags`: more redis-server arguments (e.g. "--appendonly",
    "yes")."""
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed (tools/install-deps)")
    work = tempfile.mkdtemp()
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", work, "--loglevel",
         "warning", *flags], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = Connection(port)
                conn.call("PING")
                break
            except (ConnectionError, OSError, RuntimeError):
                if time.monotonic() > deadline:
                    sys.exit("redis-server did not start")
                time.sleep(0.05)
        yield conn
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
