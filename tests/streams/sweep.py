#!/usr/bin/env python3
"""Seeded, randomized stream sweep (issue 12): every stream must end with
every byte and its trailers, within a deadline, whatever the message sizes.

Backends: `grpcgate demo-service` and the @grpc/grpc-js test server
(tests/node/grpcjs_server.mjs), each behind its own `grpcgate serve`.
Response direction: Download through gRPC-Web binary, text and +json, REST
NDJSON and SSE, and Connect's streaming protocol (binary and JSON); message sizes drawn around 0, 1, 16 KiB +-1, the 64 KiB
stream window -1..+5, 2x the window +-k, 1 MiB and the message limit -1,
with totals that divide evenly and totals that do not (the demo service
sends total/chunk shapes; grpc-js sends any list of sizes, given in the
x-sweep-sizes metadata). Request direction: CreateUsers (gRPC-Web frames,
REST NDJSON) and Chat (gRPC-Web, REST NDJSON) with messages of the same
sizes. Half the calls come from a client that pauses mid-stream (while
reading the answer, or while sending the body).

  sweep.py [sweep]    random calls for SWEEP_SECONDS (default 50)
  sweep.py bidi       Chat uploads (gRPC-Web binary, text, +json, REST NDJSON)
                      whose echoes pass the window before the body ends,
                      with and without a pause, on both backends
  sweep.py exact      Download totalBytes=200000 chunkSize=70000, 100 times
                      through gRPC-Web binary, text and REST NDJSON, on
                      both backends

Environment: SWEEP_SECONDS, SWEEP_SEED (default: time-based, printed),
SWEEP_WORKERS (default 3), SWEEP_CASE=N (run only case N of the seed).
A failure prints the seed, the case number and its sizes; rerun it with
SWEEP_SEED=... SWEEP_CASE=...
"""
import base64
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "front"))
from gwtest import Procs, frame, pb_string, pb_varint, varint  # noqa: E402

SRC = os.environ.get("GW_SOURCE_ROOT",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NODE = os.environ.get("GW_NODE", "node")
GRPCJS = os.path.join(SRC, "tests", "node", "grpcjs_server.mjs")

W = 65536
F = 16384
LIMIT = 1048581            # limits.max_message_bytes of the gateways under test
MIB = 1 << 20
DEADLINE_S = 60            # grpc-timeout of every call
STALL_S = 45               # no byte for this long: the call is stuck
MAX_TOTAL = 4 << 20        # bytes of one Download
CREATE_BUDGET = 24 << 20   # CreateUsers bytes per backend (the stores are bounded)


class Stall(Exception):
    pass


# ---- protobuf bits ------------------------------------------------------------

def varint_len(v):
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def chunk_size_for(target, offset):
    """Data length n whose Chunk{offset, data[n]} encodes to `target` bytes
    (or the closest below); offset 0 and empty data are left out."""
    head = 0 if offset == 0 else 1 + varint_len(offset)
    if target <= head:
        return 0
    n = max(target - head - 2, 0)
    while n > 0 and head + 1 + varint_len(n) + n > target:
        n -= 1
    return n


def read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def parse_fields(b):
    """{field: [values]} of a flat protobuf message (varint and bytes)."""
    out, i = {}, 0
    while i < len(b):
        key, i = read_varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        out.setdefault(f, []).append(v)
    return out


PATTERN = bytes(i & 0xFF for i in range(MIB + 512))


def check_chunks(chunks, total):
    """chunks: (offset, data) in order; every byte of the Download."""
    pos = 0
    for off, data in chunks:
        if off != pos:
            raise AssertionError("chunk at offset %d, expected %d" % (off, pos))
        s = pos & 0xFF
        if data != PATTERN[s:s + len(data)]:
            raise AssertionError("wrong bytes in the chunk at offset %d" % pos)
        pos += len(data)
    if pos != total:
        raise AssertionError("got %d bytes of %d" % (pos, total))


# ---- HTTP/1.1 client with a pause ----------------------------------------------

class Client:
    def __init__(self, port, pause_at=None, pause_s=0.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=STALL_S)
        self.buf = b""
        self.got = 0
        self.pause_at = pause_at
        self.pause_s = pause_s

    def close(self):
        self.s.close()

    def send_body(self, head, body, pause_at=None, pause_s=0.0):
        """Sends head + chunked body in 32 KiB pieces, pausing once. A
        gateway that answers early may close the connection meanwhile: the
        answer tells what went wrong."""
        try:
            self._send_body(head, body, pause_at, pause_s)
        except OSError:
            pass

    def _send_body(self, head, body, pause_at, pause_s):
        self.s.sendall(head)
        for i in range(0, len(body), 32768):
            if pause_at is not None and i >= pause_at:
                time.sleep(pause_s)
                pause_at = None
            part = body[i:i + 32768]
            self.s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        self.s.sendall(b"0\r\n\r\n")

    def _fill(self):
        if self.pause_at is not None and self.got >= self.pause_at:
            time.sleep(self.pause_s)
            self.pause_at = None
        try:
            d = self.s.recv(65536)
        except (socket.timeout, TimeoutError):
            raise Stall("no byte for %d s after %d response bytes" % (STALL_S, self.got))
        except ConnectionResetError:
            d = b""
        self.got += len(d)
        self.buf += d
        return bool(d)

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise Stall("connection closed after %d bytes (in a line)" % self.got)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise Stall("connection closed after %d bytes (in a chunk)" % self.got)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """(status, headers, body); the body must end with its zero chunk
        (or its Content-Length)."""
        status = int(self._line().split(b" ")[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers[k.strip().lower()] = v.strip()
        parts = []
        if "content-length" in headers:
            parts.append(self._take(int(headers["content-length"])))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                n = int(self._line().split(b";")[0], 16)
                if n == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._take(n))
                self._take(2)
        else:
            raise AssertionError("response without length or chunks: %r" % headers)
        return status, headers, b"".join(parts)


def http_head(method, path, headers):
    h = {"Host": "127.0.0.1", "Grpc-Timeout": "%dS" % DEADLINE_S}
    h.update(headers)
    return ("%s %s HTTP/1.1\r\n" % (method, path) +
            "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()


# ---- gRPC-Web bodies --------------------------------------------------------------

WEB_CT = {"bin": "application/grpc-web+proto", "text": "application/grpc-web-text",
          "json": "application/grpc-web+json"}


def web_frames(body, mode):
    if mode == "text":
        body = b"".join(base64.b64decode(body[i:i + 4]) for i in range(0, len(body), 4))
    out, i = [], 0
    while i < len(body):
        if len(body) - i < 5:
            raise AssertionError("truncated frame prefix")
        n = struct.unpack(">I", body[i + 1:i + 5])[0]
        if len(body) - i - 5 < n:
            raise AssertionError("truncated frame")
        out.append((body[i], body[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def web_messages(body, mode):
    """Message payloads, after checking for exactly one trailer frame, last,
    with grpc-status 0."""
    frames = web_frames(body, mode)
    if not frames or not frames[-1][0] & 0x80:
        raise AssertionError("no trailer frame at the end (%d frames)" % len(frames))
    if any(f & 0x80 for f, _ in frames[:-1]):
        raise AssertionError("trailer frame before the end")
    trl = {}
    for line in frames[-1][1].decode().split("\r\n"):
        if line:
            k, v = line.split(":", 1)
            trl[k.strip()] = v.strip()
    if trl.get("grpc-status") != "0":
        raise AssertionError("trailers %r" % trl)
    return [p for _, p in frames[:-1]]


CONNECT_CT = {"connect": "application/connect+proto", "connect-json": "application/connect+json"}


def connect_messages(body):
    """Message payloads of a Connect stream answer, after checking that it
    ends with an end-stream envelope without an error."""
    frames = web_frames(body, "bin")
    if not frames or frames[-1][0] != 2:
        raise AssertionError("no end-stream envelope at the end (%d envelopes)" % len(frames))
    if any(f != 0 for f, _ in frames[:-1]):
        raise AssertionError("unexpected envelope flags")
    end = json.loads(frames[-1][1] or b"{}")
    if "error" in end:
        raise AssertionError("end-stream error %r" % end["error"])
    return [p for _, p in frames[:-1]]


def web_request(mode, msgs_pb, msgs_json):
    if mode == "json":
        body = b"".join(frame(json.dumps(m).encode()) for m in msgs_json)
    else:
        body = b"".join(frame(m) for m in msgs_pb)
    if mode == "text":
        body = base64.b64encode(body)
    return body


# ---- the calls ----------------------------------------------------------------------

def download(port, proto, total, chunk, sizes, pause):
    """One Download; sizes (grpc-js only) overrides total/chunk."""
    c = Client(port, *(pause or (None, 0.0)))
    try:
        extra = {}
        if proto in WEB_CT:
            if sizes is not None:
                extra["X-Sweep-Sizes"] = ",".join(map(str, sizes))
            req = ({"totalBytes": str(total), "chunkSize": chunk} if proto == "json" else None)
            body = web_request(proto, [pb_varint(1, total) + pb_varint(2, chunk)], [req])
            head = http_head("POST", "/demo.v1.EchoService/Download",
                             dict({"Content-Type": WEB_CT[proto], "X-Grpc-Web": "1",
                                   "Content-Length": str(len(body))}, **extra))
            c.s.sendall(head + body)
            status, headers, rbody = c.response()
            if status != 200:
                raise AssertionError("HTTP %d" % status)
            chunks = []
            for p in web_messages(rbody, proto):
                if proto == "json":
                    m = json.loads(p)
                    chunks.append((int(m.get("offset", 0)), base64.b64decode(m.get("data", ""))))
                else:
                    f = parse_fields(p)
                    chunks.append((f.get(1, [0])[0], f.get(2, [b""])[0]))
        elif proto in CONNECT_CT:
            if sizes is not None:
                extra["X-Sweep-Sizes"] = ",".join(map(str, sizes))
            js = proto == "connect-json"
            req = {"totalBytes": str(total), "chunkSize": chunk}
            body = frame(json.dumps(req).encode() if js else pb_varint(1, total) + pb_varint(2, chunk))
            head = http_head("POST", "/demo.v1.EchoService/Download",
                             dict({"Content-Type": CONNECT_CT[proto], "Connect-Protocol-Version": "1",
                                   "Connect-Timeout-Ms": str(DEADLINE_S * 1000),
                                   "Content-Length": str(len(body))}, **extra))
            c.s.sendall(head + body)
            status, headers, rbody = c.response()
            if status != 200:
                raise AssertionError("HTTP %d" % status)
            chunks = []
            for p in connect_messages(rbody):
                if js:
                    m = json.loads(p)
                    chunks.append((int(m.get("offset", 0)), base64.b64decode(m.get("data", ""))))
                else:
                    f = parse_fields(p)
                    chunks.append((f.get(1, [0])[0], f.get(2, [b""])[0]))
        else:
            if sizes is not None:
                extra["Grpc-Metadata-X-Sweep-Sizes"] = ",".join(map(str, sizes))
            if proto == "sse":
                extra["Accept"] = "text/event-stream"
            head = http_head("GET", "/v1/download?totalBytes=%d&chunkSize=%d" % (total, chunk), extra)
            c.s.sendall(head)
            status, headers, rbody = c.response()
            if status != 200:
                raise AssertionError("HTTP %d: %r" % (status, rbody[:200]))
            chunks = []
            if proto == "ndjson":
                for line in rbody.split(b"\n"):
                    if not line:
                        continue
                    m = json.loads(line)
                    if "result" not in m:
                        raise AssertionError("error line %r" % line[:200])
                    m = m["result"]
                    chunks.append((int(m.get("offset", 0)), base64.b64decode(m.get("data", ""))))
            else:
                for ev in rbody.split(b"\n\n"):
                    if not ev:
                        continue
                    if not ev.startswith(b"data: "):
                        raise AssertionError("event %r" % ev[:200])
                    m = json.loads(ev[6:])
                    chunks.append((int(m.get("offset", 0)), base64.b64decode(m.get("data", ""))))
        check_chunks(chunks, total)
        return c.got
    finally:
        c.close()


def echo_pb(size):
    """An EchoRequest (and so the EchoResponse the backends return) of
    exactly `size` bytes: field 1 only."""
    n = size - 2
    while len(pb_string(1, b"m" * n)) > size:
        n -= 1
    msg = pb_string(1, b"m" * n)
    if len(msg) != size:
        raise AssertionError("no EchoRequest of %d bytes" % size)
    return msg, n


def echo(port, proto, size):
    """One unary Echo whose request and answer are `size` bytes of protobuf
    (size + 5 on the wire): the answer goes out only after the status, so
    the backend must be able to send its trailers after a message that
    emptied the stream window."""
    msg, n = echo_pb(size)
    text = "m" * n
    c = Client(port)
    try:
        if proto in WEB_CT:
            body = web_request(proto, [msg], [{"message": text}])
            head = http_head("POST", "/demo.v1.EchoService/Echo",
                             {"Content-Type": WEB_CT[proto], "X-Grpc-Web": "1",
                              "Content-Length": str(len(body))})
        elif proto in ("unary", "unary-json"):
            js = proto == "unary-json"
            body = json.dumps({"message": text}).encode() if js else msg
            head = http_head("POST", "/demo.v1.EchoService/Echo",
                             {"Content-Type": "application/json" if js else "application/proto",
                              "Connect-Protocol-Version": "1",
                              "Connect-Timeout-Ms": str(DEADLINE_S * 1000),
                              "Content-Length": str(len(body))})
        else:
            body = json.dumps({"message": text}).encode()
            head = http_head("POST", "/v1/echo", {"Content-Type": "application/json",
                                                   "Content-Length": str(len(body))})
        c.s.sendall(head + body)
        status, headers, rbody = c.response()
        if status != 200:
            raise AssertionError("HTTP %d: %r" % (status, rbody[:200]))
        if proto in WEB_CT:
            got = web_messages(rbody, proto)
            if len(got) != 1:
                raise AssertionError("%d messages" % len(got))
            ok = (json.loads(got[0]).get("message") == text if proto == "json"
                  else parse_fields(got[0]).get(1, [b""])[0] == text.encode())
        elif proto == "unary":
            ok = parse_fields(rbody).get(1, [b""])[0] == text.encode()
        else:
            ok = json.loads(rbody).get("message") == text
        if not ok:
            raise AssertionError("answer differs (%d bytes)" % len(rbody))
        return c.got
    finally:
        c.close()


def unary_cases(backends):
    """Unary answers (and the first message of a stream) around the window:
    message wire sizes W-1 .. W+5 and message sizes W-1 .. W+5, 2W +- k,
    1 MiB, the limit - 1, through every face, both directions (Echo's
    request is as large as its answer)."""
    sizes = sorted(set(list(range(W - 6, W + 6)) +
                       [2 * W - 6, 2 * W - 5, 2 * W - 4, 2 * W + 3, MIB, LIMIT - 1]))
    cases = []
    for b in backends:
        for size in sizes:
            if b == "grpcjs" and size == LIMIT - 1:
                size -= 2  # grpc-js adds `number: 0` (2 bytes) to its answer
            for proto in ("bin", "text", "json", "rest", "unary", "unary-json"):
                cases.append(dict(kind="echo", backend=b, proto=proto, size=size))
            for proto in ("bin", "ndjson", "connect") if size < MIB else ():
                cases.append(dict(kind="download", backend=b, proto=proto, total=size,
                                  chunk=size, sizes=None, pause=None))
    return cases


def user_pb(i, name_len):
    return pb_string(2, "u" * name_len) + pb_string(3, "s%d@example.com" % i)


def name_len_for(target, i):
    """Name length whose User{name, email} encodes to about target bytes."""
    email = 1 + 1 + len("s%d@example.com" % i)
    n = max(target - email - 4, 1)
    while n > 1 and 1 + varint_len(n) + n + email > target:
        n -= 1
    return n


def upload(port, proto, method, sizes, pause):
    """CreateUsers or Chat with messages of about these sizes; the request
    body is sent in chunks and the client may pause while sending."""
    pause_at, pause_s = pause or (None, 0.0)
    c = Client(port)
    try:
        if method == "CreateUsers":
            lens = [name_len_for(s, i) for i, s in enumerate(sizes)]
            pbs = [user_pb(i, n) for i, n in enumerate(lens)]
            jsn = [{"name": "u" * n, "email": "s%d@example.com" % i} for i, n in enumerate(lens)]
            path = "/demo.v1.UserService/CreateUsers"
            rest_path = "/v1/users:batchCreate"
        else:
            lens = [max(s - 3, 0) for s in sizes]
            pbs = [pb_string(1, "t" * n) for n in lens]
            jsn = [{"text": "t" * n} for n in lens]
            path = rest_path = "/demo.v1.UserService/Chat"
        if proto in WEB_CT:
            body = web_request(proto, pbs, jsn)
            head = http_head("POST", path, {"Content-Type": WEB_CT[proto], "X-Grpc-Web": "1",
                                            "Transfer-Encoding": "chunked"})
        else:
            body = b"".join(json.dumps(m).encode() + b"\n" for m in jsn)
            head = http_head("POST", rest_path, {"Content-Type": "application/json",
                                                 "Transfer-Encoding": "chunked"})
        sender = threading.Thread(target=c.send_body, args=(head, body, pause_at, pause_s))
        sender.start()
        try:
            status, headers, rbody = c.response()
        finally:
            sender.join()
        if status != 200:
            raise AssertionError("HTTP %d: %r" % (status, rbody[:200]))
        if proto in WEB_CT:
            msgs = web_messages(rbody, proto)
            if proto == "json":
                msgs = [json.loads(m) for m in msgs]
        elif method == "Chat":
            msgs = []
            for line in rbody.split(b"\n"):
                if line:
                    m = json.loads(line)
                    if "result" not in m:
                        raise AssertionError("error line %r" % line[:200])
                    msgs.append(m["result"])
        else:
            msgs = [json.loads(rbody)]
        if method == "CreateUsers":
            if len(msgs) != 1:
                raise AssertionError("%d summaries" % len(msgs))
            m = msgs[0]
            created = m.get("created", 0) if isinstance(m, dict) else parse_fields(m).get(1, [0])[0]
            if created != len(sizes):
                raise AssertionError("created %d of %d" % (created, len(sizes)))
        else:
            if len(msgs) != len(sizes):
                raise AssertionError("%d echoes of %d" % (len(msgs), len(sizes)))
            for m, n in zip(msgs, lens):
                t = m.get("text", "") if isinstance(m, dict) else parse_fields(m).get(1, [b""])[0]
                if len(t) != n:
                    raise AssertionError("echo of %d bytes, sent %d" % (len(t), n))
        return len(body) + c.got
    finally:
        c.close()


def bidi_cases(backends):
    """Chat uploads whose echoes pass the stream window before the request
    body ends (the answer cannot leave before it: HTTP/1.1), with and without
    a pause while sending; the first list is the stall of seed 543702416
    case 86."""
    lists = [[W, 400000, 400000, 400000, 2 * W, 0], [W + 1] * 10, [2 * W + 16] * 7,
             [F + 1, W - 1, W + 5, 3 * W, F, 1]]
    return [dict(kind="upload", backend=b, proto=p, method="Chat", sizes=sizes, pause=pause)
            for b in backends for p in ("bin", "text", "json", "ndjson") for sizes in lists
            for pause in (None, (W + 5, 0.3))]


# ---- drawing cases -------------------------------------------------------------------

def draw_size(r):
    k = r.choice([0, 1, 5, 16, 4096])
    return r.choice([
        0, 1, F - 1, F, F + 1,
        W - 1, W, W + 1, W + 2, W + 3, W + 4, W + 5,
        2 * W - k, 2 * W + k,
        MIB - 16, LIMIT - 1,
        r.randint(47 * 1024, 62 * 1024), r.randint(2, 3 * W),
    ])


def draw_case(seed, i, backends):
    r = random.Random("%s-%d" % (seed, i))
    backend = r.choice(backends)
    pause = None
    if r.random() < 0.5:
        pause = (r.randint(0, 300000), r.uniform(0.1, 0.8))
    if r.random() < 0.25:
        proto = r.choice(["bin", "text", "json", "ndjson"])
        method = r.choice(["CreateUsers", "Chat"])
        sizes = [min(max(draw_size(r), 40), 400000) if method == "CreateUsers" else
                 min(draw_size(r), 400000) for _ in range(r.randint(1, 6))]
        return dict(kind="upload", backend=backend, proto=proto, method=method, sizes=sizes,
                    pause=pause)
    proto = r.choice(["bin", "text", "json", "ndjson", "sse", "connect", "connect-json"])
    if backend == "grpcjs" and r.random() < 0.6:
        # Exact message sizes, each around a boundary.
        count = r.randint(1, 8)
        targets = [draw_size(r) for _ in range(count)]
        if LIMIT - 1 in targets:
            targets = [LIMIT - 1]
        sizes, off = [], 0
        for t in targets:
            n = min(chunk_size_for(t, off), MIB)
            sizes.append(n)
            off += n
        while sum(sizes) > MAX_TOTAL and len(sizes) > 1:
            sizes.pop()
        return dict(kind="download", backend=backend, proto=proto, total=sum(sizes), chunk=0,
                    sizes=sizes, pause=pause)
    target = draw_size(r)
    if target == LIMIT - 1 and backend == "grpcjs":
        # grpc-js writes offset 0 explicitly: use the script, which does not.
        n = chunk_size_for(LIMIT - 1, 0)
        return dict(kind="download", backend=backend, proto=proto, total=n, chunk=0,
                    sizes=[n], pause=pause)
    if target == LIMIT - 1:
        chunk = total = LIMIT - 5   # offset 0 left out: 1 + 3 + chunk bytes
    else:
        chunk = max(min(chunk_size_for(target, 1 << 20), MIB - 16), 1)
        count = r.randint(1, max(1, min(6, MAX_TOTAL // chunk)))
        rest = r.choice([0, 0, r.randint(1, chunk - 1) if chunk > 1 else 0,
                         min(chunk - 1, max(draw_size(r), 1))])
        total = count * chunk + max(rest, 0)
    return dict(kind="download", backend=backend, proto=proto, total=total, chunk=chunk,
                sizes=None, pause=pause)


def run_case(case, ports):
    port = ports[case["backend"]]
    if case["kind"] == "echo":
        return echo(port, case["proto"], case["size"])
    if case["kind"] == "download":
        return download(port, case["proto"], case["total"], case["chunk"], case["sizes"],
                        case["pause"])
    return upload(port, case["proto"], case["method"], case["sizes"], case["pause"])


def describe(case):
    d = dict(case)
    if d.get("sizes") and len(d["sizes"]) > 12:
        d["sizes"] = d["sizes"][:12] + ["..."]
    return json.dumps(d)


# ---- processes ----------------------------------------------------------------------

def start_backends(procs, want):
    backends = {}
    if "demo" in want:
        p, url = procs.demo()
        backends["demo"] = url
    if "grpcjs" in want:
        p, m = procs.start([NODE, GRPCJS, "--port", "0"], r"listening (\d+)", "grpcjs")
        backends["grpcjs"] = "http://127.0.0.1:" + m.group(1)
    ports = {}
    procs.gateways = []
    for name, url in backends.items():
        # The window the boundaries are drawn around (the default is larger).
        cfg = {"limits": {"max_message_bytes": LIMIT, "max_body_bytes": 64 << 20},
               "upstream": {"stream_window": W}}
        p, port = procs.gateway(url, config=cfg)
        procs.gateways.append(p)
        ports[name] = port
    return ports


def stop_gateways(procs):
    """SIGTERM, then the exit status must be 0 (a sanitizer report or a
    leak makes it fail)."""
    bad = 0
    for p in procs.gateways:
        rc = procs.stop(p)
        if rc != 0:
            print("FAIL gateway exited with %s; stderr:\n%s" % (rc, procs.stderr(p)[-4000:]))
            bad += 1
    return bad


def node_ok():
    try:
        subprocess.run([NODE, "--version"], capture_output=True, check=True)
        return True
    except (OSError, subprocess.CalledProcessError):
        return False


def run(cases_iter, ports, workers, seed, deadline=None):
    lock = threading.Lock()
    stats = {"calls": 0, "bytes": 0, "slowest": 0.0, "failures": [], "by": {}}
    it = iter(cases_iter)

    def worker():
        while True:
            with lock:
                if stats["failures"] or (deadline and time.monotonic() > deadline):
                    return
                try:
                    i, case = next(it)
                except StopIteration:
                    return
            t0 = time.monotonic()
            try:
                n = run_case(case, ports)
                err = None
            except Exception as e:  # noqa: BLE001 - every failure is reported with its case
                err = "%s: %s" % (type(e).__name__, e)
                n = 0
            dt = time.monotonic() - t0
            with lock:
                if err is None and dt > DEADLINE_S:
                    err = "took %.1f s, over the %d s deadline" % (dt, DEADLINE_S)
                if err:
                    stats["failures"].append("seed %s case %d: %s\n  %s" % (seed, i, err,
                                                                          describe(case)))
                    continue
                stats["calls"] += 1
                stats["bytes"] += n
                stats["slowest"] = max(stats["slowest"], dt)
                key = "%s/%s/%s" % (case["backend"], case["kind"], case["proto"])
                stats["by"][key] = stats["by"].get(key, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "sweep"
    want = ["demo", "grpcjs"] if node_ok() else ["demo"]
    workers = int(os.environ.get("SWEEP_WORKERS", "3"))
    procs = Procs()
    try:
        ports = start_backends(procs, want)
        t0 = time.monotonic()
        if what == "exact":
            seed = "exact"
            cases = [dict(kind="download", backend=b, proto=p, total=200000, chunk=70000,
                          sizes=None, pause=None)
                     for _ in range(100) for b in want for p in ("bin", "text", "ndjson")]
            stats = run(enumerate(cases), ports, workers, seed)
            want_calls = len(cases)
        elif what == "bidi":
            seed = "bidi"
            cases = bidi_cases(want)
            stats = run(enumerate(cases), ports, workers, seed)
            want_calls = len(cases)
        elif what == "unary":
            seed = "unary"
            cases = unary_cases(want)
            stats = run(enumerate(cases), ports, workers, seed)
            want_calls = len(cases)
        else:
            # a new seed every run (printed; a failure names it and its case)
            seed = os.environ.get("SWEEP_SEED") or "random"
            if seed == "random":
                seed = str(int(time.time() * 1000) % 10**9)
            seconds = float(os.environ.get("SWEEP_SECONDS", "50"))
            only = os.environ.get("SWEEP_CASE")
            print("sweep: seed %s, %.0f s, %d workers, backends %s" % (seed, seconds, workers,
                                                                       ",".join(want)), flush=True)
            uploads = {b: 0 for b in want}
            ulock = threading.Lock()

            def cases():
                i = int(only) if only else 0
                while True:
                    case = draw_case(seed, i, want)
                    if case["kind"] == "upload" and case["method"] == "CreateUsers":
                        with ulock:
                            if uploads[case["backend"]] > CREATE_BUDGET:
                                case["method"] = "Chat"
                            else:
                                uploads[case["backend"]] += sum(case["sizes"])
                    yield i, case
                    if only:
                        return
                    i += 1
            stats = run(cases(), ports, workers, seed, deadline=t0 + seconds)
            want_calls = None
        dt = time.monotonic() - t0
        if stop_gateways(procs):
            stats["failures"].append("a gateway did not exit cleanly")
        for f in stats["failures"]:
            print("FAIL " + f, flush=True)
        print("%s: %d calls, %.1f MB, %.0f s, slowest call %.1f s, seed %s" % (
            what, stats["calls"], stats["bytes"] / 1e6, dt, stats["slowest"], seed))
        for k in sorted(stats["by"]):
            print("  %-32s %d" % (k, stats["by"][k]))
        if stats["failures"]:
            return 1
        if want_calls is not None and stats["calls"] != want_calls:
            print("only %d of %d calls ran" % (stats["calls"], want_calls))
            return 1
        if what == "sweep" and stats["calls"] == 0:
            return 1
        return 0
    finally:
        procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
