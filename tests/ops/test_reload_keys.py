"""Every configuration key's reload behaviour, as docs/configuration.md's
table ("What a reload changes") states it: a running gateway (one worker)
gets one key changed per SIGHUP, in the table's order, on top of the
changes before it. For each reload the log must show exactly the
"needs a restart" warnings of the restart-only keys changed so far (none
for an applied key), a refused key must fail the reload, and the admin and
OpenAPI keys must show their effect at once. The table and this test's
list of changes must name the same keys."""
import copy
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

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "front"))
from gwtest import GRPCGATE, DEMO_DESC, Procs, request  # noqa: E402

DOCS = os.path.join(SRC, "docs", "configuration.md")
RESTART = re.compile(r"reload: '([^']+)' changed; it takes effect only after a restart")


def doc_table():
    """[(key, behaviour)] from the table under "## What a reload changes"."""
    with open(DOCS) as f:
        text = f.read()
    section = text.split("## What a reload changes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)`[^|]*\| (applied|restart|refused) \|$", section, re.M)
    assert rows, "no table in docs/configuration.md"
    return rows


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_key(cfg, key, value):
    parts = key.split(".")
    for p in parts[:-1]:
        cfg = cfg.setdefault(p, {})
    cfg[parts[-1]] = value


class ReloadKeys(unittest.TestCase):
    def test_every_key(self):
        P = Procs()
        try:
            self.run_table(P)
        finally:
            P.stop_all()

    def run_table(self, P):
        demo, backend = P.demo()
        tmp = P.tmp
        pem = os.path.join(tmp, "x.pem")
        key_pem = os.path.join(tmp, "x.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key_pem, "-out", pem, "-days", "2", "-subj", "/CN=x"],
                       check=True, capture_output=True)
        desc_copy = os.path.join(tmp, "demo-copy.pb")
        shutil.copy(DEMO_DESC, desc_copy)
        static = os.path.join(tmp, "static")
        os.mkdir(static)
        port = free_port()
        localhost_backend = backend.replace("127.0.0.1", "localhost")

        def reflect(c):
            c["reflect"] = True
            c.pop("descriptors", None)

        # key: the change (a value, or a function of the config dict), then
        # an optional check of its effect (port) run right after.
        changes = {
            "backend": localhost_backend,
            "backend_tls.ca_file": pem,
            "backend_tls.cert_file": pem,
            "backend_tls.key_file": key_pem,
            "backend_tls.server_name": "localhost",
            # several backends need routes: both come in this one change
            "backends": lambda c: c.update(backends={"b2": {"endpoints": [backend],
                                                            "policy": "least_outstanding"}},
                                           routes=[{"match": "*", "backend": "default"}]),
            "routes": [{"match": "demo.v1.", "backend": "b2"}, {"match": "*", "backend": "default"}],
            "descriptors": [desc_copy],
            "reflect": reflect,
            "reflect_timeout_ms": 5000,
            "workers": 2,
            "drain_timeout_ms": 5000,
            "forward_cookies": True,
            "log_level": "debug",
            "access_log": os.path.join(tmp, "access.log"),
            "openapi_path": "/spec.json",
            "static_dir": static,
            "debug_errors": True,
            "limits.max_body_bytes": 1000000,
            "limits.max_message_bytes": 1000000,
            "limits.max_output_bytes": 500000,
            "limits.max_metadata": 32,
            "limits.max_deadline_ms": 60000,
            "limits.drain_timeout_ms": 4000,
            "limits.max_header_bytes": 32768,
            "limits.max_header_count": 50,
            "limits.max_connections": 1000,
            "limits.max_connections_per_ip": 100,
            "limits.header_timeout_ms": 5000,
            "limits.idle_timeout_ms": 30000,
            "limits.inactivity_timeout_s": 100,
            "limits.discard_body_bytes": 1000,
            "limits.idle_park_ms": 2000,
            "limits.idle_trim_ms": 2000,
            "limits.send_lowat_bytes": 65536,
            "limits.send_buffer_bytes": 262144,
            "limits.body_timeout_ms": 30000,
            "limits.body_min_rate": 1000,
            "front.http_strictness": 2,
            "upstream.pool_size": 2,
            "upstream.stream_window": 131072,
            "upstream.connection_window": 2097152,
            "upstream.max_response_message": 2000000,
            "upstream.max_queued_calls": 100,
            "upstream.connect_timeout_ms": 5000,
            "upstream.attempt_delay_ms": 100,
            "upstream.send_lowat_bytes": 65536,
            "upstream.ping_silent_ms": 20000,
            "upstream.ping_timeout_ms": 10000,
            "cors.allowed_origins": ["https://app.example"],
            "cors.allowed_headers": ["x-extra"],
            "cors.exposed_headers": ["x-out"],
            "cors.allow_credentials": True,
            "cors.max_age_s": 60,
            "rest.auto_map_unbound": False,
            "rest.strict_query": True,
            "rest.ignored_query": ["api_key"],
            "rest.ignore_unknown_body_fields": True,
            "rest.strict_content_type": True,
            "rest.patch_fill_mask": False,
            "rest.emit_defaults": True,
            "rest.proto_names": True,
            "rest.enums_as_ints": True,
            "rest.grpc_gateway_v1_errors": True,
            "rest.header_allowlist": ["x-tenant"],
            "rest.max_message_bytes": 100000,
            "rest.max_depth": 50,
            "compression.enabled": False,
            "compression.min_bytes": 10,
            "compression.level": 1,
            "compression.types": ["application/json"],
            "admin.listen": "127.0.0.1:%d" % free_port(),
            "admin.prefix": "/ops",
            "admin.on_main_port": False,
            "admin.metrics": False,
            "admin.reload_endpoint": True,
            "admin.drain_delay_ms": 10,
            "admin.ready_requires_connection": False,
            "tls.cert_file": pem,
            "tls.key_file": key_pem,
            "tls.client_ca_file": pem,
            "tls.priorities": "NORMAL:-VERS-ALL:+VERS-TLS1.3",
            "listen": "127.0.0.1:%d" % free_port(),
        }
        get = lambda path: request(port, "GET", path)  # noqa: E731

        def cors_preflight():
            return request(port, "OPTIONS", "/v1/echo", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})

        checks = {
            # The document moves; the old path is an ordinary one.
            "openapi_path": lambda: (get("/spec.json").status, get("/openapi.json").status) ==
            (200, 404),
            "admin.prefix": lambda: (get("/ops/healthz").status, get("/healthz").status) ==
            (200, 404),
            "admin.metrics": lambda: get("/ops/metrics").status == 404,
            "admin.reload_endpoint": lambda: get("/ops/admin/reload").status == 405,
            "admin.on_main_port": lambda: get("/ops/healthz").status == 404,
            "cors.allowed_origins": lambda: cors_preflight().status == 204,
            "cors.max_age_s": lambda: cors_preflight().header("access-control-max-age") == "60",
            "rest.auto_map_unbound": lambda: request(
                port, "POST", "/demo.v1.EchoService/Unbound", b"{}",
                {"Content-Type": "application/json"}).status in (404, 415),
        }
        table = doc_table()
        self.assertEqual(sorted(k for k, _ in table), sorted(changes),
                         "docs/configuration.md's reload table and this test name different keys")
        self.assertEqual(len(table), len(set(k for k, _ in table)), "a key twice in the table")

        path = os.path.join(tmp, "reload.json")
        cfg = {"listen": "127.0.0.1:%d" % port, "backend": backend, "descriptors": [DEMO_DESC],
               "workers": 1}

        def write(c):
            with open(path, "w") as f:
                json.dump(c, f)

        write(cfg)
        gw, _ = P.start([GRPCGATE, "serve", "--config", path], r"listening on ([\d.]+):(\d+)",
                        "gateway-reload-keys")
        self.assertEqual(get("/openapi.json").status, 200)
        self.assertEqual(get("/healthz").status, 200)
        done = re.compile(r"reload: generation \d+ (in service|taken by)|reload failed")
        restart_keys = set()
        for key, behaviour in table:
            new = copy.deepcopy(cfg)
            change = changes[key]
            if callable(change):
                change(new)
            else:
                set_key(new, key, change)
            self.assertNotEqual(new, cfg, key)
            before = len(P.stderr(gw))
            write(new)
            gw.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while not done.search(P.stderr(gw)[before:]):
                self.assertIsNone(gw.poll(), "the gateway exited at %s" % key)
                self.assertLess(time.monotonic(), deadline, "no reload outcome for %s" % key)
                time.sleep(0.02)
            out = P.stderr(gw)[before:]
            warned = set(RESTART.findall(out))
            if behaviour == "refused":
                self.assertIn("reload failed", out, key)
                self.assertIn("'%s' changed" % key, out)
                continue  # the file's change is not kept either
            self.assertNotIn("reload failed", out, "%s: %s" % (key, out))
            if behaviour == "restart":
                restart_keys.add(key)
            self.assertEqual(warned, restart_keys, "%s (%s): %s" % (key, behaviour, out))
            if key in checks:
                self.assertTrue(checks[key](), "%s: no effect after the reload" % key)
            cfg = new
        ms = P.stderr(gw)
        self.assertEqual(len(re.findall(r"reload: generation \d+ in service", ms)),
                         sum(1 for _, b in table if b != "refused"))
        self.assertEqual(P.stop(gw), 0)


if __name__ == "__main__":
    unittest.main(verbosity=1)
