"""REST/JSON end to end with curl: `grpcgate serve` in front of the demo
service and of the @grpc/grpc-js backend (tests/node/grpcjs_server.mjs).

Every row of CASES is one curl command and the exact answer it must get:
HTTP status, headers, and the JSON body (ANY stands for values the backend
makes up, such as timestamps). The table runs in order (it creates and
deletes users) against each backend, each behind its own gateway started
fresh. Streaming checks also look at when each message arrives.

Processes started here are killed here, whatever happens."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "front"))
import gwtest  # noqa: E402

SOURCE_ROOT = os.environ.get("GW_SOURCE_ROOT", ".")
CURL = shutil.which("curl")


class _Any:
    def __repr__(self):
        return "ANY"


ANY = _Any()


def match(want, got, where="body"):
    """want == got, where ANY matches any present value."""
    if want is ANY:
        return
    if isinstance(want, dict):
        assert isinstance(got, dict), "%s: want an object, got %r" % (where, got)
        assert set(want) == set(got), "%s: keys %s != %s" % (where, sorted(want), sorted(got))
        for k in want:
            match(want[k], got[k], where + "." + k)
        return
    if isinstance(want, list):
        assert isinstance(got, list) and len(want) == len(got), \
            "%s: want %r, got %r" % (where, want, got)
        for i, (w, g) in enumerate(zip(want, got)):
            match(w, g, "%s[%d]" % (where, i))
        return
    assert want == got, "%s: want %r, got %r" % (where, want, got)


def curl(base, method, path, headers=(), data=None, extra=()):
    """Runs curl; returns (status, headers dict lowercased, body bytes)."""
    args = [CURL, "-sS", "-i", "--max-time", "60", "-X", method, base + path]
    for h in headers:
        args += ["-H", h]
    tmp = None
    if data is not None:
        tmp = tempfile.NamedTemporaryFile(delete=False)
        tmp.write(data if isinstance(data, bytes) else data.encode())
        tmp.close()
        args += ["--data-binary", "@" + tmp.name]
    args += list(extra)
    try:
        out = subprocess.run(args, capture_output=True, timeout=90).stdout
    finally:
        if tmp:
            os.unlink(tmp.name)
    return parse_response(out)


def parse_response(out):
    while True:
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:
            out = body
            continue
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, body


# The demo API's seed users (docs/demo-service.md), as the gateway prints them.
ADA = {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com", "role": "ROLE_ADMIN",
       "active": True, "age": 36, "score": 99.5, "tags": ["math", "poetry"],
       "labels": {"team": "engine"},
       "address": {"street": "12 St James's Square", "city": "London", "country": "UK"},
       "phone": "+44 20 0000 0001", "nickname": "Ada", "createdAt": "2024-01-02T03:04:05.678Z",
       "karma": 42}
ALAN = {"id": "2", "name": "Alan Turing", "email": "alan@example.com", "role": "ROLE_EDITOR",
        "active": True, "age": 41, "slackHandle": "@alan", "createdAt": "2024-02-03T04:05:06Z"}


def status_body(code, message, details=()):
    return {"code": code, "message": message, "details": list(details)}


def bad_request(field, description):
    return {"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": field, "description": description}]}


JSON = ("Content-Type: application/json",)

# ?pretty on a client-streaming route: the one answer, indented by two.
PRETTY_BATCH = b'{\n  "created": 1,\n  "ids": [\n    "9"\n  ]\n}'

# (name, method, path, request headers, body, status, response headers, JSON body)
# A body of bytes means "exactly these bytes"; a str ending in "..." a prefix.
CASES = [
    # --- every demo route -------------------------------------------------
    ("GET with a path variable", "GET", "/v1/users/1", (), None, 200,
     {"content-type": "application/json"}, ADA),
    ("GET of a missing user", "GET", "/v1/users/42", (), None, 404,
     {"content-type": "application/json"}, status_body(5, "user 42 not found")),
    ("POST body *", "POST", "/v1/users", JSON, '{"name":"Grace Hopper","email":"grace@x.org"}',
     200, {}, {"id": "4", "name": "Grace Hopper", "email": "grace@x.org", "createdAt": ANY}),
    ("POST with error details", "POST", "/v1/users", JSON, '{"name":"Bad","email":"nope"}', 400,
     {}, status_body(3, "invalid user", [bad_request("email", "email must contain '@'")])),
    ("PATCH fills the mask from the body", "PATCH", "/v1/users/2", JSON, '{"email":"alan@new.org"}',
     200, {}, dict(ALAN, email="alan@new.org")),
    ("PATCH with a mask in the query", "PATCH", "/v1/users/2?update_mask=name", JSON,
     '{"name":"A. Turing","email":"ignored@x.org"}', 200, {},
     dict(ALAN, name="A. Turing", email="alan@new.org")),
    # {user.id} from the path and the user from the body: one User on the
    # wire (protobuf-c, behind the demo service, cannot read a User given
    # twice when it holds a oneof member and a map).
    ("PATCH nested path variable + body with a oneof and a map", "PATCH", "/v1/users/4", JSON,
     '{"slackHandle":"@grace","labels":{"k":"v"}}', 200, {},
     {"id": "4", "name": "Grace Hopper", "email": "grace@x.org", "slackHandle": "@grace",
      "labels": {"k": "v"}, "createdAt": ANY}),
    ("DELETE", "DELETE", "/v1/users/3", (), None, 200, {}, {}),
    ("GET after DELETE", "GET", "/v1/users/3", (), None, 404, {},
     status_body(5, "user 3 not found")),
    ("custom verb", "POST", "/v1/users/3:undelete", JSON, '{"reason":"oops"}', 200, {},
     {"id": "3", "name": "Grace Hopper", "email": "grace@example.com", "role": "ROLE_VIEWER",
      "age": 85, "createdAt": "2024-03-04T05:06:07Z"}),
    ("additional binding (stream)", "GET", "/v1/roles/ROLE_EDITOR/users?page_size=1", (), None, 200,
     {"content-type": "application/json", "transfer-encoding": "chunked"},
     [{"result": dict(ALAN, name="A. Turing", email="alan@new.org")}]),
    ("auto-mapped POST of an unbound method", "POST", "/demo.v1.EchoService/Unbound", JSON,
     '{"message":"u","number":7}', 200, {}, {"message": "u", "number": "7"}),
    ("POST /v1/echo", "POST", "/v1/echo", JSON, '{"message":"hi"}', 200, {}, {"message": "hi"}),
    ("curl -d without a content type is JSON", "POST", "/v1/echo", (), '{"message":"d"}', 200, {},
     {"message": "d"}),
    ("?pretty indents", "POST", "/v1/echo?pretty", JSON, '{"message":"p"}', 200, {},
     b'{\n  "message": "p"\n}'),
    # --- HttpBody ----------------------------------------------------------
    ("HttpBody download", "GET", "/v1/users/1/avatar", (), None, 200,
     {"content-type": "image/svg+xml"}, '<svg xmlns="http://www.w3.org/2000/svg"...'),
    ("HttpBody upload", "PUT", "/v1/users/2/avatar", ("Content-Type: image/png",),
     b"\x89PNG\r\n\x1a\n\x00\x01binary", 200, {},
     dict(ALAN, name="A. Turing", email="alan@new.org", avatar="iVBORw0KGgoAAWJpbmFyeQ==")),
    # --- client streaming ----------------------------------------------------
    ("client stream from NDJSON", "POST", "/v1/users:batchCreate", JSON,
     '{"name":"N1","email":"n1@x"}\n{"name":"N2","email":"n2@x"}\n', 200, {},
     {"created": 2, "ids": ["5", "6"]}),
    ("client stream from a JSON array", "POST", "/v1/users:batchCreate", JSON,
     '[{"name":"N3","email":"n3@x"}, {"name":"N4","email":"n4@x"}]', 200, {},
     {"created": 2, "ids": ["7", "8"]}),
    ("client stream with ?pretty", "POST", "/v1/users:batchCreate?pretty", JSON,
     '{"name":"N9","email":"n9@x"}', 200, {"content-type": "application/json"},
     PRETTY_BATCH),
    ("client stream with a bad message", "POST", "/v1/users:batchCreate", JSON,
     '{"name":"N5","email":"n5@x"}\n{"name":5}\n', 400, {},
     status_body(3, ANY)),
    # --- server streaming ----------------------------------------------------
    ("server stream NDJSON", "GET", "/v1/users?page_size=2", (), None, 200,
     {"content-type": "application/json"},
     [{"result": ADA}, {"result": dict(ALAN, name="A. Turing", email="alan@new.org",
                                        avatar=ANY)}]),
    ("server stream SSE", "GET", "/v1/users?page_size=1", ("Accept: text/event-stream",), None, 200,
     {"content-type": "text/event-stream"}, b"data: " + json.dumps(ADA, separators=(",", ":"),
                                                                     ensure_ascii=False).encode()
     + b"\n\n"),
    ("stream error before the first message", "GET", "/v1/users?page_size=-1", (), None, 400,
     {"content-type": "application/json"}, status_body(3, ANY)),
    # --- metadata ------------------------------------------------------------
    ("metadata both ways", "POST", "/v1/echo",
     JSON + ("Grpc-Metadata-X-Demo-Tag: t1", "X-Demo-Not-Forwarded: no"), '{"message":"m"}', 200,
     {"grpc-metadata-x-demo-tag": "t1", "grpc-trailer-x-demo-tag-trailer": "t1",
      "grpc-metadata-x-demo-not-forwarded": None}, {"message": "m"}),
    # --- deadlines -----------------------------------------------------------
    ("Grpc-Timeout expires", "POST", "/v1/echo", JSON + ("Grpc-Timeout: 200m",),
     '{"message":"slow","delay":"5s"}', 504, {}, status_body(4, ANY)),
    ("Grpc-Timeout long enough", "POST", "/v1/echo", JSON + ("Grpc-Timeout: 20S",),
     '{"message":"ok","delay":"0.05s"}', 200, {}, {"message": "ok"}),
    ("malformed Grpc-Timeout", "GET", "/v1/users/1", ("Grpc-Timeout: soon",), None, 400, {},
     status_body(3, "Grpc-Timeout 'soon': expected 1 to 8 digits and a unit "
                 "(H, M, S, m, u or n)")),
    # --- bad input -----------------------------------------------------------
    ("no route", "GET", "/v1/nothing", (), None, 404, {"content-type": "application/json"},
     status_body(5, "no route for GET /v1/nothing")),
    ("method not allowed", "PUT", "/v1/users/1", (), None, 405,
     {"allow": "DELETE, GET, HEAD, PATCH"},
     status_body(12, "method PUT not allowed for /v1/users/1 (allowed: DELETE, GET, HEAD, PATCH)")),
    ("malformed JSON", "POST", "/v1/echo", JSON, '{"message":', 400, {},
     status_body(3, "body: message: unexpected end of input (at byte 11)")),
    ("wrong JSON type", "POST", "/v1/echo", JSON, '{"number":"abc"}', 400, {},
     status_body(3, ANY)),
    ("unknown body field", "POST", "/v1/echo", JSON, '{"nope":1}', 400, {}, status_body(3, ANY)),
    ("too deep", "POST", "/v1/users", JSON, '{"preferences":' + '{"a":' * 150 + '1' + '}' * 151,
     400, {}, status_body(3, ANY)),
    ("unsupported content type", "POST", "/v1/echo", ("Content-Type: text/plain",), "x", 415, {},
     status_body(3, "unsupported Content-Type 'text/plain': this route takes application/json")),
    ("bad query parameter", "GET", "/v1/users?page_size=abc", (), None, 400, {},
     status_body(3, ANY)),
    ("bad enum in the path", "GET", "/v1/roles/ROLE_NOPE/users", (), None, 400, {},
     status_body(3, ANY)),
    ("bad percent-escape in a path variable", "GET", "/v1/users/%zz", (), None, 400, {},
     status_body(3, ANY)),
    ("path and body disagree", "POST", "/v1/users/3:undelete", JSON, '{"id":"9"}', 400, {},
     status_body(3, ANY)),
    ("a bound method's gRPC path is not a REST route", "POST", "/demo.v1.EchoService/Echo", JSON,
     '{"message":"x"}', 415, {}, status_body(3, ANY)),
    ("unknown query parameters are ignored", "GET", "/v1/users/1?api_key=x", (), None, 200, {},
     ADA),
    # libmicrohttpd cannot send an empty header value: the echoed entry is
    # left out, the answer still comes (it used to hang).
    ("empty metadata value", "POST", "/v1/echo", JSON + ("Grpc-Metadata-x-demo-a;",),
     '{"message":"e"}', 200, {"grpc-metadata-x-demo-a": None}, {"message": "e"}),
    ("grpc-timeout 0S is already expired", "POST", "/v1/echo",
     JSON + ("Grpc-Timeout: 0S",), '{"message":"late","delay":"5s"}', 504, {},
     status_body(4, "deadline exceeded")),
]

# gRPC code → HTTP status (REFERENCE.md), through Fail.
HTTP_FOR_CODE = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
                 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}
for code, http in HTTP_FOR_CODE.items():
    details = [bad_request("code", "requested failure")] if code == 3 else []
    CASES.append(("Fail code %d" % code, "POST", "/v1/fail", JSON,
                  '{"code":%d,"message":"failure %d"}' % (code, code), http,
                  {"content-type": "application/json"},
                  status_body(code, "failure %d" % code, details)))

# With a configuration: strict query, an allowlisted header, a small body limit
# (the body limit never goes below one message's JSON envelope: 4/3 of
# max_message_bytes + 4 KiB, here 8096 bytes).
CONFIG = {"rest": {"strict_query": True, "ignored_query": ["api_key"],
                   "header_allowlist": ["X-Demo-Allowed"], "proto_names": True},
          "limits": {"max_body_bytes": 1024, "max_message_bytes": 3000,
                     "max_header_count": 200},
          "cors": {"allowed_origins": ["https://app.example"]}}
PREFLIGHT = ("Origin: https://app.example", "Access-Control-Request-Method: PATCH")
CONFIG_CASES = [
    ("strict: unknown query parameter", "GET", "/v1/users/1?nope=1", (), None, 400, {},
     status_body(3, ANY)),
    ("strict: ignored names still pass", "GET", "/v1/users/2?api_key=k", (), None, 200, {},
     {"id": "2", "name": "Alan Turing", "email": "alan@example.com", "role": "ROLE_EDITOR",
      "active": True, "age": 41, "slack_handle": "@alan", "created_at": "2024-02-03T04:05:06Z"}),
    ("allowlisted header forwarded", "POST", "/v1/echo", JSON + ("X-Demo-Allowed: yes",),
     '{"message":"a"}', 200, {"grpc-metadata-x-demo-allowed": "yes"}, {"message": "a"}),
    ("body over max_body", "POST", "/v1/echo", JSON, '{"message":"' + "x" * 9000 + '"}', 413, {},
     status_body(8, ANY)),
    # Past the adapter's 128 header fields: refused, not silently cut.
    ("131 header fields", "GET", "/v1/users/1", tuple("X-H%d: 1" % i for i in range(131)),
     None, 431, {}, status_body(8, "more than 128 request header fields")),
    # A CORS preflight names the methods the REST path really has.
    ("preflight of a REST path", "OPTIONS", "/v1/users/1", PREFLIGHT, None, 204,
     {"access-control-allow-methods": "DELETE, GET, PATCH, OPTIONS",
      "access-control-allow-origin": "https://app.example"}, b""),
    ("preflight of a gRPC-Web path", "OPTIONS", "/demo.v1.EchoService/Echo", PREFLIGHT, None,
     204, {"access-control-allow-methods": "POST, OPTIONS"}, b""),
    ("preflight of an unknown path", "OPTIONS", "/nowhere", PREFLIGHT, None, 204,
     {"access-control-allow-methods": "POST, OPTIONS"}, b""),
]


def check_case(base, case):
    name, method, path, headers, body, status, want_headers, want = case
    got_status, got_headers, got_body = curl(base, method, path, headers, body)
    ctx = "%s: %s %s -> %d %s" % (name, method, path, got_status, got_body[:300])
    assert got_status == status, ctx
    for k, v in want_headers.items():
        if v is None:
            assert k not in got_headers, "%s: header %s present" % (ctx, k)
        else:
            assert got_headers.get(k) == v, "%s: header %s=%r" % (ctx, k, got_headers.get(k))
    if isinstance(want, bytes):
        assert got_body == want, ctx
    elif isinstance(want, str):
        assert want.endswith("...") and got_body.decode().startswith(want[:-3]), ctx
    elif isinstance(want, list):
        lines = [ln for ln in got_body.decode().split("\n") if ln]
        try:
            match(want, [json.loads(ln) for ln in lines])
        except AssertionError as e:
            raise AssertionError("%s: %s" % (ctx, e))
    else:
        try:
            match(want, json.loads(got_body))
        except (AssertionError, ValueError) as e:
            raise AssertionError("%s: %s" % (ctx, e))


def check_arrival(base, accept_sse):
    """Messages of a delayed stream reach curl one by one, not at the end:
    with 0.5 s between messages, the first is read well before the last."""
    args = [CURL, "-sS", "-N", "--max-time", "60", base + "/v1/users?page_size=3&delay=0.5s"]
    if accept_sse:
        args += ["-H", "Accept: text/event-stream"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE)
    times = []
    try:
        for line in p.stdout:
            if line.strip():
                times.append(time.monotonic())
    finally:
        p.stdout.close()
        p.wait(60)
    assert len(times) == 3, "want 3 messages, got %d" % len(times)
    # The backend sleeps 0.5 s before each message after the first: if the
    # gateway buffered the stream, all three would arrive together.
    assert times[2] - times[0] >= 0.8, "messages arrived together: %r" % times
    assert times[1] - times[0] >= 0.4, "first two arrived together: %r" % times


def check_stream_error(base):
    """A failure after the first message is a last {"error": ...} line (the
    deadline cuts a slow stream: how many results come first depends on
    timing, that there is one and that the error is last does not)."""
    status, _, body = curl(base, "GET", "/v1/users?page_size=5&delay=0.4s&follow=true",
                           ("Grpc-Timeout: 600m",))
    lines = [json.loads(ln) for ln in body.decode().split("\n") if ln]
    assert status == 200 and len(lines) >= 2, (status, body)
    match({"result": ADA}, lines[0])
    for ln in lines[1:-1]:
        assert set(ln) == {"result"}, ln
    # The gateway's timer and the backend's (it got grpc-timeout) fire
    # together: either may word the DEADLINE_EXCEEDED ("deadline exceeded"
    # from the gateway, "Deadline exceeded" from grpc-js).
    match({"error": status_body(4, ANY)}, lines[-1])
    assert lines[-1]["error"]["message"].lower() == "deadline exceeded", lines[-1]


def check_sse_error(base):
    _, _, body = curl(base, "GET", "/v1/users?page_size=5&delay=0.4s&follow=true",
                      ("Grpc-Timeout: 600m", "Accept: text/event-stream"))
    text = body.decode()
    assert text.startswith("data: {\"id\":\"1\""), text
    tail = text.rstrip("\n").split("\n\n")[-1]
    assert tail.startswith("event: error\ndata: "), tail
    err = json.loads(tail.split("data: ", 1)[1])
    assert err["code"] == 4, err


def doc_examples(path):
    """The shell examples of a doc: (command, expected output lines or None).
    A command is a line starting with curl or printf (continued by a
    trailing backslash); the `# => ` lines right after it are its exact
    output."""
    out = []
    in_sh = False
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        i += 1
        if ln.startswith("```"):
            in_sh = ln.strip() == "```sh" and not in_sh
            continue
        if not in_sh or not (ln.startswith("curl ") or ln.startswith("printf ")):
            continue
        cmd = ln
        while (cmd.endswith("\\") or cmd.endswith("|")) and i < len(lines):
            cmd = cmd + "\n" + lines[i]
            i += 1
        want = []
        while i < len(lines) and lines[i].startswith("# =>"):
            want.append(lines[i][5:] if len(lines[i]) > 4 else "")
            i += 1
        out.append((cmd, want or None))
    return out


def check_doc_examples(base):
    """Every curl example of docs/rest.md runs (in order, against a fresh
    demo service) and prints what the doc says it prints."""
    doc = os.path.join(SOURCE_ROOT, "docs", "rest.md")
    examples = doc_examples(doc)
    assert len(examples) >= 10, "docs/rest.md has only %d examples" % len(examples)
    failures = []
    host = base.replace("http://", "")
    for cmd, want in examples:
        real = cmd.replace("localhost:8080", host)
        r = subprocess.run(["bash", "-c", "set -o pipefail; " + real], capture_output=True,
                           timeout=60)
        got = r.stdout.decode(errors="replace").rstrip("\n").split("\n")
        if r.returncode != 0:
            failures.append("%s: exit %d %s" % (cmd, r.returncode, r.stderr[-300:]))
        elif want is not None and [g.rstrip() for g in got] != want:
            failures.append("%s:\n  doc says %r\n  got      %r" % (cmd, want, got))
        elif want is None and not r.stdout.strip():
            failures.append("%s: printed nothing" % cmd)
    assert not failures, "\n".join(failures)


def run_docs(procs, backend):
    gw, port = procs.gateway(backend, workers=1)
    try:
        check_doc_examples("http://127.0.0.1:%d" % port)
        return []
    except AssertionError as e:
        return ["[docs/rest.md] %s" % e]
    finally:
        procs.stop(gw)


def run_table(procs, backend, label, cases, config=None):
    gw, port = procs.gateway(backend, config=config, workers=1)
    base = "http://127.0.0.1:%d" % port
    failures = []
    for case in cases:
        try:
            check_case(base, case)
        except AssertionError as e:
            failures.append("[%s] %s" % (label, e))
    if config is None:
        for sse in (False, True):
            try:
                check_arrival(base, sse)
            except AssertionError as e:
                failures.append("[%s] arrival (sse=%s): %s" % (label, sse, e))
        for check in (check_stream_error, check_sse_error):
            try:
                check(base)
            except AssertionError as e:
                failures.append("[%s] %s: %s" % (label, check.__name__, e))
    rc = procs.stop(gw)
    if rc != 0:
        failures.append("[%s] gateway exit status %s: %s" % (label, rc, procs.stderr(gw)[-2000:]))
    return failures


def check_config_errors(procs, backend):
    """A wrong "rest" key stops serve with the key named."""
    for conf, want in (({"rest": {"strict_qery": True}}, "unknown key 'rest.strict_qery'"),
                       ({"rest": {"proto_names": 1}}, "rest.proto_names: expected true or false"),
                       ({"rest": []}, "rest: expected an object")):
        path = os.path.join(procs.tmp, "bad.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        r = subprocess.run([gwtest.GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                            backend, "--descriptor", gwtest.DEMO_DESC, "--config", path],
                           capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0 and want in err, "%r: exit %d, stderr %r" % (conf, r.returncode,
                                                                              err[-300:])


# --- server-streamed google.api.HttpBody --------------------------------------
# rest.test.v1.RestTest.DownloadStream (schemas/test/rest_test.proto) on the
# grpc-js backend tests/rest_e2e/httpbody_server.mjs, behind a gateway that
# loads the REST test descriptors.

PARTS = b"\x00\xff\xfe\x80\n" + b"second\n" + b"\xc3\x28\xff"  # not UTF-8


def raw_get(port, path, headers=(), timeout=60):
    """GET over a plain socket. Returns (status, headers, chunks, ended):
    chunks are the chunked framing's pieces with their arrival times, ended
    says whether the terminating chunk came (False: the connection closed
    first)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    buf = b""

    def fill():
        nonlocal buf
        d = s.recv(65536)
        if not d:
            raise EOFError
        buf += d

    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                   % (path, "".join(h + "\r\n" for h in headers))).encode())
        while b"\r\n\r\n" not in buf:
            fill()
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        status = int(lines[0].split()[1])
        if hdrs.get("transfer-encoding") != "chunked":
            n = int(hdrs.get("content-length", "0"))
            while len(buf) < n:
                fill()
            return status, hdrs, [(time.monotonic(), buf[:n])] if n else [], True
        chunks = []
        try:
            while True:
                while b"\r\n" not in buf:
                    fill()
                size_line, _, buf = buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    fill()
                data, buf = buf[:size], buf[size + 2:]
                if size == 0:
                    return status, hdrs, chunks, True
                chunks.append((time.monotonic(), data))
        except EOFError:
            return status, hdrs, chunks, False
    finally:
        s.close()


def body_of(chunks):
    return b"".join(c for _, c in chunks)


def check_http_body_stream(port):
    """Each message's data goes out raw as it arrives, with the first
    message's content type; errors before the first message are ordinary
    JSON errors; after it, the response ends without its last chunk."""
    st, h, chunks, ended = raw_get(port, "/v1/chunks/parts")
    assert (st, h.get("content-type"), h.get("transfer-encoding"), body_of(chunks), ended) == \
        (200, "application/x-parts; v=1", "chunked", PARTS, True), (st, h, chunks, ended)
    # An SSE Accept header changes nothing: raw bytes have no envelope.
    st, h, chunks, ended = raw_get(port, "/v1/chunks/parts", ("Accept: text/event-stream",))
    assert (st, h.get("content-type"), body_of(chunks), ended) == \
        (200, "application/x-parts; v=1", PARTS, True), (st, h, chunks, ended)
    # 0.5 s between messages: each is its own chunk, sent when it arrives.
    st, h, chunks, ended = raw_get(port, "/v1/chunks/slow?level=500")
    assert st == 200 and ended and h.get("content-type") == "text/plain", (st, h, ended)
    assert [c for _, c in chunks] == [b"line 0\n", b"line 1\n", b"line 2\n"], chunks
    gaps = [chunks[i + 1][0] - chunks[i][0] for i in range(2)]
    assert min(gaps) >= 0.4, "chunks arrived together: %r" % gaps
    st, h, chunks, ended = raw_get(port, "/v1/chunks/empty")
    assert (st, h.get("content-type"), body_of(chunks), ended) == \
        (200, "application/octet-stream", b"", True), (st, h, chunks, ended)
    st, h, chunks, ended = raw_get(port, "/v1/chunks/before")
    assert (st, h.get("content-type"), ended) == (404, "application/json", True), (st, h)
    match(status_body(5, "no file before"), json.loads(body_of(chunks)))
    # More empty messages than the stream window holds: each is
    # acknowledged although no byte of it reaches the client.
    st, h, chunks, ended = raw_get(port, "/v1/chunks/zeros")
    assert (st, h.get("content-type"), body_of(chunks), ended) == \
        (200, "text/plain", b"done\n", True), (st, h, chunks, ended)
    for level in (0, 300):
        st, h, chunks, ended = raw_get(port, "/v1/chunks/after?level=%d" % level)
        assert (st, h.get("content-type"), body_of(chunks), ended) == \
            (200, "application/x-after", b"first\n", False), (level, st, h, chunks, ended)
    # What curl makes of it: the bytes, and exit 18 (partial file).
    r = subprocess.run([CURL, "-sS", "--max-time", "60", "-o", "-",
                        "http://127.0.0.1:%d/v1/chunks/after" % port], capture_output=True,
                       timeout=90)
    assert (r.returncode, r.stdout) == (18, b"first\n"), (r.returncode, r.stdout, r.stderr)
    # The gateway still serves.
    st, _, chunks, ended = raw_get(port, "/v1/chunks/parts")
    assert (st, body_of(chunks), ended) == (200, PARTS, True)


def run_http_body_stream(procs, rest_desc):
    node = shutil.which("node")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "httpbody_server.mjs")
    if not node or not os.path.isdir(os.path.join(SOURCE_ROOT, "node_modules", "@grpc")):
        # scripts/setup installs both: their absence fails, it does not shrink the test.
        return ["[httpbody-stream] node or @grpc/grpc-js missing (run scripts/setup)"], 1
    _, m = procs.start([node, script, "--descriptor", rest_desc], r"listening (\d+)",
                       "httpbody")
    gw, gm = procs.start([gwtest.GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend",
                          "http://127.0.0.1:" + m.group(1), "--descriptor", rest_desc,
                          "--workers", "1"], r"listening on ([\d.]+):(\d+)", "gateway-httpbody")
    port = int(gm.group(2))
    failures = []
    try:
        check_http_body_stream(port)
    except (AssertionError, OSError, ValueError) as e:
        failures.append("[httpbody-stream] %s" % e)
    rc = procs.stop(gw)
    log = procs.stderr(gw)
    if "HttpBody stream failed after its first message (DATA_LOSS: disk went away)" not in log:
        failures.append("[httpbody-stream] no log line for the failed stream: %s" % log[-1000:])
    if rc != 0:
        failures.append("[httpbody-stream] gateway exit status %s: %s" % (rc, log[-2000:]))
    return failures, 1


def grpcjs_backend(procs):
    node = shutil.which("node")
    script = os.path.join(SOURCE_ROOT, "tests", "node", "grpcjs_server.mjs")
    if not node or not os.path.isdir(os.path.join(SOURCE_ROOT, "node_modules", "@grpc")):
        return None
    p, m = procs.start([node, script, "--port", "0"], r"listening (\d+)", "grpcjs")
    return "http://127.0.0.1:" + m.group(1)


def main():
    # argv[1]: the REST test API's descriptor set (tests/rest/rest.pb), for
    # the HttpBody stream checks.
    rest_desc = sys.argv[1] if len(sys.argv) > 1 else None
    if not CURL:
        print("SKIP: curl not installed")
        return 77
    procs = gwtest.Procs()
    failures = []
    total = 0
    try:
        _, demo = procs.demo()
        failures += run_table(procs, demo, "demo-service", CASES)
        total += len(CASES) + 4
        _, demo3 = procs.demo()
        failures += run_docs(procs, demo3)
        total += 1
        try:
            check_config_errors(procs, demo)
        except AssertionError as e:
            failures.append("[config] %s" % e)
        total += 1
        _, demo2 = procs.demo()
        failures += run_table(procs, demo2, "demo-service+config", CONFIG_CASES, CONFIG)
        total += len(CONFIG_CASES)
        if rest_desc:
            f, n = run_http_body_stream(procs, rest_desc)
            failures += f
            total += n
        else:
            failures.append("[httpbody-stream] no rest.pb argument (tests/rest_e2e/meson.build passes it)")
            total += 1
        js = grpcjs_backend(procs)
        if js:
            failures += run_table(procs, js, "grpc-js", CASES)
            total += len(CASES) + 4
        else:
            failures.append("[grpc-js] node or @grpc/grpc-js missing (run scripts/setup)")
            total += 1
    finally:
        procs.stop_all()
    for f in failures:
        print("FAIL", f)
    print("%d passed, %d failed" % (total - len(failures), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
