"""Depth limits that agree (issue 12, docs/codec.md "Depth"), end to end.

1. In front of the demo service: a User whose `preferences` (a Struct) nest
   exactly to the limit (100 message levels) is created with POST /v1/users
   and reads back unchanged through GET /v1/users/{id} and the ListUsers
   stream; one level more is refused with 400 INVALID_ARGUMENT naming the
   limit, and nothing is stored.
2. In front of tests/rest_e2e/deep_server.mjs (grpc-js sending crafted
   bytes): a backend answer deeper than the limit gives the client a clean
   error — REST 500 with a google.rpc.Status body, an NDJSON error line
   after the good messages, gRPC-Web +json trailers with INTERNAL, Connect
   500 internal — and the connection stays usable; binary gRPC-Web passes
   the bytes through. A too-deep request is INVALID_ARGUMENT in every
   protocol (REST 400, +json status 3, Connect 400).

Processes started here are killed here, whatever happens."""
import json
import os
import shutil
import signal
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "front"))
import gwtest  # noqa: E402

SOURCE_ROOT = os.environ.get("GW_SOURCE_ROOT", ".")
LIMIT = 100
WANT = "nesting deeper than %d message levels" % LIMIT


def prefs(depth):
    """The JSON of a Struct that makes a User exactly `depth` levels deep:
    User 1 + Struct 1 + 2 per further object; odd depths end in a scalar
    (its Value is one level), even ones in an empty object."""
    j = depth // 2
    inner = {"a": True} if depth % 2 else {}
    for _ in range(j - 1):
        inner = {"a": inner}
    return inner


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def rest_json(resp):
    return json.loads(resp.body.decode())


def demo_round_trip(procs, failures):
    _, demo = procs.demo()
    gw, port = procs.gateway(demo)
    conn = gwtest.Conn(port, timeout=60)
    try:
        user = {"name": "Deep Thought", "email": "deep@example.com",
                "preferences": prefs(LIMIT)}
        r = gwtest.request(port, "POST", "/v1/users", json.dumps(user).encode(),
                           {"Content-Type": "application/json"}, conn)
        check(r.status == 200, "POST at the limit: %d %r" % (r.status, r.body[:300]))
        created = rest_json(r)
        check(created["preferences"] == user["preferences"], "POST answer's preferences differ")
        uid = created["id"]
        r = gwtest.request(port, "GET", "/v1/users/%s" % uid, conn=conn)
        check(r.status == 200, "GET at the limit: %d %r" % (r.status, r.body[:300]))
        check(rest_json(r)["preferences"] == user["preferences"], "GET preferences differ")
        # The ListUsers stream reaches the user and ends cleanly.
        r = gwtest.request(port, "GET", "/v1/users", conn=conn)
        check(r.status == 200, "ListUsers: %d" % r.status)
        lines = [json.loads(x) for x in r.body.decode().splitlines() if x.strip()]
        check(not any("error" in x for x in lines), "ListUsers error line: %r" % lines[-1])
        deep = [x["result"] for x in lines if x.get("result", {}).get("id") == uid]
        check(len(deep) == 1 and deep[0]["preferences"] == user["preferences"],
              "ListUsers lacks the deep user: %r" % [x.get("result", x).get("id") for x in lines])
        # One level more: refused on the way in, naming the limit.
        for depth in (LIMIT + 1, LIMIT + 2):
            user["preferences"] = prefs(depth)
            r = gwtest.request(port, "POST", "/v1/users", json.dumps(user).encode(),
                               {"Content-Type": "application/json"}, conn)
            body = rest_json(r)
            check(r.status == 400 and body.get("code") == 3 and WANT in body.get("message", ""),
                  "POST at depth %d: %d %r" % (depth, r.status, body))
        # The same refusal through gRPC-Web +json and Connect JSON: the
        # client's input is at fault, INVALID_ARGUMENT (docs/codec.md).
        user["preferences"] = prefs(LIMIT + 1)
        hdr = {"Content-Type": "application/grpc-web+json", "X-Grpc-Web": "1"}
        r = gwtest.request(port, "POST", "/demo.v1.UserService/CreateUser",
                           gwtest.frame(json.dumps(user).encode()), hdr, conn)
        code, msg = r.grpc_status()
        check(r.status == 200 and code == 3 and WANT in (msg or ""),
              "+json CreateUser too deep: %d %s %r" % (r.status, code, msg))
        r = gwtest.request(port, "POST", "/demo.v1.UserService/CreateUser",
                           json.dumps(user).encode(),
                           {"Content-Type": "application/json",
                            "Connect-Protocol-Version": "1"}, conn)
        body = rest_json(r)
        check(r.status == 400 and body.get("code") == "invalid_argument" and
              WANT in body.get("message", ""),
              "Connect CreateUser too deep: %d %r" % (r.status, body))
        # At the limit through UpdateUser's body field (user.preferences).
        patch = {"preferences": prefs(LIMIT - 1)}
        r = gwtest.request(port, "PATCH", "/v1/users/%s" % uid, json.dumps(patch).encode(),
                           {"Content-Type": "application/json"}, conn)
        check(r.status == 200, "PATCH at the limit: %d %r" % (r.status, r.body[:300]))
        check(rest_json(r)["preferences"] == patch["preferences"], "PATCH answer differs")
    except (AssertionError, KeyError, ValueError, OSError, EOFError) as e:
        failures.append("[demo] %s" % e)
    finally:
        conn.close()
    rc = procs.stop(gw)
    if rc != 0:
        failures.append("[demo] gateway exit status %s: %s" % (rc, procs.stderr(gw)[-2000:]))


def web_json_frames(resp):
    out, b = [], resp.body
    while len(b) >= 5:
        n = struct.unpack(">I", b[1:5])[0]
        out.append((b[0], b[5:5 + n]))
        b = b[5 + n:]
    check(not b, "trailing bytes in gRPC-Web body")
    return out


def deep_backend(procs, failures):
    node = shutil.which("node")
    script = os.path.join(SOURCE_ROOT, "tests", "rest_e2e", "deep_server.mjs")
    if not node or not os.path.isdir(os.path.join(SOURCE_ROOT, "node_modules", "@grpc")):
        if os.environ.get("GW_STRICT") == "1":
            failures.append("[deep backend] node or @grpc/grpc-js missing (GW_STRICT=1)")
        else:
            print("note: node or @grpc/grpc-js missing: the too-deep backend is not tested")
        return
    _, m = procs.start([node, script], r"listening (\d+)", "deep")
    gw, port = procs.gateway("http://127.0.0.1:" + m.group(1))
    conn = gwtest.Conn(port, timeout=60)
    try:
        # At the limit: printed.
        r = gwtest.request(port, "GET", "/v1/users/%d" % LIMIT, conn=conn)
        check(r.status == 200, "GET depth %d: %d %r" % (LIMIT, r.status, r.body[:200]))
        check(rest_json(r)["preferences"] == prefs(LIMIT), "GET depth %d: wrong body" % LIMIT)
        # Over it: a clean 500 naming the limit, and the connection lives on.
        for depth in (LIMIT + 1, 3 * LIMIT):
            r = gwtest.request(port, "GET", "/v1/users/%d" % depth, conn=conn)
            body = rest_json(r)
            check(r.status == 500 and body.get("code") == 13 and WANT in body["message"],
                  "GET depth %d: %d %r" % (depth, r.status, body))
        r = gwtest.request(port, "GET", "/v1/users/1", conn=conn)
        check(r.status == 200 and rest_json(r) == {"id": "7"}, "GET after the error: %d" %
              r.status)
        # A stream: the good message, then an error line, then a clean end.
        for accept, err in (("application/x-ndjson", '{"error":'),
                            ("text/event-stream", "event: error\ndata: ")):
            r = gwtest.request(port, "GET", "/v1/users?page_size=%d" % (LIMIT + 1),
                               headers={"Accept": accept}, conn=conn)
            text = r.body.decode()
            check(r.status == 200, "stream (%s): %d" % (accept, r.status))
            check('"id":"1"' in text and '"id":"2"' not in text and '"id":"3"' not in text,
                  "stream (%s): %r" % (accept, text[:300]))
            check(err in text and WANT in text.split(err)[-1],
                  "stream (%s) lacks the error: %r" % (accept, text[-300:]))
        r = gwtest.request(port, "GET", "/v1/users?page_size=%d" % LIMIT, conn=conn)
        lines = r.body.decode().splitlines()
        check(r.status == 200 and len(lines) == 3 and "error" not in r.body.decode(),
              "stream at the limit: %r" % lines)
        # gRPC-Web +json: a status in the trailers, never a broken stream.
        hdr = {"Content-Type": "application/grpc-web+json", "X-Grpc-Web": "1"}
        body = gwtest.frame(json.dumps({"id": str(LIMIT + 1)}).encode())
        r = gwtest.request(port, "POST", "/demo.v1.UserService/GetUser", body, hdr, conn)
        code, msg = r.grpc_status()
        check(r.status == 200 and code == 13 and WANT in (msg or ""),
              "+json GetUser: %d %s %r" % (r.status, code, msg))
        body = gwtest.frame(json.dumps({"pageSize": LIMIT + 1}).encode())
        r = gwtest.request(port, "POST", "/demo.v1.UserService/ListUsers", body, hdr, conn)
        frames = web_json_frames(r)
        code, msg = r.grpc_status()
        check(len(frames) == 2 and frames[0][0] == 0 and json.loads(frames[0][1]) == {"id": "1"}
              and code == 13 and WANT in (msg or ""), "+json ListUsers: %r %s" % (frames, code))
        # Connect JSON, unary: the backend's fault, 500 internal (as REST).
        r = gwtest.request(port, "POST", "/demo.v1.UserService/GetUser",
                           json.dumps({"id": str(LIMIT + 1)}).encode(),
                           {"Content-Type": "application/json",
                            "Connect-Protocol-Version": "1"}, conn)
        body = rest_json(r)
        check(r.status == 500 and body.get("code") == "internal" and
              WANT in body.get("message", ""), "Connect GetUser: %d %r" % (r.status, body))
        # Binary gRPC-Web passes messages through unparsed: no limit there.
        body = gwtest.frame(b"\x08" + bytes([LIMIT + 1]))
        r = gwtest.grpcweb(port, "/demo.v1.UserService/GetUser", body, conn=conn)
        code, _ = r.grpc_status()
        check(code == 0 and len(r.frames()) == 2, "binary GetUser: %s" % code)
        r = gwtest.request(port, "GET", "/v1/users/2", conn=conn)
        check(r.status == 200, "last GET on the connection: %d" % r.status)
    except (AssertionError, KeyError, ValueError, OSError, EOFError) as e:
        failures.append("[deep backend] %s" % e)
    finally:
        conn.close()
    rc = procs.stop(gw)
    if rc != 0:
        failures.append("[deep backend] gateway exit status %s: %s" %
                        (rc, procs.stderr(gw)[-2000:]))


def main():
    procs = gwtest.Procs()
    failures = []
    try:
        demo_round_trip(procs, failures)
        deep_backend(procs, failures)
    finally:
        procs.stop_all()
    for f in failures:
        print("FAIL", f)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
