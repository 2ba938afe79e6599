#!/usr/bin/env python3
"""Integration tests for src/upstream: starts real backends on free loopback
ports, runs tests/upstream/ucall_driver scenarios against them and compares
the driver's output with the expectations below, line by line. Every
process it starts is killed before it exits.

    run_integration.py DRIVER GROUP

GROUP is one of: api-grpcjs, api-demo, faults, transports, slow-consumer, parity.

An expected line is compared exactly, or as a regular expression when it
starts with '~'. The driver's lines starting with '#' are information only.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("GW_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
GRPCGATE = os.environ.get("GW_GRPCGATE", "")
NODE = os.environ.get("GW_NODE", "node")
GRPCJS_SERVER = os.path.join(SRC, "tests", "node", "grpcjs_server.mjs")
FAULT_SERVER = os.path.join(SRC, "tests", "upstream", "h2_fault_server.mjs")

OK_MSG = '(OK)?'  # grpc-js sends grpc-message "OK" with status 0; the demo service none

# ---- expectations: scenario -> expected lines ---------------------------------
API = [
    (["unary"], [
        "headers x-demo-a=1 x-demo-b-bin=AQID",
        "reply message=hello number=42",
        '~status=OK message="%s"' % OK_MSG,
        "trailers x-demo-a-trailer=1 x-demo-b-trailer-bin=AQID",
        "trailers_only=false",
    ]),
    (["getuser", "1"], [
        "user id=1 name=Ada Lovelace email=ada@example.com role=3",
        '~status=OK message="%s"' % OK_MSG,
        "trailers_only=false",
    ]),
    (["getuser", "99"], [
        'status=NOT_FOUND message="user 99 not found"',
        "~trailers_only=(true|false)",
    ]),
    (["errors"], [
        '~code=0 status=OK message="(OK|failure 0: é%%)?" details=none messages=1',
        'code=1 status=CANCELLED message="failure 1: é%" details=none messages=0',
        'code=2 status=UNKNOWN message="failure 2: é%" details=none messages=0',
        'code=3 status=INVALID_ARGUMENT message="failure 3: é%" details=code=3 message="failure 3: é%" '
        'any=type.googleapis.com/google.rpc.BadRequest [code: requested failure] messages=0',
    ] + ['code=%d status=%s message="failure %d: é%%" details=none messages=0' % (c, n, c) for c, n in [
        (4, "DEADLINE_EXCEEDED"), (5, "NOT_FOUND"), (6, "ALREADY_EXISTS"), (7, "PERMISSION_DENIED"),
        (8, "RESOURCE_EXHAUSTED"), (9, "FAILED_PRECONDITION"), (10, "ABORTED"), (11, "OUT_OF_RANGE"),
        (12, "UNIMPLEMENTED"), (13, "INTERNAL"), (14, "UNAVAILABLE"), (15, "DATA_LOSS"),
        (16, "UNAUTHENTICATED")]]),
    (["list", "10000"], [
        "messages=10000 ids_ok=true",
        '~status=OK message="%s"' % OK_MSG,
    ]),
    (["client_stream"], [
        "created=5 ids=5 consecutive=true",
        '~status=OK message="%s"' % OK_MSG,
        "details=none",
    ]),
    (["client_stream_invalid"], [
        'status=INVALID_ARGUMENT message="invalid user"',
        'details=code=3 message="invalid user" any=type.googleapis.com/google.rpc.BadRequest '
        "[name: name is required] [email: email must contain '@']",
    ]),
    (["bidi", "100"], [
        "replies=100 in_order=true",
        '~status=OK message="%s"' % OK_MSG,
    ]),
    (["deadline"], [
        "status=DEADLINE_EXCEEDED",
        "ended_between_500ms_and_5s=true",
    ]),
    (["cancel"], [
        "cancelled_after=10 active_calls=0",
        '~followup status=OK message="%s"' % OK_MSG,
        "followup reply message=after cancel number=7",
        "messages_after_cancel=0 connects=1 resets_sent=1",
    ]),
    (["big_request"], [
        "user id=2 avatar_bytes=921600 avatar_ok=true",
        '~status=OK message="%s"' % OK_MSG,
        "writer_paused=true",
    ]),
    (["stalled_streams", "32"], [
        # 32 readers that never consume hold 32 x 64 KiB, more than the 1 MiB
        # connection window: other calls on the connection still get through.
        "stalled=32 echo_ok=10",
    ]),
    (["concurrent", "1000"], [
        "ok=1000 connects=1 peak_streams=1000",   # all at once, on one connection
    ]),
    (["--max-message", "100000", "too_large"], [
        '~status=RESOURCE_EXHAUSTED message="response message 1 is 2000(04|06) bytes, '
        'larger than the limit of 100000"',
        "messages=0",
        '~followup status=OK message="%s"' % OK_MSG,
    ]),
]

FAULTS = [
    ("Http503", [
        'status=UNAVAILABLE message="backend answered HTTP 503 (text/html) instead of gRPC: '
        '<html><body><h1>503 Service Unavailable</h1> backend overloaded</body></html>"',
        'messages=0 reply=""',
    ]),
    ("Html200", [
        'status=UNKNOWN message="backend answered HTTP 200 (text/html; charset=utf-8) instead of gRPC: '
        '<!doctype html><p>hello</p>"',
        'messages=0 reply=""',
    ]),
    ("NoStatus", [
        'status=INTERNAL message="backend response has no grpc-status"',
        'messages=1 reply="orphan"',
    ]),
    ("RefusedOnce", [
        'status=OK message=""',
        'messages=1 reply="second try"',
        "retried=1 connects=1",
    ]),
    ("Calm", [
        'status=RESOURCE_EXHAUSTED message="stream reset by backend {url} (HTTP/2 ENHANCE_YOUR_CALM)"',
        'messages=0 reply=""',
    ]),
    ("Gzip", [
        'status=OK message=""',
        'messages=1 reply="inflated hello"',
    ]),
    ("GzipBomb", [
        'status=RESOURCE_EXHAUSTED message="message 1 decompresses to more than 4194304 bytes"',
        'messages=0 reply=""',
    ]),
    # What we send: the fixed request headers; grpc-timeout is the remaining
    # time (10 s deadline, rounded up, so 9.99... s in ms or µs).
    ("Headers", [], [
        'status=OK message=""',
        '~messages=1 reply="te=trailers content-type=application/grpc grpc-accept-encoding=- '
        'grpc-timeout=(99[0-9]{2}m|99[0-9]{5}u|10S)"',
    ]),
    ("Headers", ["--accept-gzip"], [
        'status=OK message=""',
        '~messages=1 reply="te=trailers content-type=application/grpc grpc-accept-encoding=gzip '
        'grpc-timeout=.*"',
    ]),
    ("BigHeaders", [
        'status=RESOURCE_EXHAUSTED message="response header list larger than 16384 bytes"',
        'messages=0 reply=""',
    ]),
]

# ---- plumbing -------------------------------------------------------------------
failures = []
procs = []


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("backend exited early with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("backend did not listen on %d" % port)


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    procs.append(p)
    # Drain stderr in the background so a chatty backend never blocks.
    threading.Thread(target=lambda: p.stderr.read(), daemon=True).start()
    return p


def stop(p):
    if p.poll() is None:
        p.kill()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def start_node_server(script, args=(), unix=False):
    p = spawn([NODE, script, "--port", "0"] + list(args))
    line = p.stdout.readline()
    m = re.match(r"listening (unix:\S+|\d+)", line or "")
    if not m:
        stop(p)
        raise RuntimeError("%s did not start: %r" % (script, line))
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    return p, (m.group(1) if unix else int(m.group(1)))


def start_s_server(args):
    """openssl s_server on a free loopback port (a TLS peer with no HTTP/2)."""
    # stdin stays open: at its end s_server closes the connection without an alert.
    p = spawn(["openssl", "s_server", "-accept", "127.0.0.1:0"] + list(args), stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.match(r"ACCEPT 127\.0\.0\.1:(\d+)", line or "")
        if m:
            threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
            return p, int(m.group(1))
        if not line:
            break
    stop(p)
    raise RuntimeError("openssl s_server did not start")


def start_demo(port=None):
    if not GRPCGATE:
        raise RuntimeError("GW_GRPCGATE is not set")
    port = port or free_port()
    p = spawn([GRPCGATE, "demo-service", "--listen", "127.0.0.1:%d" % port])
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    wait_port(port, p)
    return p, port


def matches(want, got):
    if want.startswith("~"):
        return re.fullmatch(want[1:], got) is not None
    return want == got


def compare(name, want, got):
    got = [l for l in got if not l.startswith("#")]
    ok = len(want) == len(got) and all(matches(w, g) for w, g in zip(want, got))
    if ok:
        log("ok   %s" % name)
        return
    failures.append(name)
    log("FAIL %s" % name)
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else "<nothing>"
        g = got[i] if i < len(got) else "<nothing>"
        mark = " " if i < len(want) and i < len(got) and matches(w, g) else "!"
        log("  %s want: %s\n  %s got:  %s" % (mark, w, mark, g))


def driver(drv, url, args, timeout=180, env=None):
    # Options (with their values) go before the URL, the scenario after it.
    i, pre, rest = 0, [], []
    while i < len(args):
        if args[i] in ("--accept-gzip",):       # flags without a value
            pre.append(args[i])
            i += 1
        elif args[i].startswith("--"):
            pre += args[i:i + 2]
            i += 2
        else:
            rest.append(args[i])
            i += 1
    cmd = [drv] + pre + [url] + rest
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, env=env)
    lines = r.stdout.splitlines()
    if r.returncode != 0:
        lines.append("driver exit code %d: %s" % (r.returncode, r.stderr.strip()[-2000:]))
    else:
        if lines and lines[-1] == "active_calls_at_exit=0":
            lines.pop()
        else:
            lines.append("driver did not end with active_calls_at_exit=0")
    for l in lines:
        if l.startswith("#"):
            log("     %s" % l)
    return lines


def run_api(drv, url, label):
    for args, want in API:
        compare("%s %s" % (label, " ".join(args)), want, driver(drv, url, args))


# ---- groups ----------------------------------------------------------------------
def group_api_grpcjs(drv):
    p, port = start_node_server(GRPCJS_SERVER)
    run_api(drv, "http://127.0.0.1:%d" % port, "grpc-js")
    stop(p)


def group_api_demo(drv):
    p, port = start_demo()
    run_api(drv, "http://127.0.0.1:%d" % port, "demo-service")
    stop(p)


def never_answering_server():
    """Accepts and reads, never writes: a backend that hangs."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop_flag = threading.Event()

    def serve():
        conns = []
        srv.settimeout(0.2)
        while not stop_flag.is_set():
            try:
                c, _ = srv.accept()
                c.setblocking(False)
                conns.append(c)
            except OSError:
                pass
            for c in conns:
                try:
                    c.recv(65536)
                except OSError:
                    pass
        for c in conns:
            c.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv.getsockname()[1], stop_flag


def h2_frame(ftype, flags, stream_id, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            stream_id.to_bytes(4, "big") + payload)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def goaway_then_ok_server(accept_first=0):
    """A raw HTTP/2 server (frames written by hand). On its first connection
    it answers the first `accept_first` requests normally and meets the next
    request HEADERS with GOAWAY(last-stream-id = the last answered stream,
    NO_ERROR), keeping the socket open; on later connections it answers
    every request with one gRPC message and grpc-status 0."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop_flag = threading.Event()
    held = []

    def handle(conn, first):
        conn.settimeout(0.2)
        buf = b""
        answered = 0
        last_sid = 0
        try:
            conn.sendall(h2_frame(4, 0, 0))                 # our SETTINGS
            while not stop_flag.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                buf += data
                if buf.startswith(b"PRI * HTTP/2.0"):
                    buf = buf[24:]
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7fffffff
                    buf = buf[9 + length:]
                    if ftype == 4 and not flags & 1:         # SETTINGS -> ACK
                        conn.sendall(h2_frame(4, 1, 0))
                    elif ftype == 1 and first and answered >= accept_first:
                        conn.sendall(h2_frame(7, 0, 0, last_sid.to_bytes(4, "big") + (0).to_bytes(4, "big")))
                    elif ftype == 1:
                        answered += 1
                        last_sid = sid
                        msg = b"after goaway"
                        headers = b"\x88" + hpack_literal("content-type", "application/grpc")
                        trailers = hpack_literal("grpc-status", "0")
                        conn.sendall(h2_frame(1, 4, sid, headers) +
                                     h2_frame(0, 0, sid, b"\x00" + len(msg).to_bytes(4, "big") + msg) +
                                     h2_frame(1, 5, sid, trailers))
        except OSError:
            return
        finally:
            conn.close()

    def serve():
        srv.settimeout(0.2)
        first = True
        while not stop_flag.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            t = threading.Thread(target=handle, args=(c, first), daemon=True)
            t.start()
            held.append(t)
            first = False
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], stop_flag


def kill_midstream(drv, label, start_backend):
    p, port = start_backend(None)
    url = "http://127.0.0.1:%d" % port
    proc = subprocess.Popen([drv, url, "kill_midstream"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    threading.Thread(target=lambda: proc.stderr.read(), daemon=True).start()
    lines = []
    deadline = time.time() + 120
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line == "STREAMING":
            stop(p)                       # SIGKILL in the middle of the stream
        elif line == "WAITING_RESTART":
            time.sleep(0.5)
            p, _ = start_backend(port)    # same port: the driver must reconnect
        else:
            lines.append(line)
        if time.time() > deadline:
            break
    proc.wait(timeout=30)
    if proc.returncode != 0:
        lines.append("driver exit code %d" % proc.returncode)
    elif lines and lines[-1] == "active_calls_at_exit=0":
        lines.pop()
    for l in lines:
        if l.startswith("#"):
            log("     %s" % l)
    compare("%s backend killed mid-stream" % label, [
        '~stream status=UNAVAILABLE message="connection to backend %s lost: .*"' % re.escape(url),
        "messages_at_least_20=true active_calls=0",
        "while_down status=UNAVAILABLE",
        "reconnected=true",
    ], lines)
    stop(p)


def group_faults(drv):
    # A backend that never answers: the deadline still ends the call.
    port, flag = never_answering_server()
    compare("never answers", [
        'status=DEADLINE_EXCEEDED message="deadline exceeded"',
        "ended_between_500ms_and_5s=true",
        "resets_sent=0",   # no SETTINGS ever came: the call never got a stream
    ], driver(drv, "http://127.0.0.1:%d" % port, ["never_answers"]))
    flag.set()

    # Nothing listens: fail fast with the reason.
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    compare("unreachable", [
        'status=UNAVAILABLE message="backend %s unreachable: connect: Connection refused"' % url,
        "trailers_only=true",
    ], driver(drv, url, ["getuser", "1"]))

    # Misbehaving HTTP/2 answers.
    p, port = start_node_server(FAULT_SERVER)
    url = "http://127.0.0.1:%d" % port
    for name, opts, want in [(f[0], f[1], f[2]) if len(f) == 3 else (f[0], [], f[1]) for f in FAULTS]:
        got = driver(drv, url, opts + ["fault", name])
        # retried/connects only matter where the expectation names them
        if not any(w.startswith("retried=") for w in want):
            got = [l for l in got if not l.startswith("retried=")]
        compare("fault %s %s" % (name, " ".join(opts)), [w.replace("{url}", url) for w in want], got)
    stop(p)

    # The backend allows 5 concurrent streams: 40 calls wait their turn on one
    # connection, or spread over a pool of 3, never above the limit.
    p, port = start_node_server(FAULT_SERVER, ["--max-streams", "5"])
    url = "http://127.0.0.1:%d" % port
    compare("max concurrent streams 5, pool 1", [
        "ok=40 connects=1 peak_streams=5 retried=0",
    ], driver(drv, url, ["fault_concurrent", "40", "Slow"]))
    compare("max concurrent streams 5, pool 3", [
        "ok=40 connects=3 peak_streams=5 retried=0",
    ], driver(drv, url, ["--pool", "3", "fault_concurrent", "40", "Slow"]))
    stop(p)

    # GOAWAY naming no stream: the call was not processed, so it is retried
    # once on a fresh connection.
    port, flag = goaway_then_ok_server()
    compare("GOAWAY below the call's stream: retried on a new connection", [
        'status=OK message=""',
        'messages=1 reply="after goaway"',
        "retried=1 connects=2",
    ], driver(drv, "http://127.0.0.1:%d" % port, ["fault", "Any"]))
    flag.set()

    # Two calls on one connection; GOAWAY names the first: it completes there,
    # the second is retried on a new connection.
    port, flag = goaway_then_ok_server(accept_first=1)
    compare("GOAWAY between two streams: the first finishes, the second is retried", [
        "ok=2 connects=2 peak_streams=2 retried=1",
    ], driver(drv, "http://127.0.0.1:%d" % port, ["fault_concurrent", "2", "Any"]))
    flag.set()

    # GOAWAY: grpc-js closes every connection after 500 ms (max_connection_age),
    # the stream in flight finishes, later calls go to a new connection.
    p, port = start_node_server(GRPCJS_SERVER, ["--max-connection-age-ms", "500"])
    compare("grpc-js GOAWAY (max connection age)", [
        "stream messages=30 ids_ok=true",
        '~stream status=OK message="%s"' % OK_MSG,
        "echo_ok=10 goaway_seen=true reconnected=true",
    ], driver(drv, "http://127.0.0.1:%d" % port, ["goaway"]))
    stop(p)

    # Backend killed in the middle of a stream, then back on the same port.
    kill_midstream(drv, "demo-service", lambda port: start_demo(port))


def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def make_cert(tmp, name, cn):
    cert = os.path.join(tmp, name + "-cert.pem")
    key = os.path.join(tmp, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", key, "-out", cert, "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def group_transports(drv):
    user1 = [
        "user id=1 name=Ada Lovelace email=ada@example.com role=3",
        '~status=OK message="%s"' % OK_MSG,
        "trailers_only=false",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        # unix:/path
        sock = os.path.join(tmp, "grpcjs.sock")
        p, _ = start_node_server(GRPCJS_SERVER, ["--unix", sock], unix=True)
        compare("unix socket", user1, driver(drv, "unix:" + sock, ["getuser", "1"]))
        stop(p)

        # A host name, resolved off the loop by the default resolver
        # (getaddrinfo on a resolver thread); the server listens on
        # 127.0.0.1 only, so where localhost is ::1 first, that address
        # refuses and the connect moves on to the next one.
        p, port = start_node_server(GRPCJS_SERVER, ["--host", "127.0.0.1"])
        compare("host name (localhost)", user1, driver(drv, "http://localhost:%d" % port, ["getuser", "1"]))
        stop(p)

        # [::1]: an IPv6 literal in the URL (where the machine has IPv6).
        if ipv6_available():
            p, port = start_node_server(GRPCJS_SERVER, ["--host", "::1"])
            compare("ipv6 literal", user1, driver(drv, "http://[::1]:%d" % port, ["getuser", "1"]))
            stop(p)
        else:
            log("skip ipv6 literal: no ::1 on this machine")

        cert, key = make_cert(tmp, "server", "localhost")
        client_cert, client_key = make_cert(tmp, "client", "grpcgate-test-client")
        # mTLS: the server requires a client certificate it trusts.
        p, port = start_node_server(GRPCJS_SERVER, ["--tls-cert", cert, "--tls-key", key,
                                                    "--tls-client-ca", client_cert])
        url = "https://127.0.0.1:%d" % port
        compare("mtls with client certificate", user1,
                driver(drv, url, ["--ca", cert, "--cert", client_cert, "--key", client_key,
                                  "getuser", "1"]))
        # TLS 1.3: the backend's certificate_required alert, in words
        # (before: "TLS write failed: unknown TLS error").
        compare("mtls without client certificate", [
            '~status=UNAVAILABLE message="(connection to )?backend %s (unreachable|lost): TLS '
            '(handshake|read|write) failed: the backend requires a client certificate and none '
            'is configured \\(--backend-cert and --backend-key, or cert_file and key_file in '
            'backend_tls or backends.NAME.tls\\)"' % re.escape(url),
            "trailers_only=true",
        ], driver(drv, url, ["--ca", cert, "getuser", "1"]))
        stop(p)
        # TLS 1.2 answers a missing client certificate with handshake_failure:
        # the request for one tells it apart from a cipher mismatch.
        for version in ("-tls1_2", "-tls1_3"):
            p, port = start_s_server(["-cert", cert, "-key", key, version, "-Verify", "1",
                                      "-alpn", "h2"])
            url = "https://127.0.0.1:%d" % port
            compare("mtls without client certificate, openssl s_server %s" % version, [
                '~status=UNAVAILABLE message="(connection to )?backend %s (unreachable|lost): '
                'TLS (handshake|read|write) failed: the backend requires a client certificate '
                'and none is configured .*"' % re.escape(url),
                "trailers_only=true",
            ], driver(drv, url, ["--ca", cert, "getuser", "1"]))
            stop(p)
        p, port = start_node_server(GRPCJS_SERVER, ["--tls-cert", cert, "--tls-key", key])
        url = "https://127.0.0.1:%d" % port
        compare("tls trusted (ca_file)", user1, driver(drv, url, ["--ca", cert, "getuser", "1"]))
        # By name: SNI and verification use the name, the address comes
        # from the resolver.
        compare("tls by host name (localhost)", user1,
                driver(drv, "https://localhost:%d" % port, ["--ca", cert, "getuser", "1"]))
        compare("tls untrusted (system CAs)", [
            'status=UNAVAILABLE message="backend %s unreachable: TLS handshake failed: '
            'certificate verify failed: self-signed certificate (checked against the system CAs; '
            'name the backend\'s CA with --backend-ca FILE, or ca_file in backend_tls or '
            'backends.NAME.tls)"' % url,
            "trailers_only=true",
        ], driver(drv, url, ["getuser", "1"]))
        compare("tls trusted certificate, wrong name", [
            'status=UNAVAILABLE message="backend %s unreachable: TLS handshake failed: '
            'certificate verify failed: hostname mismatch"' % url,
            "trailers_only=true",
        ], driver(drv, url, ["--ca", cert, "--server-name", "other.example", "getuser", "1"]))
        stop(p)


def group_slow_consumer(drv):
    env = dict(os.environ)
    # Under ASan, freed memory sits in a quarantine and would count as RSS.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    want = [
        "bytes=104857600 pattern_ok=true",
        '~status=OK message="%s"' % OK_MSG,
        "rss_growth_under_2mib=true",
        "unconsumed_within_window=true",
    ]
    p, port = start_demo()
    compare("demo-service 100 MiB download, slow consumer",
            want, driver(drv, "http://127.0.0.1:%d" % port, ["download", "104857600", "1"],
                         timeout=400, env=env))
    stop(p)
    p, port = start_node_server(GRPCJS_SERVER)
    compare("grpc-js 100 MiB download, slow consumer",
            want, driver(drv, "http://127.0.0.1:%d" % port, ["download", "104857600", "1"],
                         timeout=400, env=env))
    stop(p)


# ---- parity: the two backends answer the same requests the same way ----------
# (method, request JSON messages) in order; state carries over between them.
PARITY = [
    ("UserService/GetUser", ['{"id": 1}']),
    ("UserService/GetUser", ['{"id": 2}']),
    ("UserService/GetUser", ['{"id": 3}']),
    ("UserService/GetUser", ['{"id": 99}']),
    ("UserService/ListUsers", ['{}']),
    ("UserService/ListUsers", ['{"page_size": 5}']),
    ("UserService/ListUsers", ['{"page_size": 2}']),
    ("UserService/ListUsers", ['{"page_size": 5, "follow": true}']),
    ("UserService/ListUsers", ['{"page_size": 4, "role": "ROLE_ADMIN"}']),
    ("UserService/ListUsers", ['{"page_size": 4, "role": "ROLE_ADMIN", "follow": true}']),
    ("UserService/ListUsers", ['{"page_size": 100001}']),
    ("UserService/CreateUser", ['{"name": "Neo", "email": "neo@example.com", "role": "ROLE_VIEWER",'
                                ' "tags": ["one"], "labels": {"k": "v"}, "createdAt": "2024-05-05T00:00:00Z"}']),
    ("UserService/CreateUser", ['{"name": "", "email": "bad"}']),
    ("UserService/CreateUser", ['{"name": "NoMail", "email": "nowhere"}']),
    ("UserService/UpdateUser", ['{"user": {"id": 4, "name": "Neo Two", "email": "x@y"}, "updateMask": "name"}']),
    ("UserService/UpdateUser", ['{"user": {"id": 4, "age": 30, "address": {"city": "Zion"}},'
                                ' "updateMask": "age,address.city"}']),
    ("UserService/UpdateUser", ['{"user": {"id": 4}, "updateMask": "bogus"}']),
    ("UserService/UpdateUser", ['{"user": {"id": 99, "name": "x"}}']),
    ("UserService/UpdateUser", ['{"user": {"id": 4, "name": "Replaced", "email": "r@x", "slackHandle": "@r"}}']),
    ("UserService/DeleteUser", ['{"id": 4}']),
    ("UserService/GetUser", ['{"id": 4}']),
    ("UserService/DeleteUser", ['{"id": 4}']),
    ("UserService/UndeleteUser", ['{"id": 4, "reason": "oops"}']),
    ("UserService/UndeleteUser", ['{"id": 4}']),
    ("UserService/SetAvatar", ['{"id": 2, "avatar": {"contentType": "image/png", "data": "AAEC"}}']),
    ("UserService/SetAvatar", ['{"id": 77, "avatar": {"data": "AAEC"}}']),
    ("UserService/CreateUsers", ['{"name": "A", "email": "a@x", "createdAt": "2024-01-01T00:00:00Z"}',
                                 '{"name": "B", "email": "b@x", "createdAt": "2024-01-01T00:00:00Z"}']),
    ("UserService/CreateUsers", ['{"name": "C", "email": "c@x", "createdAt": "2024-01-01T00:00:00Z"}',
                                 '{"name": "", "email": "d@x"}']),
    ("UserService/Chat", ['{"text": "hi", "sequence": 1}', '{"text": "again", "sequence": 2}']),
    ("EchoService/Echo", ['{"message": "hello", "number": 5}']),
    ("EchoService/Unbound", ['{"message": "u"}']),
    ("EchoService/Fail", ['{"code": 0, "message": "fine"}']),
    ("EchoService/Fail", ['{"code": 5, "message": "nope"}']),
    ("EchoService/Fail", ['{"code": 3, "message": "bad"}']),
    ("EchoService/Download", ['{"totalBytes": 10, "chunkSize": 4}']),
    ("EchoService/Download", ['{"chunkSize": 2000000}']),
]

BUF = os.path.join(SRC, "node_modules", ".bin", "buf")
NOW_TS = re.compile(r'"(20(2[5-9]|[3-9]\d)-[0-9T:.\-]+Z)"')


def buf_curl(url, method, messages, extra=()):
    cmd = [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--emit-defaults",
           *extra, "-d", "@-", "%s/demo.v1.%s" % (url, method)]
    t0 = time.time()
    r = subprocess.run(cmd, input="\n".join(messages), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    text = (r.stdout + r.stderr).strip()
    if os.environ.get("GW_PARITY_DEBUG"):
        log("     # %.2fs %s" % (time.time() - t0, " ".join(cmd[-2:])))
    # Timestamps of "now" (sent_at, created_at of new users) differ by nature.
    return "exit %d\n%s" % (r.returncode, NOW_TS.sub('"<now>"', text))


def group_parity(drv):
    if not os.path.exists(BUF):
        raise RuntimeError("buf not installed (npm ci)")
    p1, port1 = start_node_server(GRPCJS_SERVER, ["--reflection"])
    p2, port2 = start_demo()
    for method, messages in PARITY:
        a = buf_curl("http://127.0.0.1:%d" % port1, method, messages)
        b = buf_curl("http://127.0.0.1:%d" % port2, method, messages)
        compare("parity %s %s" % (method, " ".join(messages))[:120], b.splitlines(), a.splitlines())
    # GetAvatar: an SVG with the initials; the drawing itself may differ.
    for port, label in ((port1, "grpc-js"), (port2, "demo-service")):
        out = buf_curl("http://127.0.0.1:%d" % port, "UserService/GetAvatar", ['{"id": 1}'])
        m = re.search(r'"data": "([^"]*)"', out)
        import base64
        svg = base64.b64decode(m.group(1)).decode("utf-8", "replace") if m else ""
        compare("%s GetAvatar is an SVG with the initials" % label,
                ["content_type=image/svg+xml svg=True initials=True"],
                ["content_type=%s svg=%s initials=%s" % (
                    "image/svg+xml" if '"contentType": "image/svg+xml"' in out else out[:200],
                    "<svg" in svg, "AL" in svg)])
    stop(p1)
    stop(p2)


GROUPS = {
    "parity": group_parity,
    "api-grpcjs": group_api_grpcjs,
    "api-demo": group_api_demo,
    "faults": group_faults,
    "transports": group_transports,
    "slow-consumer": group_slow_consumer,
}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in GROUPS:
        print("usage: run_integration.py DRIVER {%s}" % ",".join(GROUPS), file=sys.stderr)
        return 2
    drv = sys.argv[1]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        GROUPS[sys.argv[2]](drv)
    except Exception as exc:  # a backend that cannot start is a failure, not a crash
        failures.append("setup: %s" % exc)
        log("FAIL setup: %s" % exc)
    finally:
        for p in procs:
            stop(p)
    if failures:
        log("%d failed: %s" % (len(failures), ", ".join(failures)))
        return 1
    log("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
