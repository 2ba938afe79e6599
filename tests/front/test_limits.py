"""Body limits and early answers (issue 18, items 4 and 5), and idle
keep-alive connections parked outside libmicrohttpd (item 1).

Item 4: a message of exactly limits.max_message_bytes fits whatever its
envelope (gRPC-Web frame, gRPC-Web text base64, REST JSON), at the default
limits; one byte more is refused by the message limit; a declared body
beyond the envelope of a message at the limit is refused before reading.

Item 5: with the limits raised to 8 MiB, a backend that rejects a message
before the upload ends leaves more than limits.discard_body_bytes (1 MiB)
unread. The client, which keeps uploading on a raw socket, must still get
the whole answer (gRPC-Web: status in the headers; REST: 400 + JSON body)
before the connection closes, with Content-Length or chunked framing.
"""
import base64
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwtest import Conn, Procs, frame, pb_string, request  # noqa: E402

MIB = 1 << 20
LIMIT = 4 * MIB          # the default limits.max_message_bytes
ECHO = "/demo.v1.EchoService/Echo"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def echo_request(size):
    """An EchoRequest of exactly `size` bytes: field 1 (message)."""
    n = size - 1 - 1
    while len(pb_string(1, b"m" * n)) > size:
        n -= 1
    msg = pb_string(1, b"m" * n)
    assert len(msg) == size, len(msg)
    return msg


class Failed:
    """What a call that got no answer returns (status 0, no headers)."""

    def __init__(self, err):
        self.err, self.status, self.headers, self.body, self.closed = err, 0, {}, b"", True

    def grpc_status(self):
        return None, repr(self.err)

    def frames(self):
        return []


def post(port, path, body, headers):
    c = Conn(port, timeout=60)
    try:
        return request(port, "POST", path, body, headers, conn=c)
    except (OSError, EOFError, ValueError, IndexError) as e:
        return Failed(e)
    finally:
        c.close()


def grpcweb_call(port, body, text=False, chunked=False):
    ct = "application/grpc-web-text" if text else "application/grpc-web+proto"
    if text:
        body = base64.b64encode(body)
    h = {"Content-Type": ct, "X-Grpc-Web": "1"}
    if chunked:
        h["Content-Length"] = None
        h["Transfer-Encoding"] = "chunked"
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    r = post(port, ECHO, body, h)
    if r and text and r.status == 200 and r.body:
        r.body = base64.b64decode(r.body)
    return r


def item4(p, url):
    gw, port = p.gateway(url, workers=1)
    for size in (LIMIT - 1, LIMIT):
        msg = echo_request(size)
        for text in (False, True):
            r = grpcweb_call(port, frame(msg), text=text)
            code, m = r.grpc_status()
            got = [pl for f, pl in r.frames() if not f & 0x80]
            check(r.status == 200 and code == 0 and len(got) == 1 and got[0] == msg,
                  "gRPC-Web %s message of %d bytes (limit %d) echoed whole: %d %s %s"
                  % ("text" if text else "binary", size, LIMIT, r.status, code, m))
        r = grpcweb_call(port, frame(msg), chunked=True)
        check(r.status == 200 and r.grpc_status()[0] == 0,
              "gRPC-Web binary chunked message of %d bytes: %s" % (size, r.grpc_status()))
        # REST: the same message as JSON ({"message": "mmm..."}).
        js = json.dumps({"message": "m" * (size - 5)}).encode()
        r = post(port, "/v1/echo", js, {"Content-Type": "application/json"})
        ok = r.status == 200 and len(json.loads(r.body)["message"]) == size - 5
        check(ok, "REST JSON body of a %d-byte message (%d bytes of JSON): %d"
              % (size, len(js), r.status))
        # Connect unary: the bare message, in protobuf and in JSON.
        r = post(port, ECHO, msg, {"Content-Type": "application/proto"})
        check(r.status == 200 and r.body == msg,
              "Connect unary proto message of %d bytes echoed: %d" % (size, r.status))
        r = post(port, ECHO, js, {"Content-Type": "application/json",
                                  "Connect-Protocol-Version": "1"})
        ok = r.status == 200 and len(json.loads(r.body)["message"]) == size - 5
        check(ok, "Connect unary JSON of a %d-byte message: %d" % (size, r.status))
        # Connect client stream: one User of exactly `size` bytes (field 3
        # email, field 2 name filling the rest).
        email = pb_string(3, "a@b")
        n = size - len(email) - 1 - 4
        user = pb_string(2, b"n" * n) + email
        assert len(user) == size
        r = post(port, "/demo.v1.UserService/CreateUsers", frame(user),
                 {"Content-Type": "application/connect+proto"})
        check(r.status == 200 and b"grpc-status" not in r.body and b"error" not in r.body,
              "Connect stream envelope of a %d-byte message: %d %r"
              % (size, r.status, r.body[-120:]))
    # One byte over the message limit: refused by the message limit, not
    # the body limit.
    # Its body is over the envelope limit too, so it is refused from the
    # declared length, before reading: the client, still uploading, reads
    # the answer concurrently (a lingering close keeps it readable).
    body = frame(echo_request(LIMIT + 1))
    head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\n"
            b"Content-Length: %d\r\n\r\n" % (ECHO.encode(), len(body)))
    r, closed = Upload(port, head, body, b"", len(body)).answer()
    code, m = r.grpc_status() if not isinstance(r, Exception) else (None, repr(r))
    check(code == 8 and closed,
          "gRPC-Web message of limit+1 bytes: RESOURCE_EXHAUSTED %s %r" % (code, m))
    # Chunked (no declared length): refused by the message limit once the
    # frame header is read.
    r = grpcweb_call(port, body, chunked=True)
    code, m = r.grpc_status()
    check(code == 8 and "message" in (m or "").lower(),
          "gRPC-Web chunked message of limit+1 bytes: RESOURCE_EXHAUSTED %s %r" % (code, m))
    js = json.dumps({"message": "m" * (LIMIT + 1 - 5)}).encode()
    r = post(port, "/v1/echo", js, {"Content-Type": "application/json"})
    check(r.status in (400, 413) and b"limit" in r.body,
          "REST JSON of a limit+1-byte message: refused by the message limit (%d %r)"
          % (r.status, r.body[:120]))
    # A declared body beyond one message's envelope: refused before reading.
    for ct, n in (("application/grpc-web+proto", LIMIT + 5 + 1),
                  ("application/grpc-web-text", (LIMIT + 5 + 2) // 3 * 4 + 1)):
        c = Conn(port)
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
               % (ECHO.encode(), ct.encode(), n))
        r = c.read_response()
        c.close()
        check(r.status == 200 and r.grpc_status()[0] == 8,
              "%s declared %d bytes (envelope limit + 1): RESOURCE_EXHAUSTED %s"
              % (ct, n, r.grpc_status()))
    for ct, n, want in (("application/grpc-web+proto", LIMIT + 5, None),
                        ("application/grpc-web-text", (LIMIT + 5 + 2) // 3 * 4, None)):
        # Exactly the envelope: accepted (the body that follows is short, so
        # the call fails later on the missing bytes; only the head matters).
        c = Conn(port)
        c.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
               % (ECHO.encode(), ct.encode(), n))
        c.s.settimeout(1.0)
        try:
            d = c.s.recv(4096)
            early = d != b""
        except (socket.timeout, TimeoutError):
            early = False
        c.close()
        check(not early, "%s declared %d bytes (exactly the envelope): not refused" % (ct, n))
    check(p.stop(gw) == 0, "gateway exits cleanly")


class Upload:
    """Sends head + body on a raw socket from a thread while the main
    thread reads the answer."""

    def __init__(self, port, head, first, filler, total):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self.sent = 0
        self.send_error = None
        self.done_at = None
        self.t = threading.Thread(target=self._run, args=(head, first, filler, total))
        self.t.start()

    def _run(self, head, first, filler, total):
        try:
            self.s.sendall(head + first)
            self.sent = len(first)
            while self.sent < total:
                piece = filler[:total - self.sent]
                self.s.sendall(piece)
                self.sent += len(piece)
        except OSError as e:
            self.send_error = e
        self.done_at = time.monotonic()

    def answer(self):
        c = Conn.__new__(Conn)
        c.s, c.buf = self.s, b""
        try:
            r = c.read_response()
        except (EOFError, OSError) as e:
            r = e
        self.answered_at = time.monotonic()
        # The connection must end (lingering close) within a bound.
        end = time.monotonic() + 30
        closed = False
        self.s.settimeout(1)
        while time.monotonic() < end:
            try:
                if not self.s.recv(65536):
                    closed = True
                    break
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                closed = True
                break
        self.t.join(60)
        self.s.close()
        return r, closed


def item5(p, url):
    cfg = {"limits": {"max_message_bytes": 8 * MIB, "max_body_bytes": 8 * MIB + 5}}
    gw, port = p.gateway(url, config=cfg, workers=1)
    total = 8 * MIB
    filler = b"\0" * (256 * 1024)
    for mode in ("binary", "binary chunked", "text"):
        # A frame announcing 8 MiB: the demo backend refuses messages over
        # 4 MiB as soon as it sees the frame header (RESOURCE_EXHAUSTED),
        # long before the upload ends.
        first = bytes([0]) + (total).to_bytes(4, "big")
        body_len = 5 + total
        ct = b"application/grpc-web+proto"
        fill = filler
        if mode == "text":
            ct = b"application/grpc-web-text"
            first = base64.b64encode(first + b"\0")     # 8 chars: 6 bytes
            fill = b"A" * len(filler)                   # base64 of zeros
            body_len = (5 + total + 2) // 3 * 4
        if mode == "binary chunked":
            head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" % (ECHO.encode(), ct))
            first = b"%x\r\n" % len(first) + first + b"\r\n"
            fill = b"%x\r\n" % len(filler) + filler + b"\r\n"
        else:
            head = (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                    b"Content-Length: %d\r\n\r\n" % (ECHO.encode(), ct, body_len))
        up = Upload(port, head, first, fill, body_len)
        r, closed = up.answer()
        ok = not isinstance(r, Exception) and r.status == 200
        code = r.grpc_status()[0] if ok else None
        check(ok and code == 8,
              "gRPC-Web %s upload of 8 MiB rejected early by the backend: answer %s, "
              "grpc-status %s (client had sent %d bytes, send error %s)"
              % (mode, r if isinstance(r, Exception) else r.status, code, up.sent,
                 up.send_error))
        check(ok and r.closed, "  ... with Connection: close")
        check(closed, "  ... then the connection closes")
    # REST client streaming: the first NDJSON line is an invalid user; the
    # backend fails the call at once (INVALID_ARGUMENT) while the client
    # keeps sending lines.
    line = b'{"name":""}\n'
    fill = line * (256 * 1024 // len(line))
    head = (b"POST /v1/users:batchCreate HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % total)
    up = Upload(port, head, line, fill, total)
    r, closed = up.answer()
    ok = not isinstance(r, Exception) and r.status == 400
    body = json.loads(r.body) if ok else None
    check(ok and body.get("code") == 3,
          "REST NDJSON upload of 8 MiB failed early by the backend: %s %s (sent %d)"
          % (r if isinstance(r, Exception) else r.status, body, up.sent))
    check(closed, "  ... then the connection closes")
    # Connect client stream: the first envelope is an invalid user.
    first = frame(b"")
    fill = frame(b"\x12\x00") * (256 * 1024 // 7)
    head = (b"POST /demo.v1.UserService/CreateUsers HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/connect+proto\r\nContent-Length: %d\r\n\r\n" % total)
    up = Upload(port, head, first, fill, total)
    r, closed = up.answer()
    ok = not isinstance(r, Exception) and r.status == 200
    check(ok and b"invalid user" in r.body,
          "Connect stream upload of 8 MiB failed early by the backend: %s %r (sent %d)"
          % (r if isinstance(r, Exception) else r.status,
             None if isinstance(r, Exception) else r.body[:200], up.sent))
    check(closed, "  ... then the connection closes")
    # The gateway still serves.
    r = grpcweb_call(port, frame(echo_request(1000)))
    check(r.status == 200 and r.grpc_status()[0] == 0, "gateway still serves")
    check(p.stop(gw) == 0, "gateway exits cleanly")


def get_user(c):
    c.send(b"GET /v1/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
    return c.read_response()


def park(p, url):
    """Connections idle past limits.idle_park_ms (300 here) leave
    libmicrohttpd; they must keep serving, keep their per-IP count, and
    still end at the idle timeout."""
    cfg = {"limits": {"idle_park_ms": 300, "idle_timeout_ms": 4000,
                      "max_connections_per_ip": 3}}
    gw, port = p.gateway(url, config=cfg, workers=2)
    cs = [Conn(port) for _ in range(3)]
    check(all(get_user(c).status == 200 for c in cs), "3 connections answered")
    time.sleep(1.5)                                   # parked by now
    check(get_user(cs[0]).status == 200, "a parked connection serves its next request")
    # Headers trickling in after parking.
    cs[1].send(b"GET /v1/users/1 HTT")
    time.sleep(0.7)
    cs[1].send(b"P/1.1\r\nHost: x\r\n")
    time.sleep(0.7)
    cs[1].send(b"\r\n")
    check(cs[1].read_response().status == 200, "a request sent in pieces to a parked connection")
    # Two pipelined requests to a parked connection.
    time.sleep(1.0)
    cs[2].send(b"GET /v1/users/1 HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
    check(cs[2].read_response().status == 200 and cs[2].read_response().status == 200,
          "two pipelined requests to a parked connection")
    # The per-IP count follows parked connections: a 4th is refused.
    time.sleep(1.0)
    extra = Conn(port)
    check(extra.closed_by_peer(3), "per-IP limit still counts parked connections")
    extra.close()
    # A parked connection the client closes frees its count.
    time.sleep(1.0)
    cs[0].close()
    time.sleep(0.5)
    c4 = Conn(port)
    check(get_user(c4).status == 200, "its per-IP slot is free once a parked one closes")
    # The idle timeout still ends parked connections.
    t0 = time.monotonic()
    closed = cs[1].closed_by_peer(10)
    waited = time.monotonic() - t0
    check(closed and waited < 8, "a parked connection closes at the idle timeout (%.1f s)" % waited)
    for c in cs[1:] + [c4]:
        c.close()
    check(p.stop(gw) == 0, "gateway exits cleanly")


def main():
    p = Procs()
    try:
        demo, url = p.demo()
        which = sys.argv[1:] or ["4", "5", "park"]
        if "park" in which:
            park(p, url)
        if "4" in which:
            item4(p, url)
        if "5" in which:
            item5(p, url)
        check(p.stop(demo) == 0, "demo service exits cleanly")
    finally:
        p.stop_all()
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
