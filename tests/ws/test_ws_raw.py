"""WebSocket tests with raw sockets for what a WebSocket library would never
send: bad handshakes, unmasked and fragmented frames, oversized messages,
invalid UTF-8, ping floods, clients that never read or never answer pings.
Each case checks the exact answer docs/websocket.md promises (HTTP status,
gRPC status, close code) and that the gateway keeps serving. Runs the real
`grpcgate serve` against the real demo service on loopback."""
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "front"))
from gwtest import Procs, pb_string, pb_varint, rss_kib  # noqa: E402

ECHO = "/demo.v1.EchoService/Echo"
DOWNLOAD = "/demo.v1.EchoService/Download"
CHAT = "/demo.v1.UserService/Chat"
ORIGIN = "https://app.example"
MAX_MESSAGE = 32768
KEY = "dGhlIHNhbXBsZSBub25jZQ=="

CONFIG = {
    "limits": {"max_message_bytes": MAX_MESSAGE},
    "cors": {"allowed_origins": [ORIGIN]},
    "websocket": {"send_timeout_ms": 2000, "max_send_queue_bytes": 262144},
}
# A second gateway with short keepalive timers (they would cut the slower
# cases above short).
TIMERS = {
    "websocket": {"ping_interval_ms": 300, "pong_timeout_ms": 700, "idle_timeout_ms": 2500,
                  "header_timeout_ms": 1000},
}

# The ASan build keeps freed memory in quarantine: RSS bounds are checked in
# the normal build only.
SANITIZED = "build-asan" in os.environ.get("GW_GRPCGATE", "")

P = None
DEMO_URL = ""
PORT = 0
GW = None
TPORT = 0
BGW = None
BPORT = 0
WGW = None
WPORT = 0
KPORT = 0


def setUpModule():
    global P, PORT, GW, TPORT, BGW, BPORT, WGW, WPORT, KPORT, DEMO_URL
    P = Procs()
    _, url = P.demo()
    DEMO_URL = url
    GW, PORT = P.gateway(url, CONFIG)
    _, TPORT = P.gateway(url, TIMERS, workers=1)
    # Default WebSocket timers (the cases above shorten them).
    BGW, BPORT = P.gateway(url, {"limits": {"max_message_bytes": MAX_MESSAGE}, "websocket": json.loads(os.environ.get("GW_WS_BP", "{}"))}, workers=1)
    # A backend window far above GW_WS_SEND_HIGH: the call holds more
    # response bytes than the send queue takes at once.
    WGW, WPORT = P.gateway(url, {"limits": {"max_message_bytes": MAX_MESSAGE},
                                 "upstream": {"stream_window": 1 << 20,
                                              "connection_window": 2 << 20}}, workers=1)
    # Idle keep-alive connections parked and memory trimmed after 100 ms.
    _, KPORT = P.gateway(url, {"limits": {"idle_park_ms": 100, "idle_trim_ms": 100}},
                         workers=1)


def tearDownModule():
    try:
        if GW is not None:
            assert P.stop(GW) == 0, "serve exits 0 on SIGTERM: " + P.stderr(GW)[-2000:]
    finally:
        P.stop_all()


def ws_frame(op, payload, fin=True, mask=True, rsv=0):
    h = bytes([(0x80 if fin else 0) | rsv << 4 | op])
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        h += bytes([m | n])
    elif n < 65536:
        h += bytes([m | 126]) + struct.pack(">H", n)
    else:
        h += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        h += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return h + payload


def grpc_frame(msg, flag=0):
    return bytes([flag]) + struct.pack(">I", len(msg)) + msg


def data_msg(msg):
    return b"\x00" + grpc_frame(msg)


HEADERS = b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n"


class WS:
    """One raw WebSocket client connection."""

    def __init__(self, port, path, headers=None, extra=b"", timeout=15):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        h = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Protocol": "grpc-websockets"}
        method = "GET"
        for k, v in (headers or {}).items():
            if k == ":method":
                method = v
            elif v is None:
                h.pop(k, None)
            else:
                h[k] = v
        req = "%s %s HTTP/1.1\r\n" % (method, path) + "".join(
            "%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        self.s.sendall(req.encode() + extra)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and lines[0] else 0
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            # The body of a refusal (Content-Length).
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                d = self.s.recv(65536)
                if not d:
                    break
                self.buf += d
            self.body = self.buf[:n]

    def send(self, data):
        self.s.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError
            self.buf += d

    def frame(self):
        """(fin, opcode, payload) of the next server frame."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames are not masked"
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def until_close(self, answer_pings=True):
        """Binary payloads concatenated and the close code (None: no close
        frame before EOF)."""
        parts = []
        while True:
            try:
                fin, op, p = self.frame()
            except (EOFError, ConnectionResetError):
                return b"".join(parts), None
            if op == 2 or op == 0:
                parts.append(p)
            elif op == 9 and answer_pings:
                self.send(ws_frame(10, p))
            elif op == 8:
                code = struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
                try:
                    self.send(ws_frame(8, p[:2]))
                except OSError:
                    pass
                return b"".join(parts), code

    def close(self):
        self.s.close()


def grpc_web_frames(data):
    """[(flag, payload)] of a gRPC-Web byte stream."""
    out = []
    off = 0
    while len(data) - off >= 5:
        n = struct.unpack(">I", data[off + 1:off + 5])[0]
        out.append((data[off], data[off + 5:off + 5 + n]))
        off += 5 + n
    return out


def trailers(data):
    """Header blocks (flag 0x80) merged into a dict; the last one wins."""
    t = {}
    for flag, p in grpc_web_frames(data):
        if flag & 0x80:
            for ln in p.decode("latin1").split("\r\n"):
                if ":" in ln:
                    k, _, v = ln.partition(":")
                    t[k.strip()] = v.strip()
    return t


def echo_call(port, message="hi", path=ECHO, headers=None):
    ws = WS(port, path, headers)
    assert ws.status == 101, ws.status
    ws.send(ws_frame(2, HEADERS))
    ws.send(ws_frame(2, data_msg(pb_string(1, message))))
    ws.send(ws_frame(2, b"\x01"))
    data, code = ws.until_close()
    ws.close()
    return data, code


def active_calls(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        for ln in r.read().decode().splitlines():
            if ln.startswith("grpcgate_active_calls "):
                return int(ln.split()[1])
    return -1


def wait_for(what, f, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if f():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Handshake(unittest.TestCase):
    def refused(self, headers, status):
        ws = WS(PORT, ECHO, headers)
        self.assertEqual(ws.status, status, ws.headers)
        ws.close()
        return ws

    def test_good_and_accept_key(self):
        ws = WS(PORT, ECHO, {"Origin": ORIGIN})
        self.assertEqual(ws.status, 101)
        # RFC 6455 1.3's example key and answer.
        self.assertEqual(ws.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(ws.headers["sec-websocket-protocol"], "grpc-websockets")
        self.assertEqual(ws.headers["upgrade"].lower(), "websocket")
        ws.close()

    def test_missing_key(self):
        self.refused({"Sec-WebSocket-Key": None}, 400)

    def test_bad_keys(self):
        for key in ["short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ===",
                    "dGhlIHNhbXBsZSBub25jZXh4"]:
            self.refused({"Sec-WebSocket-Key": key}, 400)

    def test_wrong_version(self):
        for v in ["8", "12", "14", None]:
            ws = self.refused({"Sec-WebSocket-Version": v}, 426)
            self.assertEqual(ws.headers.get("sec-websocket-version"), "13")

    def test_unknown_subprotocol(self):
        self.refused({"Sec-WebSocket-Protocol": "chat"}, 400)
        self.refused({"Sec-WebSocket-Protocol": ""}, 400)
        # No subprotocol at all is JSON over WebSocket: accepted, and the
        # answer names none.
        ws = WS(PORT, ECHO, {"Sec-WebSocket-Protocol": None})
        self.assertEqual(ws.status, 101)
        self.assertNotIn("sec-websocket-protocol", ws.headers)
        ws.close()
        self.refused({"Sec-WebSocket-Protocol": "grpc-websocket"}, 400)
        ws = WS(PORT, ECHO, {"Sec-WebSocket-Protocol": "chat, grpc-websockets"})
        self.assertEqual(ws.status, 101)
        self.assertEqual(ws.headers["sec-websocket-protocol"], "grpc-websockets")
        ws.close()

    def test_disallowed_origin(self):
        self.refused({"Origin": "https://evil.example"}, 403)
        self.refused({"Origin": ORIGIN + ".evil"}, 403)
        self.refused({"Origin": "null"}, 403)
        # A page of the gateway's own origin (the web demo) needs no CORS.
        ws = WS(PORT, ECHO, {"Origin": "http://127.0.0.1:%d" % PORT, "Host": "127.0.0.1:%d" % PORT})
        self.assertEqual(ws.status, 101)
        ws.close()
        self.refused({"Origin": "http://127.0.0.1:%d" % (PORT + 1),
                      "Host": "127.0.0.1:%d" % PORT}, 403)

    def test_not_get(self):
        self.refused({":method": "POST", "Content-Length": "0"}, 400)

    def test_missing_connection_upgrade(self):
        self.refused({"Connection": "keep-alive"}, 400)

    def test_still_serving(self):
        data, code = echo_call(PORT, "after the refusals")
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        self.assertEqual(code, 1000)


class Frames(unittest.TestCase):
    def test_echo_and_early_data(self):
        # The header block and the message in the same write as the
        # handshake: read by libmicrohttpd with the head, handed over.
        early = ws_frame(2, HEADERS) + ws_frame(2, data_msg(pb_string(1, "early"))) + \
            ws_frame(2, b"\x01")
        ws = WS(PORT, ECHO, extra=early)
        self.assertEqual(ws.status, 101)
        data, code = ws.until_close()
        frames = grpc_web_frames(data)
        self.assertEqual(frames[0][0], 0x80, "the header block first")
        self.assertIn(b"early", frames[1][1])
        self.assertEqual(trailers(data)["grpc-status"], "0")
        self.assertEqual(code, 1000)
        ws.close()

    def test_unmasked_client_frame(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS, mask=False))
        _, code = ws.until_close()
        self.assertEqual(code, 1002)
        ws.close()

    def test_unmasked_frame_mid_call_cancels(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        ws.send(ws_frame(2, data_msg(pb_string(1, "x"))))
        fin, op, p = ws.frame()  # the header block
        ws.send(ws_frame(2, data_msg(pb_string(1, "y")), mask=False))
        _, code = ws.until_close()
        self.assertEqual(code, 1002)
        ws.close()
        wait_for("no active calls", lambda: active_calls(PORT) == 0)

    def test_reserved_bits(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS, rsv=4))
        _, code = ws.until_close()
        self.assertEqual(code, 1002)
        ws.close()

    def test_fragmented_messages(self):
        ws = WS(PORT, ECHO)
        # The header block in three fragments, a ping between fragments of
        # the data message (control frames may interleave).
        ws.send(ws_frame(2, HEADERS[:10], fin=False))
        ws.send(ws_frame(0, HEADERS[10:20], fin=False))
        ws.send(ws_frame(0, HEADERS[20:]))
        msg = data_msg(pb_string(1, "in pieces"))
        ws.send(ws_frame(2, msg[:3], fin=False))
        ws.send(ws_frame(9, b"between"))
        ws.send(ws_frame(0, msg[3:7], fin=False))
        ws.send(ws_frame(0, msg[7:]))
        ws.send(ws_frame(2, b"\x01"))
        data = b""
        pong = None
        while True:
            fin, op, p = ws.frame()
            if op == 10:
                pong = p
            elif op == 2:
                data += p
            elif op == 8:
                code = struct.unpack(">H", p[:2])[0]
                break
        self.assertEqual(pong, b"between")
        self.assertIn(b"in pieces", data)
        self.assertEqual(trailers(data)["grpc-status"], "0")
        self.assertEqual(code, 1000)
        ws.close()

    def test_gRPC_frames_split_across_messages(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        two = grpc_frame(pb_string(1, "one")) + grpc_frame(pb_string(1, "two"))
        ws.send(ws_frame(2, b"\x00" + two[:4]))
        ws.send(ws_frame(2, b"\x00" + two[4:12]))
        ws.send(ws_frame(2, b"\x00" + two[12:]))
        ws.send(ws_frame(2, b"\x01"))
        data, code = ws.until_close()
        self.assertIn(b"one", data)
        self.assertIn(b"two", data)
        self.assertEqual(trailers(data)["grpc-status"], "0")
        ws.close()

    def test_message_size_boundaries(self):
        # The gRPC message at the limit passes; a WebSocket message one
        # byte past (control byte + 5-byte header + limit) ends the call
        # RESOURCE_EXHAUSTED, then a 1009 close.
        for size, ok in [(MAX_MESSAGE - 1, True), (MAX_MESSAGE, True), (MAX_MESSAGE + 1, False),
                         (4 * MAX_MESSAGE, False)]:
            ws = WS(PORT, ECHO)
            ws.send(ws_frame(2, HEADERS))
            msg = pb_string(1, "x" * (size - 4))
            self.assertEqual(len(msg), size)
            ws.send(ws_frame(2, data_msg(msg)))
            if ok:
                ws.send(ws_frame(2, b"\x01"))
            data, code = ws.until_close()
            t = trailers(data)
            if ok:
                self.assertEqual(t.get("grpc-status"), "0", (size, t))
                self.assertEqual(code, 1000)
            else:
                self.assertEqual(t.get("grpc-status"), "8", (size, t))
                self.assertEqual(code, 1009)
            ws.close()
        wait_for("no active calls", lambda: active_calls(PORT) == 0)

    def test_frame_over_limit_in_fragments(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        chunk = b"\x00" * 20000
        ws.send(ws_frame(2, b"\x00" + chunk, fin=False))
        ws.send(ws_frame(0, chunk, fin=False))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "8")
        self.assertEqual(code, 1009)
        ws.close()

    def test_header_block_over_limit(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, b"x-big: " + b"a" * 20000 + b"\r\n"))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "8")
        self.assertEqual(code, 1009)
        ws.close()

    def test_invalid_utf8_text(self):
        # After the header block: the gRPC status, then 1007.
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        ws.send(ws_frame(1, b"ok \xff\xfe"))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "3")
        self.assertEqual(code, 1007)
        ws.close()
        # As the header block itself (which may be text): RFC 6455 fails the
        # connection (1007) before any call exists to carry a status.
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(1, b"content-type: \xc3\x28\r\n"))
        data, code = ws.until_close()
        self.assertEqual(code, 1007)
        ws.close()
        data, code = echo_call(PORT, "still serving")
        self.assertEqual(trailers(data).get("grpc-status"), "0")

    def test_text_after_headers(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        ws.send(ws_frame(1, b"valid text"))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "3")
        self.assertEqual(code, 1003)
        ws.close()

    def test_bad_control_bytes(self):
        for payload in [b"", b"\x02abc", b"\x01\x00"]:
            ws = WS(PORT, CHAT)
            ws.send(ws_frame(2, HEADERS))
            ws.send(ws_frame(2, payload))
            data, code = ws.until_close()
            self.assertEqual(trailers(data).get("grpc-status"), "3", payload)
            self.assertEqual(code, 1002)
            ws.close()

    def test_bad_header_block_and_gRPC_frame(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, b"no colon here\r\n"))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "3")
        ws.close()
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        ws.send(ws_frame(2, b"\x00" + grpc_frame(b"", flag=0x80)))  # a trailer flag
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "3")
        ws.close()

    def test_unknown_method(self):
        data, code = echo_call(PORT, path="/demo.v1.EchoService/Nope")
        t = trailers(data)
        self.assertEqual(t.get("grpc-status"), "12")
        self.assertEqual(code, 1000)

    def test_ping_flood_answered(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        n = 2000
        ws.send(b"".join(ws_frame(9, b"%d" % i) for i in range(n)))
        pongs = 0
        while pongs < n:
            fin, op, p = ws.frame()
            if op == 10:
                self.assertEqual(p, b"%d" % pongs)
                pongs += 1
        ws.send(ws_frame(2, b"\x01"))
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        ws.close()

    def test_ping_flood_without_reading_is_closed(self):
        ws = WS(PORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        ws.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ping = ws_frame(9, b"p" * 125)
        closed = False
        before = rss_kib(GW.pid)
        # Whole frames only (a send cut by a timeout would corrupt the
        # stream): wait for room, send what fits, carry on from there.
        data = ping * 1024
        off = total = 0
        end = time.monotonic() + 90
        ws.s.setblocking(False)
        while time.monotonic() < end:
            _, w, _ = select.select([], [ws.s], [], 1)
            if not w:
                continue
            try:
                n = ws.s.send(data[off:])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            off += n
            total += n
            if off == len(data):
                off = 0
        self.assertTrue(closed, "the gateway closed the flooding client (%d bytes of pings sent)"
                        % total)
        # A queue bounded by max_send_queue_bytes, not by the flood (under
        # AddressSanitizer freed blocks sit in its quarantine: only the
        # close is checked there).
        grown = rss_kib(GW.pid) - before
        if not SANITIZED:
            self.assertLess(grown, 16 * 1024, "RSS grew %d KiB" % grown)
        ws.close()
        wait_for("no active calls", lambda: active_calls(PORT) == 0)

    def test_client_that_never_reads(self):
        # 200 MB asked for, nothing read: the gateway holds a bounded amount,
        # then closes the socket after send_timeout_ms and cancels the call.
        ws = WS(PORT, DOWNLOAD)
        ws.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws.send(ws_frame(2, HEADERS))
        ws.send(ws_frame(2, data_msg(pb_varint(1, 200 << 20) + pb_varint(2, 65536))))
        ws.send(ws_frame(2, b"\x01"))
        before = rss_kib(GW.pid)
        time.sleep(1)
        self.assertGreaterEqual(active_calls(PORT), 1)
        grown = rss_kib(GW.pid) - before
        if not SANITIZED:
            self.assertLess(grown, 16 * 1024, "RSS grew %d KiB" % grown)
        wait_for("the call to be cancelled", lambda: active_calls(PORT) == 0, timeout=30)
        # The socket is closed: after what the kernel buffered, EOF.
        ws.s.settimeout(10)
        total = 0
        while True:
            try:
                d = ws.s.recv(1 << 20)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            total += len(d)
        self.assertLess(total, 50 << 20)
        ws.close()


class Backpressure(unittest.TestCase):
    def test_client_sends_without_reading(self):
        self.sends_without_reading(BGW, BPORT)

    def test_client_sends_without_reading_wide_backend_window(self):
        # The call holds up to 1 MiB of replies while the send queue takes
        # 64 KiB at a time: once the client reads, the session must come
        # back for the rest by itself (it once waited for a write event
        # that never came).
        self.sends_without_reading(WGW, WPORT)

    def test_burst_both_ways_wide_backend_window(self):
        # A client that reads while it sends, every reply counted.
        import threading
        ws = WS(WPORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        msg = ws_frame(2, data_msg(pb_string(1, "y" * 2000)))
        n = 3000
        result = {}
        reader = threading.Thread(target=lambda: result.update(r=ws.until_close()))
        reader.start()
        for _ in range(n):
            ws.send(msg)
        ws.send(ws_frame(2, b"\x01"))
        reader.join(60)
        self.assertIn("r", result, "no close within 60 s")
        data, code = result["r"]
        replies = sum(1 for flag, _ in grpc_web_frames(data) if flag == 0)
        self.assertEqual(replies, n)
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        self.assertEqual(code, 1000)
        ws.close()

    def sends_without_reading(self, gw, port):
        # Chat messages sent while no reply is read: the replies back up
        # (socket, send queue, the call's window, the backend's own limit),
        # the backend stops taking requests, and the gateway stops reading
        # the socket — its memory stays bounded. Then the client reads, and
        # every message gets its reply and the call ends OK.
        import threading
        ws = WS(port, CHAT)
        ws.send(ws_frame(2, HEADERS))
        msg = ws_frame(2, data_msg(pb_string(1, "x" * 1000)))
        ws.s.setblocking(False)
        before = rss_kib(gw.pid)
        sent = off = 0
        stalled = None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            _, w, _ = select.select([], [ws.s], [], 0.5)
            now = time.monotonic()
            if not w:
                if stalled is None:
                    stalled = now
                elif now - stalled > 2:
                    break
                continue
            stalled = None
            try:
                off += ws.s.send(msg[off:])
            except BlockingIOError:
                continue
            if off == len(msg):
                off = 0
                sent += 1
        self.assertIsNotNone(stalled, "the gateway stopped reading the socket")
        self.assertLess(sent, 200000000 // len(msg), "stalled after %d messages" % sent)
        grown = rss_kib(gw.pid) - before
        if not SANITIZED:
            self.assertLess(grown, 24 * 1024, "RSS grew %d KiB for %d messages" % (grown, sent))
        # Read everything while the rest of the last frame and the finish go out.
        result = {}
        ws.s.setblocking(True)
        ws.s.settimeout(30)
        reader = threading.Thread(target=lambda: result.update(r=ws.until_close()))
        reader.start()
        if off:
            ws.s.sendall(msg[off:])
            sent += 1
        ws.s.sendall(ws_frame(2, b"\x01"))
        reader.join(60)
        self.assertIn("r", result, "no close within 60 s")
        data, code = result["r"]
        replies = sum(1 for flag, _ in grpc_web_frames(data) if flag == 0)
        self.assertEqual(replies, sent)
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        self.assertEqual(code, 1000)
        ws.close()


class Parking(unittest.TestCase):
    def http_get(self, s):
        s.sendall(b"GET /no/such/path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise EOFError("the keep-alive connection was closed")
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        n = 0
        for ln in head.split(b"\r\n")[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        while len(body) < n:
            body += s.recv(65536)
        return int(head.split()[1])

    def reply(self, ws):
        while True:
            fin, op, p = ws.frame()
            if op == 9:
                ws.send(ws_frame(10, p))
                continue
            self.assertEqual(op, 2)
            frames = grpc_web_frames(p)
            if frames and frames[0][0] == 0:
                return frames[0][1]

    def test_upgraded_socket_idle_past_park_time(self):
        # The front parks idle keep-alive connections and trims memory
        # after 100 ms; an upgraded socket belongs to the WebSocket session
        # and is never parked, timed out or read by the front, and a call
        # goes on while plain connections are parked around it.
        plain = socket.create_connection(("127.0.0.1", KPORT), timeout=15)
        self.assertEqual(self.http_get(plain), 404)
        ws = WS(KPORT, CHAT)
        self.assertEqual(ws.status, 101)
        ws.send(ws_frame(2, HEADERS))
        for i in range(3):
            ws.send(ws_frame(2, data_msg(pb_string(1, "m%d" % i))))
            self.assertIn(b"m%d" % i, self.reply(ws))
            time.sleep(0.6)  # the plain connection parks; the session idles
        second = WS(KPORT, CHAT)  # a new session while one is parked
        second.send(ws_frame(2, HEADERS))
        second.send(ws_frame(2, data_msg(pb_string(1, "second"))))
        self.assertIn(b"second", self.reply(second))
        self.assertEqual(self.http_get(plain), 404, "the parked connection still serves")
        time.sleep(0.6)
        ws.send(ws_frame(2, data_msg(pb_string(1, "after"))))
        self.assertIn(b"after", self.reply(ws))
        for w in (ws, second):
            w.send(ws_frame(2, b"\x01"))
            data, code = w.until_close()
            self.assertEqual(trailers(data).get("grpc-status"), "0")
            self.assertEqual(code, 1000)
            w.close()
        plain.close()


class Drain(unittest.TestCase):
    def test_drain_timeout_ends_calls_unavailable_with_1001(self):
        # SIGTERM: a session still waiting for its header block closes with
        # 1001 at once; a call that does not end by itself gets UNAVAILABLE
        # and 1001 at drain_timeout_ms; the gateway exits 0 (under ASan: no
        # leak).
        gw, port = P.gateway("http://127.0.0.1:%s" % DEMO_URL.rsplit(":", 1)[1],
                             {"limits": {"drain_timeout_ms": 1500}}, workers=1)
        waiting = WS(port, CHAT)
        busy = WS(port, CHAT)
        busy.send(ws_frame(2, HEADERS))
        busy.send(ws_frame(2, data_msg(pb_string(1, "still here"))))
        busy.frame()  # the header block: the call is up
        t0 = time.monotonic()
        gw.send_signal(signal.SIGTERM)
        _, code = waiting.until_close()
        self.assertEqual(code, 1001)
        data, code = busy.until_close()
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        t = trailers(data)
        self.assertEqual(t.get("grpc-status"), "14", t)
        self.assertIn("shutting down", t.get("grpc-message", ""))
        self.assertEqual(code, 1001)
        waiting.close()
        busy.close()
        self.assertEqual(P.stop(gw), 0, P.stderr(gw)[-2000:])


class TLS(unittest.TestCase):
    def test_wss(self):
        # Over HTTPS libmicrohttpd hands over one end of a socketpair and
        # moves the bytes through TLS itself (from its own MHD_run).
        import shutil
        import ssl
        import subprocess
        import tempfile
        if not shutil.which("openssl"):
            self.skipTest("openssl not installed")
        d = tempfile.mkdtemp(prefix="gw-ws-tls-")
        key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], check=True,
                       capture_output=True)
        gw, port = P.gateway(DEMO_URL, {"tls": {"cert_file": cert, "key_file": key}}, workers=1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ws = WS.__new__(WS)
        ws.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=15))
        ws.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: grpc-websockets\r\n"
                      "\r\n" % (CHAT, KEY)).encode())
        ws.buf = b""
        while b"\r\n\r\n" not in ws.buf:
            ws.buf += ws.s.recv(4096)
        head, _, ws.buf = ws.buf.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        ws.send(ws_frame(2, HEADERS))
        for i in range(50):
            ws.send(ws_frame(2, data_msg(pb_string(1, "over tls %d" % i))))
        ws.send(ws_frame(2, b"\x01"))
        data, code = ws.until_close()
        self.assertEqual(sum(1 for f, _ in grpc_web_frames(data) if f == 0), 50)
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        self.assertEqual(code, 1000)
        ws.s.close()
        self.assertEqual(P.stop(gw), 0, P.stderr(gw)[-2000:])


class Timers(unittest.TestCase):
    def test_header_timeout(self):
        ws = WS(TPORT, CHAT)
        t0 = time.monotonic()
        _, code = ws.until_close()
        self.assertEqual(code, 1008)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        ws.close()

    def test_pings_and_pong_timeout(self):
        # Answering pings keeps a quiet call open...
        alive = WS(TPORT, CHAT)
        alive.send(ws_frame(2, HEADERS))
        alive.send(ws_frame(2, data_msg(pb_string(1, "hello"))))
        pings = 0
        end = time.monotonic() + 1.5
        alive.s.settimeout(3)
        while time.monotonic() < end:
            fin, op, p = alive.frame()
            if op == 9:
                pings += 1
                alive.send(ws_frame(10, p))
            self.assertNotEqual(op, 8, "closed although it answered the pings")
        self.assertGreaterEqual(pings, 2)
        alive.send(ws_frame(2, b"\x01"))
        data, code = alive.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "0")
        alive.close()
        # ... one that never answers is dropped and its call cancelled.
        mute = WS(TPORT, CHAT)
        mute.send(ws_frame(2, HEADERS))
        mute.send(ws_frame(2, data_msg(pb_string(1, "hello"))))
        t0 = time.monotonic()
        data, code = mute.until_close(answer_pings=False)
        self.assertIsNone(code, "dropped without a close frame")
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        mute.close()
        wait_for("no active calls", lambda: active_calls(TPORT) == 0)

    def test_idle_timeout(self):
        ws = WS(TPORT, CHAT)
        ws.send(ws_frame(2, HEADERS))
        t0 = time.monotonic()
        data, code = ws.until_close()
        self.assertEqual(trailers(data).get("grpc-status"), "14")
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assertEqual(code, 1000)
        ws.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
