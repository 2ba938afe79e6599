"""HTTP semantics of the REST front (issue 13 item 6, docs/rest.md "HEAD
and OPTIONS", "Headers -> metadata"), over raw sockets against `grpcgate
serve` in front of the demo service:

- HEAD wherever GET: the GET's status and headers, no body (the next answer
  on the same keep-alive connection parses), one backend call; a streaming
  route answers its head and the backend call is cancelled; HEAD on a
  route without GET is 405 with Allow.
- A plain OPTIONS names the path's methods in Allow (404 for unknown
  paths); CORS preflights keep their own answer.
- Grpc-Metadata-Te / -Content-Type / -User-Agent and the other reserved keys
  are dropped with a debug line, the call goes through, other keys still
  travel.

Processes started here are killed here, whatever happens."""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "front"))
import gwtest  # noqa: E402

ORIGIN = "https://app.example"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def send(conn, method, path, headers=None, body=b""):
    h = {"Host": "127.0.0.1"}
    if body or method in ("POST", "PUT", "PATCH"):
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in h.items())
    conn.send(head.encode() + b"\r\n" + body)


def read_head(conn):
    """Status and headers of an answer that has no body (HEAD)."""
    status = int(conn._line().split(b" ")[1])
    headers = {}
    while True:
        line = conn._line()
        if not line:
            return status, headers
        k, v = line.decode("latin-1").split(":", 1)
        headers.setdefault(k.strip().lower(), []).append(v.strip())


def until_close(conn, timeout):
    """(closed within timeout, every byte received after what was parsed)."""
    extra = conn.buf
    conn.s.settimeout(timeout)
    try:
        while True:
            d = conn.s.recv(65536)
            if not d:
                return True, extra
            extra += d
    except (socket.timeout, TimeoutError):
        return False, extra
    except ConnectionResetError:
        return True, extra


def comparable(headers):
    return {k: v for k, v in headers.items() if k != "date"}


def check_head(port, demo_log):
    conn = gwtest.Conn(port, timeout=60)
    try:
        for path in ("/v1/users/1", "/v1/users/424242", "/v1/users/1?pretty",
                     "/v1/users/1/avatar"):
            send(conn, "GET", path)
            got = conn.read_response()
            send(conn, "HEAD", path)
            status, headers = read_head(conn)
            check(status == got.status and comparable(headers) == comparable(got.headers),
                  "HEAD %s: %d %r, GET: %d %r" % (path, status, headers, got.status,
                                                   got.headers))
            check("content-length" in headers, "HEAD %s: no Content-Length" % path)
        # Had the HEAD sent a body, this answer would not parse.
        send(conn, "GET", "/v1/users/2")
        r = conn.read_response()
        check(r.status == 200 and json.loads(r.body)["name"] == "Alan Turing",
              "GET after HEAD: %d %r" % (r.status, r.body[:100]))
        # A stream of 60 users one second apart: HEAD gets the GET's head at
        # the first message, no byte after it (not even a chunked
        # terminator), and the backend call is cancelled, not run out.
        before = demo_log().count("cancelled by client")
        t0 = time.monotonic()
        send(conn, "HEAD", "/v1/users?page_size=60&delay=1s")
        status, headers = read_head(conn)
        check(status == 200 and headers.get("content-type") == ["application/json"],
              "HEAD stream: %d %r" % (status, headers))
        if headers.get("connection") == ["close"]:
            # -Dlegacy_mhd (0.9.75): unchunked, and the connection closes.
            closed, extra = until_close(conn, 30)
            check(closed and extra == b"", "HEAD stream: closed %s, bytes after the head: %r"
                  % (closed, extra[:100]))
            conn.close()
            conn = gwtest.Conn(port, timeout=60)
        else:
            check(headers.get("transfer-encoding") == ["chunked"],
                  "HEAD stream: not the GET's head: %r" % headers)
            closed, extra = until_close(conn, 2)
            check(not closed and extra == b"", "HEAD stream: closed %s, bytes after the head: "
                  "%r" % (closed, extra[:100]))
            conn.s.settimeout(60)
        check(time.monotonic() - t0 < 40, "HEAD stream took the whole stream")
        send(conn, "GET", "/v1/users/3")
        r = conn.read_response()
        check(r.status == 200, "GET after the HEAD stream: %d" % r.status)
        deadline = time.monotonic() + 30
        while demo_log().count("cancelled by client") <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        check(demo_log().count("cancelled by client") > before,
              "the HEAD's backend stream was not cancelled")
        # HEAD where there is no GET: 405, Allow names what there is.
        send(conn, "HEAD", "/v1/echo")
        status, headers = read_head(conn)
        check(status == 405 and headers.get("allow") == ["POST"],
              "HEAD /v1/echo: %d %r" % (status, headers))
    finally:
        conn.close()


GETUSER_OK = ('grpcgate_requests_total{protocol="rest",method="/demo.v1.UserService/GetUser",'
              'code="OK"} ')


def getuser_calls(port):
    r = gwtest.request(port, "GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(GETUSER_OK):
            return int(float(line[len(GETUSER_OK):]))
    return 0


def check_head_calls_once(port):
    """One call (so one backend call) per HEAD, never a second."""
    before = getuser_calls(port)
    conn = gwtest.Conn(port, timeout=60)
    try:
        for _ in range(3):
            send(conn, "HEAD", "/v1/users/1")
            status, _ = read_head(conn)
            check(status == 200, "HEAD: %d" % status)
    finally:
        conn.close()
    deadline = time.monotonic() + 10
    while getuser_calls(port) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    n = getuser_calls(port) - before
    check(n == 3, "3 HEADs made %d calls" % n)


OPTIONS_CASES = [
    # path, status, Allow
    ("/v1/users/1", 204, "DELETE, GET, HEAD, PATCH, OPTIONS"),
    ("/v1/users", 204, "GET, HEAD, POST, OPTIONS"),
    ("/v1/users/1/avatar", 204, "GET, HEAD, PUT, OPTIONS"),
    ("/v1/users/1:undelete", 204, "POST, OPTIONS"),
    ("/v1/echo", 204, "POST, OPTIONS"),
    ("/v1/echo?x=1", 204, "POST, OPTIONS"),
    ("/demo.v1.EchoService/Echo", 204, "POST, OPTIONS"),
    ("/demo.v1.UserService/Chat", 204, "POST, OPTIONS"),
    # Connect may GET a method without side effects (docs/connect.md).
    ("/demo.v1.UserService/GetUser", 204, "GET, POST, OPTIONS"),
    ("*", 204, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
    ("/nowhere", 404, None),
    ("/v1/users/1/nothing", 404, None),
    ("/demo.v1.EchoService/Nope", 404, None),
]


def check_options(port):
    conn = gwtest.Conn(port, timeout=60)
    try:
        for path, want, allow in OPTIONS_CASES:
            send(conn, "OPTIONS", path)
            r = conn.read_response()
            check(r.status == want and r.header("allow") == allow,
                  "OPTIONS %s: %d Allow %r, want %d %r" % (path, r.status, r.header("allow"),
                                                           want, allow))
            if want == 404:
                check(json.loads(r.body)["code"] == 5, "OPTIONS %s: body %r" % (path, r.body))
            else:
                check(r.body == b"", "OPTIONS %s: a body" % path)
        # With an Origin but no Access-Control-Request-Method: still plain,
        # and the allowed origin is named.
        send(conn, "OPTIONS", "/v1/users/1", {"Origin": ORIGIN})
        r = conn.read_response()
        check(r.status == 204 and r.header("allow") == "DELETE, GET, HEAD, PATCH, OPTIONS" and
              r.header("access-control-allow-origin") == ORIGIN, "OPTIONS with Origin: %r" %
              r.headers)
        # Preflights are unchanged: HEAD (safelisted) is not in their list.
        for path, methods in (("/v1/users/1", "DELETE, GET, PATCH, OPTIONS"),
                              ("/demo.v1.EchoService/Echo", "POST, OPTIONS"),
                              ("/nowhere", "POST, OPTIONS")):
            send(conn, "OPTIONS", path, {"Origin": ORIGIN,
                                         "Access-Control-Request-Method": "POST"})
            r = conn.read_response()
            check(r.status == 204 and r.header("access-control-allow-methods") == methods and
                  r.header("allow") is None, "preflight %s: %d %r" % (path, r.status, r.headers))
        # 405 answers list HEAD with GET.
        send(conn, "PUT", "/v1/users/1", {"Content-Type": "application/json"}, b"{}")
        r = conn.read_response()
        check(r.status == 405 and r.header("allow") == "DELETE, GET, HEAD, PATCH",
              "PUT: %d %r" % (r.status, r.headers))
    finally:
        conn.close()


RESERVED = ["Te", "Content-Type", "User-Agent", "Host", "Connection", "Keep-Alive",
            "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length",
            "Grpc-Status", "grpc-timeout"]


def check_reserved_metadata(port, gw_log):
    conn = gwtest.Conn(port, timeout=60)
    try:
        for key in RESERVED:
            send(conn, "GET", "/v1/users/1", {"Grpc-Metadata-" + key: "x",
                                             "Grpc-Metadata-X-Demo-Tag": "t-" + key})
            r = conn.read_response()
            check(r.status == 200 and json.loads(r.body)["id"] == "1",
                  "Grpc-Metadata-%s: %d %r" % (key, r.status, r.body[:200]))
            # The other metadata still reaches the backend (echoed back).
            check(r.header("grpc-metadata-x-demo-tag") == "t-" + key,
                  "Grpc-Metadata-%s: the other key was lost: %r" % (key, r.headers))
        # Client streaming and a POST body route too.
        send(conn, "POST", "/v1/echo", {"Content-Type": "application/json",
                                        "Grpc-Metadata-User-Agent": "x/1"},
             b'{"message":"m"}')
        r = conn.read_response()
        check(r.status == 200 and json.loads(r.body)["message"] == "m",
              "POST with Grpc-Metadata-User-Agent: %d" % r.status)
    finally:
        conn.close()
    log = gw_log()
    for key in RESERVED:
        check("rest: metadata '%s' dropped: reserved key" % key in log,
              "no debug line for %s: %s" % (key, log[-500:]))


def main():
    procs = gwtest.Procs()
    failures = []
    try:
        demo, backend = procs.demo()
        cfg = os.path.join(procs.tmp, "methods.json")
        with open(cfg, "w") as f:
            json.dump({"cors": {"allowed_origins": [ORIGIN]}}, f)
        gw, m = procs.start([gwtest.GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                             backend, "--descriptor", gwtest.DEMO_DESC, "--workers", "1",
                             "--log-level", "debug", "--config", cfg],
                            r"listening on ([\d.]+):(\d+)", "gateway")
        port = int(m.group(2))
        demo_log = lambda: procs.stderr(demo)  # noqa: E731
        gw_log = lambda: procs.stderr(gw)  # noqa: E731
        for name, fn in (("head", lambda: check_head(port, demo_log)),
                         ("head-once", lambda: check_head_calls_once(port)),
                         ("options", lambda: check_options(port)),
                         ("metadata", lambda: check_reserved_metadata(port, gw_log))):
            try:
                fn()
                print("ok", name)
            except (AssertionError, OSError, EOFError, ValueError, KeyError) as e:
                failures.append("[%s] %s" % (name, e))
        rc = procs.stop(gw)
        if rc != 0:
            failures.append("gateway exit status %s: %s" % (rc, gw_log()[-2000:]))
    finally:
        procs.stop_all()
    for f in failures:
        print("FAIL", f)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
