"""The command line as a new user meets it (issue 16): bare `grpcgate`, the
usage text and the documents that repeat it, the README's try-it-on-the-demo
commands, several --backend flags forming one balanced backend, and the log
of a normal start and stop (with --reflect) reading as routine."""
import os
import re
import shlex
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("GW_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "front"))
sys.path.insert(0, os.path.join(HERE, "..", "ops"))
from gwtest import GRPCGATE, DEMO_DESC, Procs, frame, grpcweb, pb_string, request  # noqa: E402
from test_ops import parse_metrics, metric  # noqa: E402

ECHO = "/demo.v1.EchoService/Echo"


def run(*args):
    return subprocess.run([GRPCGATE] + list(args), capture_output=True, text=True, timeout=60)


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def usage_block(help_text):
    """The lines after 'usage:' up to the first blank line, without the
    two-space indent."""
    body = help_text.split("usage:\n", 1)[1].split("\n\n", 1)[0]
    return [line[2:] for line in body.splitlines()]


def fenced_after(text, heading):
    """The first fenced block after heading."""
    rest = text[text.index(heading):]
    m = re.search(r"```[a-z]*\n(.*?)```", rest, re.S)
    return m.group(1).rstrip("\n").splitlines()


def flags_of(text):
    return set(re.findall(r"--[a-z][a-z-]+", text))


class Usage(unittest.TestCase):
    def test_bare_command_is_a_usage_error(self):
        r = run()
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertIn("usage:", r.stderr)
        # like an unknown command
        r2 = run("nope")
        self.assertEqual(r2.returncode, 2)
        self.assertIn("unknown command 'nope'", r2.stderr)
        # asking for help is not an error
        for arg in ("--help", "help", "-h"):
            r = run(arg)
            self.assertEqual((r.returncode, r.stderr), (0, ""), arg)
            self.assertIn("usage:", r.stdout)

    def test_readme_commands_block_is_the_help(self):
        lines = usage_block(run("--help").stdout)
        self.assertEqual(fenced_after(read("README.md"), "## Commands"), lines)

    def test_serve_help_and_configuration_md_agree(self):
        out = run("serve", "--help")
        self.assertEqual(out.returncode, 0)
        syn = usage_block(out.stdout)
        conf = read("docs/configuration.md")
        self.assertEqual(fenced_after(conf, "## Flags"), syn)
        # the serve lines of the overall help are the same source
        top = usage_block(run("--help").stdout)
        serve_top = [l for l in top if l.startswith("grpcgate serve") or l.startswith(" ")]
        self.assertEqual(serve_top, [l for l in syn if "--config FILE [flags]" not in l])
        # --descriptor and --reflect are alternatives, not both required
        self.assertIn("(--descriptor FILE... | --reflect)", syn[0])
        # every flag --help explains is in the synopsis, in the README's
        # block and in the Flags table, and the table has no other
        explained = {l.split()[0] for l in out.stdout.splitlines() if l.startswith("  --")}
        table = conf[conf.index("## Flags"):conf.index("\n## ", conf.index("## Flags") + 3)]
        table_flags = flags_of("\n".join(l.split("|")[1] for l in table.splitlines()
                                         if l.startswith("| `--")))
        self.assertEqual(explained, table_flags)
        self.assertLessEqual(explained, flags_of("\n".join(syn)))
        self.assertLessEqual(explained, flags_of("\n".join(top)))
        self.assertIn("--log-level", explained)


class Scripts(unittest.TestCase):
    """scripts/demo then scripts/test must not rebuild everything: both
    configure build/ through scripts/configure with the same options."""

    def test_demo_and_test_share_the_build_configuration(self):
        demo, test = read("scripts/demo"), read("scripts/test")
        for name, text in (("demo", demo), ("test", test)):
            self.assertNotIn("meson setup", text, name)
            self.assertNotIn("meson configure", text, name)
        self.assertRegex(demo, r"(?m)^scripts/configure build\s*(#.*)?$")
        self.assertRegex(test, r"(?m)^\s*scripts/configure \"\$@\"")
        self.assertRegex(test, r"(?m)configure build &&")


class Checkout(unittest.TestCase):
    """Everything docs/performance.md and the tests use lives in the clone:
    no test, benchmark or page names a path outside it (the comparison
    peers are bench/peers), and every script the performance page runs
    exists."""

    OUTSIDE = re.compile(r"shared/peers|/work/")

    def test_no_path_outside_the_checkout(self):
        bad = []
        for top in ("tests", "bench", "docs", "scripts", "schemas", "meson.build"):
            base = os.path.join(ROOT, top)
            files = [base] if os.path.isfile(base) else [
                os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs]
            for path in files:
                if "/bench/peers/bin" in path or "/bench/peers/.build" in path or \
                        "/tests/node/gen" in path:
                    continue
                try:  # files other tests write meanwhile may come and go
                    if os.path.getsize(path) > 2_000_000:
                        continue
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                if path.endswith("test_cli.py"):
                    continue
                for n, line in enumerate(text.splitlines(), 1):
                    if self.OUTSIDE.search(line):
                        bad.append("%s:%d: %s" % (os.path.relpath(path, ROOT), n, line.strip()))
        self.assertEqual(bad, [])

    def test_performance_commands_exist(self):
        text = read("docs/performance.md")
        blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
        self.assertTrue(blocks)
        scripts = set()
        for b in blocks:
            scripts |= set(re.findall(r"(?:^|\s)((?:bench|scripts)/[\w./-]+\.sh|bench/peers/setup\.sh)", b))
        self.assertIn("bench/peers/setup.sh", scripts)
        self.assertIn("bench/peers/compare.sh", scripts)
        for s in scripts:
            self.assertTrue(os.access(os.path.join(ROOT, s), os.X_OK), s)


class ReadmeDemoDescriptor(unittest.TestCase):
    """The README's "Your own backend" step names the demo's descriptor set
    and its commands work as written (ports moved to free ones)."""

    def test_commands_on_the_demo_descriptor(self):
        for page in ("README.md", "docs/quickstart.md"):
            text = read(page)
            cmds = [l.split("  #")[0].rstrip(" &") for l in text.splitlines()
                    if l.startswith("build/src/grpcgate") and "demo" in l]
            kinds = [shlex.split(c)[1] for c in cmds]
            self.assertEqual(kinds, ["describe", "demo-service", "serve"], page)
            P = Procs()
            try:
                for c in cmds:
                    args = shlex.split(c)
                    args[0] = GRPCGATE
                    args = [DEMO_DESC if a == "build/schemas/demo.pb" else a for a in args]
                    self.assertTrue(any(a == DEMO_DESC for a in args) or args[1] == "demo-service",
                                    c)
                    if args[1] == "describe":
                        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        self.assertIn("demo.v1.UserService", r.stdout)
                        self.assertIn("GET /v1/users/{id}", r.stdout)
                    elif args[1] == "demo-service":
                        args[args.index("--listen") + 1] = "127.0.0.1:0"
                        _, m = P.start(args, r"listening on [\d.]+:(\d+)", "demo")
                        backend = "http://127.0.0.1:" + m.group(1)
                    else:
                        args[args.index("--listen") + 1] = "127.0.0.1:0"
                        args[args.index("--backend") + 1] = backend
                        _, m = P.start(args, r"listening on [\d.]+:(\d+)", "gateway")
                        r = request(int(m.group(1)), "GET", "/v1/users/1")
                        self.assertEqual(r.status, 200, r.body)
                        self.assertIn(b"Ada Lovelace", r.body)
            finally:
                P.stop_all()


class SeveralBackendFlags(unittest.TestCase):
    def test_one_group_balanced_and_ejected(self):
        P = Procs()
        try:
            demo_a, url_a = P.demo()
            _, url_b = P.demo()
            gw, m = P.start([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", url_a,
                             "--backend", url_b, "--descriptor", DEMO_DESC, "--workers", "1"],
                            r"listening on [\d.]+:(\d+)", "gateway")
            port = int(m.group(1))
            echo = lambda: grpcweb(port, ECHO, frame(pb_string(1, "x")))  # noqa: E731
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ms = parse_metrics(request(port, "GET", "/metrics").body.decode())
                if metric(ms, "grpcgate_upstream_endpoints", backend="default",
                          state="healthy") == 2:
                    break
                echo()
                time.sleep(0.1)
            self.assertEqual(metric(ms, "grpcgate_upstream_endpoints", backend="default",
                                    state="total"), 2)
            before = [metric(ms, "grpcgate_upstream_endpoint_calls_total", backend="default",
                             endpoint=u) for u in (url_a, url_b)]
            for _ in range(20):
                self.assertEqual(echo().grpc_status()[0], 0)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                ms = parse_metrics(request(port, "GET", "/metrics").body.decode())
                calls = [metric(ms, "grpcgate_upstream_endpoint_calls_total", backend="default",
                                endpoint=u) - b for u, b in zip((url_a, url_b), before)]
                if sum(calls) == 20:
                    break
                time.sleep(0.1)
            self.assertEqual(sum(calls), 20)
            self.assertGreaterEqual(min(calls), 5, calls)  # both endpoints serve
            # One goes away: after its ejection the other takes every call.
            P.stop(demo_a)
            ok = 0
            deadline = time.monotonic() + 30
            while ok < 10 and time.monotonic() < deadline:
                ok = ok + 1 if echo().grpc_status()[0] == 0 else 0
            self.assertEqual(ok, 10)
        finally:
            P.stop_all()

    def test_too_many(self):
        args = ["serve", "--descriptor", DEMO_DESC]
        for i in range(33):
            args += ["--backend", "http://127.0.0.1:%d" % (1000 + i)]
        r = run(*args)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--backend", r.stderr)


class LogWording(unittest.TestCase):
    def test_reflect_start_and_normal_stop_read_as_routine(self):
        P = Procs()
        try:
            _, url = P.demo()
            gw, m = P.start([GRPCGATE, "serve", "--listen", "127.0.0.1:0", "--backend", url,
                             "--reflect", "--workers", "1"],
                            r"listening on [\d.]+:(\d+)", "gateway")
            r = request(int(m.group(1)), "GET", "/v1/users/1")
            self.assertEqual(r.status, 200)
            self.assertEqual(P.stop(gw), 0)
            log = P.stderr(gw)
            self.assertIn("stopped", log)
            self.assertNotIn("backend deleted", log)
            for line in log.splitlines():
                if " info " in line or " warn " in line or " error " in line:
                    self.assertNotIn("closed:", line, line)
                    self.assertNotIn("unreachable", line, line)
        finally:
            P.stop_all()


if __name__ == "__main__":
    unittest.main(verbosity=2)
