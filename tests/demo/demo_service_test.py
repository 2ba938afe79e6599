#!/usr/bin/env python3
"""Integration tests for `grpcgate demo-service`.

Starts the real binary on 127.0.0.1:0 and checks it with independent
clients: `buf curl` (grpc-go's HTTP/2 stack, schema from server reflection)
for the API's behaviour, `nghttp` for raw and malformed requests, and a
minimal HTTP/2 client written here for what neither can do (cancel a stream
with RST_STREAM, read slowly to check flow control). Every server process is
stopped by this script; a clean exit (status 0, so no leak report under
ASan) is part of the test.

usage: demo_service_test.py [TEST...]   (no argument: all tests)
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

GRPCGATE = os.environ.get('GW_GRPCGATE', 'build/src/grpcgate')
SOURCE_ROOT = os.environ.get('GW_SOURCE_ROOT', '.')
BUF = os.path.join(SOURCE_ROOT, 'node_modules', '.bin', 'buf')
NGHTTP = shutil.which('nghttp')

ADA = {
    "id": "1", "name": "Ada Lovelace", "email": "ada@example.com", "role": "ROLE_ADMIN",
    "active": True, "age": 36, "score": 99.5, "tags": ["math", "poetry"],
    "labels": {"team": "engine"},
    "address": {"street": "12 St James's Square", "city": "London", "country": "UK"},
    "phone": "+44 20 0000 0001", "nickname": "Ada",
    "createdAt": "2024-01-02T03:04:05.678Z", "karma": 42,
}
ALAN = {
    "id": "2", "name": "Alan Turing", "email": "alan@example.com", "role": "ROLE_EDITOR",
    "active": True, "age": 41, "createdAt": "2024-02-03T04:05:06Z", "slackHandle": "@alan",
}


class Failure(Exception):
    pass


def check(cond, what, *details):
    if not cond:
        raise Failure(what + ''.join('\n    ' + str(d) for d in details))


class Server:
    """grpcgate demo-service on a free port; stderr collected in a thread."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [GRPCGATE, 'demo-service', '--listen', '127.0.0.1:0'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err = []
        self.lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline()   # the binary prints it once it listens
        if not line.startswith('listening on '):
            self.proc.kill()
            raise Failure('no "listening on" line: %r, stderr %r' % (line, self.stderr()))
        self.port = int(line.rsplit(':', 1)[1])
        self.url = 'http://127.0.0.1:%d' % self.port

    def _drain(self):
        for line in self.proc.stderr:
            with self.lock:
                self.err.append(line)

    def stderr(self):
        with self.lock:
            return ''.join(self.err)

    def wait_for_log(self, text, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.stderr():
                return True
            time.sleep(0.05)
        return False

    def rss_kib(self):
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        return 0

    def stop(self):
        """SIGTERM, then the exit status must be 0 (ASan reports leaks as 23)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure('server did not exit on SIGTERM')
        time.sleep(0.1)
        err = self.stderr()
        check('Sanitizer' not in err and 'runtime error' not in err,
              'sanitizer report', err[-4000:])
        check(self.proc.returncode == 0, 'server exit status %s' % self.proc.returncode,
              err[-4000:])


# ---- buf curl ---------------------------------------------------------------------

def json_stream(text):
    """The JSON documents buf prints one after another."""
    dec = json.JSONDecoder()
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def buf(srv, method, data, *extra, expect_ok=True):
    """Runs buf curl against srv; returns (messages, error or None, stderr)."""
    cmd = [BUF, 'curl', '--protocol', 'grpc', '--http2-prior-knowledge', *extra]
    with tempfile.NamedTemporaryFile('w', delete=False, suffix='.json') as f:
        if data is not None:
            f.write(data if isinstance(data, str) else json.dumps(data))
            cmd += ['-d', '@' + f.name]
    cmd.append(srv.url + '/' + method)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(f.name)
    msgs = json_stream(p.stdout) if p.stdout.strip() else []
    err = None
    if p.returncode != 0:
        try:
            err = json_stream(p.stderr[p.stderr.index('{'):])[-1]
        except (ValueError, IndexError):
            raise Failure('buf curl %s failed without a status: rc %d\n%s'
                          % (method, p.returncode, p.stderr[-2000:]))
    if expect_ok:
        check(err is None, 'buf curl %s: unexpected error %s' % (method, err), p.stderr[-2000:])
    return msgs, err, p.stderr


def test_get_user(srv):
    msgs, _, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": 1})
    check(msgs == [ADA], 'GetUser 1', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": "2"},
                     '--reflect-protocol', 'grpc-v1alpha')
    check(msgs == [ALAN], 'GetUser 2 (v1alpha reflection)', msgs)


def test_not_found(srv):
    _, err, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": 42}, expect_ok=False)
    check(err == {"code": "not_found", "message": "user 42 not found"}, 'GetUser 42', err)
    _, err, _ = buf(srv, 'demo.v1.EchoService/Fail', {"code": 5, "message": "no such thing"},
                    expect_ok=False)
    check(err == {"code": "not_found", "message": "no such thing"}, 'Fail 5', err)


def test_list_users(srv):
    # A page ends at the last user: 7 asked, 3 there, 3 sent.
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 7})
    check([m["id"] for m in msgs] == ["1", "2", "3"], 'ListUsers 7 ends at the last',
          [m.get("id") for m in msgs])
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 2})
    check([m["id"] for m in msgs] == ["1", "2"], 'ListUsers 2', [m.get("id") for m in msgs])
    # follow: the live feed starts over from the first user.
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 7, "follow": True})
    check([m["id"] for m in msgs] == ["1", "2", "3", "1", "2", "3", "1"], 'ListUsers 7 follow',
          [m.get("id") for m in msgs])
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"follow": True})
    check([m["id"] for m in msgs] == ["1", "2", "3"], 'ListUsers follow, no page_size', msgs)
    check(msgs[0] == ADA and msgs[1] == ALAN, 'ListUsers content', msgs[:2])
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {})
    check([m["id"] for m in msgs] == ["1", "2", "3"], 'ListUsers 0 = each once', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers',
                     {"pageSize": 3, "role": "ROLE_EDITOR"})
    check([m["id"] for m in msgs] == ["2"], 'ListUsers by role', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers',
                     {"pageSize": 3, "role": "ROLE_EDITOR", "follow": True})
    check([m["id"] for m in msgs] == ["2", "2", "2"], 'ListUsers by role, follow', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 3, "delay": "0.05s"})
    check(len(msgs) == 3, 'ListUsers with delay', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 2500, "follow": True})
    check(len(msgs) == 2500 and msgs[-1]["id"] == "1", 'ListUsers 2500', len(msgs))
    _, err, _ = buf(srv, 'demo.v1.UserService/ListUsers', {"pageSize": 100001}, expect_ok=False)
    check(err and err["code"] == "invalid_argument", 'ListUsers too big', err)


def test_health(srv):
    msgs, _, _ = buf(srv, 'grpc.health.v1.Health/Check', {})
    check(msgs == [{"status": "SERVING"}], 'Health ""', msgs)
    msgs, _, _ = buf(srv, 'grpc.health.v1.Health/Check', {"service": "demo.v1.EchoService"})
    check(msgs == [{"status": "SERVING"}], 'Health EchoService', msgs)
    _, err, _ = buf(srv, 'grpc.health.v1.Health/Check', {"service": "nope"}, expect_ok=False)
    check(err and err["code"] == "not_found", 'Health nope', err)
    # Watch: the status once, then the stream stays open until the deadline
    # (buf's --timeout also sends grpc-timeout; either side may end it).
    msgs, err, _ = buf(srv, 'grpc.health.v1.Health/Watch', {}, '--timeout', '3s',
                       expect_ok=False)
    check(msgs == [{"status": "SERVING"}] and err and err["code"] == "deadline_exceeded",
          'Health Watch', msgs, err)


def test_create_update_delete(srv):
    _, err, _ = buf(srv, 'demo.v1.UserService/CreateUser', {"name": "", "email": "x"},
                    expect_ok=False)
    check(err and err["code"] == "invalid_argument" and err["message"] == "invalid user",
          'CreateUser invalid', err)
    # The detail: google.rpc.BadRequest with both violations (exact bytes).
    want = (b'\n\x18\n\x04name\x12\x10name is required'
            b'\n\x1f\n\x05email\x12\x16email must contain \'@\'')
    d = err["details"][0]
    got = base64.b64decode(d["value"] + '=' * (-len(d["value"]) % 4))
    check(d["type"] == "google.rpc.BadRequest" and got == want, 'BadRequest detail', d, got)

    msgs, _, _ = buf(srv, 'demo.v1.UserService/CreateUser',
                     {"name": "Edsger", "email": "ed@example.com", "role": "ROLE_VIEWER"})
    check(len(msgs) == 1 and msgs[0]["name"] == "Edsger" and "createdAt" in msgs[0],
          'CreateUser', msgs)
    uid = msgs[0]["id"]
    msgs, _, _ = buf(srv, 'demo.v1.UserService/UpdateUser',
                     {"user": {"id": uid, "name": "Edsger D.", "email": "zzz"},
                      "updateMask": "name,address.city"})
    check(msgs[0]["name"] == "Edsger D." and msgs[0]["email"] == "ed@example.com"
          and msgs[0]["role"] == "ROLE_VIEWER", 'UpdateUser with mask', msgs)
    _, err, _ = buf(srv, 'demo.v1.UserService/UpdateUser',
                    {"user": {"id": uid}, "updateMask": "bogus"}, expect_ok=False)
    check(err == {"code": "invalid_argument", "message": "unknown field in update_mask: bogus"},
          'UpdateUser bad mask', err)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/DeleteUser', {"id": uid})
    check(msgs == [{}], 'DeleteUser', msgs)
    _, err, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": uid}, expect_ok=False)
    check(err and err["code"] == "not_found", 'GetUser deleted', err)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/UndeleteUser', {"id": uid, "reason": "oops"})
    check(msgs[0]["name"] == "Edsger D.", 'UndeleteUser', msgs)
    _, err, _ = buf(srv, 'demo.v1.UserService/UndeleteUser', {"id": 3}, expect_ok=False)
    check(err and err["code"] == "not_found", 'UndeleteUser never deleted', err)


def test_streams(srv):
    msgs, _, _ = buf(srv, 'demo.v1.UserService/Chat',
                     '{"text":"a","sequence":1} {"text":"b","sequence":"2"}')
    check([(m["text"], m["from"], m["sequence"]) for m in msgs] ==
          [("a", "server", "1"), ("b", "server", "2")] and all("sentAt" in m for m in msgs),
          'Chat', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/CreateUsers',
                     '{"name":"P","email":"p@x"} {"name":"Q","email":"q@x"}')
    check(len(msgs) == 1 and msgs[0]["created"] == 2 and len(msgs[0]["ids"]) == 2,
          'CreateUsers', msgs)
    _, err, _ = buf(srv, 'demo.v1.UserService/CreateUsers',
                    '{"name":"R","email":"r@x"} {"name":"S","email":"nope"}', expect_ok=False)
    check(err and err["code"] == "invalid_argument" and err["message"] == "invalid user",
          'CreateUsers invalid', err)
    msgs, _, _ = buf(srv, 'demo.v1.EchoService/Download', {"totalBytes": 40000})
    data = b''.join(base64.b64decode(m["data"]) for m in msgs)
    check([m.get("offset", "0") for m in msgs] == ["0", "16384", "32768"], 'Download offsets',
          [m.get("offset") for m in msgs])
    check(data == bytes(i & 0xff for i in range(40000)), 'Download pattern')


def test_echo_metadata(srv):
    msgs, _, log = buf(srv, 'demo.v1.EchoService/Echo', {"message": "hi", "number": 5},
                       '-v', '-H', 'x-demo-a: 1', '-H', 'x-demo-b-bin: AAEC',
                       '-H', 'x-other: no')
    check(msgs == [{"message": "hi", "number": "5"}], 'Echo', msgs)
    # buf -v prints response headers and trailers as "< (#2) Name: value".
    got = [l.split(') ', 1)[1] for l in log.splitlines() if l.startswith('buf: < (#2) ')]
    for want in ['X-Demo-A: 1', 'X-Demo-B-Bin: AAEC', 'Grpc-Status: 0',
                 'X-Demo-A-Trailer: 1', 'X-Demo-B-Trailer-Bin: AAEC']:
        check(want in got, 'Echo metadata: missing %s' % want, got)
    check(not any(g.lower().startswith('x-other') for g in got), 'x-other echoed', got)
    _, err, _ = buf(srv, 'demo.v1.EchoService/Fail', {"code": 3, "message": "bad"},
                    expect_ok=False)
    check(err["code"] == "invalid_argument" and err["details"][0]["type"] ==
          "google.rpc.BadRequest", 'Fail 3 detail', err)
    msgs, _, _ = buf(srv, 'demo.v1.EchoService/Unbound', {"message": "u"})
    check(msgs == [{"message": "u"}], 'Unbound', msgs)


def test_avatar(srv):
    msgs, _, _ = buf(srv, 'demo.v1.UserService/GetAvatar', {"id": 1})
    svg = base64.b64decode(msgs[0]["data"]).decode()
    check(msgs[0]["contentType"] == "image/svg+xml" and svg.startswith('<svg')
          and '>AL</text>' in svg, 'GetAvatar', msgs)
    msgs, _, _ = buf(srv, 'demo.v1.UserService/SetAvatar',
                     {"id": 2, "avatar": {"contentType": "image/png", "data": "AAEC"}})
    check(msgs[0]["avatar"] == "AAEC", 'SetAvatar', msgs)
    big = base64.b64encode(b'x' * (1024 * 1024 + 1)).decode()
    _, err, _ = buf(srv, 'demo.v1.UserService/SetAvatar',
                    {"id": 2, "avatar": {"data": big}}, expect_ok=False)
    check(err and err["code"] == "invalid_argument", 'SetAvatar too big', err)


# ---- nghttp: raw and malformed requests ---------------------------------------------

def nghttp(srv, path, body, headers=()):
    """POSTs body with nghttp; returns the received header fields (name, value)."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    try:
        cmd = [NGHTTP, '-v', '-n', '-d', f.name]
        for h in headers:
            cmd += ['-H', h]
        cmd.append(srv.url + path)
        p = subprocess.run(cmd, capture_output=True, timeout=60)
    finally:
        os.unlink(f.name)
    fields = []
    for line in p.stdout.decode('utf-8', 'replace').splitlines():
        if ' recv (stream_id=' in line and ') ' in line:
            nv = line.split(') ', 1)[1]
            if ': ' in nv:
                fields.append(tuple(nv.split(': ', 1)))
    return fields


def frame(msg):
    return struct.pack('>BI', 0, len(msg)) + msg


GRPC = ('content-type: application/grpc', 'te: trailers')


def test_malformed(srv):
    get1 = frame(b'\x08\x01')   # GetUserRequest{id: 1}
    cases = [
        # (name, path, body, headers, expected :status, expected grpc-status)
        ('ok', '/demo.v1.UserService/GetUser', get1, GRPC, '200', '0'),
        ('bad content-type', '/demo.v1.UserService/GetUser', get1,
         ('content-type: text/plain',), '415', '13'),
        ('no content-type', '/demo.v1.UserService/GetUser', get1, (), '415', '13'),
        ('grpcx content-type', '/demo.v1.UserService/GetUser', get1,
         ('content-type: application/grpcx',), '415', '13'),
        ('+proto content-type', '/demo.v1.UserService/GetUser', get1,
         ('content-type: application/grpc+proto',), '200', '0'),
        ('65 x-demo- entries', '/demo.v1.UserService/GetUser', get1,
         GRPC + tuple('x-demo-k%d: v' % i for i in range(65)), '200', '8'),
        ('64 x-demo- entries', '/demo.v1.UserService/GetUser', get1,
         GRPC + tuple('x-demo-k%d: v' % i for i in range(64)), '200', '0'),
        ('unknown method', '/demo.v1.UserService/Nope', get1, GRPC, '200', '12'),
        ('unknown service', '/x.Y/Z', get1, GRPC, '200', '12'),
        ('truncated prefix', '/demo.v1.UserService/GetUser', b'\x00\x00\x00', GRPC,
         '200', '13'),
        ('truncated body', '/demo.v1.UserService/GetUser', b'\x00\x00\x00\x00\x09\x08', GRPC,
         '200', '13'),
        ('huge length', '/demo.v1.UserService/GetUser', b'\x00\xff\xff\xff\xff', GRPC,
         '200', '8'),
        ('compressed flag', '/demo.v1.UserService/GetUser', b'\x01\x00\x00\x00\x02\x08\x01',
         GRPC, '200', '13'),
        ('bad flag', '/demo.v1.UserService/GetUser', b'\x80\x00\x00\x00\x00', GRPC,
         '200', '13'),
        ('two messages to a unary method', '/demo.v1.UserService/GetUser', get1 + get1, GRPC,
         '200', None),   # answered (OK or INTERNAL, depending on timing), never a crash
        ('no message', '/demo.v1.UserService/GetUser', b'', GRPC, '200', '13'),
        ('not protobuf', '/demo.v1.UserService/GetUser', frame(b'\xff\xff\xff'), GRPC,
         '200', '13'),
        ('bad grpc-timeout', '/demo.v1.UserService/GetUser', get1,
         GRPC + ('grpc-timeout: soon',), '200', '13'),
        ('gzip', '/demo.v1.UserService/GetUser', get1, GRPC + ('grpc-encoding: gzip',),
         '200', '12'),
        ('deadline', '/demo.v1.EchoService/Echo', frame(b'\x1a\x02\x08\x05'),   # delay 5s
         GRPC + ('grpc-timeout: 300m',), '200', '4'),
        ('slow ListUsers deadline', '/demo.v1.UserService/ListUsers',
         frame(b'\x08\x05\x12\x02\x08\x05'), GRPC + ('grpc-timeout: 200m',), '200', '4'),
    ]
    for name, path, body, headers, status, grpc_status in cases:
        t0 = time.monotonic()
        fields = nghttp(srv, path, body, headers)
        took = time.monotonic() - t0
        statuses = [v for n, v in fields if n == ':status']
        grpc = [v for n, v in fields if n == 'grpc-status']
        check(statuses == [status], '%s: :status %s, want %s' % (name, statuses, status),
              fields)
        if grpc_status is not None:
            check(grpc == [grpc_status], '%s: grpc-status %s, want %s'
                  % (name, grpc, grpc_status), fields)
        else:
            check(len(grpc) == 1, '%s: no grpc-status' % name, fields)
        if name == 'deadline':
            check(took < 4.5, 'deadline: the call took %.1fs, the deadline was 0.3s' % took)
    # Still serving after all that.
    msgs, _, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": 1})
    check(msgs == [ADA], 'GetUser after malformed input', msgs)


def pb_varint(v):
    out = b''
    while True:
        b = v & 0x7f
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def pb_len(field, data):
    return pb_varint(field << 3 | 2) + pb_varint(len(data)) + data


def pb_int(field, v):
    return pb_varint(field << 3) + pb_varint(v)


def test_trailers(srv):
    """Exact status trailers: percent-encoded grpc-message, unpadded base64
    details, echoed metadata, Trailers-Only for an immediate error."""
    msg = 'h\u00e9llo 100% done'.encode()
    fail = frame(pb_int(1, 3) + pb_len(2, msg))
    fields = nghttp(srv, '/demo.v1.EchoService/Fail', fail,
                    GRPC + ('x-demo-a: 1', 'x-demo-k-bin: AAEC'))
    bad = pb_len(1, pb_len(1, b'code') + pb_len(2, b'requested failure'))
    anyv = pb_len(1, b'type.googleapis.com/google.rpc.BadRequest') + pb_len(2, bad)
    status = pb_int(1, 3) + pb_len(2, msg) + pb_len(3, anyv)
    want = [(':status', '200'), ('content-type', 'application/grpc'),
            ('x-demo-a', '1'), ('x-demo-k-bin', 'AAEC'),
            ('grpc-status', '3'), ('grpc-message', 'h%C3%A9llo 100%25 done'),
            ('grpc-status-details-bin', base64.b64encode(status).decode().rstrip('=')),
            ('x-demo-a-trailer', '1'), ('x-demo-k-trailer-bin', 'AAEC')]
    check(fields == want, 'Trailers-Only Fail', fields, want)

    echo = frame(pb_len(1, b'x') + pb_int(2, 7))
    fields = nghttp(srv, '/demo.v1.EchoService/Echo', echo, GRPC + ('x-demo-z: zz',))
    want = [(':status', '200'), ('content-type', 'application/grpc'), ('x-demo-z', 'zz'),
            ('grpc-status', '0'), ('x-demo-z-trailer', 'zz')]
    check(fields == want, 'Echo headers and trailers', fields, want)


# ---- a minimal HTTP/2 client: cancellation and flow control ----------------------------

def h2_frame(ftype, flags, stream, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack('>I', stream) + payload


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    def s(b):
        check(len(b) < 127, 'hpack helper: string too long')
        return bytes([len(b)]) + b
    return b'\x00' + s(name.encode()) + s(value.encode())


class RawH2:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=30)
        self.sock.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + h2_frame(4, 0, 0))
        self.rbuf = b''

    def start(self, stream, path, body):
        block = b''.join(hpack_literal(n, v) for n, v in [
            (':method', 'POST'), (':scheme', 'http'), (':path', path),
            (':authority', 'test'), ('content-type', 'application/grpc'), ('te', 'trailers')])
        self.sock.sendall(h2_frame(1, 0x4, stream, block) + h2_frame(0, 0x1, stream, body))

    def read_frame(self):
        while len(self.rbuf) < 9 or len(self.rbuf) < 9 + int.from_bytes(self.rbuf[:3], 'big'):
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.rbuf += chunk
        n = int.from_bytes(self.rbuf[:3], 'big')
        ftype, flags = self.rbuf[3], self.rbuf[4]
        stream = int.from_bytes(self.rbuf[5:9], 'big') & 0x7fffffff
        payload = self.rbuf[9:9 + n]
        self.rbuf = self.rbuf[9 + n:]
        if ftype == 4 and not flags & 1:
            self.sock.sendall(h2_frame(4, 1, 0))   # ACK their SETTINGS
        return ftype, flags, stream, payload

    def window_update(self, stream, n):
        self.sock.sendall(h2_frame(8, 0, stream, struct.pack('>I', n)))

    def rst(self, stream, code=8):
        self.sock.sendall(h2_frame(3, 0, stream, struct.pack('>I', code)))

    def close(self):
        self.sock.close()


def download_request(total, chunk=0):
    def varint(v):
        out = b''
        while True:
            b = v & 0x7f
            v >>= 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out
    body = b'\x08' + varint(total)
    if chunk:
        body += b'\x10' + varint(chunk)
    return frame(body)


def test_flow_control_and_cancel(srv):
    """A client that never opens its window gets at most one window of a
    100 MB Download, the server does not buffer the rest, and RST_STREAM
    cancels the call (logged)."""
    rss_before = srv.rss_kib()
    c = RawH2(srv.port)
    c.start(1, '/demo.v1.EchoService/Download', download_request(100 * 1000 * 1000))
    got = 0
    c.sock.settimeout(30)
    while got < 65535:   # the server fills the window...
        f = c.read_frame()
        check(f is not None, 'connection closed during Download')
        if f[0] == 0 and f[2] == 1:
            got += len(f[3])
    c.sock.settimeout(1.0)
    try:                 # ...and then sends nothing more
        while True:
            f = c.read_frame()
            if f is None:
                break
            if f[0] == 0 and f[2] == 1:
                got += len(f[3])
    except socket.timeout:
        pass
    check(got == 65535, 'flow control: received %d bytes with a 65535-byte window' % got)
    rss_after = srv.rss_kib()
    check(rss_after - rss_before < 16 * 1024,
          'server RSS grew by %d KiB while a stream was blocked' % (rss_after - rss_before))
    c.sock.settimeout(30)
    c.rst(1)
    c.window_update(0, got)   # give back the connection window stream 1 used
    check(srv.wait_for_log('demo: call /demo.v1.EchoService/Download cancelled by client'),
          'no cancellation log line', srv.stderr()[-2000:])

    # A reader that opens its window as it consumes gets everything.
    total = 5 * 1000 * 1000
    c.start(3, '/demo.v1.EchoService/Download', download_request(total, 65536))
    payload = 0
    ended = False
    while not ended:
        f = c.read_frame()
        check(f is not None, 'connection closed during Download (got %d bytes)' % payload)
        ftype, flags, stream, data = f
        if stream != 3:
            continue
        if ftype == 0 and data:
            payload += len(data)
            c.window_update(0, len(data))
            c.window_update(3, len(data))
        if ftype == 1 and flags & 1:
            ended = True
        check(ftype != 3, 'stream reset during Download')
    # 5 MB of data plus per-chunk framing (5-byte prefix, tags, varints).
    chunks = (total + 65535) // 65536
    check(total < payload <= total + chunks * 16, 'Download delivered %d bytes' % payload)

    # A client that vanishes (connection closed) cancels its calls too.
    c.start(5, '/demo.v1.UserService/ListUsers', frame(b'\x08\x0a\x12\x02\x08\x3c'))
    time.sleep(0.3)
    c.close()
    check(srv.wait_for_log('demo: call /demo.v1.UserService/ListUsers cancelled by client'),
          'no cancellation log line for a closed connection', srv.stderr()[-2000:])
    msgs, _, _ = buf(srv, 'demo.v1.UserService/GetUser', {"id": 1})
    check(msgs == [ADA], 'GetUser after cancellations', msgs)


def test_chat_backpressure(srv):
    """A Chat client that sends without reading the answers gets its window
    closed (the server stops acknowledging) instead of an error or an
    unbounded buffer; once it reads, everything flows again."""
    c = RawH2(srv.port)
    block = b''.join(hpack_literal(n, v) for n, v in [
        (':method', 'POST'), (':scheme', 'http'), (':path', '/demo.v1.UserService/Chat'),
        (':authority', 'test'), ('content-type', 'application/grpc'), ('te', 'trailers')])
    c.sock.sendall(h2_frame(1, 0x4, 1, block))
    msg = frame(pb_len(1, b'x' * 1000) + pb_int(4, 1))
    window = {0: 65535, 1: 65535}   # what the server lets us send

    def handle(f, ack):
        ftype, flags, stream, data = f
        check(ftype != 3 and not (ftype == 1 and flags & 1 and stream == 1),
              'Chat ended early', f)
        if ftype == 8:
            window[stream] = window.get(stream, 0) + int.from_bytes(data, 'big')
        elif ftype == 0 and stream == 1 and ack:
            c.window_update(0, len(data))
            c.window_update(1, len(data))
        return len(data) if ftype == 0 and stream == 1 else 0

    sent = 0
    unread = 0   # answer bytes received but not acknowledged in the first phase
    c.sock.settimeout(1.0)
    stalled_at = None
    quiet = 0
    while stalled_at is None:
        if min(window[0], window[1]) >= len(msg):
            c.sock.sendall(h2_frame(0, 0, 1, msg))
            window[0] -= len(msg)
            window[1] -= len(msg)
            sent += 1
            check(sent < 20000, 'the server never closed the window')
            continue
        try:
            while True:   # read until the socket is quiet for a second
                f = c.read_frame()
                check(f is not None, 'connection closed')
                unread += handle(f, False)
                if min(window[0], window[1]) >= len(msg):
                    break
        except socket.timeout:
            # Quiet for a second. Before the high-water mark that can only
            # be a slow machine: keep waiting (bounded).
            quiet += 1
            if sent * (len(msg) + 22) >= 1000 * 1024 or quiet > 30:
                stalled_at = sent
    # Answers held: at least the high-water mark (1 MiB), at most that plus
    # what one more window (64 KiB) of requests produced, plus the 64 KiB the
    # client's own window let out.
    held = stalled_at * (len(msg) + 22)
    check(1000 * 1024 < held < 2 * 1024 * 1024,
          'stalled after %d messages (%d bytes)' % (stalled_at, held))

    # Read everything: acknowledging the answers reopens the request window.
    c.sock.settimeout(30)
    received = unread
    c.window_update(0, unread)
    c.window_update(1, unread)
    while True:
        if min(window[0], window[1]) >= len(msg) and sent < stalled_at + 100:
            c.sock.sendall(h2_frame(0, 0, 1, msg))
            window[0] -= len(msg)
            window[1] -= len(msg)
            sent += 1
            continue
        if sent >= stalled_at + 100:
            break
        received += handle(c.read_frame(), True)
    c.sock.sendall(h2_frame(0, 1, 1))   # END_STREAM
    while True:
        f = c.read_frame()
        check(f is not None, 'connection closed before the Chat ended')
        if f[0] == 1 and f[1] & 1 and f[2] == 1:
            break
        received += handle(f, True)
    # Each answer: the request's text and sequence plus from "server" (8
    # bytes) and sent_at (8 to 14 bytes, by the size of its varints).
    check(sent * (len(msg) + 16) <= received <= sent * (len(msg) + 22),
          'Chat answered %d bytes for %d messages' % (received, sent))
    c.close()


def test_many_concurrent(srv):
    """200 calls on one connection at once, all answered."""
    c = RawH2(srv.port)
    n = 200
    for i in range(n):
        c.start(1 + 2 * i, '/demo.v1.EchoService/Echo', frame(b'\x0a\x01x'))
    done = set()
    while len(done) < n:
        f = c.read_frame()
        check(f is not None, 'connection closed after %d calls' % len(done))
        if f[0] == 1 and f[1] & 1:
            done.add(f[2])
        if f[0] == 0:
            c.window_update(0, len(f[3]))
    c.close()


TESTS = [test_get_user, test_not_found, test_list_users, test_health,
         test_create_update_delete, test_streams, test_echo_metadata, test_avatar,
         test_malformed, test_trailers, test_flow_control_and_cancel, test_chat_backpressure,
         test_many_concurrent]


def main():
    names = sys.argv[1:]
    tests = [t for t in TESTS if not names or t.__name__ in names]
    if not os.access(BUF, os.X_OK):
        print('SKIP: %s not installed (run scripts/setup)' % BUF)
        return 77
    if not NGHTTP:
        print('SKIP: nghttp not installed (apt-get install nghttp2-client)')
        return 77
    home = tempfile.mkdtemp(prefix='demo-test-home-')
    os.environ['HOME'] = home          # buf wants a writable home and cache
    os.environ['BUF_CACHE_DIR'] = os.path.join(home, 'cache')
    failed = 0
    srv = Server()
    try:
        for t in tests:
            t0 = time.monotonic()
            try:
                t(srv)
                print('ok   %s (%.1fs)' % (t.__name__, time.monotonic() - t0))
            except (Failure, OSError, ValueError, KeyError, IndexError,
                    subprocess.TimeoutExpired) as e:
                failed += 1
                print('FAIL %s: %s: %s' % (t.__name__, type(e).__name__, e))
            if srv.proc.poll() is not None:
                print('FAIL: the server died (status %s)\n%s'
                      % (srv.proc.returncode, srv.stderr()[-4000:]))
                return 1
    finally:
        try:
            srv.stop()
            print('ok   clean shutdown')
        except Failure as e:
            failed += 1
            print('FAIL shutdown: %s' % e)
        shutil.rmtree(home, ignore_errors=True)
    print('%d of %d failed' % (failed, len(tests) + 1) if failed else 'all passed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
