"""Operations of the real `grpcgate serve` against the real demo service on
loopback: /healthz and /readyz (and readiness flipping when the backend
goes away and on drain), /metrics parsed and checked for exact counts after
a known sequence of gRPC-Web and REST calls, the JSON access log, the path
prefix, the separate admin listener, /openapi.json matching `grpcgate
openapi`, and HTTPS with and without client certificates through curl."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

# GW_STRICT=1 (.ci/run): a tool scripts/setup installs is required, not skipped.
STRICT = os.environ.get("GW_STRICT") == "1"

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "front"))
from gwtest import (GRPCGATE, DEMO_DESC, Procs, frame, grpcweb, pb_string,  # noqa: E402
                    pb_varint, request)

ECHO = "/demo.v1.EchoService/Echo"
DOWNLOAD = "/demo.v1.EchoService/Download"
GET_USER = "/demo.v1.UserService/GetUser"


def have_grpcjs():
    """node and the installed @grpc/grpc-js (node_modules at the source root)."""
    root = os.path.join(HERE, "..", "..")
    return bool(shutil.which("node")) and os.path.isdir(os.path.join(root, "node_modules", "@grpc"))


def parse_metrics(text):
    """The Prometheus text format → {(name, frozenset(labels)): value}; checks
    that every sample belongs to a family declared by # TYPE before it."""
    out, types = {}, {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, "malformed sample line %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "sample %s without # TYPE" % name
        pairs = label_re.findall(labels)
        assert ",".join('%s="%s"' % p for p in pairs) == labels, "bad labels %r" % labels
        out[(name, frozenset(pairs))] = float(value)
    return out


def metric(ms, name, **labels):
    return ms.get((name, frozenset(labels.items())), 0.0)


def http_get(port, path):
    return request(port, "GET", path)


class Ops(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.P = Procs()
        cls.demo, cls.backend = cls.P.demo()
        cls.log = os.path.join(cls.P.tmp, "access.log")
        cls.gw, cls.port = cls.P.gateway(cls.backend, {"access_log": cls.log}, workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.P.stop_all()

    def scrape(self, port=None):
        r = http_get(port or self.port, "/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        return parse_metrics(r.body.decode())

    def test_health(self):
        r = http_get(self.port, "/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = http_get(self.port, "/readyz")
            if r.status == 200:
                break
            time.sleep(0.1)
        self.assertEqual((r.status, r.body), (200, b"ready\n"))
        # Only GET/HEAD; anything else falls through to the normal routing.
        r = request(self.port, "HEAD", "/healthz")
        self.assertEqual(r.status, 200)

    def test_metrics_exact_counts(self):
        before = self.scrape()
        # The known sequence.
        r = grpcweb(self.port, ECHO, frame(pb_string(1, "hi")))
        self.assertEqual(r.grpc_status()[0], 0)
        r = grpcweb(self.port, ECHO, frame(pb_string(1, "again")))
        self.assertEqual(r.grpc_status()[0], 0)
        r = grpcweb(self.port, GET_USER, frame(pb_varint(1, 987654)))
        self.assertEqual(r.grpc_status()[0], 5)
        r = grpcweb(self.port, DOWNLOAD, frame(pb_varint(1, 10000) + pb_varint(2, 1000)))
        self.assertEqual(r.grpc_status()[0], 0)
        self.assertEqual(len([f for f, _ in r.frames() if f == 0]), 10)
        r = grpcweb(self.port, "/demo.v1.EchoService/NoSuchMethod", frame(b""))
        self.assertEqual(r.grpc_status()[0], 12)
        r = request(self.port, "POST", "/v1/echo", b'{"message":"rest"}',
                    {"Content-Type": "application/json"})
        self.assertEqual((r.status, json.loads(r.body)), (200, {"message": "rest"}))
        r = http_get(self.port, "/v1/users/987654")
        self.assertEqual(r.status, 404)

        # A call is counted when the front closes it, just after the client
        # has its answer: wait until nothing is active any more.
        deadline = time.monotonic() + 20
        after = self.scrape()
        while metric(after, "grpcgate_active_calls") != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            after = self.scrape()

        def delta(name, **labels):
            return metric(after, name, **labels) - metric(before, name, **labels)

        table = [
            ("grpcgate_requests_total", dict(protocol="grpc_web", method=ECHO, code="OK"), 2),
            ("grpcgate_requests_total",
             dict(protocol="grpc_web", method=GET_USER, code="NOT_FOUND"), 1),
            ("grpcgate_requests_total", dict(protocol="grpc_web", method=DOWNLOAD, code="OK"), 1),
            ("grpcgate_requests_total",
             dict(protocol="grpc_web", method="unknown", code="UNIMPLEMENTED"), 1),
            ("grpcgate_requests_total", dict(protocol="rest", method=ECHO, code="OK"), 1),
            ("grpcgate_requests_total", dict(protocol="rest", method=GET_USER, code="NOT_FOUND"),
             1),
            ("grpcgate_request_duration_seconds_count", dict(protocol="grpc_web", method=ECHO), 2),
            ("grpcgate_request_duration_seconds_bucket",
             dict(protocol="grpc_web", method=ECHO, le="+Inf"), 2),
            ("grpcgate_request_duration_seconds_count", dict(protocol="grpc_web", method=DOWNLOAD),
             1),
            # 5-byte frame header + 4 bytes ("\n\x02hi") and + 7 ("\n\x05again")
            ("grpcgate_request_bytes_total", dict(protocol="grpc_web", method=ECHO), 9 + 12),
            ("grpcgate_request_bytes_total", dict(protocol="rest", method=ECHO), 18),
        ]
        for name, labels, want in table:
            self.assertEqual(delta(name, **labels), want, "%s %s" % (name, labels))
        # 10 chunks of 1000 bytes and more went out for the stream.
        self.assertGreater(delta("grpcgate_response_bytes_total", protocol="grpc_web",
                                 method=DOWNLOAD), 10000)
        self.assertEqual(metric(after, "grpcgate_active_calls"), 0)
        self.assertEqual(metric(after, "grpcgate_workers"), 2)
        # Histogram buckets are cumulative and end at the count.
        buckets = sorted((float(dict(k[1])["le"]) if dict(k[1])["le"] != "+Inf" else 1e99, v)
                         for k, v in after.items()
                         if k[0] == "grpcgate_request_duration_seconds_bucket"
                         and dict(k[1])["method"] == ECHO and dict(k[1])["protocol"] == "grpc_web")
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        # Upstream connections: sampled every 250 ms by each worker.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ms = self.scrape()
            if metric(ms, "grpcgate_upstream_connections", backend=self.backend,
                      state="open") >= 1:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(metric(ms, "grpcgate_upstream_connections",
                                       backend=self.backend, state="open"), 1)
        self.assertEqual(metric(ms, "grpcgate_ready"), 1)

        # The access log has one line per call of the sequence, in JSON.
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            with open(self.log) as f:
                lines = [json.loads(x) for x in f]
            if any(x["route"] == "/v1/users/987654" for x in lines):
                break
            time.sleep(0.1)
        by_route = {x["route"]: x for x in lines}
        x = by_route["/v1/users/987654"]
        self.assertEqual((x["protocol"], x["method"], x["http_method"], x["http_status"],
                          x["grpc_status"], x["grpc_code"], x["peer"], x["backend"],
                          x["completed"]),
                         ("rest", GET_USER, "GET", 404, 5, "NOT_FOUND", "127.0.0.1",
                          self.backend, True))
        x = by_route[DOWNLOAD]
        self.assertEqual((x["protocol"], x["http_status"], x["grpc_code"]),
                         ("grpc-web", 200, "OK"))
        self.assertGreater(x["response_bytes"], 10000)
        self.assertRegex(x["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIsInstance(x["duration_ms"], float)
        self.assertIsNone(by_route["/demo.v1.EchoService/NoSuchMethod"]["method"])
        # The endpoint the upstream call went to; none when no call started.
        self.assertEqual(by_route["/v1/users/987654"]["endpoint"], self.backend)
        self.assertEqual(by_route[DOWNLOAD]["endpoint"], self.backend)
        self.assertIsNone(by_route["/demo.v1.EchoService/NoSuchMethod"]["endpoint"])

    def test_openapi_served(self):
        r = http_get(self.port, "/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        want = subprocess.run([GRPCGATE, "openapi", "--descriptor", DEMO_DESC],
                              capture_output=True, check=True).stdout
        self.assertEqual(json.loads(r.body), json.loads(want))


class Layout(unittest.TestCase):
    """Prefix, endpoints off on the main port, admin listener, OpenAPI off."""

    def test_prefix_and_admin_listener(self):
        P = Procs()
        try:
            _, backend = P.demo()
            cfg = {"admin": {"prefix": "/ops", "listen": "127.0.0.1:0"},
                   "openapi_path": "/api/openapi.json"}
            gw, port = P.gateway(backend, cfg, workers=1)
            self.assertEqual(http_get(port, "/ops/healthz").status, 200)
            # Not at the root any more: there it is an ordinary (REST) 404.
            self.assertEqual(http_get(port, "/healthz").status, 404)
            self.assertEqual(http_get(port, "/ops/metrics").status, 200)
            self.assertEqual(http_get(port, "/openapi.json").status, 404)
            self.assertEqual(http_get(port, "/api/openapi.json").status, 200)
            # The admin port, from the log line.
            deadline = time.monotonic() + 10
            admin = None
            while time.monotonic() < deadline and admin is None:
                m = re.search(r"admin listener on port (\d+)", P.stderr(gw))
                admin = int(m.group(1)) if m else None
                time.sleep(0.05)
            self.assertIsNotNone(admin)
            self.assertEqual(http_get(admin, "/healthz").body, b"ok\n")
            self.assertEqual(http_get(admin, "/metrics").status, 200)
            self.assertEqual(http_get(admin, "/nothing").status, 404)
            # The reload endpoint is off by default.
            self.assertEqual(request(admin, "POST", "/admin/reload").status, 404)
        finally:
            P.stop_all()

    def test_off(self):
        P = Procs()
        try:
            _, backend = P.demo()
            cfg = {"admin": {"on_main_port": False}, "openapi_path": False}
            gw, port = P.gateway(backend, cfg, workers=1)
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
                self.assertEqual(http_get(port, path).status, 404, path)
        finally:
            P.stop_all()


class Readiness(unittest.TestCase):
    def wait_status(self, port, want, poke=None, timeout=30):
        deadline = time.monotonic() + timeout
        r = None
        while time.monotonic() < deadline:
            if poke:
                poke()
            r = http_get(port, "/readyz")
            if r.status == want:
                return r
            time.sleep(0.1)
        self.fail("readyz stayed %s" % (r.status if r else None))

    def test_backend_goes_away_and_drain(self):
        P = Procs()
        try:
            demo, backend = P.demo()
            cfg = {"admin": {"listen": "127.0.0.1:0", "drain_delay_ms": 3000}}
            gw, port = P.gateway(backend, cfg, workers=1)
            self.wait_status(port, 200)
            self.assertEqual(grpcweb(port, ECHO, frame(pb_string(1, "x"))).grpc_status()[0], 0)
            P.stop(demo)
            # Calls find the backend gone; readiness follows.
            r = self.wait_status(port, 503,
                                 poke=lambda: grpcweb(port, ECHO, frame(pb_string(1, "x"))))
            self.assertEqual(r.body, b"not ready\n")
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_ready"), 0)

            # Drain: readiness false first (on the admin port, which stays
            # up), while the main port still answers during drain_delay_ms.
            m = re.search(r"admin listener on port (\d+)", P.stderr(gw))
            admin = int(m.group(1))
            gw.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            r = http_get(admin, "/readyz")
            while r.body != b"draining\n" and time.monotonic() < deadline:
                time.sleep(0.02)
                r = http_get(admin, "/readyz")
            self.assertEqual((r.status, r.body), (503, b"draining\n"))
            self.assertEqual(http_get(port, "/healthz").status, 200)
            self.assertEqual(gw.wait(30), 0)
        finally:
            P.stop_all()


LIST_USERS = "/demo.v1.UserService/ListUsers"


class Backends(unittest.TestCase):
    """Named backends (clusters) and routing by service: a backend of two
    endpoints with health checks, the --backend shortcut for the rest, a
    method routed nowhere is not exposed, and losing one endpoint of two
    fails no call made after it was ejected."""

    def test_routes_and_failover(self):
        P = Procs()
        try:
            demo_a, url_a = P.demo()
            _, url_b = P.demo()
            _, url_c = P.demo()
            cfg = {
                "backends": {"pair": {
                    "endpoints": [url_a, url_b], "policy": "round_robin",
                    # generous for a loaded (sanitizer) machine
                    "health": {"interval_ms": 500, "timeout_ms": 500,
                               "unhealthy_threshold": 2, "healthy_threshold": 1},
                    "probe_interval_ms": 300}},
                "routes": [{"match": "demo.v1.EchoService", "backend": "pair"},
                           {"match": "/demo.v1.UserService/GetUser", "backend": "default"}],
            }
            js = None
            if have_grpcjs():
                # The @grpc/grpc-js implementation of the demo API serves
                # CreateUser: three kinds of backend behind one gateway.
                script = os.path.join(HERE, "..", "node", "grpcjs_server.mjs")
                _, m = P.start(["node", script, "--port", "0"], r"listening (\d+)", "grpcjs")
                js = "http://127.0.0.1:" + m.group(1)
                cfg["backends"]["js"] = {"endpoints": [js]}
                cfg["routes"].append({"match": "/demo.v1.UserService/CreateUser",
                                      "backend": "js"})
            gw, port = P.gateway(url_c, cfg, workers=2)
            echo = lambda: grpcweb(port, ECHO, frame(pb_string(1, "x")))  # noqa: E731
            # Both endpoints up in both workers first.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ms = parse_metrics(http_get(port, "/metrics").body.decode())
                if metric(ms, "grpcgate_upstream_endpoints", backend="pair",
                          state="healthy") == 4:
                    break
                time.sleep(0.1)
            for _ in range(20):
                self.assertEqual(echo().grpc_status()[0], 0)
            # Round robin in each worker spreads the 20 calls over both
            # endpoints (at most one odd call per worker).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ms = parse_metrics(http_get(port, "/metrics").body.decode())
                calls = [metric(ms, "grpcgate_upstream_endpoint_calls_total", backend="pair",
                                endpoint=u) for u in (url_a, url_b)]
                if sum(calls) == 20:
                    break
                time.sleep(0.1)
            self.assertEqual(sum(calls), 20)
            # 9 each without ejections; a health check slowed past its
            # timeout on a loaded machine may take one out for a moment.
            self.assertGreaterEqual(min(calls), 5, calls)
            if js:
                r = request(port, "POST", "/v1/users", b'{"name":"Ann","email":"ann@x.org"}',
                            {"Content-Type": "application/json"})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(json.loads(r.body)["name"], "Ann")
            # GetUser is routed (to default): NOT_FOUND comes from the backend.
            r = grpcweb(port, GET_USER, frame(pb_varint(1, 987654)))
            self.assertEqual(r.grpc_status()[0], 5)
            # ListUsers matches no route: not exposed, through either protocol.
            r = grpcweb(port, LIST_USERS, list_users_req(1, 0))
            self.assertEqual(r.grpc_status()[0], 12)
            # (with CreateUser routed, the path exists for POST only: 405)
            self.assertEqual(http_get(port, "/v1/users").status, 405 if js else 404)
            self.assertEqual(request(port, "POST", "/v1/echo", b'{"message":"r"}',
                                     {"Content-Type": "application/json"}).status, 200)

            # The OpenAPI document lists what is routed, nothing else.
            doc = json.loads(http_get(port, "/openapi.json").body)
            ops = {(p, v) for p, item in doc["paths"].items() for v in item
                   if isinstance(item[v], dict) and "operationId" in item[v]}
            want = {("/v1/echo", "post"), ("/v1/fail", "post"), ("/v1/download", "get"),
                    ("/demo.v1.EchoService/Unbound", "post"), ("/v1/users/{id}", "get")}
            if js:  # a path prefix: CreateUsers matches "/…/CreateUser" too
                want |= {("/v1/users", "post"), ("/v1/users:batchCreate", "post")}
            self.assertEqual(ops, want)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoints", backend="pair",
                                    state="total"), 4)  # 2 endpoints x 2 workers

            # One endpoint goes away: after its ejection every call succeeds.
            P.stop(demo_a)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ms = parse_metrics(http_get(port, "/metrics").body.decode())
                if metric(ms, "grpcgate_upstream_endpoints", backend="pair",
                          state="healthy") == 2:
                    break
                time.sleep(0.1)
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoints", backend="pair",
                                    state="healthy"), 2)
            self.assertGreater(metric(ms, "grpcgate_health_checks_total", backend="pair",
                                      result="failed"), 0)
            for _ in range(20):
                self.assertEqual(echo().grpc_status()[0], 0)
            self.assertEqual(http_get(port, "/readyz").status, 200)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoint_up", backend="pair",
                                    endpoint=url_a), 0)
        finally:
            P.stop_all()

    def test_config_errors(self):
        P = Procs()
        try:
            _, url = P.demo()
            table = [
                ({"backends": {"x": {"endpoints": [url]}},
                  "routes": [{"match": "*", "backend": "nope"}]},
                 "routes[0]: no backend 'nope'"),
                ({"backends": {"x": {"endpoints": [url]}}}, 'several backends: give "routes"'),
                ({"backends": {"x": {"endpoints": []}}}, "backends.x.endpoints: expected"),
                ({"backends": {"default": {"endpoints": [url]}}},
                 "backends: the name 'default' is reserved"),
                ({"backends": {"x": {"endpoints": [url], "policy": "random"}}},
                 'backends.x.policy: expected "round_robin" or "least_outstanding"'),
                ({"backends": {"x": {"endpoints": [url], "health": {"every": 1}}}},
                 "unknown key 'backends.x.health.every'"),
            ]
            for cfg, want in table:
                path = os.path.join(P.tmp, "bad.json")
                with open(path, "w") as f:
                    json.dump(cfg, f)
                p = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                                    url, "--descriptor", DEMO_DESC, "--config", path],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 2, cfg)
                self.assertIn(want, p.stderr)
        finally:
            P.stop_all()

    def test_reflect(self):
        P = Procs()
        try:
            _, url = P.demo()
            args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", url,
                    "--reflect", "--workers", "1"]
            gw, m = P.start(args, r"listening on ([\d.]+):(\d+)", "gateway-reflect")
            port = int(m.group(2))
            r = request(port, "POST", "/v1/echo", b'{"message":"no descriptor file"}',
                        {"Content-Type": "application/json"})
            self.assertEqual(json.loads(r.body), {"message": "no descriptor file"})
            self.assertEqual(grpcweb(port, ECHO, frame(pb_string(1, "x"))).grpc_status()[0], 0)
            self.assertEqual(http_get(port, "/openapi.json").status, 200)
            # Unreachable reflection: a clear startup error naming the backend.
            p = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                                "http://127.0.0.1:1", "--reflect"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("backend default: reflection on http://127.0.0.1:1 failed", p.stderr)
            if not have_grpcjs():
                return
            # A named backend with "reflect": the @grpc/grpc-js server with
            # @grpc/reflection, no descriptor file anywhere.
            script = os.path.join(HERE, "..", "node", "grpcjs_server.mjs")
            _, m = P.start(["node", script, "--port", "0", "--reflection"],
                           r"listening (\d+)", "grpcjs")
            cfg = os.path.join(P.tmp, "reflect.json")
            with open(cfg, "w") as f:
                json.dump({"backends": {"js": {"endpoints": ["http://127.0.0.1:" + m.group(1)],
                                               "reflect": True}},
                           "routes": [{"match": "*", "backend": "js"}]}, f)
            gw, m = P.start([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--config", cfg,
                             "--workers", "1"], r"listening on ([\d.]+):(\d+)", "gateway-js")
            port = int(m.group(2))
            r = request(port, "POST", "/v1/echo", b'{"message":"via grpc-js"}',
                        {"Content-Type": "application/json"})
            self.assertEqual(json.loads(r.body), {"message": "via grpc-js"})
            self.assertEqual(grpcweb(port, ECHO, frame(pb_string(1, "x"))).grpc_status()[0], 0)
            self.assertIn("reflection: descriptors of backend js", P.stderr(gw))
        finally:
            P.stop_all()





class ListenInUse(unittest.TestCase):
    """A port somebody listens on is refused before the workers bind
    (their SO_REUSEPORT would otherwise share it): exit 1 with the address
    named, and the one already there keeps serving."""

    def serve(self, backend, listen, *extra):
        return subprocess.run([GRPCGATE, "serve", "--listen", listen, "--backend", backend,
                               "--descriptor", DEMO_DESC, "--workers", "2"] + list(extra),
                              capture_output=True, text=True, timeout=60)

    def test_taken_port_refused(self):
        import socket
        P = Procs()
        plain = socket.socket()
        try:
            _, backend = P.demo()
            gw, port = P.gateway(backend)
            plain.bind(("127.0.0.1", 0))
            plain.listen(4)
            plain_port = plain.getsockname()[1]
            table = [
                # (listen, extra flags, message)
                ("127.0.0.1:%d" % port, [],
                 "listen address 127.0.0.1:%d is already in use" % port),
                ("0.0.0.0:%d" % port, [],
                 "listen address 0.0.0.0:%d is already in use" % port),
                ("127.0.0.1:%d" % plain_port, [],
                 "listen address 127.0.0.1:%d is already in use" % plain_port),
                ("127.0.0.1:0", ["--admin-listen", "127.0.0.1:%d" % port],
                 "listen address 127.0.0.1:%d is already in use" % port),
            ]
            for listen, extra, want in table:
                p = self.serve(backend, listen, *extra)
                self.assertEqual(p.returncode, 1, (listen, p.stderr))
                self.assertEqual(p.stdout, "", listen)
                self.assertEqual(p.stderr.strip(), "grpcgate serve: " + want)
            # The first gateway still answers every connection itself.
            for _ in range(10):
                r = grpcweb(port, ECHO, frame(pb_string(1, "still here")))
                self.assertEqual(r.grpc_status()[0], 0)
            self.assertEqual(http_get(port, "/healthz").status, 200)
            # Once it is gone the port can be served again.
            self.assertEqual(P.stop(gw), 0)
            gw2, m = P.start([GRPCGATE, "serve", "--listen", "127.0.0.1:%d" % port, "--backend",
                              backend, "--descriptor", DEMO_DESC, "--workers", "1"],
                             r"listening on ([\d.]+):(\d+)", "gateway-again")
            self.assertEqual(int(m.group(2)), port)
            self.assertEqual(http_get(port, "/healthz").status, 200)
        finally:
            plain.close()
            P.stop_all()


def list_users_req(n, delay_ms):
    # ListUsersRequest{page_size: n, delay: Duration{nanos: delay_ms * 1e6},
    # follow: true}: n users, cycling through the store
    return frame(pb_varint(1, n) + pb_string(2, pb_varint(2, delay_ms * 1000000)) +
                 pb_varint(4, 1))


class Reload(unittest.TestCase):
    """SIGHUP under load: a changed config adds a route, nothing fails,
    streams in flight complete; a broken config keeps the old one."""

    def test_reload_under_load(self):
        import threading
        P = Procs()
        try:
            _, backend = P.demo()
            path = os.path.join(P.tmp, "reload.json")
            base = {"rest": {"auto_map_unbound": False}, "admin": {"reload_endpoint": True}}
            with open(path, "w") as f:
                json.dump(base, f)
            args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", backend,
                    "--descriptor", DEMO_DESC, "--workers", "2", "--config", path]
            gw, m = P.start(args, r"listening on ([\d.]+):(\d+)", "gateway-reload")
            port = int(m.group(2))
            unbound = lambda: request(port, "POST", "/demo.v1.EchoService/Unbound",  # noqa
                                      b'{"message":"new"}', {"Content-Type": "application/json"})
            self.assertIn(unbound().status, (404, 415))  # not a route yet

            stop = threading.Event()
            failures, counts = [], {"unary": 0, "stream": 0, "rest": 0}
            lock = threading.Lock()

            def loop(kind):
                while not stop.is_set():
                    try:
                        if kind == "unary":
                            r = grpcweb(port, ECHO, frame(pb_string(1, "load")))
                            ok = r.status == 200 and r.grpc_status()[0] == 0
                        elif kind == "stream":
                            r = grpcweb(port, LIST_USERS, list_users_req(4, 60))
                            ok = (r.status == 200 and r.grpc_status()[0] == 0 and
                                  len([f for f, _ in r.frames() if f == 0]) == 4)
                        else:
                            r = request(port, "POST", "/v1/echo", b'{"message":"load"}',
                                        {"Content-Type": "application/json"})
                            ok = r.status == 200 and json.loads(r.body) == {"message": "load"}
                    except Exception as ex:  # noqa: BLE001 - any failure counts
                        ok, r = False, ex
                    with lock:
                        if ok:
                            counts[kind] += 1
                        else:
                            failures.append((kind, repr(r)[:200]))

            threads = [threading.Thread(target=loop, args=(k,))
                       for k in ("unary", "unary", "stream", "stream", "rest")]
            for t in threads:
                t.start()
            try:
                time.sleep(0.5)
                # A stream that is in flight across the reload.
                long_stream = {}

                def slow():
                    long_stream["r"] = grpcweb(port, LIST_USERS, list_users_req(10, 150))
                ts = threading.Thread(target=slow)
                ts.start()
                time.sleep(0.3)
                new = dict(base, rest={"auto_map_unbound": True})
                with open(path, "w") as f:
                    json.dump(new, f)
                gw.send_signal(signal.SIGHUP)
                # With two workers, one may answer from the new snapshot while
                # the other has not taken it yet: the log line says all have.
                deadline = time.monotonic() + 30
                while ("reload: generation 2 in service" not in P.stderr(gw) and
                       time.monotonic() < deadline):
                    time.sleep(0.05)
                r = unbound()
                self.assertEqual((r.status, json.loads(r.body)), (200, {"message": "new"}))
                ts.join(30)
                r = long_stream["r"]
                self.assertEqual(r.grpc_status()[0], 0)
                self.assertEqual(len([f for f, _ in r.frames() if f == 0]), 10)

                # A broken config through the admin endpoint: old one stays.
                with open(path, "w") as f:
                    f.write('{"rest": {"auto_map_unbound": fals')
                self.assertEqual(request(port, "POST", "/admin/reload").status, 202)
                deadline = time.monotonic() + 30
                while ("reload failed" not in P.stderr(gw) and
                       time.monotonic() < deadline):
                    time.sleep(0.05)
                self.assertRegex(P.stderr(gw),
                                 r"error reload failed, still serving the previous "
                                 r"configuration: .*reload\.json:1:\d+: ")
                self.assertEqual(unbound().status, 200)
                time.sleep(0.5)
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            self.assertEqual(failures, [])
            for kind, n in counts.items():
                self.assertGreater(n, 0, kind)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="ok"), 1)
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="error"), 1)
            self.assertIn("reload: generation 2 in service", P.stderr(gw))
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


def upstream_connections(port):
    """Established TCP connections towards a local port (the gateway's side
    of its HTTP/2 connections to a backend)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "( dport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


class ReloadBackends(unittest.TestCase):
    """A reload builds the backends it names and retires the ones it drops:
    route from backend a (demo A) to a new backend b (demo B), then b
    changed to point at A. Calls after each reload go to the new place
    (the access log names the endpoint), a stream in flight on A across
    the first reload completes there, and the retired backend's connections
    are closed once its last call ended. A reload that moves the listener
    is refused and the previous configuration stays."""

    def wait(self, cond, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def test_backends_follow_the_config(self):
        import threading
        P = Procs()
        try:
            _, url_a = P.demo()
            _, url_b = P.demo()
            port_a, port_b = (int(u.rsplit(":", 1)[1]) for u in (url_a, url_b))
            log = os.path.join(P.tmp, "backends-access.log")
            path = os.path.join(P.tmp, "backends.json")

            def write(name, url, listen="127.0.0.1:0"):
                with open(path, "w") as f:
                    json.dump({"listen": listen, "descriptors": [DEMO_DESC], "access_log": log,
                               "admin": {"reload_endpoint": True},
                               "backends": {name: {"endpoints": [url]}},
                               "routes": [{"match": "*", "backend": name}]}, f)

            def endpoints():
                """Endpoint of every finished Echo call, in log order."""
                with open(log) as f:
                    lines = [json.loads(x) for x in f if x.strip()]
                return [x["endpoint"] for x in lines if x["method"] == ECHO]

            def echo(n):
                for i in range(n):
                    r = grpcweb(port, ECHO, frame(pb_string(1, "x%d" % i)))
                    self.assertEqual((r.status, r.grpc_status()[0]), (200, 0))

            write("a", url_a)
            gw, m = P.start([GRPCGATE, "serve", "--config", path, "--workers", "2"],
                            r"listening on ([\d.]+):(\d+)", "gateway-backends")
            port = int(m.group(2))
            echo(4)
            self.wait(lambda: len(endpoints()) == 4, "4 log lines")
            self.assertEqual(endpoints(), [url_a] * 4)
            self.assertEqual(upstream_connections(port_b), 0)

            # A stream on A (10 messages 400 ms apart) across the reload.
            stream = {}
            ts = threading.Thread(target=lambda: stream.setdefault(
                "r", grpcweb(port, LIST_USERS, list_users_req(10, 400))))
            ts.start()
            time.sleep(0.5)
            write("b", url_b)
            gw.send_signal(signal.SIGHUP)
            self.wait(lambda: "reload: generation 2 in service" in P.stderr(gw), "generation 2")
            echo(6)
            # While the stream runs, A keeps its connection (the stream's
            # generation still uses it).
            n_a = upstream_connections(port_a)
            if ts.is_alive():
                self.assertGreater(n_a, 0)
            ts.join(60)
            r = stream["r"]
            self.assertEqual(r.grpc_status()[0], 0)
            self.assertEqual(len([f for f, _ in r.frames() if f == 0]), 10)
            self.wait(lambda: len(endpoints()) == 10, "10 log lines")
            # Calls end (and are logged) as they finish, on two workers:
            # the first four were on A, the six after the reload on B.
            self.assertEqual(sorted(endpoints()), sorted([url_a] * 4 + [url_b] * 6))
            self.assertEqual(endpoints()[:4], [url_a] * 4)
            def streams():
                with open(log) as f:
                    return [json.loads(x) for x in f if LIST_USERS in x]
            # (logged when the gateway frees the call, which may come just
            # after the client has read the trailers)
            self.wait(streams, "the stream's log line")
            self.assertEqual([(x["endpoint"], x["grpc_status"]) for x in streams()],
                             [(url_a, 0)])
            # a is retired in both workers once the stream ended.
            self.wait(lambda: upstream_connections(port_a) == 0, "A's connections to close")
            self.assertGreater(upstream_connections(port_b), 0)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoints", backend="b",
                                    state="total"), 2)  # one endpoint x two workers
            self.assertEqual([k for k in ms if ("backend", "a") in k[1]], [])
            self.assertEqual(http_get(port, "/readyz").status, 200)

            # Same name, another endpoint: a new instance, the old one goes.
            write("b", url_a)
            self.assertEqual(request(port, "POST", "/admin/reload").status, 202)
            self.wait(lambda: "reload: generation 3 in service" in P.stderr(gw), "generation 3")
            echo(3)
            self.wait(lambda: len(endpoints()) == 13, "13 log lines")
            self.assertEqual(endpoints()[10:], [url_a] * 3)
            self.wait(lambda: upstream_connections(port_b) == 0, "B's connections to close")

            # A new listen address needs a restart: refused, nothing changes.
            write("b", url_b, listen="127.0.0.1:%d" % port_b)
            self.assertEqual(request(port, "POST", "/admin/reload").status, 202)
            self.wait(lambda: "reload failed" in P.stderr(gw), "the refused reload")
            self.assertIn("error reload failed, still serving the previous configuration: "
                          "'listen' changed from 127.0.0.1:0 to 127.0.0.1:%d: a new listen "
                          "address needs a restart" % port_b, P.stderr(gw))
            echo(2)
            self.wait(lambda: len(endpoints()) == 15, "15 log lines")
            self.assertEqual(endpoints()[13:], [url_a] * 2)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="ok"), 2)
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="error"), 1)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


    def test_backend_swaps_under_load(self):
        """Reloads that replace the only backend every 0.3 s (a→A, b→B,
        c→A, ...) while unary, streaming and REST calls run: none fails,
        and the gateway exits cleanly (no leak under the sanitizers)."""
        import threading
        P = Procs()
        try:
            _, url_a = P.demo()
            _, url_b = P.demo()
            path = os.path.join(P.tmp, "swaps.json")

            def write(name, url):
                with open(path, "w") as f:
                    json.dump({"listen": "127.0.0.1:0", "descriptors": [DEMO_DESC],
                               "backends": {name: {"endpoints": [url]}},
                               "routes": [{"match": "*", "backend": name}]}, f)

            write("a", url_a)
            gw, m = P.start([GRPCGATE, "serve", "--config", path, "--workers", "2"],
                            r"listening on ([\d.]+):(\d+)", "gateway-swaps")
            port = int(m.group(2))
            stop = threading.Event()
            failures, counts = [], {"unary": 0, "stream": 0, "rest": 0}
            lock = threading.Lock()

            def loop(kind):
                while not stop.is_set():
                    try:
                        if kind == "unary":
                            r = grpcweb(port, ECHO, frame(pb_string(1, "swap")))
                            ok = r.status == 200 and r.grpc_status()[0] == 0
                        elif kind == "stream":
                            r = grpcweb(port, LIST_USERS, list_users_req(3, 100))
                            ok = (r.status == 200 and r.grpc_status()[0] == 0 and
                                  len([f for f, _ in r.frames() if f == 0]) == 3)
                        else:
                            r = request(port, "POST", "/v1/echo", b'{"message":"swap"}',
                                        {"Content-Type": "application/json"})
                            ok = r.status == 200 and json.loads(r.body) == {"message": "swap"}
                    except Exception as ex:  # noqa: BLE001 - any failure counts
                        ok, r = False, ex
                    with lock:
                        if ok:
                            counts[kind] += 1
                        else:
                            failures.append((kind, repr(r)[:200]))

            threads = [threading.Thread(target=loop, args=(k,))
                       for k in ("unary", "stream", "stream", "rest")]
            for t in threads:
                t.start()
            try:
                for i in range(1, 7):
                    write("abc"[i % 3], (url_a, url_b)[i % 2])
                    gw.send_signal(signal.SIGHUP)
                    self.wait(lambda: "generation %d in service" % (i + 1) in P.stderr(gw),
                              "generation %d" % (i + 1))
                    time.sleep(0.3)
            finally:
                stop.set()
                for t in threads:
                    t.join(60)
            self.assertEqual(failures, [])
            for kind, n in counts.items():
                self.assertGreater(n, 0, kind)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()

    def reload_and_wait(self, P, gw, write, *args, failed=False):
        """Writes the file, sends SIGHUP, waits for the reload's log line
        (polled every 5 ms: some checks must run right after it)."""
        what = "reload failed" if failed else " in service ("
        before = P.stderr(gw).count(what)
        write(*args)
        gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while P.stderr(gw).count(what) == before:
            if time.monotonic() > deadline:
                self.fail("timed out waiting for %r after %r" % (what, args))
            time.sleep(0.005)

    def test_restart_only_warnings(self):
        """A reload that changes a key which only a restart applies (workers,
        access_log, static_dir, admin.listen, tls) says so once per key and
        reload, and still serves; a reload that changes none of them says
        nothing."""
        P = Procs()
        try:
            path = os.path.join(P.tmp, "restart.json")
            www = os.path.join(P.tmp, "www")
            os.mkdir(www)

            def write(**extra):
                cfg = {"listen": "127.0.0.1:0", "descriptors": [DEMO_DESC],
                       "backend": "http://127.0.0.1:1", "workers": 1}
                cfg.update(extra)
                with open(path, "w") as f:
                    json.dump(cfg, f)

            warning = "it takes effect only after a restart"
            write()
            gw, m = P.start([GRPCGATE, "serve", "--config", path],
                            r"listening on ([\d.]+):(\d+)", "gateway-restart")
            port = int(m.group(2))
            self.reload_and_wait(P, gw, lambda: write(drain_timeout_ms=1234))
            self.assertNotIn(warning, P.stderr(gw))
            self.reload_and_wait(P, gw, lambda: write(workers=2))
            self.assertEqual(P.stderr(gw).count("reload: 'workers' changed; " + warning), 1)
            log = os.path.join(P.tmp, "access.log")
            self.reload_and_wait(P, gw, lambda: write(workers=2, access_log=log, static_dir=www))
            err = P.stderr(gw)
            self.assertEqual(err.count("reload: 'access_log' changed; " + warning), 1)
            self.assertEqual(err.count("reload: 'static_dir' changed; " + warning), 1)
            # The running value is still 1 worker: the file differs from it
            # again, so the warning comes again (once per reload, not more).
            self.assertEqual(err.count("reload: 'workers' changed; " + warning), 2)
            self.assertEqual(err.count(warning), 4)
            self.assertIsNone(gw.poll(), "the gateway still serves")
            self.assertEqual(http_get(port, "/healthz").status, 200)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()

    def test_metric_slots_given_back(self):
        """Metric slots (64) are taken only by generations that serve: 40
        reloads that fail after naming a new backend, then 40 that move
        the lone backend to another URL (its label), all leave room for
        the next. Before the fix, each of those 80 names took a slot for
        good and the 64th was refused."""
        P = Procs()
        try:
            path = os.path.join(P.tmp, "slots.json")

            def write(url, extra=None):
                cfg = {"listen": "127.0.0.1:0", "descriptors": [DEMO_DESC], "backend": url}
                if extra:
                    cfg["backends"] = {extra: {"endpoints": ["http://127.0.0.1:1"]}}
                    cfg["routes"] = [{"match": "*", "backend": "nosuch"}]
                with open(path, "w") as f:
                    json.dump(cfg, f)

            write("http://127.0.0.1:1")
            gw, m = P.start([GRPCGATE, "serve", "--config", path, "--workers", "2"],
                            r"listening on ([\d.]+):(\d+)", "gateway-slots")
            port = int(m.group(2))
            for i in range(40):
                self.reload_and_wait(P, gw, write, "http://127.0.0.1:1", "n%d" % i, failed=True)
            self.assertIn("routes[0]: no backend 'nosuch'", P.stderr(gw))
            for i in range(40):
                self.reload_and_wait(P, gw, write, "http://127.0.0.1:%d" % (2 + i))
            err = P.stderr(gw)
            self.assertNotIn("backend names", err)
            self.assertEqual(err.count(" in service ("), 40)
            ms = parse_metrics(http_get(port, "/metrics").body.decode())
            self.assertEqual(sorted(dict(k[1])["backend"] for k in ms
                                    if k[0] == "grpcgate_upstream_endpoints"),
                             ["http://127.0.0.1:41"] * 2)
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoints",
                                    backend="http://127.0.0.1:41", state="total"), 2)
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="ok"), 40)
            self.assertEqual(metric(ms, "grpcgate_reloads_total", result="error"), 40)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()

    def test_metrics_follow_a_reload_at_once(self):
        """Right after 'generation N in service', /readyz and /metrics
        describe the new backends (each worker samples them as it
        switches; before the fix /readyz said 503 and the new backend
        showed no endpoint until the next 250 ms sample), and counters of
        a backend whose definition changed under the same name carry on
        from the old instance's totals instead of going back to 0."""
        P = Procs()
        try:
            _, url_a = P.demo()
            _, url_b = P.demo()
            path = os.path.join(P.tmp, "follow.json")

            def write(default, endpoints, timeout_ms=20000):
                with open(path, "w") as f:
                    json.dump({"listen": "127.0.0.1:0", "descriptors": [DEMO_DESC],
                               "backend": default, "upstream": {"connect_timeout_ms": timeout_ms},
                               "backends": {"c": {"endpoints": endpoints}},
                               "routes": [{"match": "demo.v1.EchoService", "backend": "c"},
                                          {"match": "*", "backend": "default"}]}, f)

            def scrape():
                return parse_metrics(http_get(port, "/metrics").body.decode())

            write(url_a, [url_a])
            gw, m = P.start([GRPCGATE, "serve", "--config", path, "--workers", "2"],
                            r"listening on ([\d.]+):(\d+)", "gateway-follow")
            port = int(m.group(2))
            self.wait(lambda: http_get(port, "/readyz").status == 200, "ready")
            # The lone backend moves: the new label is there at once.
            for gen, url in ((2, url_b), (3, url_a), (4, url_b)):
                self.reload_and_wait(P, gw, write, url, [url_a])
                self.assertIn("generation %d in service" % gen, P.stderr(gw))
                r = http_get(port, "/readyz")
                ms = scrape()
                self.assertEqual((gen, r.status), (gen, 200))
                self.assertEqual(metric(ms, "grpcgate_upstream_endpoints", backend=url,
                                        state="healthy"), 2, gen)
                self.assertEqual([dict(k[1])["backend"] for k in ms
                                  if k[0] == "grpcgate_upstream_endpoints" and
                                  ("state", "healthy") in k[1]], [url, "c"], gen)
            # Calls on both backends, then both change under the same name.
            for i in range(4):
                r = grpcweb(port, ECHO, frame(pb_string(1, "e%d" % i)))
                self.assertEqual(r.grpc_status()[0], 0)
                r = grpcweb(port, GET_USER, frame(pb_string(1, "1")))
                self.assertEqual(r.status, 200)

            def counts(ms):
                return (metric(ms, "grpcgate_upstream_endpoint_calls_total", backend="c",
                               endpoint=url_a),
                        metric(ms, "grpcgate_upstream_connects_total", backend=url_b,
                               result="started"))
            self.wait(lambda: counts(scrape())[0] == 4, "4 calls counted on c")
            before = counts(scrape())
            self.assertGreater(before[1], 0)
            self.reload_and_wait(P, gw, write, url_b, [url_b, url_a], 15000)
            after = counts(scrape())
            # No call in between; the rebuilt backend connects at once
            # (readiness), so its connection counter may only grow.
            self.assertEqual(after[0], before[0])
            self.assertGreaterEqual(after[1], before[1])
            ms = scrape()
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoint_calls_total", backend="c",
                                    endpoint=url_b), 0)
            self.assertEqual(http_get(port, "/readyz").status, 200)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


def have_openssl():
    return subprocess.run(["openssl", "version"], capture_output=True).returncode == 0


@unittest.skipUnless(have_openssl() or STRICT, "openssl not installed")
class Tls(unittest.TestCase):
    """HTTPS on the listener, checked with curl and a self-signed certificate."""

    @classmethod
    def setUpClass(cls):
        cls.P = Procs()
        d = cls.P.tmp

        def ossl(*args):
            subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

        cls.cert, cls.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.key, "-out",
             cls.cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        cls.ca, cls.ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.ca_key, "-out",
             cls.ca, "-days", "2", "-subj", "/CN=grpcgate test CA")
        cls.ccert, cls.ckey = os.path.join(d, "client.pem"), os.path.join(d, "client.key")
        csr = os.path.join(d, "client.csr")
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", cls.ckey, "-out", csr,
             "-subj", "/CN=client")
        ossl("x509", "-req", "-in", csr, "-CA", cls.ca, "-CAkey", cls.ca_key,
             "-CAcreateserial", "-out", cls.ccert, "-days", "2")
        _, cls.backend = cls.P.demo()

    @classmethod
    def tearDownClass(cls):
        cls.P.stop_all()

    def serve(self, *extra):
        args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", self.backend,
                "--descriptor", DEMO_DESC, "--workers", "1",
                "--tls-cert", self.cert, "--tls-key", self.key] + list(extra)
        _, m = self.P.start(args, r"listening on ([\d.]+):(\d+)", "gateway-tls")
        return int(m.group(2))

    def curl(self, url, *args):
        p = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}",
                            "--cacert", self.cert] + list(args) + [url],
                           capture_output=True, text=True)
        body, _, code = p.stdout.rpartition("\n")
        return int(code or 0), body

    def test_https(self):
        port = self.serve()
        base = "https://127.0.0.1:%d" % port
        self.assertEqual(self.curl(base + "/healthz"), (200, "ok\n"))
        code, body = self.curl(base + "/v1/echo", "-H", "Content-Type: application/json",
                               "--data", '{"message":"over tls"}')
        self.assertEqual((code, json.loads(body)), (200, {"message": "over tls"}))
        # Plain HTTP on the HTTPS port gets no HTTP answer.
        code, _ = self.curl("http://127.0.0.1:%d/healthz" % port)
        self.assertEqual(code, 0)

    def test_client_certificates(self):
        port = self.serve("--tls-client-ca", self.ca)
        url = "https://127.0.0.1:%d/healthz" % port
        self.assertEqual(self.curl(url)[0], 403)
        self.assertEqual(self.curl(url, "--cert", self.ccert, "--key", self.ckey), (200, "ok\n"))
        # A certificate the CA did not sign.
        self.assertEqual(self.curl(url, "--cert", self.cert, "--key", self.key)[0], 403)

    def test_missing_key(self):
        p = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                            self.backend, "--descriptor", DEMO_DESC, "--tls-cert", self.cert],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("TLS needs both --tls-cert and --tls-key", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
