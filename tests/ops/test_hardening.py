"""Operations hardening (issue 19), checked from outside on loopback with the
real binary: the listener's TLS policy (openssl s_client per protocol
version and cipher suite, the tls.priorities key), libmicrohttpd's messages
through our logger with a rate limit, backend TLS from flags
(--backend-ca, --backend-cert/--backend-key) with failures in words, error
bodies that name the backend instead of its URL (unless debug_errors), and
the admin listener's exact routes."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

# GW_STRICT=1 (.ci/run): a tool scripts/setup installs is required, not skipped.
STRICT = os.environ.get("GW_STRICT") == "1"

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "front"))
from gwtest import (GRPCGATE, DEMO_DESC, Procs, frame, grpcweb, pb_string,  # noqa: E402
                    request)

GRPCJS_SERVER = os.path.join(SRC, "tests", "node", "grpcjs_server.mjs")
GET_USER = "/demo.v1.UserService/GetUser"


def ossl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost signed by it, and a
    client certificate signed by it."""
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=grpcgate hardening CA")
    out = {"ca": ca}
    for name, cn, ext in (("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                          ("client", "client", None)):
        key, csr, cert = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
             "/CN=" + cn)
        extfile = os.path.join(d, name + ".ext")
        with open(extfile, "w") as f:
            f.write((ext or "basicConstraints=CA:FALSE") + "\n")
        ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", extfile)
        out[name] = (cert, key)
    return out


def s_client(port, *args):
    """One handshake with openssl s_client -msg: (ServerHello seen, the
    protocol+cipher line, everything it printed)."""
    p = subprocess.run(["openssl", "s_client", "-msg", "-connect", "127.0.0.1:%d" % port] +
                       list(args), input=b"", capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace")
    m = re.search(r"^New, (\S+), Cipher is (\S+)", out, re.M)
    return ("ServerHello" in out.split("<<<", 1)[-1] if "<<<" in out else False,
            m.groups() if m else None, out)


def wait_for(cond, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


@unittest.skipUnless(shutil.which("openssl") or STRICT, "openssl not installed")
class TlsPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.P = Procs()
        cls.certs = make_certs(cls.P.tmp)
        _, cls.backend = cls.P.demo()

    @classmethod
    def tearDownClass(cls):
        cls.P.stop_all()

    def serve(self, config=None, name="gateway-tls"):
        cert, key = self.certs["server"]
        args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", self.backend,
                "--descriptor", DEMO_DESC, "--workers", "1", "--tls-cert", cert,
                "--tls-key", key]
        if config:
            path = os.path.join(self.P.tmp, name + ".json")
            with open(path, "w") as f:
                json.dump(config, f)
            args += ["--config", path]
        gw, m = self.P.start(args, r"listening on ([\d.]+):(\d+)", name)
        return gw, int(m.group(2))

    def test_default_policy(self):
        """TLS 1.2+ with ECDHE AEAD suites only (Mozilla intermediate minus
        DHE). The refused offers really are offered (SECLEVEL=0 lets
        OpenSSL 3 send TLS 1.0/1.1) and fail at the server: a ClientHello
        went out and no ServerHello came back."""
        gw, port = self.serve()
        old = "DEFAULT:@SECLEVEL=0"
        table = [
            # (s_client arguments, accepted, expected protocol)
            (["-tls1", "-cipher", old], False, None),
            (["-tls1_1", "-cipher", old], False, None),
            (["-tls1_2"], True, "TLSv1.2"),
            (["-tls1_3"], True, "TLSv1.3"),
            # no forward secrecy: static RSA key exchange, CBC and GCM
            (["-tls1_2", "-cipher", "AES256-SHA:@SECLEVEL=0"], False, None),
            (["-tls1_2", "-cipher", "AES128-GCM-SHA256"], False, None),
            (["-tls1_2", "-cipher", "AES256-GCM-SHA384"], False, None),
            # forward secret but CBC with SHA-1 / SHA-2 MACs
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"], False, None),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA:@SECLEVEL=0"], False, None),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA256"], False, None),
            # the intermediate profile's TLS 1.2 suites for an RSA key
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], True, "TLSv1.2"),
            (["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], True, "TLSv1.2"),
            (["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], True, "TLSv1.2"),
            # DHE: not negotiable without DH parameters, left out (docs)
            (["-tls1_2", "-cipher", "DHE-RSA-AES256-GCM-SHA384"], False, None),
            # TLS 1.3's suites
            (["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], True, "TLSv1.3"),
            (["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], True, "TLSv1.3"),
        ]
        for args, accepted, proto in table:
            server_hello, got, out = s_client(port, *args)
            self.assertIn(">>> ", out, args)  # something was sent
            self.assertIn("ClientHello", out, "%s: the client did not offer it" % args)
            self.assertNotIn("no protocols available", out, args)
            self.assertNotIn("no ciphers available", out, args)
            if accepted:
                self.assertTrue(server_hello, "%s refused:\n%s" % (args, out[-800:]))
                self.assertEqual(got[0], proto, args)
                self.assertNotEqual(got[1], "(NONE)", args)
            else:
                self.assertFalse(server_hello, "%s accepted:\n%s" % (args, out[-800:]))
                self.assertTrue(got is None or got[1] == "(NONE)", args)
        self.assertEqual(self.P.stop(gw), 0)

    def test_priorities_key(self):
        """tls.priorities replaces the policy (restart-only); a string GnuTLS
        refuses stops the start with a message naming the key's value."""
        gw, port = self.serve({"tls": {"priorities": "NORMAL:-VERS-ALL:+VERS-TLS1.3"}},
                              "gateway-tls13")
        self.assertFalse(s_client(port, "-tls1_2")[0])
        server_hello, got, _ = s_client(port, "-tls1_3")
        self.assertTrue(server_hello)
        self.assertEqual(got[0], "TLSv1.3")
        self.assertEqual(self.P.stop(gw), 0)
        cert, key = self.certs["server"]
        path = os.path.join(self.P.tmp, "bad-prio.json")
        with open(path, "w") as f:
            json.dump({"tls": {"priorities": "NORMAL:+NO-SUCH-THING"}}, f)
        p = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                            self.backend, "--descriptor", DEMO_DESC, "--workers", "1",
                            "--tls-cert", cert, "--tls-key", key, "--config", path],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("TLS priority string (tls.priorities) refused by GnuTLS", p.stderr)
        self.assertIn("'+NO-SUCH-THING'", p.stderr)

    def test_handshake_noise_is_logged_and_rate_limited(self):
        """A failed handshake and plain HTTP on the TLS port: lines through
        our logger (timestamp, level info), never more than a bounded number
        a second however many clients fail, and a later line says how many
        were left out. Nothing unformatted on stderr."""
        gw, port = self.serve(name="gateway-noise")
        for _ in range(3):
            s_client(port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
        # A burst of plain HTTP, faster than any rate limit lets through.
        for _ in range(150):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    s.recv(100)
                except OSError:
                    pass
        elapsed = time.monotonic() - self.started
        time.sleep(1.2)
        s_client(port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        ours = re.compile(r" info (front: port %d|libmicrohttpd): " % port)

        def lines():
            return [l for l in self.P.stderr(gw).splitlines() if ours.search(l)]
        wait_for(lambda: any(re.search(r"more (such lines|messages) left out", l)
                             for l in lines()), "a line counting the left-out ones")
        for line in lines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z info ")
        err = self.P.stderr(gw)
        self.assertNotRegex(err, r"(?m)^Error: ")  # nothing unformatted
        self.assertRegex(err, r"(?i)handshake|tls|ssl")
        # 150+ failures: a bounded number of lines (at most 20 a second).
        self.assertLessEqual(len(lines()), 20 * (int(elapsed) + 3))
        self.assertLess(len(lines()), 100)
        self.assertEqual(self.P.stop(gw), 0)

    def setUp(self):
        self.started = time.monotonic()


def have_grpcjs():
    return bool(shutil.which("node")) and os.path.isdir(os.path.join(SRC, "node_modules", "@grpc"))


@unittest.skipUnless((shutil.which("openssl") and have_grpcjs()) or STRICT,
                     "openssl or grpc-js missing")
class BackendTls(unittest.TestCase):
    """`--backend https://…` with the CA (and a client certificate) from
    flags; what a client and the log see when they are missing."""

    @classmethod
    def setUpClass(cls):
        cls.P = Procs()
        cls.certs = make_certs(cls.P.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.P.stop_all()

    def grpcjs(self, *extra):
        cert, key = self.certs["server"]
        p = subprocess.Popen(["node", GRPCJS_SERVER, "--port", "0", "--tls-cert", cert,
                              "--tls-key", key] + list(extra),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.P.procs.append(p)
        m = re.match(r"listening (\d+)", p.stdout.readline() or "")
        self.assertTrue(m, "grpc-js server did not start")
        return "https://127.0.0.1:%s" % m.group(1)

    def gateway(self, url, *flags):
        args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", url,
                "--descriptor", DEMO_DESC, "--workers", "1"] + list(flags)
        gw, m = self.P.start(args, r"listening on ([\d.]+):(\d+)", "gateway-btls")
        return gw, int(m.group(2))

    def rest_user(self, port):
        r = request(port, "GET", "/v1/users/1")
        return r.status, json.loads(r.body or b"{}")

    def test_backend_ca_flag(self):
        url = self.gateway_url = self.grpcjs()
        gw, port = self.gateway(url, "--backend-ca", self.certs["ca"])
        status, body = self.rest_user(port)
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("id"), "1")
        self.assertEqual(self.P.stop(gw), 0)
        # Without it: the client sees the backend's name only, the log says
        # what to do.
        gw, port = self.gateway(url)
        status, body = self.rest_user(port)
        self.assertEqual(status, 503)
        self.assertEqual(body.get("message"), "backend 'default' unavailable")
        wait_for(lambda: "name the backend's CA with --backend-ca FILE" in self.P.stderr(gw),
                 "the hint in the log")
        self.assertEqual(self.P.stop(gw), 0)

    def test_backend_client_certificate(self):
        url = self.grpcjs("--tls-client-ca", self.certs["ca"])
        cert, key = self.certs["client"]
        gw, port = self.gateway(url, "--backend-ca", self.certs["ca"], "--backend-cert", cert,
                                "--backend-key", key)
        status, body = self.rest_user(port)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.P.stop(gw), 0)
        gw, port = self.gateway(url, "--backend-ca", self.certs["ca"])
        status, body = self.rest_user(port)
        self.assertEqual((status, body.get("message")), (503, "backend 'default' unavailable"))
        wait_for(lambda: "the backend requires a client certificate and none is configured"
                 in self.P.stderr(gw), "the words in the log")
        self.assertNotIn("unknown TLS error", self.P.stderr(gw))
        self.assertEqual(self.P.stop(gw), 0)


class ErrorBodies(unittest.TestCase):
    """A backend the gateway cannot reach: clients see its configured name,
    the log has the URL and the cause; debug_errors shows both to clients."""

    def setUp(self):
        self.P = Procs()
        # A port nobody listens on (bound, then closed).
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.dead = "http://127.0.0.1:%d" % s.getsockname()[1]

    def tearDown(self):
        self.P.stop_all()

    def answers(self, port):
        rest = request(port, "GET", "/v1/users/1")
        web = grpcweb(port, GET_USER, frame(pb_string(1, "1")))
        return rest, json.loads(rest.body), web, web.grpc_status()

    def test_default_backend(self):
        gw, port = self.P.gateway(self.dead, None, workers=1)
        rest, body, web, (code, msg) = self.answers(port)
        self.assertEqual((rest.status, body["code"], body["message"]),
                         (503, 14, "backend 'default' unavailable"))
        self.assertEqual((code, msg), (14, "backend 'default' unavailable"))
        hostport = self.dead[len("http://"):]
        for text in (rest.body.decode(), repr(web.headers), web.body.decode(errors="replace")):
            self.assertNotIn(hostport, text)
        wait_for(lambda: "backend %s unreachable: connect" % self.dead in self.P.stderr(gw),
                 "the detail in the log")
        self.assertEqual(self.P.stop(gw), 0)

    def test_named_backend(self):
        gw, port = self.P.gateway(self.dead, {
            "backends": {"users": {"endpoints": [self.dead]}},
            "routes": [{"match": "demo.v1.UserService", "backend": "users"},
                       {"match": "*", "backend": "default"}]}, workers=1)
        rest, body, web, (code, msg) = self.answers(port)
        self.assertEqual(rest.status, 503)
        self.assertRegex(body["message"], r"^(backend 'users' unavailable( \(connection "
                                          r"lost\))?|no healthy endpoint in cluster users)$")
        self.assertNotIn(self.dead[len("http://"):], rest.body.decode() + msg)
        self.assertEqual(self.P.stop(gw), 0)

    @unittest.skipUnless(shutil.which("node") or STRICT, "node not installed")
    def test_non_grpc_answer(self):
        """A backend (or a proxy in front of it) answering an HTML error
        page: the client gets the status, not the page."""
        script = ("const h=require('node:http2');const s=h.createServer();"
                  "s.on('stream',(st)=>{st.respond({':status':503,'content-type':'text/html'});"
                  "st.end('<html>internal proxy 10.1.2.3 says no</html>')});"
                  "s.listen(0,'127.0.0.1',()=>console.log('listening '+s.address().port));")
        p = subprocess.Popen(["node", "-e", script], stdout=subprocess.PIPE, text=True)
        self.P.procs.append(p)
        m = re.match(r"listening (\d+)", p.stdout.readline() or "")
        self.assertTrue(m)
        gw, port = self.P.gateway("http://127.0.0.1:%s" % m.group(1), None, workers=1)
        rest, body, _, (code, msg) = self.answers(port)
        self.assertEqual(body["message"], "backend 'default' answered HTTP 503 instead of gRPC")
        self.assertEqual(msg, "backend 'default' answered HTTP 503 instead of gRPC")
        self.assertNotIn("10.1.2.3", rest.body.decode())
        wait_for(lambda: "internal proxy 10.1.2.3 says no" in self.P.stderr(gw), "the log")
        self.assertEqual(self.P.stop(gw), 0)

    def test_debug_errors(self):
        gw, port = self.P.gateway(self.dead, {"debug_errors": True}, workers=1)
        rest, body, _, (code, msg) = self.answers(port)
        self.assertEqual(rest.status, 503)
        self.assertRegex(body["message"], r"^backend %s unreachable: connect" %
                         re.escape(self.dead))
        self.assertRegex(msg, r"^backend %s unreachable: " % re.escape(self.dead))
        self.assertEqual(self.P.stop(gw), 0)


def refs(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "$ref" and isinstance(x, str):
                out.add(x)
            else:
                refs(x, out)
    elif isinstance(v, list):
        for x in v:
            refs(x, out)
    return out


class OpenApiServed(unittest.TestCase):
    """The served document with routes: only the exposed services' tags and
    the schemas their operations reach; it still passes redocly's spec
    ruleset. "openapi_path": false: the path is an ordinary 404."""

    def test_routes_prune(self):
        P = Procs()
        try:
            _, backend = P.demo()
            gw, port = P.gateway(backend, {
                "backends": {"echo": {"endpoints": [backend]}},
                "routes": [{"match": "demo.v1.EchoService", "backend": "echo"}]}, workers=1)
            r = request(port, "GET", "/openapi.json")
            self.assertEqual(r.status, 200)
            doc = json.loads(r.body)
            self.assertEqual([t["name"] for t in doc["tags"]], ["demo.v1.EchoService"])
            for item in doc["paths"].values():
                for op in item.values():
                    self.assertEqual(op["tags"], ["demo.v1.EchoService"])
            schemas = doc["components"]["schemas"]
            self.assertNotIn("demo.v1.User", schemas)
            self.assertNotIn("demo.v1.ListUsersRequest", schemas)
            self.assertIn("demo.v1.EchoRequest", schemas)
            self.assertIn("google.rpc.Status", schemas)
            used = refs(doc["paths"], set())
            # Every schema is reached, every reference resolves.
            reached = set()
            todo = [u.rsplit("/", 1)[1] for u in used]
            while todo:
                n = todo.pop()
                if n in reached:
                    continue
                reached.add(n)
                self.assertIn(n, schemas)
                todo += [u.rsplit("/", 1)[1] for u in refs(schemas[n], set())]
            self.assertEqual(reached, set(schemas))
            self.assertNotIn("x-grpcgate-unlisted", doc)
            redocly = os.path.join(SRC, "node_modules", ".bin", "redocly")
            if shutil.which("node") and os.path.exists(redocly):
                path = os.path.join(P.tmp, "served.json")
                with open(path, "w") as f:
                    json.dump(doc, f)
                lint = subprocess.run([redocly, "lint", "--extends=spec", path],
                                      capture_output=True, text=True, timeout=120, cwd=P.tmp)
                self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
            self.assertEqual(P.stop(gw), 0)
            gw, port = P.gateway(backend, {"openapi_path": False}, workers=1)
            r = request(port, "GET", "/openapi.json")
            self.assertEqual(r.status, 404)
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


    def test_reload_turns_it_off(self):
        """Reloading with "openapi_path": false: the old path is an ordinary
        path at once (the router's JSON 404; it was 503 "no OpenAPI
        document"), and back again with the next reload."""
        P = Procs()
        try:
            _, backend = P.demo()
            path = os.path.join(P.tmp, "oa.json")

            def write(cfg):
                with open(path, "w") as f:
                    json.dump(cfg, f)
            write({})
            gw, m = P.start([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", backend,
                             "--descriptor", DEMO_DESC, "--workers", "2", "--config", path],
                            r"listening on ([\d.]+):(\d+)", "gateway-oa-reload")
            port = int(m.group(2))
            self.assertEqual(request(port, "GET", "/openapi.json").status, 200)
            for gen, cfg, want in ((2, {"openapi_path": False}, 404), (3, {}, 200)):
                write(cfg)
                gw.send_signal(signal.SIGHUP)
                wait_for(lambda: "generation %d in service" % gen in P.stderr(gw), "the reload")
                for _ in range(4):  # both workers
                    r = request(port, "GET", "/openapi.json")
                    self.assertEqual(r.status, want, r.body)
                    if want == 404:
                        self.assertEqual(r.header("content-type"), "application/json")
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


class AdminRoutes(unittest.TestCase):
    """The admin listener answers exactly what docs/configuration.md lists,
    whatever the main-port settings (prefix, custom openapi_path)."""

    def test_routes(self):
        P = Procs()
        try:
            _, backend = P.demo()
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                admin_port = s.getsockname()[1]
            gw, port = P.gateway(backend, {
                "openapi_path": "/api/spec.json",
                "admin": {"listen": "127.0.0.1:%d" % admin_port, "prefix": "/ops",
                          "reload_endpoint": True}}, workers=1)
            table = [
                ("GET", "/healthz", 200), ("HEAD", "/healthz", 200),
                ("GET", "/readyz", None), ("GET", "/metrics", 200),
                ("POST", "/healthz", 405), ("PUT", "/metrics", 405),
                ("DELETE", "/readyz", 405), ("GET", "/admin/reload", 405),
                # the document is a main-port resource
                ("GET", "/api/spec.json", 404), ("POST", "/api/spec.json", 404),
                ("HEAD", "/api/spec.json", 404), ("GET", "/openapi.json", 404),
                # the main port's prefix does not apply here
                ("GET", "/ops/healthz", 404), ("GET", "/", 404),
                ("GET", "/healthz/", 404), ("POST", "/v1/echo", 404),
                ("OPTIONS", "/healthz", 405), ("GET", "/metricsx", 404),
            ]
            for method, path, want in table:
                r = request(admin_port, method, path)
                if want is None:
                    self.assertIn(r.status, (200, 503), (method, path))
                else:
                    self.assertEqual(r.status, want, (method, path, r.body))
                if r.status == 405:
                    self.assertIn(r.header("allow"), ("GET, HEAD", "POST"), (method, path))
            # The main port keeps the document and the prefixed endpoints.
            self.assertEqual(request(port, "GET", "/api/spec.json").status, 200)
            self.assertEqual(request(port, "GET", "/ops/healthz").status, 200)
            self.assertNotEqual(request(port, "POST", "/api/spec.json").status, 500)
            self.assertEqual(request(admin_port, "POST", "/admin/reload").status, 202)
            wait_for(lambda: "generation 2 in service" in P.stderr(gw), "the reload")
            self.assertEqual(P.stop(gw), 0)
        finally:
            P.stop_all()


if __name__ == "__main__":
    unittest.main(verbosity=1)
