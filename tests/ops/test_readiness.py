"""/readyz means "can serve" (docs/operations.md, Health endpoints): not
ready at start until every backend has connected once, ready without any
call once it has, not ready while every endpoint of a backend is down (again
without a call), ready again when it comes back; a backend group is ready
with one endpoint of two; admin.ready_requires_connection: false restores
the earlier behaviour (ready until a failure is known)."""
import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "front"))
from gwtest import GRPCGATE, DEMO_DESC, Procs, request  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def readyz(port):
    return request(port, "GET", "/readyz").status


def wait_for(port, status, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if readyz(port) == status:
            return True
        time.sleep(0.1)
    return False


def stays(port, status, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if readyz(port) != status:
            return False
        time.sleep(0.1)
    return True


class Readiness(unittest.TestCase):
    def demo_on(self, P, port):
        p, _ = P.start([GRPCGATE, "demo-service", "--listen", "127.0.0.1:%d" % port],
                       r"listening on", "demo")
        return p

    def gateway(self, P, backends, config=None):
        args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--descriptor", DEMO_DESC,
                "--workers", "2"]
        for b in backends:
            args += ["--backend", b]
        if config is not None:
            import json
            path = os.path.join(P.tmp, "ready.json")
            with open(path, "w") as f:
                json.dump(config, f)
            args += ["--config", path]
        p, m = P.start(args, r"listening on [\d.]+:(\d+)", "gateway")
        return p, int(m.group(1))

    def test_waits_for_the_backend_and_follows_it(self):
        P = Procs()
        try:
            bport = free_port()
            gw, port = self.gateway(P, ["http://127.0.0.1:%d" % bport])
            # Nothing listens there: not ready, and it stays so (no call made).
            self.assertTrue(stays(port, 503, 2.0))
            self.assertEqual(request(port, "GET", "/readyz").body, b"not ready\n")
            self.assertEqual(request(port, "GET", "/healthz").status, 200)
            # The backend starts: ready without any call.
            demo = self.demo_on(P, bport)
            self.assertTrue(wait_for(port, 200), "not ready after the backend came up")
            # It goes away: not ready, again without any call.
            P.stop(demo)
            self.assertTrue(wait_for(port, 503), "still ready with the backend gone")
            # Back: ready again.
            self.demo_on(P, bport)
            self.assertTrue(wait_for(port, 200), "not ready after the backend came back")
            r = request(port, "GET", "/v1/users/1")
            self.assertEqual(r.status, 200)
        finally:
            P.stop_all()

    def test_a_group_needs_one_endpoint(self):
        P = Procs()
        try:
            _, url = P.demo()
            dead = "http://127.0.0.1:%d" % free_port()
            gw, port = self.gateway(P, [dead, url])
            self.assertTrue(wait_for(port, 200), "one endpoint of two is enough")
            gw2, port2 = self.gateway(P, [dead, "http://127.0.0.1:%d" % free_port()])
            self.assertTrue(stays(port2, 503, 2.0))
        finally:
            P.stop_all()

    def test_switch_for_the_old_behaviour(self):
        P = Procs()
        try:
            dead = "http://127.0.0.1:%d" % free_port()
            gw, port = self.gateway(P, [dead], {"admin": {"ready_requires_connection": False}})
            self.assertTrue(wait_for(port, 200), "ready before any connection (old behaviour)")
        finally:
            P.stop_all()


if __name__ == "__main__":
    unittest.main(verbosity=2)
