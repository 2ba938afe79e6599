"""Helpers for the gateway's protocol tests: start real processes on
loopback (the demo service and `grpcgate serve`), speak raw HTTP/1.1 over
sockets, build gRPC-Web frames and read the answers. Every process started
here is killed by the test that started it (see Procs)."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

GRPCGATE = os.environ.get("GW_GRPCGATE", "build/src/grpcgate")
DEMO_DESC = os.environ.get("GW_DEMO_DESC", "build/schemas/demo.pb")


class Procs:
    """Processes this test started; stop() kills them all."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="gw-front-")

    def start(self, args, pattern, name):
        err_path = os.path.join(self.tmp, name + ".stderr")
        with open(err_path, "wb") as err:
            p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
        self.procs.append(p)
        p.err_path = err_path
        deadline = time.monotonic() + 20
        line = b""
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            m = re.search(pattern, line.decode())
            if m:
                return p, m
        raise RuntimeError("%s did not start: %r; stderr: %s" % (name, line, self.stderr(p)))

    @staticmethod
    def stderr(p):
        with open(p.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def demo(self):
        p, m = self.start([GRPCGATE, "demo-service", "--listen", "127.0.0.1:0"],
                          r"listening on ([\d.]+):(\d+)", "demo")
        return p, "http://127.0.0.1:" + m.group(2)

    def gateway(self, backend, config=None, workers=2):
        args = [GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", backend,
                "--descriptor", DEMO_DESC, "--workers", str(workers)]
        if config is not None:
            path = os.path.join(self.tmp, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            args += ["--config", path]
        p, m = self.start(args, r"listening on ([\d.]+):(\d+)", "gateway")
        return p, int(m.group(2))

    def stop(self, p, timeout=20):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()


def frame(payload, flag=0):
    return bytes([flag]) + struct.pack(">I", len(payload)) + payload


def pb_string(field, s):
    b = s.encode() if isinstance(s, str) else s
    return bytes([field << 3 | 2]) + varint(len(b)) + b


def pb_varint(field, v):
    return bytes([field << 3]) + varint(v)


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


class Response:
    def __init__(self, status, headers, body, closed):
        self.status = status
        self.headers = headers  # lowercase name -> list of values
        self.body = body
        self.closed = closed    # the server closed the connection after it

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def frames(self):
        """(flag, payload) pairs of a binary gRPC-Web body."""
        out, b = [], self.body
        while len(b) >= 5:
            n = struct.unpack(">I", b[1:5])[0]
            out.append((b[0], b[5:5 + n]))
            b = b[5 + n:]
        assert not b, "trailing bytes in body: %r" % b
        return out

    def trailers(self):
        fl = [p for f, p in self.frames() if f & 0x80]
        assert len(fl) == 1, "want exactly one trailer frame, got %d" % len(fl)
        t = {}
        for line in fl[0].decode().split("\r\n"):
            if line:
                k, v = line.split(":", 1)
                t[k] = v.strip()
        return t

    def grpc_status(self):
        s = self.header("grpc-status")
        if s is not None:
            return int(s), self.header("grpc-message")
        t = self.trailers()
        return int(t["grpc-status"]), t.get("grpc-message")


class Conn:
    """One raw HTTP/1.1 connection."""

    def __init__(self, port, timeout=15):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.s.close()

    def _fill(self):
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            d = b""
        self.buf += d
        return bool(d)

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False):
        status = int(self._line().split(b" ")[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        body = b""
        if status == 204 or status == 304 or status < 200:
            pass
        elif "transfer-encoding" in headers:
            while True:
                n = int(self._line().split(b";")[0], 16)
                if n == 0:
                    while self._line():
                        pass
                    break
                body += self._take(n)
                self._take(2)
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"][0]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        closed = "close" in ",".join(headers.get("connection", [])).lower()
        return Response(status, headers, body, closed)

    def closed_by_peer(self, timeout):
        """True if the server closes the connection within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True


def request(port, method, path, body=b"", headers=None, conn=None):
    h = {"Host": "127.0.0.1", "Content-Length": str(len(body))}
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in h.items() if v is not None)
    own = conn is None
    c = conn or Conn(port)
    try:
        c.send(head.encode() + b"\r\n" + body)
        return c.read_response()
    finally:
        if own:
            c.close()


def grpcweb(port, path, body, text=False, headers=None, conn=None):
    h = {"Content-Type": "application/grpc-web-text" if text else "application/grpc-web+proto",
         "X-Grpc-Web": "1"}
    h.update(headers or {})
    return request(port, "POST", path, body, h, conn)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wchar(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def tcp_bytes_sent(port):
    """Bytes sent by the established TCP sockets whose local port is port
    (from `ss -ti`): how far a backend has pushed its responses."""
    out = subprocess.run(["ss", "-tinH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(m) for m in re.findall(r"bytes_sent:(\d+)", out))
