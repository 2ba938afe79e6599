"""Shared helpers for the bench/scale scripts (issue 18): start the demo
service and the gateway on loopback, read RSS / CPU / kernel TCP memory,
open many connections. Everything started here is killed on exit."""
import atexit
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
GRPCGATE = os.environ.get("GW_GRPCGATE", os.path.join(BUILD, "src", "grpcgate"))
DEMO_DESC = os.environ.get("GW_DEMO_DESC", os.path.join(BUILD, "schemas", "demo.pb"))
PAGE = os.sysconf("SC_PAGE_SIZE")
HZ = os.sysconf("SC_CLK_TCK")
_procs = []
_tmp = tempfile.mkdtemp(prefix="gw-scale-")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(n, soft), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def start(args, name, pattern=r"listening on ([\d.]+):(\d+)"):
    err = open(os.path.join(_tmp, name + ".stderr"), "wb")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
    _procs.append(p)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line.decode())
        if m:
            return p, int(m.group(2))
    raise RuntimeError("%s did not start" % name)


def demo():
    return start([GRPCGATE, "demo-service", "--listen", "127.0.0.1:0"], "demo")


def gateway(backend_port, config=None, workers=2, extra=()):
    args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0",
            "--backend", "http://127.0.0.1:%d" % backend_port,
            "--descriptor", DEMO_DESC, "--workers", str(workers), "--log-level", "warn"]
    if config:
        path = os.path.join(_tmp, "config.json")
        with open(path, "w") as f:
            json.dump(config, f)
        args += ["--config", path]
    return start(args + list(extra), "gateway")


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def tcp_mem_kib():
    """Kernel TCP buffer memory of the whole host (/proc/net/sockstat,
    'TCP: ... mem N' in pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()
                return int(v[v.index("mem") + 1]) * PAGE // 1024
    return 0


def tcp_slab_kib():
    """Kernel objects of TCP sockets (slab caches TCP, TCPv6, sock_inode_cache,
    dentry not counted): active objects x size, when /proc/slabinfo is readable."""
    try:
        with open("/proc/slabinfo") as f:
            total = 0
            for line in f:
                v = line.split()
                if v and v[0] in ("TCP", "sock_inode_cache", "request_sock_TCP"):
                    total += int(v[1]) * int(v[3])
            return total // 1024
    except OSError:
        return None


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def request_head(method, path, body=b"", headers=None):
    h = {"Host": "127.0.0.1", "Content-Length": str(len(body))}
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in h.items())
    return head.encode() + b"\r\n" + body


def read_response(s, buf=b""):
    """Reads one response (Content-Length or chunked) from a blocking socket.
    Returns (status, headers dict, body, leftover)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdr = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        hdr[k.strip().lower()] = v.strip()
    if "content-length" in hdr:
        n = int(hdr["content-length"])
        while len(buf) < n:
            d = s.recv(65536)
            if not d:
                raise EOFError("closed")
            buf += d
        return status, hdr, buf[:n], buf[n:]
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        line, buf = buf.split(b"\r\n", 1)
        n = int(line.split(b";")[0], 16)
        while len(buf) < n + 2:
            d = s.recv(1 << 20)
            if not d:
                raise EOFError("closed")
            buf += d
        if n == 0:
            return status, hdr, body, buf[2:]
        body += buf[:n]
        buf = buf[n + 2:]


def conditions():
    with open("/proc/loadavg") as f:
        la = " ".join(f.read().split()[:3])
    return "load average %s, %d CPUs, %s" % (la, os.cpu_count(), os.uname().release)
