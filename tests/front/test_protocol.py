"""Protocol tests with raw sockets for what a gRPC-Web library would never
send: malformed frames, bad base64, oversized bodies and headers, ambiguous
framing, slow and vanishing clients; plus CORS and keep-alive. Each case
checks the exact status the docs promise and that the gateway keeps serving.
Runs the real `grpcgate serve` against the real demo service on loopback."""
import base64
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import (Conn, Procs, frame, grpcweb, pb_string, pb_varint,  # noqa: E402
                    request)

ECHO = "/demo.v1.EchoService/Echo"
DOWNLOAD = "/demo.v1.EchoService/Download"
ORIGIN = "https://app.example"

CONFIG = {
    "limits": {
        "max_body_bytes": 65536,
        "max_message_bytes": 32768,
        "max_header_bytes": 8192,
        "max_header_count": 40,
        "header_timeout_ms": 1000,
        "idle_timeout_ms": 1500,
    },
    "cors": {
        "allowed_origins": [ORIGIN],
        "allowed_headers": ["x-demo-trace"],
        "exposed_headers": ["x-custom-exposed"],
        "allow_credentials": True,
        "max_age_s": 123,
    },
}

P = None
DEMO = None
DEMO_PORT = None
GW = None
PORT = 0


def setUpModule():
    global P, DEMO, GW, PORT, DEMO_PORT
    P = Procs()
    DEMO, url = P.demo()
    DEMO_PORT = url.rsplit(":", 1)[1]
    GW, PORT = P.gateway(url, CONFIG)


def tearDownModule():
    try:
        if GW is not None:
            assert P.stop(GW) == 0, "serve exits 0 on SIGTERM: " + P.stderr(GW)[-2000:]
    finally:
        P.stop_all()


def echo_ok(test, conn=None):
    return echo_ok_port(test, PORT, conn)


def echo_ok_port(test, port, conn=None):
    r = grpcweb(port, ECHO, frame(pb_string(1, "still here")), conn=conn)
    test.assertEqual(r.status, 200)
    test.assertEqual(r.frames()[0], (0, pb_string(1, "still here")))
    test.assertEqual(r.grpc_status(), (0, None))
    return r


class GrpcWebErrors(unittest.TestCase):
    """Gateway-side failures answer in gRPC-Web form: HTTP 200 + grpc-status."""

    def test_table(self):
        big_frame = frame(b"x" * 40000)
        cases = [
            # name, body, text, want code, substring of grpc-message
            ("unknown flag bits", b"\x02\0\0\0\0", False, 3, "unknown flag bits"),
            ("trailer flag in request", b"\x80\0\0\0\0", False, 3, "trailer frame"),
            ("compressed without encoding", b"\x01\0\0\0\0", False, 3, "grpc-encoding"),
            ("length prefix beyond body", b"\0\0\0\0\x10abc", False, 3,
             "13 bytes before the end"),
            ("cut frame header", b"\0\0\0", False, 3, "inside the 5-byte"),
            ("message over the limit", big_frame, False, 8, "exceeds the limit of 32768"),
            ("bad base64", b"AA!A", True, 3, "invalid base64"),
            ("base64 data after padding", b"AA=A", True, 3, "invalid base64"),
            ("base64 of a truncated frame", base64.b64encode(b"\0\0\0\0\x09ab"), True, 3,
             "before the end"),
        ]
        for name, body, text, code, msg in cases:
            with self.subTest(name):
                r = grpcweb(PORT, ECHO, body, text=text)
                self.assertEqual(r.status, 200)
                got_code, got_msg = r.grpc_status()
                self.assertEqual(got_code, code, got_msg)
                self.assertIn(msg, got_msg or "")
                want_ct = ("application/grpc-web-text+proto" if text
                           else "application/grpc-web+proto")
                self.assertEqual(r.header("content-type"), want_ct)
        echo_ok(self)

    def test_unknown_method(self):
        r = grpcweb(PORT, "/demo.v1.EchoService/NoSuch", frame(b""))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.grpc_status(), (12, "unknown method /demo.v1.EchoService/NoSuch"))
        self.assertEqual(r.body, b"")
        r = grpcweb(PORT, "/no.Such/Service", frame(b""))
        self.assertEqual(r.grpc_status()[0], 12)

    def test_body_over_limit_declared(self):
        # Content-Length above the limit: answered before reading the body.
        c = Conn(PORT)
        c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: 100000\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        code, msg = r.grpc_status()
        self.assertEqual(code, 8)
        self.assertIn("exceeds the limit of 65536", msg)
        self.assertTrue(r.closed)
        c.close()
        echo_ok(self)

    def test_body_over_limit_chunked(self):
        # No length up front: counted while streaming, then RESOURCE_EXHAUSTED.
        # A client-streaming method with valid users: the backend answers
        # only at the end of the stream, after the body passed the limit.
        body = frame(pb_string(2, "y" * 29980) + pb_string(3, "a@example.com")) * 3
        c = Conn(PORT)
        c.send(b"POST /demo.v1.UserService/CreateUsers HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 8192):
            part = body[i:i + 8192]
            c.send(b"%x\r\n" % len(part) + part + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.status, 200)
        code, msg = r.grpc_status()
        self.assertEqual(code, 8, msg)
        self.assertIn("exceeds the limit of 65536", msg)
        c.close()
        echo_ok(self)


class HttpHygiene(unittest.TestCase):

    def raw(self, head):
        c = Conn(PORT)
        c.send(head)
        r = c.read_response()
        closed = c.closed_by_peer(10)
        c.close()
        return r, closed

    def test_table(self):
        body = frame(pb_string(1, "x"))
        cl_te = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" % len(body) + b"%x\r\n" % len(body)
                 + body + b"\r\n0\r\n\r\n")
        te_gzip = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/grpc-web\r\nTransfer-Encoding: gzip\r\n\r\n")
        te_twice = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/grpc-web\r\nTransfer-Encoding: chunked\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
        too_many = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n" + many +
                    b"Content-Type: application/grpc-web\r\nContent-Length: 0\r\n\r\n")
        huge = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
                b"\r\nContent-Type: application/grpc-web\r\nContent-Length: 0\r\n\r\n")
        cases = [
            # name, request, status, must close
            ("Content-Length and Transfer-Encoding", cl_te, 400, True),
            ("Transfer-Encoding gzip", te_gzip, 400, True),
            ("Transfer-Encoding twice", te_twice, 400, True),
            ("too many header fields", too_many, 431, True),
            ("header block over the limit", huge, 431, True),
        ]
        for name, req, status, must_close in cases:
            with self.subTest(name):
                r, closed = self.raw(req)
                self.assertEqual(r.status, status)
                if must_close:
                    self.assertTrue(closed, "connection closed after the answer")
        echo_ok(self)

    def test_wrong_content_type(self):
        for ct in ("application/json", "text/plain", "application/grpc"):
            with self.subTest(ct):
                r = request(PORT, "POST", ECHO, frame(b""), {"Content-Type": ct})
                self.assertEqual(r.status, 415)
        r = request(PORT, "POST", ECHO, frame(b""),
                    {"Content-Type": "application/grpc-web+thrift"})
        self.assertEqual(r.status, 415)
        r = request(PORT, "GET", ECHO, b"", {"Content-Type": "application/grpc-web"})
        self.assertEqual(r.status, 405)
        r = request(PORT, "GET", "/nothing/here", b"")
        self.assertEqual(r.status, 404)

    def test_keep_alive(self):
        c = Conn(PORT)
        for _ in range(3):
            r = echo_ok(self, conn=c)
            self.assertFalse(r.closed)
        c.close()

    def test_pipelined_requests(self):
        body = frame(pb_string(1, "pipe"))
        one = (b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body)
        c = Conn(PORT)
        c.send(one * 3)
        for _ in range(3):
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.frames()[0], (0, pb_string(1, "pipe")))
        c.close()

    def test_idle_keep_alive_closed(self):
        c = Conn(PORT)
        echo_ok(self, conn=c)
        t0 = time.monotonic()
        self.assertTrue(c.closed_by_peer(15), "idle keep-alive connection closed")
        self.assertGreater(time.monotonic() - t0, 0.5)
        c.close()

    def test_slowloris(self):
        c = Conn(PORT)
        c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = False
        # One byte every 100 ms: never idle, never complete.
        while time.monotonic() - t0 < 15:
            try:
                c.send(b"X")
            except OSError:
                closed = True
                break
            c.s.settimeout(0.1)
            try:
                if c.s.recv(4096) == b"":
                    closed = True
                    break
            except (socket.timeout, TimeoutError):
                pass
            except ConnectionResetError:
                closed = True
                break
        self.assertTrue(closed, "slowloris connection closed at the header timeout")
        c.close()
        echo_ok(self)


class Disconnect(unittest.TestCase):

    def test_client_vanishes_mid_stream(self):
        req = frame(pb_varint(1, 1 << 30) + pb_varint(2, 16384))  # 1 GiB download
        c = Conn(PORT)
        c.send(b"POST " + DOWNLOAD.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(req)
               + req)
        got = 0
        while got < 256 * 1024:
            d = c.s.recv(65536)
            self.assertTrue(d)
            got += len(d)
        before = P.stderr(DEMO).count("cancelled by client")
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        c.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if P.stderr(DEMO).count("cancelled by client") > before:
                break
            time.sleep(0.05)
        self.assertGreater(P.stderr(DEMO).count("cancelled by client"), before,
                           "the backend saw the cancellation")
        echo_ok(self)

    def test_client_vanishes_while_waiting(self):
        # A slow unary call: the connection is suspended when the client leaves.
        req = frame(pb_string(1, "slow") + pb_string(3, pb_varint(1, 5)))  # delay 5 s
        c = Conn(PORT)
        before = P.stderr(DEMO).count("cancelled by client")
        c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(req)
               + req)
        time.sleep(0.3)
        c.close()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if P.stderr(DEMO).count("cancelled by client") > before:
                break
            time.sleep(0.05)
        self.assertGreater(P.stderr(DEMO).count("cancelled by client"), before,
                           "cancelled before the backend's 5 s delay ran out")


class Cors(unittest.TestCase):

    def test_preflight_allowed(self):
        r = request(PORT, "OPTIONS", ECHO, b"", {
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-grpc-web,x-demo-trace",
            "Content-Length": None})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        self.assertEqual(r.header("access-control-allow-methods"), "POST, OPTIONS")
        allowed = [h.strip() for h in r.header("access-control-allow-headers").split(",")]
        for h in ("content-type", "x-grpc-web", "x-user-agent", "grpc-timeout", "x-demo-trace"):
            self.assertIn(h, allowed)
        self.assertEqual(r.header("access-control-max-age"), "123")
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        self.assertEqual(r.header("vary"), "Origin")

    def test_preflight_disallowed(self):
        r = request(PORT, "OPTIONS", ECHO, b"", {
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
            "Content-Length": None})
        self.assertEqual(r.status, 403)
        self.assertEqual([k for k in r.headers if k.startswith("access-control-")], [])

    def test_actual_response_exposes_headers(self):
        r = grpcweb(PORT, ECHO, frame(pb_string(1, "cors")),
                    headers={"Origin": ORIGIN, "x-demo-trace": "t-1"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        self.assertEqual(r.header("access-control-allow-credentials"), "true")
        exposed = [h.strip() for h in r.header("access-control-expose-headers").split(",")]
        for h in ("grpc-status", "grpc-message", "grpc-status-details-bin", "x-demo-trace",
                  "x-custom-exposed"):
            self.assertIn(h, exposed)
        self.assertEqual(r.header("x-demo-trace"), "t-1")
        self.assertEqual(r.trailers()["x-demo-trace-trailer"], "t-1")
        # Trailers-Only errors carry them too.
        r = grpcweb(PORT, "/demo.v1.EchoService/NoSuch", frame(b""), headers={"Origin": ORIGIN})
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        self.assertIn("grpc-status", r.header("access-control-expose-headers"))

    def test_disallowed_origin_gets_no_cors_headers(self):
        r = grpcweb(PORT, ECHO, frame(pb_string(1, "x")), headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertEqual([k for k in r.headers if k.startswith("access-control-")], [])


class TextMode(unittest.TestCase):

    def test_padded_chunks_both_ways(self):
        f = frame(pb_string(1, "abc") + pb_varint(2, 7))
        body = base64.b64encode(f[:4]) + base64.b64encode(f[4:])  # two padded chunks
        self.assertIn(b"=", body[:8])
        r = grpcweb(PORT, ECHO, body, text=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/grpc-web-text+proto")
        raw = b"".join(base64.b64decode(r.body[i:i + 4]) for i in range(0, len(r.body), 4))
        self.assertEqual(raw[:5 + len(f) - 5], f)
        self.assertIn(b"grpc-status: 0\r\n", raw)


class ForwardedHeaders(unittest.TestCase):
    """Backend metadata libmicrohttpd cannot carry (an empty value) is left
    out; the call is still answered, with the rest of the metadata."""

    def test_empty_metadata_value(self):
        md = {"x-demo-a": "", "x-demo-b": "kept"}
        fail = frame(pb_varint(1, 7) + pb_string(2, "nope"))
        cases = [
            # name, path, body, want status, want first data frame
            ("unary", ECHO, frame(pb_string(1, "hi")), 0, pb_string(1, "hi")),
            ("trailers-only", "/demo.v1.EchoService/Fail", fail, 7, None),
            ("stream", DOWNLOAD, frame(pb_varint(1, 10) + pb_varint(2, 10)), 0, None),
        ]
        for name, path, body, code, first in cases:
            with self.subTest(name):
                r = grpcweb(PORT, path, body, headers=md)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.grpc_status()[0], code)
                self.assertIsNone(r.header("x-demo-a"))
                self.assertEqual(r.header("x-demo-b"), "kept")
                if first is not None:
                    self.assertEqual(r.frames()[0], (0, first))
        echo_ok(self)


class RequestMetadata(unittest.TestCase):
    """Request headers become metadata only when they are valid gRPC
    metadata (the rule REST applies too): an entry with a value outside
    printable ASCII is left out, the call still runs with the rest."""

    def test_invalid_values_left_out(self):
        md = {"x-demo-ok": "plain", "x-demo-accent": "caf\u00e9", "x-demo-tab": "a\tb"}
        r = grpcweb(PORT, ECHO, frame(pb_string(1, "md")), headers=md)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.grpc_status()[0], 0)
        self.assertEqual(r.header("x-demo-ok"), "plain")
        self.assertIsNone(r.header("x-demo-accent"))
        self.assertIsNone(r.header("x-demo-tab"))
        self.assertEqual(r.frames()[0], (0, pb_string(1, "md")))


def stalled_backend():
    """An HTTP/2 server that settles the connection (SETTINGS, PING acks)
    but never reads a stream: no WINDOW_UPDATE, no HEADERS. The gateway can
    write one initial window (64 KiB) of request body, then must wait.
    Returns (port, stop)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    conns = []

    def serve(c):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
                if buf.startswith(b"PRI * HTTP/2.0"):
                    buf = buf[24:]
                while len(buf) >= 9:
                    n = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + n:
                        break
                    typ, flags, payload = buf[3], buf[4], buf[9:9 + n]
                    buf = buf[9 + n:]
                    if typ == 4 and not flags & 1:
                        c.sendall(b"\0\0\0\x04\x01\0\0\0\0")
                    elif typ == 6 and not flags & 1:
                        c.sendall(b"\0\0\x08\x06\x01\0\0\0\0" + payload)
        except OSError:
            return

    def accept():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            conns.append(c)
            c.sendall(b"\0\0\0\x04\0\0\0\0\0")  # our (empty) SETTINGS
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    def stop():
        ls.close()
        for c in conns:
            c.close()
    return ls.getsockname()[1], stop


class PausedUpload(unittest.TestCase):

    def test_deadline_while_body_paused(self):
        # The backend takes no request bytes: the gateway pauses the client's
        # upload. The deadline fires meanwhile; its answer must still reach
        # the client (the rest of the body is read and dropped).
        port, stop = stalled_backend()
        gw, gport = P.gateway("http://127.0.0.1:%d" % port, workers=1)
        try:
            body = frame(pb_string(2, "u" * 20000)) * 20
            c = Conn(gport, timeout=20)
            c.send(b"POST /demo.v1.UserService/CreateUsers HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/grpc-web\r\ngrpc-timeout: 1S\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body))
            sender = threading.Thread(target=lambda: c.s.sendall(body), daemon=True)
            sender.start()
            r = c.read_response()
            sender.join(20)
            c.close()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.grpc_status()[0], 4)
        finally:
            P.stop(gw)
            stop()


class Deadline(unittest.TestCase):

    def test_zero_timeout_is_expired(self):
        # 0S is a deadline already passed, not "no deadline".
        req = frame(pb_string(1, "slow") + pb_string(3, pb_varint(1, 5)))
        t0 = time.monotonic()
        r = grpcweb(PORT, ECHO, req, headers={"grpc-timeout": "0S"})
        self.assertLess(time.monotonic() - t0, 4.5)
        self.assertEqual(r.grpc_status()[0], 4)

    def test_grpc_timeout(self):
        req = frame(pb_string(1, "slow") + pb_string(3, pb_varint(1, 5)))
        t0 = time.monotonic()
        r = grpcweb(PORT, ECHO, req, headers={"grpc-timeout": "200m"})
        self.assertLess(time.monotonic() - t0, 4.5)
        self.assertEqual(r.grpc_status()[0], 4)

    def test_bad_grpc_timeout(self):
        r = grpcweb(PORT, ECHO, frame(b""), headers={"grpc-timeout": "soon"})
        code, msg = r.grpc_status()
        self.assertEqual(code, 3)
        self.assertIn("grpc-timeout", msg)


class Curl(unittest.TestCase):
    """The same answers through curl, the client people debug with."""

    def curl(self, *args, data=None):
        p = subprocess.run(["curl", "-sS", "-i", "--max-time", "20"] + list(args),
                           input=data, capture_output=True, check=True)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return status, headers, body

    def test_table(self):
        url = "http://127.0.0.1:%d" % PORT
        ok_body = frame(pb_string(1, "curl"))
        cases = [
            # args, stdin, status, headers that must match
            (["-H", "Content-Type: application/grpc-web", "--data-binary", "@-", url + ECHO],
             ok_body, 200, {"content-type": "application/grpc-web+proto"}),
            (["-H", "Content-Type: application/grpc-web", "--data-binary", "@-",
              url + "/demo.v1.EchoService/Missing"], ok_body, 200, {"grpc-status": "12"}),
            (["-H", "Content-Type: application/grpc-web", "--data-binary", "@-", url + ECHO],
             b"\0\0\0\0\x10abc", 200, {"grpc-status": "3"}),
            (["-H", "Content-Type: application/json", "--data-binary", "@-", url + ECHO],
             b"{}", 415, {}),
            (["-X", "OPTIONS", "-H", "Origin: " + ORIGIN, "-H",
              "Access-Control-Request-Method: POST", url + ECHO], None, 204,
             {"access-control-allow-origin": ORIGIN}),
        ]
        for args, data, status, want in cases:
            with self.subTest(" ".join(args[-1:])):
                got_status, headers, body = self.curl(*args, data=data)
                self.assertEqual(got_status, status, body)
                for k, v in want.items():
                    self.assertEqual(headers.get(k), v)
        _, _, body = self.curl("-H", "Content-Type: application/grpc-web", "--data-binary", "@-",
                               url + ECHO, data=ok_body)
        self.assertEqual(body, ok_body + frame(b"grpc-status: 0\r\n", 0x80))


def active_calls(port):
    """grpcgate_active_calls from the gateway's GET /metrics."""
    r = request(port, "GET", "/metrics")
    m = re.search(rb"^grpcgate_active_calls (\d+)$", r.body, re.M)
    if r.status != 200 or not m:
        raise AssertionError("no grpcgate_active_calls in /metrics: %d %r" % (r.status, r.body[:300]))
    return int(m.group(1))


def wait_active_calls(test, port, n, timeout=30):
    """Polls /metrics until at least n calls are in progress (generous deadline:
    the machine may be loaded); fails the test if that never happens."""
    deadline = time.monotonic() + timeout
    while True:
        got = active_calls(port)
        if got >= n:
            return
        if time.monotonic() > deadline:
            test.fail("%d call(s) in progress after %d s, expected %d" % (got, timeout, n))
        time.sleep(0.05)


def no_data_for(conn, seconds):
    """True when nothing arrives on conn for that long (the peer holds it back)."""
    conn.s.settimeout(seconds)
    try:
        d = conn.s.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        return True
    finally:
        conn.s.settimeout(30)
    return False


def has_data_now(conn):
    """True when a byte (or EOF) is already waiting on conn."""
    conn.s.setblocking(False)
    try:
        conn.s.recv(1, socket.MSG_PEEK)
        return True
    except BlockingIOError:
        return False
    finally:
        conn.s.setblocking(True)
        conn.s.settimeout(30)


class OwnGateway(unittest.TestCase):
    """Cases that need a gateway of their own (one worker, small limits)."""

    def setUp(self):
        self.gw, self.port = P.gateway(
            "http://127.0.0.1:" + DEMO_PORT,
            {"drain_timeout_ms": 5000, "limits": {"max_connections_per_ip": 3}}, workers=1)

    def tearDown(self):
        P.stop(self.gw)

    def test_per_ip_connection_limit(self):
        # Two workers share one count: the limit holds for the process,
        # whichever worker the kernel hands each connection to.
        P.stop(self.gw)
        self.gw, self.port = P.gateway(
            "http://127.0.0.1:" + DEMO_PORT, {"limits": {"max_connections_per_ip": 3}},
            workers=2)
        conns = [Conn(self.port) for _ in range(3)]
        for c in conns:
            r = grpcweb(self.port, ECHO, frame(pb_string(1, "a")), conn=c)
            self.assertEqual(r.status, 200)
        for _ in range(4):
            extra = Conn(self.port)
            self.assertTrue(extra.closed_by_peer(10), "a 4th connection from one IP is refused")
            extra.close()
        conns.pop().close()
        # Once the gateway has seen the close, a new connection is accepted.
        deadline = time.monotonic() + 10
        while True:
            try:
                r = grpcweb(self.port, ECHO, frame(pb_string(1, "b")))
                break
            except (EOFError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(r.status, 200)
        for c in conns:
            c.close()

    def test_large_upload_streams_with_backpressure(self):
        # 3 MB of client-streamed users, far more than the upstream's 64 KiB
        # request buffer: the body is forwarded as it arrives, the
        # connection is suspended whenever the backend is behind, and every
        # message arrives (binary and text mode).
        user = pb_string(2, "u" * 15000) + pb_string(3, "u@example.com")
        body = frame(user) * 200
        for text in (False, True):
            with self.subTest(text=text):
                data = base64.b64encode(body) if text else body
                c = Conn(self.port, timeout=60)
                ct = b"application/grpc-web-text" if text else b"application/grpc-web"
                c.send(b"POST /demo.v1.UserService/CreateUsers HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: " + ct + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(0, len(data), 50000):
                    part = data[i:i + 50000]
                    c.send(b"%x\r\n" % len(part) + part + b"\r\n")
                c.send(b"0\r\n\r\n")
                r = c.read_response()
                c.close()
                raw = r.body
                if text:
                    raw = b"".join(base64.b64decode(raw[i:i + 4]) for i in range(0, len(raw), 4))
                r.body = raw
                self.assertEqual(r.grpc_status(), (0, None))
                summary = [p for f, p in r.frames() if f == 0][0]
                self.assertEqual(summary[:3], pb_varint(1, 200))

    def test_graceful_stop_drains_calls(self):
        # A call that takes 3 s is in flight when SIGTERM arrives: it still
        # completes, new connections are refused, and the exit status is 0.
        req = frame(pb_string(1, "drain") + pb_string(3, pb_varint(1, 3)))
        c = Conn(self.port)
        c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(req)
               + req)
        wait_active_calls(self, self.port, 1)  # the race is set up: the call is in flight
        self.gw.send_signal(signal.SIGTERM)
        # Draining: the listening socket closes (polled, generous deadline)...
        deadline = time.monotonic() + 20
        while True:
            try:
                Conn(self.port, timeout=5).close()
            except OSError:
                break
            self.assertLess(time.monotonic(), deadline, "listener still open 20 s after SIGTERM")
            time.sleep(0.05)
        # ...while the call is still in flight (else this proves nothing).
        self.assertFalse(has_data_now(c), "the call ended before the listener closed")
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.frames()[0], (0, pb_string(1, "drain")))
        self.assertEqual(r.grpc_status()[0], 0)
        self.assertEqual(self.gw.wait(20), 0)

    def test_connection_limit_frees_a_slot(self):
        # At the connection limit a new client waits in the backlog; when
        # one connection closes it must be served promptly (libmicrohttpd
        # re-arms the listen socket only on its next run).
        # idle_park_ms 0: an idle keep-alive connection stays in libmicrohttpd
        # and in its count (a parked one is outside it, docs/front.md).
        gw, port = P.gateway("http://127.0.0.1:" + DEMO_PORT,
                             {"limits": {"max_connections": 2, "idle_park_ms": 0}}, workers=1)
        try:
            held = [Conn(port) for _ in range(2)]
            for c in held:
                echo_ok_port(self, port, c)
            waiting = Conn(port, timeout=30)
            req = frame(pb_string(1, "third"))
            waiting.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n"
                         % len(req) + req)
            # The limit holds: the third client gets nothing while two are open
            # (with the limit ignored it would be answered at once).
            self.assertTrue(no_data_for(waiting, 2.0), "a third connection was served at the limit of 2")
            held.pop().close()
            t0 = time.monotonic()
            r = waiting.read_response()
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, 20)
            waiting.close()
            for c in held:
                c.close()
        finally:
            self.assertEqual(P.stop(gw), 0)

    def test_cors_wildcard(self):
        gw, port = P.gateway("http://127.0.0.1:" + DEMO_PORT,
                             {"cors": {"allowed_origins": ["*"]}}, workers=1)
        try:
            r = request(port, "OPTIONS", ECHO, b"", {
                "Origin": "https://any.example", "Access-Control-Request-Method": "POST",
                "Content-Length": None})
            self.assertEqual(r.status, 204)
            self.assertEqual(r.header("access-control-allow-origin"), "*")
            self.assertIsNone(r.header("access-control-allow-credentials"))
            r = grpcweb(port, ECHO, frame(pb_string(1, "w")), headers={"Origin": "https://x.example"})
            self.assertEqual(r.header("access-control-allow-origin"), "*")
            # No Origin: not a CORS request, no CORS headers.
            r = grpcweb(port, ECHO, frame(pb_string(1, "w")))
            self.assertIsNone(r.header("access-control-allow-origin"))
        finally:
            self.assertEqual(P.stop(gw), 0)

    def test_text_json(self):
        body = base64.b64encode(frame(b'{"message": "json in text", "number": "3"}'))
        r = grpcweb(self.port, ECHO, body, headers={"Content-Type": "application/grpc-web-text+json"})
        self.assertEqual(r.header("content-type"), "application/grpc-web-text+json")
        r.body = b"".join(base64.b64decode(r.body[i:i + 4]) for i in range(0, len(r.body), 4))
        self.assertEqual(r.frames()[0], (0, b'{"message":"json in text","number":"3"}'))
        self.assertEqual(r.grpc_status(), (0, None))
        bad = frame(b'{"message": 5}')
        r = grpcweb(self.port, ECHO, bad, headers={"Content-Type": "application/grpc-web+json"})
        code, msg = r.grpc_status()
        self.assertEqual(code, 3, msg)
        self.assertIn("request message", msg)

    def test_json_frames_up_to_the_limit(self):
        # A +json message of exactly max_message bytes followed by another
        # one: reassembly holds one frame at a time, so both pass.
        def user(size):
            head, tail = '{"name":"', '","email":"u@x.org"}'
            return (head + "u" * (size - len(head) - len(tail)) + tail).encode()
        body = frame(user(32768)) + frame(user(100))
        r = grpcweb(PORT, "/demo.v1.UserService/CreateUsers", body,
                    headers={"Content-Type": "application/grpc-web+json"})
        self.assertEqual(r.grpc_status(), (0, None))
        self.assertEqual(r.frames()[0][1][:12], b'{"created":2')

    def test_drain_timeout_cancels(self):
        # A call longer than the drain timeout is cancelled at the timeout.
        gw, port = P.gateway("http://127.0.0.1:" + DEMO_PORT, {"drain_timeout_ms": 300},
                             workers=1)
        req = frame(pb_string(1, "long") + pb_string(3, pb_varint(1, 30)))
        c = Conn(port)
        before = P.stderr(DEMO).count("cancelled by client")
        c.send(b"POST " + ECHO.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/grpc-web\r\nContent-Length: %d\r\n\r\n" % len(req)
               + req)
        wait_active_calls(self, port, 1)  # in flight before the signal
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        self.assertEqual(gw.wait(20), 0)
        self.assertLess(time.monotonic() - t0, 15)
        c.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                P.stderr(DEMO).count("cancelled by client") <= before:
            time.sleep(0.05)
        self.assertGreater(P.stderr(DEMO).count("cancelled by client"), before)


if __name__ == "__main__":
    unittest.main(verbosity=1)
