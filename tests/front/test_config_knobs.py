#!/usr/bin/env python3
"""Every documented config key that had no test of its effect
(docs/configuration.md): each test sets a non-default value and observes
what it changes against a real `grpcgate serve` on loopback, beside the same
request on a gateway with the default (so that a key that is parsed but
ignored fails here). No fixed sleeps: conditions are polled with generous
deadlines.

  limits.max_metadata            a request with 5 extra headers fails at 3
  limits.max_deadline_ms         a 2 s call fails at a 300 ms cap (even with
                                 a longer grpc-timeout)
  limits.discard_body_bytes      after an early answer, a body under the
                                 limit is drained (keep-alive), above it the
                                 connection is closed
  limits.inactivity_timeout_s    an idle connection is closed after 1 s
  upstream.stream_window         SETTINGS_INITIAL_WINDOW_SIZE the backend sees
  upstream.connection_window     the connection WINDOW_UPDATE the backend sees
  forward_cookies                a Cookie header reaches the backend only
                                 when on (size of the HEADERS block)
  reflect_timeout_ms             reflection against a silent backend gives up
                                 at 500 ms (default 10 s) and serve exits 1
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import GRPCGATE, Conn, Procs, frame, grpcweb, pb_string, pb_varint  # noqa: E402

ECHO = "/demo.v1.EchoService/Echo"
P = None
DEMO_URL = None


def setUpModule():
    global P, DEMO_URL
    P = Procs()
    _, DEMO_URL = P.demo()


def tearDownModule():
    P.stop_all()


def poll(cond, timeout=30, what="condition"):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("%s not reached in %d s" % (what, timeout))
        time.sleep(0.05)


class Recorder:
    """An HTTP/2 backend that records what the gateway sends: its SETTINGS,
    the connection WINDOW_UPDATE increments and each HEADERS block's size.
    It never answers a stream (the callers use a grpc-timeout)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        self.settings = {}
        self.conn_window_updates = 0
        self.header_blocks = []
        self.lock = threading.Lock()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            c.sendall(b"\0\0\0\x04\0\0\0\0\0")
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
                if buf.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
                    buf = buf[24:]
                while len(buf) >= 9:
                    n = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + n:
                        break
                    typ, flags = buf[3], buf[4]
                    stream = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    payload = buf[9:9 + n]
                    buf = buf[9 + n:]
                    with self.lock:
                        if typ == 4 and not flags & 1:
                            for i in range(0, len(payload) - 5, 6):
                                self.settings[int.from_bytes(payload[i:i + 2], "big")] = \
                                    int.from_bytes(payload[i + 2:i + 6], "big")
                            c.sendall(b"\0\0\0\x04\x01\0\0\0\0")
                        elif typ == 8 and stream == 0:
                            self.conn_window_updates += int.from_bytes(payload[:4], "big") & 0x7fffffff
                        elif typ == 1:
                            self.header_blocks.append(len(payload))
                        elif typ == 6 and not flags & 1:
                            c.sendall(b"\0\0\x08\x06\x01\0\0\0\0" + payload)
        except OSError:
            return

    def close(self):
        self.ls.close()
        for c in self.conns:
            c.close()


def echo_call(port, headers=None, delay_s=0):
    body = pb_string(1, "knob")
    if delay_s:
        body += pb_string(3, pb_varint(1, delay_s))
    return grpcweb(port, ECHO, frame(body), headers=headers)


class Knobs(unittest.TestCase):

    def gateway(self, config, backend=None):
        gw, port = P.gateway(backend or DEMO_URL, config, workers=1)
        self.addCleanup(lambda: self.assertEqual(P.stop(gw), 0, P.stderr(gw)[-2000:]))
        return port

    def test_max_metadata(self):
        extra = {"x-knob-%d" % i: "v" for i in range(5)}
        r = echo_call(self.gateway({}), extra)
        self.assertEqual(r.grpc_status(), (0, None))  # default 64: fine
        r = echo_call(self.gateway({"limits": {"max_metadata": 3}}), extra)
        code, msg = r.grpc_status()
        self.assertNotEqual(code, 0)
        self.assertIn("more than 3 metadata entries", msg or "")

    def test_max_deadline_ms(self):
        r = echo_call(self.gateway({}), delay_s=2)
        self.assertEqual(r.grpc_status(), (0, None))
        port = self.gateway({"limits": {"max_deadline_ms": 300}})
        for headers in (None, {"grpc-timeout": "10S"}):
            with self.subTest(headers=headers):
                t0 = time.monotonic()
                r = echo_call(port, headers, delay_s=2)
                self.assertEqual(r.grpc_status()[0], 4, r.body)  # DEADLINE_EXCEEDED
                self.assertLess(time.monotonic() - t0, 1.9)  # before the 2 s answer

    def early_answer_then(self, port, body_len):
        """An unknown method is answered without reading its body: the body
        (body_len bytes, declared) is read and dropped when it is within
        discard_body_bytes, and the connection serves a second call; beyond,
        the answer goes out at once with Connection: close. Returns the
        connection, or None if the server closed it."""
        c = Conn(port, timeout=30)
        try:
            c.send(b"POST /nope.Nope/Nope HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n"
                   % body_len + b"\0" * body_len)
            r = c.read_response()
            self.assertEqual(r.grpc_status()[0], 12, r.body)  # UNIMPLEMENTED
            if "close" in (r.header("connection") or "").lower():
                c.close()
                return None
            req = frame(pb_string(1, "after"))
            c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n"
                   % len(req) + req)
            r = c.read_response()
        except (OSError, EOFError):
            c.close()
            return None
        self.assertEqual(r.grpc_status(), (0, None))
        return c

    def test_discard_body_bytes(self):
        dflt = self.gateway({})
        port = self.gateway({"limits": {"discard_body_bytes": 1000}})
        c = self.early_answer_then(dflt, 50000)
        self.assertIsNotNone(c, "default (1 MiB): a 50000-byte body is drained, keep-alive")
        c.close()
        c = self.early_answer_then(port, 1000)
        self.assertIsNotNone(c, "limit 1000: a 1000-byte body is drained, keep-alive")
        c.close()
        self.assertIsNone(self.early_answer_then(port, 1001),
                          "limit 1000: a 1001-byte body closes the connection")
        self.assertIsNone(self.early_answer_then(port, 50000),
                          "limit 1000: a 50000-byte body closes the connection")

    def test_inactivity_timeout_s(self):
        slow = {"header_timeout_ms": 120000, "idle_timeout_ms": 120000}
        port = self.gateway({"limits": dict(slow, inactivity_timeout_s=1)})
        c = Conn(port, timeout=60)
        t0 = time.monotonic()
        self.assertFalse(c._fill(), "an idle connection is closed by the server")
        self.assertLess(time.monotonic() - t0, 50)
        c.close()
        # With the default (300 s) the same idle connection is still open
        # when the 1 s one would have been closed long ago.
        port = self.gateway({"limits": slow})
        c = Conn(port, timeout=5)
        with self.assertRaises(socket.timeout):
            c._fill()
        c.close()

    def windows_seen(self, config):
        rec = Recorder()
        self.addCleanup(rec.close)
        port = self.gateway(config, "http://127.0.0.1:%d" % rec.port)
        r = echo_call(port, {"grpc-timeout": "1S"})
        self.assertEqual(r.grpc_status()[0], 4)
        poll(lambda: 4 in rec.settings, what="the gateway's SETTINGS")
        return rec.settings[4], rec.conn_window_updates

    def test_stream_and_connection_window(self):
        stream, conn = self.windows_seen({})
        self.assertEqual((stream, conn + 65535), (262144, 1048576))  # the documented defaults
        stream, conn = self.windows_seen({"upstream": {"stream_window": 131072,
                                                       "connection_window": 3000000}})
        self.assertEqual((stream, conn + 65535), (131072, 3000000))

    def cookie_header_growth(self, config):
        rec = Recorder()
        self.addCleanup(rec.close)
        port = self.gateway(config, "http://127.0.0.1:%d" % rec.port)
        sizes = []
        # The first call fills HPACK's dynamic table: compare the 2nd and 3rd.
        for cookie in (None, None, "k=" + "Zq9x" * 60):
            n = len(rec.header_blocks)
            echo_call(port, dict({"grpc-timeout": "1S"}, **({"Cookie": cookie} if cookie else {})))
            poll(lambda: len(rec.header_blocks) > n, what="the call's HEADERS")
            sizes.append(rec.header_blocks[-1])
        return sizes[2] - sizes[1]

    def test_forward_cookies(self):
        # A 242-byte cookie adds at least 150 bytes to the HEADERS block
        # (Huffman codes letters and digits in 5 to 7 bits) when forwarded.
        self.assertLess(abs(self.cookie_header_growth({})), 20)
        self.assertGreater(self.cookie_header_growth({"forward_cookies": True}), 150)

    def test_reflect_timeout_ms(self):
        # A backend that accepts and never answers: reflection at start can
        # only end by its timeout. 500 ms instead of the default 10 s.
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        self.addCleanup(ls.close)
        cfg = os.path.join(P.tmp, "reflect.json")
        with open(cfg, "w") as f:
            json.dump({"reflect": True, "reflect_timeout_ms": 500}, f)
        t0 = time.monotonic()
        r = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--workers", "1",
                            "--backend", "http://127.0.0.1:%d" % ls.getsockname()[1],
                            "--config", cfg], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("failed: DEADLINE_EXCEEDED", r.stderr)
        self.assertLess(took, 8, "gave up after %.1f s: the 10 s default, not 500 ms" % took)


if __name__ == "__main__":
    unittest.main(verbosity=2)
