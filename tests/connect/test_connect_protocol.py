"""Connect protocol tests with raw sockets, curl and `buf curl`: what a
Connect library would never send (bad envelopes, bad JSON, wrong content
types, unknown methods, GET on a method with side effects, bad
Connect-Timeout-Ms, bodies over the limit, unsupported encodings), each
answered in Connect form with the exact status and code docs/connect.md
promises; gzip both ways, GET URLs, the deadline cap, CORS, and REST left
as it was. Runs the real `grpcgate serve` against the real demo service."""
import base64
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import unittest

# GW_STRICT=1 (.ci/run): a tool scripts/setup installs is required, not skipped.
STRICT = os.environ.get("GW_STRICT") == "1"

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "front"))
from gwtest import Conn, Procs, pb_varint, request  # noqa: E402

SRC = os.environ.get("GW_SOURCE_ROOT",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUF = os.path.join(SRC, "node_modules", ".bin", "buf")
DEMO_DESC = os.environ.get("GW_DEMO_DESC", "build/schemas/demo.pb")

ECHO = "/demo.v1.EchoService/Echo"
FAIL = "/demo.v1.EchoService/Fail"
DOWNLOAD = "/demo.v1.EchoService/Download"
GET_USER = "/demo.v1.UserService/GetUser"
LIST = "/demo.v1.UserService/ListUsers"
CREATE_USERS = "/demo.v1.UserService/CreateUsers"
ORIGIN = "https://app.example"

CONFIG = {
    "limits": {
        "max_body_bytes": 65536,
        "max_message_bytes": 32768,
        "max_deadline_ms": 2000,
    },
    "cors": {
        "allowed_origins": [ORIGIN],
        "allowed_headers": ["x-demo-trace"],
        "max_age_s": 60,
    },
}

UNARY_JSON = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
UNARY_PROTO = {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}
STREAM_JSON = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}
STREAM_PROTO = {"Content-Type": "application/connect+proto", "Connect-Protocol-Version": "1"}


def env(payload, flags=0):
    return bytes([flags]) + struct.pack(">I", len(payload)) + payload


def envelopes(body):
    out = []
    while body:
        assert len(body) >= 5, "trailing bytes: %r" % body
        n = struct.unpack(">I", body[1:5])[0]
        out.append((body[0], body[5:5 + n]))
        assert len(body) >= 5 + n, "truncated envelope"
        body = body[5 + n:]
    return out


def end_stream(resp):
    """The end-of-stream JSON of a streaming answer (must be last and only)."""
    env_list = envelopes(resp.body)
    ends = [i for i, (f, _) in enumerate(env_list) if f & 2]
    assert ends == [len(env_list) - 1], "one end-of-stream message, last: %r" % env_list
    return json.loads(env_list[-1][1])


P = Procs()
PORT = None
DEMO = None
GW = None


def setUpModule():
    global PORT, DEMO, GW
    DEMO, url = P.demo()
    GW, PORT = P.gateway(url, CONFIG, workers=1)


def tearDownModule():
    code = P.stop(GW)
    P.stop_all()
    assert code == 0, "gateway exit status %r (ASan reports leaks as non-zero)" % code


def post(path, body, headers):
    return request(PORT, "POST", path, body, headers)


class BadInput(unittest.TestCase):
    """Each bad input gets its Connect-form answer and the gateway goes on."""

    def assert_unary_error(self, r, status, code, message_re=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.header("content-type"), "application/json")
        body = json.loads(r.body)
        self.assertEqual(body["code"], code)
        if message_re:
            self.assertRegex(body.get("message", ""), message_re)

    def assert_stream_error(self, r, code, message_re=None):
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type")[:20], "application/connect+")
        es = end_stream(r)
        self.assertEqual(es["error"]["code"], code)
        if message_re:
            self.assertRegex(es["error"].get("message", ""), message_re)

    def test_envelope_length_over_the_message_limit(self):
        r = post(LIST, b"\x00\x7f\xff\xff\xff", STREAM_PROTO)
        self.assert_stream_error(r, "resource_exhausted", "over the message limit")

    def test_envelope_length_just_over_and_at_the_limit(self):
        # An unknown field of 32,764 bytes: a valid message of exactly the
        # 32 KiB limit passes; one byte more is refused by the gateway.
        at_limit = b"\x7a" + bytes([0xfc, 0xff, 0x01]) + b"u" * 32764
        self.assertEqual(len(at_limit), 32768)
        r = post(LIST, env(at_limit), STREAM_PROTO)
        self.assertEqual(r.status, 200)
        self.assertNotIn("error", end_stream(r))
        r = post(LIST, env(at_limit + b"u"), STREAM_PROTO)
        self.assert_stream_error(r, "resource_exhausted", "over the message limit")

    def test_envelope_truncated(self):
        for body in (b"\x00\x00\x00", env(b'{"pageSize":1}')[:-3]):
            r = post(LIST, body, STREAM_JSON)
            self.assert_stream_error(r, "invalid_argument", "body ends")

    def test_end_stream_flag_and_unknown_flags_in_a_request(self):
        for flags in (2, 0x80, 4):
            r = post(LIST, env(b"{}", flags), STREAM_JSON)
            # A protocol error, "internal" as connect-go and gRPC's spec have
            # it (a truncated envelope stays invalid_argument, as there).
            self.assert_stream_error(r, "internal", "flag")

    def test_compressed_flag_without_encoding(self):
        r = post(LIST, env(gzip.compress(b"{}"), 1), STREAM_JSON)
        self.assert_stream_error(r, "internal", "Connect-Content-Encoding")

    def test_bad_json(self):
        for body in (b'{"message": ', b'{"nope": 1}', b'[1]', b'{"number": "x"}'):
            r = post(ECHO, body, UNARY_JSON)
            self.assert_unary_error(r, 400, "invalid_argument", "request message")
        r = post(LIST, env(b'{"pageSize": tru}'), STREAM_JSON)
        self.assert_stream_error(r, "invalid_argument", "request message")

    def test_bad_protobuf_is_the_backends_to_judge(self):
        # Binary messages pass through: the backend answers (INVALID_ARGUMENT
        # or INTERNAL from its parser), in Connect form.
        r = post(ECHO, b"\x0a\xff", UNARY_PROTO)
        self.assertGreaterEqual(r.status, 400)
        self.assertIn(json.loads(r.body)["code"], ("invalid_argument", "internal"))

    def test_wrong_content_types(self):
        r = post(LIST, env(b"{}"), {"Content-Type": "application/connect+thrift"})
        self.assert_unary_error(r, 415, "unimplemented", "codec")
        # A unary type for a streaming method, a stream type for a unary one.
        r = post(LIST, b"{}", UNARY_JSON)
        self.assert_unary_error(r, 415, "unimplemented", "streaming method")
        r = post(ECHO, env(b"{}"), STREAM_JSON)
        self.assert_unary_error(r, 415, "unimplemented", "unary method")
        # GET with an encoding the gateway cannot translate.
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=xml&message=x")
        self.assert_unary_error(r, 415, "unimplemented", "encoding")

    def test_unknown_method(self):
        for headers, body in ((UNARY_JSON, b"{}"), (UNARY_PROTO, b""), (STREAM_PROTO, env(b""))):
            r = post("/demo.v1.EchoService/Nope", body, headers)
            self.assert_unary_error(r, 404, "unimplemented", "unknown method")
        r = post("/no.such.Service/Method", b"{}", UNARY_JSON)
        self.assert_unary_error(r, 404, "unimplemented")

    def test_get_on_a_method_with_side_effects(self):
        r = request(PORT, "GET", ECHO + "?connect=v1&encoding=json&message=%7B%7D")
        self.assert_unary_error(r, 405, "unimplemented", "side effects")
        self.assertEqual(r.header("allow"), "POST")
        r = request(PORT, "GET", "/demo.v1.UserService/CreateUser?connect=v1&encoding=json&message=%7B%7D")
        self.assertEqual(r.status, 405)

    def test_bad_connect_timeout(self):
        for v in ("abc", "-1", "1.5", "12345678901", "", "1s"):
            h = dict(UNARY_JSON, **{"Connect-Timeout-Ms": v})
            r = post(ECHO, b"{}", h)
            self.assert_unary_error(r, 400, "invalid_argument", "Connect-Timeout-Ms")
        h = dict(STREAM_JSON, **{"Connect-Timeout-Ms": "soon"})
        self.assert_stream_error(post(LIST, env(b"{}"), h), "invalid_argument",
                                 "Connect-Timeout-Ms")

    def test_bad_protocol_version(self):
        h = dict(UNARY_JSON, **{"Connect-Protocol-Version": "2"})
        self.assert_unary_error(post(ECHO, b"{}", h), 400, "invalid_argument", "must be 1")

    def test_body_over_the_limit(self):
        # Declared: refused before reading, connection closed.
        c = Conn(PORT)
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Connect-Protocol-Version: 1\r\nContent-Length: 70000\r\n\r\n" % ECHO).encode())
        r = c.read_response()
        c.close()
        self.assert_unary_error(r, 429, "resource_exhausted", "exceeds the limit")
        # Chunked (no declared length): cut off at the limit.
        c = Conn(PORT)
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Connect-Protocol-Version: 1\r\nTransfer-Encoding: chunked\r\n\r\n" % ECHO).encode())
        chunk = b'{"message":"' + b"x" * 20000
        try:
            for _ in range(4):
                c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            c.send(b"0\r\n\r\n")
        except OSError:
            pass
        r = c.read_response()
        c.close()
        self.assertIn(r.status, (429,))
        self.assertEqual(json.loads(r.body)["code"], "resource_exhausted")
        # A unary message between the message and the body limit.
        body = json.dumps({"message": "y" * 40000}).encode()
        self.assert_unary_error(post(ECHO, body, UNARY_JSON), 429, "resource_exhausted")

    def test_unsupported_encodings(self):
        h = dict(UNARY_JSON, **{"Content-Encoding": "br"})
        self.assert_unary_error(post(ECHO, b"{}", h), 501, "unimplemented", "gzip, identity")
        h = dict(STREAM_JSON, **{"Connect-Content-Encoding": "zstd"})
        self.assert_stream_error(post(LIST, env(b"{}"), h), "unimplemented", "gzip, identity")
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=json&message=%7B%7D&compression=br")
        self.assert_unary_error(r, 501, "unimplemented")

    def test_corrupt_gzip_and_gzip_bomb(self):
        h = dict(UNARY_JSON, **{"Content-Encoding": "gzip"})
        self.assert_unary_error(post(ECHO, b"\x1f\x8b\x08\x00junk", h), 400, "invalid_argument",
                                "gzip")
        bomb = gzip.compress(b'{"message":"' + b"z" * (1 << 20) + b'"}')
        self.assertLess(len(bomb), 65536)
        self.assert_unary_error(post(ECHO, bomb, h), 429, "resource_exhausted", "limit")
        hs = dict(STREAM_JSON, **{"Connect-Content-Encoding": "gzip"})
        self.assert_stream_error(post(LIST, env(bomb, 1), hs), "resource_exhausted", "limit")

    def test_bad_get_queries(self):
        for q, status, code in (
                ("connect=v1&encoding=json", 400, "invalid_argument"),
                ("connect=v1&message=%7B%7D", 400, "invalid_argument"),
                ("connect=v1&encoding=json&message=%ZZ", 400, "invalid_argument"),
                ("connect=v1&encoding=proto&message=***&base64=1", 400, "invalid_argument"),
                ("connect=v1&encoding=json&message=%7B%22id%22%3A%7D", 400, "invalid_argument")):
            r = request(PORT, "GET", GET_USER + "?" + q)
            self.assert_unary_error(r, status, code)

    def test_still_serving_after_all_that(self):
        r = post(ECHO, b'{"message":"alive"}', UNARY_JSON)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body), {"message": "alive"})


class Conformance(unittest.TestCase):
    """What an independent Connect client checks, found in review against
    connectrpc.com/docs/protocol and connect-go (docs/connect.md)."""

    def test_stream_bad_protocol_version_ends_the_stream(self):
        # A stream's errors are in its end-of-stream message at 200 (a
        # Connect stream client infers "internal" from a bare 400).
        h = dict(STREAM_JSON, **{"Connect-Protocol-Version": "2"})
        r = post(LIST, env(b"{}"), h)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), "application/connect+json")
        err = end_stream(r)["error"]
        self.assertEqual(err["code"], "invalid_argument")
        self.assertRegex(err["message"], "must be 1")

    def test_get_with_connect_other_than_v1(self):
        for v in ("v2", "1", ""):
            r = request(PORT, "GET", GET_USER + "?connect=%s&encoding=json&message=%%7B%%7D" % v)
            self.assertEqual(r.status, 400, (v, r.body))
            self.assertEqual(r.header("content-type"), "application/json")
            body = json.loads(r.body)
            self.assertEqual(body["code"], "invalid_argument")
            self.assertRegex(body["message"], "v1")

    def test_get_on_a_streaming_method(self):
        # GET is for unary methods only: 405 as for side effects (connect-go
        # offers GET only there), not 415.
        r = request(PORT, "GET", LIST + "?connect=v1&encoding=json&message=%7B%7D")
        self.assertEqual(r.status, 405, r.body)
        self.assertEqual(r.header("allow"), "POST")
        self.assertEqual(json.loads(r.body)["code"], "unimplemented")

    def test_supported_encodings_advertised(self):
        # Unary answers name what the server accepts in Accept-Encoding,
        # streams in Connect-Accept-Encoding, failures and successes alike.
        h = dict(UNARY_JSON, **{"Content-Encoding": "br"})
        r = post(ECHO, b"{}", h)
        self.assertEqual(r.status, 501)
        self.assertIn("gzip", r.header("accept-encoding") or "")
        r = post(ECHO, b"{}", UNARY_JSON)
        self.assertEqual(r.status, 200)
        self.assertIn("gzip", r.header("accept-encoding") or "")
        h = dict(STREAM_JSON, **{"Connect-Content-Encoding": "zstd"})
        r = post(LIST, env(b"{}"), h)
        self.assertEqual(end_stream(r)["error"]["code"], "unimplemented")
        self.assertIn("gzip", r.header("connect-accept-encoding") or "")
        r = post(LIST, env(b'{"pageSize":1}'), STREAM_JSON)
        self.assertIn("gzip", r.header("connect-accept-encoding") or "")

    def test_get_answers_vary_on_accept_encoding(self):
        # The gateway picks gzip from Accept-Encoding: a shared cache must
        # key on it, or it hands gzip to a client that never asked.
        q = "?connect=v1&encoding=proto&base64=1&message=CAE"
        for ae in (None, "gzip"):
            h = {"Accept-Encoding": ae} if ae else {}
            r = request(PORT, "GET", GET_USER + q, b"", h)
            self.assertEqual(r.status, 200, r.body)
            vary = ",".join(r.headers.get("vary", [])).lower()
            self.assertIn("accept-encoding", vary, r.headers)

    def test_zero_length_json_is_not_a_message(self):
        # "" is no JSON value (connect-go: "zero-length payload is not a
        # valid JSON object"); an empty binary body is the empty message.
        r = post(ECHO, b"", UNARY_JSON)
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(json.loads(r.body)["code"], "invalid_argument")
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=json&message=")
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(json.loads(r.body)["code"], "invalid_argument")
        r = post(LIST, env(b""), STREAM_JSON)
        self.assertEqual(end_stream(r)["error"]["code"], "invalid_argument")
        r = post(ECHO, b"", UNARY_PROTO)
        self.assertEqual(r.status, 200, r.body)


class Serving(unittest.TestCase):

    def test_unary_proto_and_trailers(self):
        body = b"\x0a\x02hi" + pb_varint(2, 7)
        r = post(ECHO, body, dict(UNARY_PROTO, **{"X-Demo-Trace": "t1"}))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/proto")
        self.assertEqual(r.body, body)
        self.assertEqual(r.header("x-demo-trace"), "t1")
        self.assertEqual(r.header("trailer-x-demo-trace-trailer"), "t1")

    def test_errors_carry_the_code_table(self):
        table = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
                 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
        names = {1: "canceled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded",
                 5: "not_found", 6: "already_exists", 7: "permission_denied",
                 8: "resource_exhausted", 9: "failed_precondition", 10: "aborted",
                 11: "out_of_range", 12: "unimplemented", 13: "internal", 14: "unavailable",
                 15: "data_loss", 16: "unauthenticated"}
        for code, http in table.items():
            r = post(FAIL, json.dumps({"code": code, "message": "m%d" % code}).encode(), UNARY_JSON)
            self.assertEqual(r.status, http, code)
            self.assertEqual(json.loads(r.body)["code"], names[code])
            self.assertEqual(json.loads(r.body)["message"], "m%d" % code)

    def test_gzip_unary_both_ways(self):
        msg = "compress me " * 200
        h = dict(UNARY_JSON, **{"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
        r = post(ECHO, gzip.compress(json.dumps({"message": msg}).encode()), h)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(json.loads(gzip.decompress(r.body))["message"], msg)
        # Small answers and clients that do not ask: identity.
        r = post(ECHO, b'{"message":"short"}', dict(UNARY_JSON, **{"Accept-Encoding": "gzip"}))
        self.assertIsNone(r.header("content-encoding"))
        r = post(ECHO, json.dumps({"message": msg}).encode(), UNARY_JSON)
        self.assertIsNone(r.header("content-encoding"))

    def test_gzip_stream_both_ways(self):
        h = dict(STREAM_PROTO, **{"Connect-Content-Encoding": "gzip",
                                  "Connect-Accept-Encoding": "gzip"})
        req = pb_varint(1, 100000) + pb_varint(2, 20000)  # total_bytes, chunk_size
        r = post(DOWNLOAD, env(gzip.compress(req), 1), h)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("connect-content-encoding"), "gzip")
        total = 0
        msgs = envelopes(r.body)
        for flags, payload in msgs[:-1]:
            self.assertEqual(flags, 1, "large messages are compressed")
            total += len(gzip.decompress(payload))
        self.assertGreater(total, 100000)  # the chunks' data plus their framing
        self.assertEqual(json.loads(msgs[-1][1]), {})

    def test_client_stream_json(self):
        body = b"".join(env(json.dumps({"name": "n%d" % i, "email": "e%d@x" % i}).encode())
                        for i in range(20))
        r = post(CREATE_USERS, body, STREAM_JSON)
        self.assertEqual(r.status, 200)
        msgs = envelopes(r.body)
        self.assertEqual(json.loads(msgs[0][1])["created"], 20)
        self.assertEqual(msgs[-1][0], 2)

    def test_client_stream_reaches_the_backend_before_the_body_ends(self):
        # The first user is sent, the body kept open: the backend (which
        # stores each user as its message arrives) must list it while the
        # client has not finished — the body is streamed, not buffered whole.
        name = "streamed-%d" % os.getpid()
        c = Conn(PORT)
        c.send(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\n"
                "Connect-Protocol-Version: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                % CREATE_USERS).encode())
        first = env(json.dumps({"name": name, "email": "s@x"}).encode())
        c.send(b"%x\r\n%s\r\n" % (len(first), first))
        deadline = time.monotonic() + 20
        seen = False
        while not seen and time.monotonic() < deadline:
            r = post(LIST, env(b'{"pageSize":1000}'), STREAM_JSON)
            seen = any(f == 0 and json.loads(p).get("name") == name for f, p in envelopes(r.body))
            if not seen:
                time.sleep(0.1)
        self.assertTrue(seen, "the first message reached the backend while the body was open")
        second = env(json.dumps({"name": name + "-2", "email": "t@x"}).encode())
        c.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
        r = c.read_response()
        c.close()
        msgs = envelopes(r.body)
        self.assertEqual(json.loads(msgs[0][1])["created"], 2)
        self.assertEqual(json.loads(msgs[-1][1]), {})

    def test_bidi_half_duplex(self):
        body = b"".join(env(json.dumps({"text": "m%d" % i, "sequence": i}).encode())
                        for i in range(3))
        r = post("/demo.v1.UserService/Chat", body, STREAM_JSON)
        self.assertEqual(r.status, 200)
        msgs = envelopes(r.body)
        self.assertEqual([json.loads(p)["text"] for f, p in msgs[:-1]], ["m0", "m1", "m2"])
        self.assertEqual(msgs[-1][0], 2)

    def test_get_urls(self):
        q = "?connect=v1&encoding=json&message=%7B%22id%22%3A2%7D"
        r = request(PORT, "GET", GET_USER + q)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["name"], "Alan Turing")
        # Without connect=v1 (spec's own example) it is not Connect: REST or
        # static answer as before.
        msg = base64.urlsafe_b64encode(pb_varint(1, 3)).rstrip(b"=").decode()
        r = request(PORT, "GET", GET_USER + "?encoding=proto&base64=1&connect=v1&message=" + msg)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/proto")
        self.assertIn(b"Grace Hopper", r.body)
        gz = base64.urlsafe_b64encode(gzip.compress(b'{"id":"1"}')).decode()
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=json&compression=gzip&base64=1&message="
                    + gz.replace("=", "%3D"))
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["name"], "Ada Lovelace")
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=json&message=%7B%22id%22%3A99%7D")
        self.assertEqual(r.status, 404)
        self.assertEqual(json.loads(r.body)["code"], "not_found")

    def test_plain_curl(self):
        curl = shutil.which("curl")
        if not curl:
            if STRICT:
                self.fail("curl not installed (scripts/setup installs it)")
            self.skipTest("no curl")
        base = "http://127.0.0.1:%d" % PORT
        out = subprocess.run([curl, "-sS", "-G", base + GET_USER, "--data-urlencode", "connect=v1",
                              "--data-urlencode", "encoding=json",
                              "--data-urlencode", 'message={"id":1}'],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(out.stdout)["name"], "Ada Lovelace")
        out = subprocess.run([curl, "-sS", "-w", "\n%{http_code}", base + FAIL,
                              "-H", "Content-Type: application/json",
                              "-H", "Connect-Protocol-Version: 1",
                              "-d", '{"code":5,"message":"nothing here"}'],
                             capture_output=True, text=True, timeout=30)
        body, status = out.stdout.rsplit("\n", 1)
        self.assertEqual(status, "404")
        self.assertEqual(json.loads(body), {"code": "not_found", "message": "nothing here"})

    def test_deadline_capped_by_max_deadline(self):
        t0 = time.monotonic()
        h = dict(UNARY_JSON, **{"Connect-Timeout-Ms": "60000"})
        r = post(ECHO, b'{"message":"slow","delay":"10s"}', h)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 504)
        self.assertEqual(json.loads(r.body)["code"], "deadline_exceeded")
        self.assertLess(took, 8, "max_deadline_ms (2 s) capped the 60 s Connect-Timeout-Ms")
        h = dict(UNARY_JSON, **{"Connect-Timeout-Ms": "0"})
        r = post(ECHO, b'{"message":"x"}', h)
        self.assertEqual(r.status, 504)

    def test_rest_unchanged(self):
        # A JSON POST to the auto-mapped path without Connect-Protocol-Version
        # is REST (docs/rest.md): grpc-metadata headers, REST error bodies.
        r = post("/demo.v1.EchoService/Unbound", b'{"message":"rest"}',
                 {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["message"], "rest")
        r = post("/demo.v1.EchoService/Unbound", b'{"message":', {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        self.assertEqual(json.loads(r.body)["code"], 3, "REST's numeric code")
        # A REST route with the header stays REST (no RPC method has the path).
        r = post("/v1/echo", b'{"message":"r"}', UNARY_JSON)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["message"], "r")
        # GET without connect=v1 on a method path: not Connect.
        r = request(PORT, "GET", GET_USER + "?encoding=json&message=%7B%7D")
        self.assertNotEqual(r.header("content-type"), "application/proto")

    def test_cors(self):
        r = request(PORT, "OPTIONS", GET_USER, b"", {
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Content-Length": None})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-methods"), "GET, POST, OPTIONS")
        allowed = [h.strip() for h in r.header("access-control-allow-headers").split(",")]
        for h in ("content-type", "connect-protocol-version", "connect-timeout-ms",
                  "connect-content-encoding", "connect-accept-encoding", "x-demo-trace"):
            self.assertIn(h, allowed)
        r = request(PORT, "OPTIONS", ECHO, b"", {
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Content-Length": None})
        self.assertEqual(r.header("access-control-allow-methods"), "POST, OPTIONS")
        r = post(ECHO, b'{"message":"c"}', dict(UNARY_JSON, Origin=ORIGIN, **{"X-Demo-Trace": "9"}))
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        exposed = [h.strip() for h in r.header("access-control-expose-headers").split(",")]
        self.assertIn("x-demo-trace", exposed)
        self.assertIn("trailer-x-demo-trace-trailer", exposed)
        r = post(LIST, env(b'{"pageSize":1}'),
                 dict(STREAM_JSON, Origin=ORIGIN, **{"Connect-Accept-Encoding": "gzip"}))
        exposed = [h.strip() for h in r.header("access-control-expose-headers").split(",")]
        self.assertIn("Connect-Content-Encoding".lower(), [e.lower() for e in exposed])
        r = request(PORT, "GET", GET_USER + "?connect=v1&encoding=json&message=%7B%22id%22%3A1%7D",
                    b"", {"Origin": ORIGIN})
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)


@unittest.skipUnless(os.path.exists(BUF) or STRICT, "buf not installed")
class BufCurl(unittest.TestCase):

    def buf(self, method, data, *extra):
        cmd = [BUF, "curl", "--protocol", "connect", "--schema", DEMO_DESC + "#format=binpb", *extra,
               "-d", data, "http://127.0.0.1:%d%s" % (PORT, method)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def test_unary(self):
        r = self.buf(ECHO, '{"message":"buf","number":3}')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"message": "buf", "number": "3"})

    def test_server_stream(self):
        r = self.buf(LIST, '{"pageSize":25,"follow":true}')  # 25 from 3 users: the live feed
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count('"email"'), 25)

    def test_error(self):
        r = self.buf(FAIL, '{"code":7,"message":"go away"}')
        self.assertNotEqual(r.returncode, 0)
        err = json.loads(r.stderr)
        self.assertEqual(err["code"], "permission_denied")
        self.assertEqual(err["message"], "go away")
        r = self.buf(FAIL, '{"code":3,"message":"bad"}')
        err = json.loads(r.stderr)
        self.assertEqual(err["code"], "invalid_argument")
        self.assertEqual(err["details"][0]["type"], "google.rpc.BadRequest")


if __name__ == "__main__":
    unittest.main(verbosity=2)
