"""A minimal blocking Redis client for the benchmark tools: RESP2 over one TCP connection.

    from resp import Connection
    conn = Connection(6379)
    conn.call("PING")            # b"PONG"

Replies come back as Python values: bulk strings and simple strings as bytes, integers as
int, arrays as lists, nil as None; an error reply raises RuntimeError. Requests may be
pipelined: send several `encode(...)` payloads with `conn.sock.sendall`, then read as many
`conn.reply()`s.
"""

import socket


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
