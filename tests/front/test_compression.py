"""Response compression end to end: `grpcgate serve` in front of the demo
service, spoken to with raw sockets (exact headers and bytes) and with
`curl --compressed`. A compressed answer must decompress to exactly the
bytes the same request gets without Accept-Encoding; streams must stay
streams (each message decodable when its chunk arrives, not at the end).
Every process started here is killed here."""
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import Conn, Procs, frame, grpcweb, pb_string, request  # noqa: E402

CURL = shutil.which("curl")
GZ = {"Accept-Encoding": "gzip"}
# A unary JSON answer well over min_bytes (1024): the demo echoes it.
BIG_MESSAGE = "the quick brown fox jumps over the lazy dog; " * 60
ECHO_BODY = json.dumps({"message": BIG_MESSAGE}).encode()
JSON = {"Content-Type": "application/json"}

P = None
GW = PORT = None          # defaults
GW_OFF = PORT_OFF = None  # compression.enabled = false
GW_CONF = PORT_CONF = None  # min_bytes 0, JSON only, level 1, a static dir
STATIC_PAGE = b"<!doctype html><p>" + b"static files go out with sendfile " * 200 + b"</p>\n"


def setUpModule():
    global P, GW, PORT, GW_OFF, PORT_OFF, GW_CONF, PORT_CONF
    P = Procs()
    _, url = P.demo()
    GW, PORT = P.gateway(url)
    GW_OFF, PORT_OFF = P.gateway(url, {"compression": {"enabled": False}})
    static = os.path.join(P.tmp, "www")
    os.mkdir(static)
    with open(os.path.join(static, "page.html"), "wb") as f:
        f.write(STATIC_PAGE)
    GW_CONF, PORT_CONF = P.gateway(url, {
        "static_dir": static,
        "compression": {"min_bytes": 0, "level": 1, "types": ["application/json"]}})


def tearDownModule():
    try:
        for p in (GW, GW_OFF, GW_CONF):
            if p is not None:
                # An ASan build exits non-zero on a leak (deflate states).
                assert P.stop(p) == 0, "serve exits 0 on SIGTERM: " + P.stderr(p)[-3000:]
    finally:
        P.stop_all()


def vary(r):
    return ",".join(r.headers.get("vary", [])).lower()


class Whole(unittest.TestCase):
    """Unary answers: compressed in one piece, Content-Length of the gzip."""

    def test_large_json_is_gzip(self):
        plain = request(PORT, "POST", "/v1/echo", ECHO_BODY, JSON)
        self.assertEqual(plain.status, 200)
        self.assertIsNone(plain.header("content-encoding"))
        self.assertGreater(len(plain.body), 2048)
        self.assertEqual(json.loads(plain.body)["message"], BIG_MESSAGE)
        # Compressible, so even the identity answer says it varies.
        self.assertIn("accept-encoding", vary(plain))
        for ae in ("gzip", "deflate, gzip;q=0.5", "*", "GZIP", "br;q=1, x-gzip;q=0.1"):
            r = request(PORT, "POST", "/v1/echo", ECHO_BODY,
                        dict(JSON, **{"Accept-Encoding": ae}))
            self.assertEqual(r.status, 200, ae)
            self.assertEqual(r.header("content-encoding"), "gzip", ae)
            self.assertEqual(r.header("content-type"), "application/json", ae)
            self.assertIn("accept-encoding", vary(r), ae)
            self.assertIsNone(r.header("transfer-encoding"), ae)
            self.assertEqual(int(r.header("content-length")), len(r.body), ae)
            self.assertLess(len(r.body), len(plain.body) // 4, ae)
            self.assertEqual(r.body[:2], b"\x1f\x8b", ae)
            self.assertEqual(gzip.decompress(r.body), plain.body, ae)

    def test_refused_or_absent_is_identity(self):
        plain = request(PORT, "POST", "/v1/echo", ECHO_BODY, JSON)
        for ae in (None, "", "identity", "gzip;q=0", "*;q=0", "br, deflate", "gzip;q=2",
                   "*, gzip;q=0"):
            r = request(PORT, "POST", "/v1/echo", ECHO_BODY,
                        dict(JSON, **{"Accept-Encoding": ae}))
            self.assertEqual(r.status, 200, ae)
            self.assertIsNone(r.header("content-encoding"), ae)
            self.assertEqual(r.body, plain.body, ae)
            self.assertIn("accept-encoding", vary(r), ae)

    def test_small_is_identity(self):
        r = request(PORT, "GET", "/v1/users/1", headers=GZ)
        self.assertEqual(r.status, 200)
        self.assertLess(len(r.body), 1024)
        self.assertIsNone(r.header("content-encoding"))
        self.assertNotIn("accept-encoding", vary(r))
        self.assertEqual(json.loads(r.body)["name"], "Ada Lovelace")
        # An error body is small too.
        r = request(PORT, "GET", "/v1/nothing", headers=GZ)
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("content-encoding"))

    def test_curl_compressed(self):
        plain = request(PORT, "POST", "/v1/echo", ECHO_BODY, JSON).body
        out = subprocess.run(
            [CURL, "-sS", "--compressed", "-D", "-", "--max-time", "60", "-H",
             "Content-Type: application/json", "--data-binary", ECHO_BODY,
             "http://127.0.0.1:%d/v1/echo" % PORT], capture_output=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nContent-Encoding: gzip", head)
        self.assertEqual(body, plain)

    def test_grpcweb_never(self):
        msg = pb_string(1, BIG_MESSAGE)
        for text in (False, True):
            r = grpcweb(PORT, "/demo.v1.EchoService/Echo", frame(msg), text=text, headers=GZ)
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("content-encoding"), text)
            self.assertNotIn("accept-encoding", vary(r))
            if not text:
                self.assertEqual(r.frames()[0], (0, msg))
                self.assertEqual(r.grpc_status(), (0, None))

    def test_switched_off(self):
        r = request(PORT_OFF, "POST", "/v1/echo", ECHO_BODY, dict(JSON, **GZ))
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("content-encoding"))
        self.assertNotIn("accept-encoding", vary(r))
        self.assertEqual(json.loads(r.body)["message"], BIG_MESSAGE)
        r = request(PORT_OFF, "GET", "/v1/users?page_size=2", headers=GZ)
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(len(r.body.split(b"\n")), 3)

    def test_configured_min_bytes_and_types(self):
        # min_bytes 0: even a small JSON answer is compressed.
        plain = request(PORT_CONF, "GET", "/v1/users/1")
        r = request(PORT_CONF, "GET", "/v1/users/1", headers=GZ)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), plain.body)
        # ... but not a type off the list: the SVG avatar (HttpBody), a
        # text/plain answer, and never a static file (sendfile).
        r = request(PORT_CONF, "GET", "/v1/users/1/avatar", headers=GZ)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "image/svg+xml")
        self.assertIsNone(r.header("content-encoding"))
        self.assertTrue(r.body.startswith(b"<svg"))
        r = request(PORT_CONF, "GET", "/page.html", headers=GZ)
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.body, STATIC_PAGE)
        # With the defaults, a large HTML HttpBody-like text answer would
        # compress; the static file still does not.
        r = request(PORT, "GET", "/v1/users/1/avatar", headers=GZ)
        self.assertIsNone(r.header("content-encoding"))

    def test_keep_alive_after_gzip(self):
        c = Conn(PORT)
        try:
            for _ in range(3):
                c.send(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % len(ECHO_BODY) + ECHO_BODY)
                r = c.read_response()
                self.assertEqual(r.header("content-encoding"), "gzip")
                self.assertEqual(json.loads(gzip.decompress(r.body))["message"], BIG_MESSAGE)
                self.assertFalse(r.closed)
        finally:
            c.close()


def raw_chunks(port, path, headers):
    """GET over a socket; returns (head lines, [(arrival time, chunk bytes)])
    with the chunked framing removed."""
    c = Conn(port, timeout=60)
    try:
        c.send(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
            path, "".join("%s: %s\r\n" % kv for kv in headers.items()))).encode())
        status = int(c._line().split(b" ")[1])
        head = {}
        while True:
            line = c._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            head.setdefault(k.strip().lower(), []).append(v.strip())
        chunks = []
        while True:
            n = int(c._line().split(b";")[0], 16)
            if n == 0:
                while c._line():
                    pass
                break
            chunks.append((time.monotonic(), c._take(n)))
            c._take(2)
        return status, head, chunks
    finally:
        c.close()


class Streams(unittest.TestCase):
    """NDJSON and SSE: gzip with a sync flush per message."""

    def check_stream(self, accept, sep):
        path = "/v1/users?page_size=3&delay=0.5s"
        plain = request(PORT, "GET", path, headers={"Accept": accept}).body
        status, head, chunks = raw_chunks(PORT, path, {"Accept-Encoding": "gzip",
                                                       "Accept": accept})
        self.assertEqual(status, 200)
        self.assertEqual(head.get("content-encoding"), ["gzip"])
        self.assertIn("accept-encoding", ",".join(head.get("vary", [])).lower())
        self.assertEqual(head.get("transfer-encoding"), ["chunked"])
        self.assertNotIn("content-length", head)
        # Each message is decodable from the bytes that arrived so far.
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        seen, times = b"", []
        for t, data in chunks:
            seen += d.decompress(data)
            if seen.count(sep) > len(times):
                times.append(t)
        seen += d.flush()
        self.assertTrue(d.eof)
        self.assertEqual(seen, plain)
        self.assertEqual(len(times), 3, seen)
        self.assertGreaterEqual(times[2] - times[0], 0.8, times)
        self.assertGreaterEqual(times[1] - times[0], 0.4, times)

    def test_ndjson_one_by_one(self):
        self.check_stream("application/json", b"\n")

    def test_sse_one_by_one(self):
        self.check_stream("text/event-stream", b"\n\n")

    def check_curl_arrival(self, sse):
        args = [CURL, "-sS", "-N", "--compressed", "--max-time", "60",
                "http://127.0.0.1:%d/v1/users?page_size=3&delay=0.5s" % PORT]
        if sse:
            args += ["-H", "Accept: text/event-stream"]
        p = subprocess.Popen(args, stdout=subprocess.PIPE)
        times, lines = [], []
        try:
            for line in p.stdout:
                if line.strip():
                    times.append(time.monotonic())
                    lines.append(line)
        finally:
            p.stdout.close()
            p.wait(60)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(len(times), 3, lines)
        self.assertTrue(lines[0].startswith(b"data: {" if sse else b'{"result":{"id":"1"'))
        self.assertGreaterEqual(times[2] - times[0], 0.8, times)
        self.assertGreaterEqual(times[1] - times[0], 0.4, times)

    def test_curl_ndjson_one_by_one(self):
        self.check_curl_arrival(False)

    def test_curl_sse_one_by_one(self):
        self.check_curl_arrival(True)

    def test_large_stream_exact(self):
        # 2 MB of chunks (base64 in NDJSON): many flushes of 16 KiB pieces,
        # some deflate outputs larger than one MHD buffer.
        path = "/v1/download?total_bytes=2000000&chunk_size=65536"
        plain = request(PORT, "GET", path).body
        status, head, chunks = raw_chunks(PORT, path, GZ)
        self.assertEqual(status, 200)
        self.assertEqual(head.get("content-encoding"), ["gzip"])
        packed = b"".join(c for _, c in chunks)
        self.assertEqual(gzip.decompress(packed), plain)
        self.assertLess(len(packed), len(plain) // 2)
        self.assertEqual(len(plain.split(b"\n")), 32)  # 31 messages + ""

    def test_stream_error_line_compressed(self):
        path = "/v1/users?page_size=5&delay=0.4s&follow=true"
        status, head, chunks = raw_chunks(PORT, path, {"Accept-Encoding": "gzip",
                                                       "Grpc-Timeout": "600m"})
        self.assertEqual(status, 200)
        self.assertEqual(head.get("content-encoding"), ["gzip"])
        lines = gzip.decompress(b"".join(c for _, c in chunks)).decode().strip().split("\n")
        self.assertGreaterEqual(len(lines), 2)
        self.assertEqual(json.loads(lines[-1])["error"]["code"], 4)

    def test_empty_stream(self):
        # No message at all: a whole answer of nothing, never "compressed"
        # (not even with min_bytes 0: a gzip of nothing is 20 bytes).
        for port in (PORT, PORT_CONF):
            r = request(port, "GET", "/v1/download?total_bytes=0", headers=GZ)
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("content-encoding"))
            self.assertEqual(r.header("content-length"), "0")
            self.assertEqual(r.body, b"")

    def test_client_leaves_mid_stream(self):
        # The deflate state is freed when the client goes (the ASan build's
        # leak check at exit would fail tearDownModule otherwise).
        for _ in range(3):
            c = Conn(PORT, timeout=30)
            c.send(b"GET /v1/users?page_size=5&delay=0.3s&follow=true HTTP/1.1\r\nHost: x\r\n"
                   b"Accept-Encoding: gzip\r\n\r\n")
            while b"\r\n\r\n" not in c.buf:
                self.assertTrue(c._fill())
            self.assertIn(b"Content-Encoding: gzip", c.buf)
            c.close()
        # Still serving.
        r = request(PORT, "GET", "/v1/users?page_size=1", headers=GZ)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(json.loads(gzip.decompress(r.body))["result"]["id"], "1")


if __name__ == "__main__":
    unittest.main(verbosity=1)
