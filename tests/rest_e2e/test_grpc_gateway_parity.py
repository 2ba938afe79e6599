"""grpcgate answers like grpc-gateway 1.6.4 (issue 6, acceptance 3).

For every request of bench/peers/README.md ("What grpc-gateway 1.6.4
answers"), and a few more of the same kind, the request goes to
grpc-gateway-peer and to `grpcgate serve` (with proto_names and
grpc_gateway_v1_errors, the grpc-gateway 1.x style), both in front of one
bench-backend. The HTTP status and the JSON values must be equal; streams are
compared line by line. Where grpcgate differs on purpose (an unknown path
gets a JSON body instead of the text "Not Found") only the status is
compared; docs/rest.md lists these differences.

The peers are the project's own (bench/peers: a Go backend and grpc-gateway
1.6.4's proxy, from Debian packages). When bench/peers/bin is not built and
the packages are installed (`bench/peers/setup.sh` installs them), this
builds it with `bench/peers/setup.sh --no-install`; otherwise the test is
skipped with a message saying so (exit 77). No path outside the checkout. Every process is started on a free
port and killed here."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "front"))
import gwtest  # noqa: E402

SOURCE_ROOT = os.path.abspath(os.environ.get("GW_SOURCE_ROOT", "."))
PEERS = os.path.join(SOURCE_ROOT, "bench", "peers")
BENCH_DESC = os.environ.get("GW_BENCH_DESC", "")

# (name, method, path, body, compare: "json" | "lines" | "status")
REQUESTS = [
    ("echo", "POST", "/v1/echo", '{"message":"hi","number":"5"}', "json"),
    ("echo with a numeric int64", "POST", "/v1/echo", '{"message":"hi","number":5}', "json"),
    ("echo of {}", "POST", "/v1/echo", "{}", "json"),
    ("get with noteSize", "GET", "/v1/items/7?noteSize=100", None, "json"),
    ("get with note_size", "GET", "/v1/items/7?note_size=3", None, "json"),
    ("get with defaults", "GET", "/v1/items/42", None, "json"),
    ("list", "GET", "/v1/items?count=3", None, "lines"),
    ("list with a note size", "GET", "/v1/items?count=2&noteSize=1", None, "lines"),
    ("empty list", "GET", "/v1/items?count=0", None, "lines"),
    ("unary error", "GET", "/v1/items/7?noteSize=-1", None, "json"),
    ("stream error before the first message", "GET", "/v1/items?count=3&noteSize=-1", None,
     "json"),
    ("unknown path", "GET", "/v1/nothing", None, "status"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (name, proc.returncode))
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("%s is not listening on %d" % (name, port))


def fetch(base, method, path, body):
    req = urllib.request.Request(base + path, method=method,
                                 data=body.encode() if body is not None else None)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def decode(body, how):
    if how == "lines":
        return [json.loads(ln) for ln in body.decode().split("\n") if ln.strip()]
    return json.loads(body)


def ensure_peers():
    bin_dir = os.path.join(PEERS, "bin")
    if os.path.isfile(os.path.join(bin_dir, "grpc-gateway-peer")):
        return None
    setup = os.path.join(PEERS, "setup.sh")
    if not shutil.which("go"):
        return ("%s is not built and Go is not installed: run bench/peers/setup.sh "
                "(installs the Debian packages and builds)" % bin_dir)
    r = subprocess.run(["bash", setup, "--no-install"], capture_output=True, timeout=900)
    if r.returncode != 0 or not os.path.isfile(os.path.join(bin_dir, "grpc-gateway-peer")):
        return "bench/peers/setup.sh --no-install failed: %s" % (
            r.stderr.decode(errors="replace")[-500:])
    return None


def main():
    why = ensure_peers()
    if why:
        print("SKIP: grpc-gateway comparison: " + why)
        return 77
    if not BENCH_DESC or not os.path.isfile(BENCH_DESC):
        print("SKIP: grpc-gateway comparison: no bench.pb descriptor (GW_BENCH_DESC)")
        return 77
    procs = gwtest.Procs()
    failures = []
    try:
        be_port, ref_port = free_port(), free_port()
        be = subprocess.Popen([os.path.join(PEERS, "bin", "bench-backend"), "-addr",
                               "127.0.0.1:%d" % be_port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.procs.append(be)
        be.stdout = open(os.devnull, "rb")
        wait_port(be_port, be, "bench-backend")
        ref = subprocess.Popen([os.path.join(PEERS, "bin", "grpc-gateway-peer"), "-listen",
                                "127.0.0.1:%d" % ref_port, "-backend", "127.0.0.1:%d" % be_port],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.procs.append(ref)
        ref.stdout = open(os.devnull, "rb")
        wait_port(ref_port, ref, "grpc-gateway-peer")
        config = os.path.join(procs.tmp, "config.json")
        with open(config, "w") as f:
            json.dump({"rest": {"proto_names": True, "grpc_gateway_v1_errors": True}}, f)
        gw, m = procs.start([gwtest.GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                             "http://127.0.0.1:%d" % be_port, "--descriptor", BENCH_DESC,
                             "--workers", "1", "--config", config],
                            r"listening on ([\d.]+):(\d+)", "gateway")
        ours = "http://127.0.0.1:" + m.group(2)
        theirs = "http://127.0.0.1:%d" % ref_port
        for name, method, path, body, how in REQUESTS:
            s1, b1 = fetch(theirs, method, path, body)
            s2, b2 = fetch(ours, method, path, body)
            ctx = "%s: %s %s: grpc-gateway %d %r, grpcgate %d %r" % (
                name, method, path, s1, b1[:200], s2, b2[:200])
            if s1 != s2:
                failures.append("status differs: " + ctx)
                continue
            if how == "status":
                continue
            try:
                if decode(b1, how) != decode(b2, how):
                    failures.append("JSON differs: " + ctx)
            except ValueError as e:
                failures.append("not JSON (%s): %s" % (e, ctx))
        rc = procs.stop(gw)
        if rc != 0:
            failures.append("grpcgate exit status %s" % rc)
    finally:
        procs.stop_all()
    for f in failures:
        print("FAIL", f)
    print("%d passed, %d failed" % (len(REQUESTS) - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
