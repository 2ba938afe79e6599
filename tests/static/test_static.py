"""Static files through the real binary on loopback: `grpcgate demo --static
DIR` (the demo service gives REST routes to compete with), `grpcgate serve
--static DIR`, and `grpcgate demo` finding the built web page by itself, both
from the build tree and from an installed layout (bin/ + share/grpcgate/).

Also byte ranges (206/416, If-Range, HEAD, curl -r and curl -C -) and the
caching policy by name: index.html revalidated, content-hashed names
immutable for a year, anything else a minute.

Requests go out over raw sockets so that the target reaches the gateway
byte for byte (no client-side normalisation of "..") and so that a HEAD
answer can be checked for the absence of body bytes."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# GW_STRICT=1 (.ci/run): a tool scripts/setup installs is required, not skipped.
STRICT = os.environ.get("GW_STRICT") == "1"

GRPCGATE = os.environ["GW_GRPCGATE"]
DEMO_DESC = os.environ.get("GW_DEMO_DESC", "")
BUILD_ROOT = os.environ["GW_BUILD_ROOT"]
WEB_DIR = os.path.join(BUILD_ROOT, "web-demo")
START_TIMEOUT = 60
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

INDEX = b"<!doctype html><title>static test</title>\n"
SUB_INDEX = b"<p>sub index</p>\n"
SECRET = b"outside the static dir\n"

# name -> expected Content-Type (the bodies are the names themselves).
CONTENT_TYPES = [
    ("page.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("mod.mjs", "text/javascript; charset=utf-8"),
    ("style.css", "text/css; charset=utf-8"),
    ("logo.svg", "image/svg+xml"),
    ("a.png", "image/png"),
    ("B.PNG", "image/png"),
    ("a.jpg", "image/jpeg"),
    ("a.gif", "image/gif"),
    ("a.webp", "image/webp"),
    ("favicon.ico", "image/x-icon"),
    ("data.json", "application/json"),
    ("app.js.map", "application/json"),
    ("robots.txt", "text/plain; charset=utf-8"),
    ("m.wasm", "application/wasm"),
    ("f.woff2", "font/woff2"),
    ("archive.bin", "application/octet-stream"),
    ("README", "application/octet-stream"),
]

# Targets that try to leave the directory or smuggle a separator: refused
# with 400 before any file system access. The passwd file must never appear.
REFUSED = [
    "/../etc/passwd",
    "/..",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/etc/passwd",
    "/.%2e/etc/passwd",
    "/..%2fetc/passwd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%2fetc/passwd",
    "/a/../../etc/passwd",
    "/sub/../index.html",
    "/./index.html",
    "/..%5c..%5cetc/passwd",
    "/..\\..\\etc/passwd",
    "/index.html%00",
    "/index.html%00.png",
    "//etc/passwd",
    "/sub//index.html",
    "/%zz",
]

# Targets that name nothing servable: 404.
NOT_FOUND = [
    "/missing.html",
    "/sub/missing.js",
    "/sub",                    # a directory without the slash
    "/noindex/",               # a directory without index.html
    "/etc_link/passwd",        # symlink to /etc
    "/etc_link/",
    "/secret_link.txt",        # symlink to a file outside
    "/inside_link.html",       # symlink to a file inside: no symlinks at all
    "/sub_link/index.html",    # symlink to a directory inside
    "/.hidden",
    "/.git/config",
    "/fifo",                   # not a regular file (and must not block)
    "/index.html/",
]


class Response:
    def __init__(self, raw):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def header(self, name):
        return self.headers.get(name.lower())


def request(port, method, target, headers=None):
    """One request on its own connection (Connection: close); the whole
    answer as the server sent it."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:%d" % port,
             "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return Response(b"".join(chunks))


class Gateway:
    """A grpcgate process on a free port, stopped (and its exit status
    checked: leaks fail the sanitizer build) by stop()."""

    def __init__(self, args, tmp):
        self.out_path = os.path.join(tmp, "out-%d.txt" % time.monotonic_ns())
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise AssertionError("grpcgate exited early:\n" + self.output())
            for line in self.output().splitlines():
                if line.startswith("listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
            time.sleep(0.05)
        if self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("grpcgate did not start:\n" + self.output())

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        return self.proc.returncode


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(root, outside):
    write(os.path.join(outside, "secret.txt"), SECRET)
    write(os.path.join(root, "index.html"), INDEX)
    write(os.path.join(root, "sub", "index.html"), SUB_INDEX)
    write(os.path.join(root, "sub", "x.css"), b"body{}\n")
    os.makedirs(os.path.join(root, "noindex"))
    write(os.path.join(root, "noindex", "a.txt"), b"a\n")
    for name, _ in CONTENT_TYPES:
        write(os.path.join(root, name), name.encode())
    # 300 KB of non-repeating bytes: several sendfile rounds.
    write(os.path.join(root, "big.bin"), bytes((i * 7 + i // 251) & 0xFF for i in range(300000)))
    write(os.path.join(root, "a b.txt"), b"space\n")
    write(os.path.join(root, "empty.txt"), b"")
    # Names with and without a build's content hash (docs/static.md).
    write(os.path.join(root, "assets", "app-7KQ2MZ4D.js"), b"hashed\n")
    write(os.path.join(root, "assets", "style-ABCDEFGH.css"), b"hashed css\n")
    write(os.path.join(root, "log-20241121.txt"), b"a date, not a hash\n")
    write(os.path.join(root, "app-abcd1234.js"), b"lower case\n")
    write(os.path.join(root, ".hidden"), b"hidden\n")
    write(os.path.join(root, ".git", "config"), b"[core]\n")
    # A file where the demo's REST route GET /v1/users/{id} lives.
    write(os.path.join(root, "v1", "users", "1"), b"the file, not the route\n")
    os.symlink("/etc", os.path.join(root, "etc_link"))
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "secret_link.txt"))
    os.symlink("index.html", os.path.join(root, "inside_link.html"))
    os.symlink("sub", os.path.join(root, "sub_link"))
    os.mkfifo(os.path.join(root, "fifo"))


class StaticDemo(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gw-static-")
        cls.root = os.path.join(cls.tmp, "www")
        make_tree(cls.root, os.path.join(cls.tmp, "outside"))
        cls.gw = Gateway([GRPCGATE, "demo", "--listen", "127.0.0.1:0", "--workers", "2",
                          "--static", cls.root], cls.tmp)
        cls.port = cls.gw.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        out = cls.gw.output()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("grpcgate demo exited with %s:\n%s" % (rc, out[-4000:]))

    def get(self, target, method="GET", headers=None):
        return request(self.port, method, target, headers)

    def assert_file(self, r, body, ctype):
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, body)
        self.assertEqual(r.header("content-type"), ctype)
        self.assertEqual(r.header("content-length"), str(len(body)))
        self.assertEqual(r.header("x-content-type-options"), "nosniff")

    def test_index(self):
        for target in ["/", "/index.html", "/?x=1", "/index.html?v=2"]:
            with self.subTest(target=target):
                r = self.get(target)
                self.assert_file(r, INDEX, "text/html; charset=utf-8")
                self.assertEqual(r.header("cache-control"), "no-cache")
        r = self.get("/sub/")
        self.assert_file(r, SUB_INDEX, "text/html; charset=utf-8")
        self.assertEqual(r.header("cache-control"), "no-cache")

    def test_files(self):
        r = self.get("/sub/x.css")
        self.assert_file(r, b"body{}\n", "text/css; charset=utf-8")
        self.assertEqual(r.header("cache-control"), "max-age=60")
        self.assert_file(self.get("/a%20b.txt"), b"space\n", "text/plain; charset=utf-8")
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            big = f.read()
        self.assert_file(self.get("/big.bin"), big, "application/octet-stream")

    def test_content_types(self):
        for name, ctype in CONTENT_TYPES:
            with self.subTest(name=name):
                self.assert_file(self.get("/" + name), name.encode(), ctype)

    def test_refused(self):
        for target in REFUSED:
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual(r.status, 400, r.body)
                self.assertTrue(r.body.startswith(b"bad path: "), r.body)
                self.assertNotIn(b"root:", r.body)

    def test_not_found(self):
        for target in NOT_FOUND:
            with self.subTest(target=target):
                r = self.get(target, headers={"Accept": BROWSER_ACCEPT})
                self.assertEqual((r.status, r.body), (404, b"404 not found\n"))
                self.assertEqual(r.header("content-type"), "text/plain; charset=utf-8")
                self.assertNotIn(SECRET, r.body)

    def test_not_found_json_for_everyone_else(self):
        # curl (no Accept or */*), fetch() and API clients get REST's JSON
        # 404, as without static files.
        for accept in [None, "*/*", "application/json"]:
            with self.subTest(accept=accept):
                r = self.get("/missing.html", headers={"Accept": accept} if accept else None)
                self.assertEqual(r.status, 404)
                self.assertEqual(r.header("content-type"), "application/json")
                self.assertEqual(json.loads(r.body),
                                 {"code": 5, "message": "no route for GET /missing.html",
                                  "details": []})

    def test_head(self):
        r = self.get("/index.html", "HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("content-length"), str(len(INDEX)))
        self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("etag"), self.get("/index.html").header("etag"))
        r = self.get("/missing.html", "HEAD", {"Accept": BROWSER_ACCEPT})
        self.assertEqual((r.status, r.body), (404, b""))

    def test_other_methods_are_not_static(self):
        # POST is never served from the directory: it goes to REST (JSON 404).
        r = self.get("/index.html", "POST", {"Content-Length": "0"})
        self.assertEqual(r.status, 404)
        self.assertNotEqual(r.body, INDEX)
        self.assertTrue(r.header("content-type").startswith("application/json"))

    def test_etag(self):
        r = self.get("/app.js")
        etag = r.header("etag")
        self.assertRegex(etag, r'^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$')
        cases = [
            (etag, 304),
            ("W/" + etag, 304),
            ('"nope", ' + etag, 304),
            ("*", 304),
            ('"nope"', 200),
            (etag[:-2] + '"', 200),
        ]
        for inm, status in cases:
            with self.subTest(if_none_match=inm):
                r2 = self.get("/app.js", headers={"If-None-Match": inm})
                self.assertEqual(r2.status, status)
                if status == 304:
                    self.assertEqual(r2.body, b"")
                    self.assertEqual(r2.header("etag"), etag)
                    self.assertEqual(r2.header("cache-control"), "max-age=60")
                else:
                    self.assertEqual(r2.body, b"app.js")
        # A different file has a different tag.
        self.assertNotEqual(self.get("/mod.mjs").header("etag"), etag)

    def test_etag_changes_with_the_file(self):
        path = os.path.join(self.root, "changing.txt")
        write(path, b"one\n")
        os.utime(path, (1000000000, 1000000000))
        first = self.get("/changing.txt")
        self.assertEqual(first.body, b"one\n")
        write(path, b"two\n")
        os.utime(path, (1000000100, 1000000100))
        r = self.get("/changing.txt", headers={"If-None-Match": first.header("etag")})
        self.assertEqual((r.status, r.body), (200, b"two\n"))
        self.assertNotEqual(r.header("etag"), first.header("etag"))

    def test_if_modified_since(self):
        path = os.path.join(self.root, "dated.txt")
        write(path, b"dated\n")
        os.utime(path, (784111777, 784111777))
        r = self.get("/dated.txt")
        self.assertEqual(r.header("last-modified"), "Sun, 06 Nov 1994 08:49:37 GMT")
        cases = [
            ("Sun, 06 Nov 1994 08:49:37 GMT", None, 304),
            ("Mon, 07 Nov 1994 00:00:00 GMT", None, 304),
            ("Sun, 06 Nov 1994 08:49:36 GMT", None, 200),
            ("Thu, 01 Jan 1970 00:00:00 GMT", None, 200),
            ("not a date", None, 200),
            # If-None-Match wins over If-Modified-Since.
            ("Sun, 06 Nov 1994 08:49:37 GMT", '"other"', 200),
        ]
        for ims, inm, status in cases:
            with self.subTest(ims=ims, inm=inm):
                h = {"If-Modified-Since": ims}
                if inm:
                    h["If-None-Match"] = inm
                r2 = self.get("/dated.txt", headers=h)
                self.assertEqual(r2.status, status)
                self.assertEqual(r2.body, b"" if status == 304 else b"dated\n")

    def test_rest_route_wins(self):
        r = self.get("/v1/users/1")
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.body)["name"], "Ada Lovelace")
        # HEAD wherever GET: the REST route answers it, headers only.
        r = self.get("/v1/users/1", "HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.body, b"")
        # A path the route table has for another method: still REST's (405).
        r = self.get("/v1/users/1", "PUT")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "DELETE, GET, HEAD, PATCH")
        # Files elsewhere under v1/ that no route claims are served.
        write(os.path.join(self.root, "v1", "notes.txt"), b"notes\n")
        self.assert_file(self.get("/v1/notes.txt"), b"notes\n", "text/plain; charset=utf-8")

    def test_plain_options(self):
        # A plain OPTIONS names what the path answers: a file GET and HEAD,
        # a REST path its routes; nothing at all is a 404 (docs/rest.md).
        r = self.get("/sub/x.css", "OPTIONS")
        self.assertEqual((r.status, r.header("allow"), r.body), (204, "GET, HEAD, OPTIONS", b""))
        r = self.get("/", "OPTIONS")
        self.assertEqual((r.status, r.header("allow")), (204, "GET, HEAD, OPTIONS"))
        r = self.get("/v1/users/1", "OPTIONS")
        self.assertEqual((r.status, r.header("allow")), (204, "DELETE, GET, HEAD, PATCH, OPTIONS"))
        r = self.get("/missing.html", "OPTIONS")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("allow"))

    def big(self):
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            return f.read()

    def test_range(self):
        big = self.big()
        size = len(big)
        etag = self.get("/big.bin").header("etag")
        # Range -> (status, Content-Range, body); the RFC 9110 forms, then
        # what is ignored (200, the whole file) and what cannot be served.
        cases = [
            ("bytes=0-0", 206, "bytes 0-0/300000", big[0:1]),
            ("bytes=1000-1999", 206, "bytes 1000-1999/300000", big[1000:2000]),
            ("bytes=299990-", 206, "bytes 299990-299999/300000", big[299990:]),
            ("bytes=0-", 206, "bytes 0-299999/300000", big),
            ("bytes=-10", 206, "bytes 299990-299999/300000", big[-10:]),
            ("bytes=-300001", 206, "bytes 0-299999/300000", big),
            ("bytes=299999-400000", 206, "bytes 299999-299999/300000", big[-1:]),
            ("bytes=100-99999999999999999999999", 206, "bytes 100-299999/300000", big[100:]),
            ("Bytes=5-9", 206, "bytes 5-9/300000", big[5:10]),
            (" bytes=5-9, ", 206, "bytes 5-9/300000", big[5:10]),
            ("bytes=300000-", 416, "bytes */300000", b"range not satisfiable\n"),
            ("bytes=400000-500000", 416, "bytes */300000", b"range not satisfiable\n"),
            ("bytes=-0", 416, "bytes */300000", b"range not satisfiable\n"),
            ("bytes=5-1", 200, None, big),
            ("bytes=0-1,5-6", 200, None, big),
            ("bytes=0-1, 400000-", 200, None, big),
            ("items=0-1", 200, None, big),
            ("0-1", 200, None, big),
            ("bytes=a-b", 200, None, big),
            ("bytes = 0-1", 200, None, big),
            ("bytes=0 - 1", 200, None, big),
        ]
        for value, status, content_range, body in cases:
            with self.subTest(range=value):
                r = self.get("/big.bin", headers={"Range": value})
                self.assertEqual(r.status, status)
                self.assertEqual(r.body, body)
                self.assertEqual(r.header("content-length"), str(len(body)))
                self.assertEqual(r.header("content-range"), content_range)
                self.assertEqual(r.header("accept-ranges"), "bytes")
                if status == 416:
                    self.assertEqual(r.header("content-type"), "text/plain; charset=utf-8")
                    self.assertIsNone(r.header("etag"))
                    self.assertIsNone(r.header("cache-control"))
                else:
                    self.assertEqual(r.header("content-type"), "application/octet-stream")
                    self.assertEqual(r.header("etag"), etag)
                    self.assertEqual(r.header("cache-control"), "max-age=60")
                # HEAD answers with the same head and no body.
                h = self.get("/big.bin", "HEAD", {"Range": value})
                self.assertEqual(h.status, status)
                self.assertEqual(h.body, b"")
                self.assertEqual(h.header("content-length"), str(len(body)))
                self.assertEqual(h.header("content-range"), content_range)

    def test_range_small_files(self):
        cases = [
            ("/empty.txt", "bytes=0-", 416, "bytes */0", b"range not satisfiable\n"),
            ("/empty.txt", "bytes=0-0", 416, "bytes */0", b"range not satisfiable\n"),
            ("/empty.txt", "bytes=-5", 200, None, b""),
            ("/robots.txt", "bytes=-100", 206, "bytes 0-9/10", b"robots.txt"),
            ("/robots.txt", "bytes=9-9", 206, "bytes 9-9/10", b"t"),
            ("/robots.txt", "bytes=10-", 416, "bytes */10", b"range not satisfiable\n"),
        ]
        for target, value, status, content_range, body in cases:
            with self.subTest(target=target, range=value):
                r = self.get(target, headers={"Range": value})
                self.assertEqual((r.status, r.body), (status, body))
                self.assertEqual(r.header("content-range"), content_range)
                self.assertEqual(r.header("content-length"), str(len(body)))

    def test_range_with_curl(self):
        curl = shutil.which("curl")
        if not curl:
            if STRICT:
                self.fail("curl not installed (scripts/setup installs it)")
            self.skipTest("curl not installed")
        big = self.big()
        url = "http://127.0.0.1:%d/big.bin" % self.port
        for spec, want, content_range in [
            ("100-199", big[100:200], "bytes 100-199/300000"),
            ("-50", big[-50:], "bytes 299950-299999/300000"),
            ("250000-", big[250000:], "bytes 250000-299999/300000"),
        ]:
            with self.subTest(r=spec):
                p = subprocess.run([curl, "-sS", "-r", spec, "-D", "-", "-o",
                                    os.path.join(self.tmp, "part"), url],
                                   capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                head = p.stdout.decode("latin-1")
                self.assertTrue(head.startswith("HTTP/1.1 206 Partial Content\r\n"), head)
                self.assertIn("\r\nContent-Range: %s\r\n" % content_range, head)
                with open(os.path.join(self.tmp, "part"), "rb") as f:
                    self.assertEqual(f.read(), want)
        # curl -C - resumes a cut download with "Range: bytes=N-".
        part = os.path.join(self.tmp, "resume")
        with open(part, "wb") as f:
            f.write(big[:123456])
        p = subprocess.run([curl, "-sS", "-C", "-", "-o", part, url],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(part, "rb") as f:
            self.assertEqual(f.read(), big)

    def test_if_range(self):
        path = os.path.join(self.root, "ranged.txt")
        write(path, b"0123456789")
        os.utime(path, (784111777, 784111777))
        etag = self.get("/ranged.txt").header("etag")
        cases = [
            (etag, 206),
            ("W/" + etag, 200),                            # weak: never for a range
            ('"other"', 200),
            ("Sun, 06 Nov 1994 08:49:37 GMT", 206),        # the Last-Modified date
            ("Sun, 06 Nov 1994 08:49:38 GMT", 200),        # exact match only
            ("Sun, 06 Nov 1994 08:49:36 GMT", 200),
            ("garbage", 200),
        ]
        for if_range, status in cases:
            with self.subTest(if_range=if_range):
                r = self.get("/ranged.txt", headers={"Range": "bytes=2-4", "If-Range": if_range})
                self.assertEqual(r.status, status)
                self.assertEqual(r.body, b"234" if status == 206 else b"0123456789")
        # If-Range alone is ignored; a validator that says "not modified"
        # wins over Range (RFC 9110 13.2.2).
        r = self.get("/ranged.txt", headers={"If-Range": '"other"'})
        self.assertEqual((r.status, r.body), (200, b"0123456789"))
        r = self.get("/ranged.txt", headers={"Range": "bytes=2-4", "If-None-Match": etag})
        self.assertEqual((r.status, r.body), (304, b""))
        self.assertEqual(r.header("accept-ranges"), "bytes")
        self.assertIsNone(r.header("content-range"))

    def test_cache_control(self):
        cases = [
            ("/", "no-cache"),
            ("/sub/", "no-cache"),
            ("/assets/app-7KQ2MZ4D.js", "public, max-age=31536000, immutable"),
            ("/assets/style-ABCDEFGH.css", "public, max-age=31536000, immutable"),
            ("/app.js", "max-age=60"),
            ("/log-20241121.txt", "max-age=60"),
            ("/app-abcd1234.js", "max-age=60"),
        ]
        for target, cache_control in cases:
            with self.subTest(target=target):
                r = self.get(target)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("cache-control"), cache_control)
                self.assertEqual(r.header("accept-ranges"), "bytes")
                # A revalidation answers with the same policy.
                r2 = self.get(target, headers={"If-None-Match": r.header("etag")})
                self.assertEqual(r2.status, 304)
                self.assertEqual(r2.header("cache-control"), cache_control)
        self.assert_file(self.get("/assets/app-7KQ2MZ4D.js"), b"hashed\n",
                         "text/javascript; charset=utf-8")

    def test_keep_alive_after_ranges(self):
        # 206, 416 and 200 on one connection, in order, each framed by its
        # Content-Length.
        big = self.big()
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n"
                      b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=999999-\r\n\r\n"
                      b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        answers = []
        while data:
            head, _, rest = data.partition(b"\r\n\r\n")
            r = Response(head + b"\r\n\r\n")
            n = int(r.header("content-length"))
            answers.append((r.status, rest[:n]))
            data = rest[n:]
        self.assertEqual(answers, [(206, big[10:20]), (416, b"range not satisfiable\n"),
                                   (200, b"robots.txt")])

    def test_keep_alive(self):
        # Two files on one connection: the fd response leaves it reusable.
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            req = b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            s.sendall(req + req.replace(b"robots.txt", b"data.json")[:-2] +
                      b"Connection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2)
        self.assertTrue(data.endswith(b"data.json"))
        self.assertIn(b"robots.txt", data)


class StaticServe(unittest.TestCase):
    """`grpcgate serve --static` (the backend is never called here)."""

    def test_serve_flag(self):
        self.assertTrue(DEMO_DESC, "no demo descriptors (GW_DEMO_DESC; tests/meson.build sets it)")
        tmp = tempfile.mkdtemp(prefix="gw-static-serve-")
        try:
            write(os.path.join(tmp, "www", "index.html"), INDEX)
            gw = Gateway([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--workers", "1",
                          "--backend", "http://127.0.0.1:1", "--descriptor", DEMO_DESC,
                          "--static", os.path.join(tmp, "www")], tmp)
            try:
                r = request(gw.port, "GET", "/")
                self.assertEqual((r.status, r.body), (200, INDEX))
                r = request(gw.port, "GET", "/%2e%2e/")
                self.assertEqual(r.status, 400)
            finally:
                self.assertEqual(gw.stop(), 0, gw.output()[-4000:])
            # A static dir that does not exist stops the start with a message.
            p = subprocess.run([GRPCGATE, "serve", "--listen", "127.0.0.1:0",
                                "--backend", "http://127.0.0.1:1", "--descriptor", DEMO_DESC,
                                "--static", os.path.join(tmp, "nope")],
                               capture_output=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"static directory", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class DemoPage(unittest.TestCase):
    """`grpcgate demo` serves the built web page at / by itself."""

    def check_page(self, args, tmp):
        gw = Gateway(args, tmp)
        try:
            r = request(gw.port, "GET", "/")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("content-type"), "text/html; charset=utf-8")
            self.assertEqual(r.header("cache-control"), "no-cache")
            with open(os.path.join(WEB_DIR, "index.html"), "rb") as f:
                self.assertEqual(r.body, f.read())
            # The page names its bundle and style sheet by content hash, and
            # those are cached for a year.
            app = re.findall(rb'<script type="module" src="(assets/app-[A-Z0-9]{8}\.js)">', r.body)
            css = re.findall(rb'<link rel="stylesheet" href="(assets/style-[A-Z0-9]{8}\.css)">',
                             r.body)
            self.assertEqual((len(app), len(css)), (1, 1), r.body)
            self.assertNotIn(b"{{", r.body)
            for name, ctype in [(app[0], "text/javascript; charset=utf-8"),
                                (css[0], "text/css; charset=utf-8")]:
                r = request(gw.port, "GET", "/" + name.decode())
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("content-type"), ctype)
                self.assertEqual(r.header("cache-control"), "public, max-age=31536000, immutable")
                with open(os.path.join(WEB_DIR, name.decode()), "rb") as f:
                    self.assertEqual(r.body, f.read())
            self.assertEqual(request(gw.port, "GET", "/favicon.svg").header("cache-control"),
                             "max-age=60")
            # Only the hashed names exist: nothing stale from older builds.
            self.assertEqual(sorted(os.listdir(os.path.join(WEB_DIR, "assets"))),
                             sorted([os.path.basename(app[0].decode()),
                                     os.path.basename(css[0].decode())]))
            r = request(gw.port, "GET", "/app.js", {"Accept": BROWSER_ACCEPT})
            self.assertEqual(r.status, 404)
            self.assertIn("Open the web demo:  http://127.0.0.1:%d/" % gw.port, gw.output())
        finally:
            self.assertEqual(gw.stop(), 0, gw.output()[-4000:])

    def setUp(self):
        # meson builds the page before this test (depends: web_demo).
        self.assertTrue(os.path.isdir(os.path.join(WEB_DIR, "assets")),
                        "web demo not built in %s (node_modules missing? run scripts/setup)" % WEB_DIR)
        self.tmp = tempfile.mkdtemp(prefix="gw-static-demo-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_from_build_dir(self):
        self.check_page([GRPCGATE, "demo", "--listen", "127.0.0.1:0", "--workers", "1"],
                        self.tmp)

    def test_installed_layout(self):
        # What `meson install` lays out: <prefix>/bin/grpcgate and
        # <prefix>/share/grpcgate/web-demo/.
        prefix = os.path.join(self.tmp, "prefix")
        os.makedirs(os.path.join(prefix, "bin"))
        exe = os.path.join(prefix, "bin", "grpcgate")
        shutil.copy2(GRPCGATE, exe)
        shutil.copytree(WEB_DIR, os.path.join(prefix, "share", "grpcgate", "web-demo"),
                        ignore=shutil.ignore_patterns(".*"))
        self.check_page([exe, "demo", "--listen", "127.0.0.1:0", "--workers", "1"], self.tmp)


if __name__ == "__main__":
    unittest.main(verbosity=2)
