"""A frozen backend (docs/upstream.md, "A frozen backend"): the demo service
is stopped with SIGSTOP after the HTTP/2 handshake, so its socket stays open
and the kernel keeps accepting, but nothing answers. A call without a
deadline must not hang: after upstream.ping_silent_ms of silence the
gateway PINGs, and with no answer within ping_timeout_ms it fails the call
with UNAVAILABLE and closes the connection; once the backend runs again
(SIGCONT) calls succeed on a new connection. With the PINGs off the same
call is still waiting when the test gives up on it, which is the behaviour
this replaced. The values are small so that the test is quick; the
defaults (30 s, 20 s) are justified in docs/upstream.md."""
import os
import signal
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "front"))
from gwtest import Conn, Procs, frame, grpcweb, pb_string, request  # noqa: E402

ECHO = "/demo.v1.EchoService/Echo"


def wait_ready(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if request(port, "GET", "/readyz").status == 200:
            return True
        time.sleep(0.1)
    return False


class FrozenBackend(unittest.TestCase):
    def run_frozen(self, upstream):
        """Freeze the backend, make a call without a deadline; returns
        (the call's gRPC status and message or None if still waiting after
        20 s, seconds it took, P, demo, port)."""
        P = Procs()
        P.conns = []
        demo, url = P.demo()
        gw, port = P.gateway(url, {"upstream": upstream}, workers=1)
        self.assertTrue(wait_ready(port), "the gateway never connected")
        # The handshake is done (ready); a call proves the stream path.
        self.assertEqual(grpcweb(port, ECHO, frame(pb_string(1, "warm"))).grpc_status()[0], 0)
        os.kill(demo.pid, signal.SIGSTOP)
        out = {}

        def call():
            t0 = time.monotonic()
            c = Conn(port, timeout=120)
            P.conns.append(c)
            try:
                r = grpcweb(port, ECHO, frame(pb_string(1, "frozen")), conn=c)
                out["status"] = r.grpc_status()
            except Exception as e:  # noqa: BLE001 (a closed socket)
                out["error"] = repr(e)
            out["took"] = time.monotonic() - t0

        t = threading.Thread(target=call, daemon=True)
        t.start()
        t.join(20)
        return out if not t.is_alive() else None, P, demo, port

    def test_unanswered_ping_fails_the_call_and_reconnects(self):
        res, P, demo, port = self.run_frozen({"ping_silent_ms": 1000, "ping_timeout_ms": 1000})
        try:
            self.assertIsNotNone(res, "the call still hangs after 20 s")
            self.assertNotIn("error", res)
            code, msg = res["status"]
            self.assertEqual(code, 14, res)  # UNAVAILABLE
            # the client reads the backend's name only (debug_errors off);
            # the cause is in the log
            self.assertIn("unavailable", msg)
            self.assertGreaterEqual(res["took"], 1.5)  # silence + timeout, not at once
            log = P.stderr(P.procs[1])
            self.assertIn("no answer to a PING", log)
            self.assertNotIn("too_many_pings", log)
            # The backend runs again: calls succeed on a new connection.
            os.kill(demo.pid, signal.SIGCONT)
            deadline = time.monotonic() + 40
            ok = False
            while not ok and time.monotonic() < deadline:
                r = grpcweb(port, ECHO, frame(pb_string(1, "back")))
                ok = r.grpc_status()[0] == 0
                if not ok:
                    time.sleep(0.2)
            self.assertTrue(ok, "no successful call after SIGCONT")
        finally:
            if demo.poll() is None:
                os.kill(demo.pid, signal.SIGCONT)
            P.stop_all()
            for c in P.conns:
                c.close()

    def test_off_means_waiting(self):
        # ping_silent_ms 0: no PINGs, the call waits (for the default
        # maximum deadline, an hour): still waiting after 20 s.
        res, P, demo, port = self.run_frozen({"ping_silent_ms": 0})
        try:
            self.assertIsNone(res, res)
        finally:
            if demo.poll() is None:
                os.kill(demo.pid, signal.SIGCONT)
            P.stop_all()
            for c in P.conns:
                c.close()

    def test_a_slow_but_alive_backend_is_left_alone(self):
        # A call that takes longer than the silence (Echo with a 3 s delay):
        # the backend answers the PING, the call completes normally.
        P = Procs()
        try:
            _, url = P.demo()
            gw, port = P.gateway(url, {"upstream": {"ping_silent_ms": 500,
                                                    "ping_timeout_ms": 1000}}, workers=1)
            self.assertTrue(wait_ready(port))
            # EchoRequest{message: "slow", delay: 3s}
            body = pb_string(1, "slow") + b"\x1a\x02\x08\x03"
            r = grpcweb(port, ECHO, frame(body))
            self.assertEqual(r.grpc_status()[0], 0, r.grpc_status())
            self.assertNotIn("no answer to a PING", P.stderr(gw))
        finally:
            P.stop_all()


if __name__ == "__main__":
    unittest.main(verbosity=2)
