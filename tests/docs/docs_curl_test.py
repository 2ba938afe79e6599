#!/usr/bin/env python3
"""Runs the curl examples of the README and the quick start against a real
`grpcgate demo` (docs/rest.md has its own exact-output check in rest_e2e).

Every curl command inside a fenced code block of the listed pages that
targets the demo's address (127.0.0.1:8080 or localhost:8080) is run, in
document order, against `grpcgate demo --listen 127.0.0.1:0` (the address is
rewritten to the port it picked). A command passes when curl exits 0 and
the gateway answered with exactly the HTTP status EXPECTED states for that
command, with a non-empty body. A documented command without an entry in
EXPECTED fails: each new example must state the status the reader will see.
Lines continued with a backslash are joined; shell variables defined in the
same block are not supported (such lines are skipped, and reported).

usage: docs_curl_test.py GRPCGATE SOURCE_ROOT PAGE...
"""
import os
import re
import signal
import subprocess
import sys
import time

ADDR_RE = re.compile(r'(?:127\.0\.0\.1|localhost):8080')

# The HTTP status each documented command gets from `grpcgate demo` (as the
# page says: a 404 example is a 404, not "anything below 500"). Keyed by the
# command as extracted (continuation lines joined with one space).
EXPECTED = {
    "curl -s http://127.0.0.1:8080/v1/users/1": 200,
    "curl -s 'http://127.0.0.1:8080/v1/users/1?pretty'": 200,
    "curl -s -X POST http://127.0.0.1:8080/v1/users -H 'Content-Type: application/json' "
    "-d '{\"name\":\"Katherine Johnson\",\"email\":\"katherine@example.com\"}'": 200,
    "curl -s -X PATCH http://127.0.0.1:8080/v1/users/2 -H 'Content-Type: application/json' "
    "-d '{\"email\":\"alan.turing@example.com\"}'": 200,
    "curl -sN 'http://127.0.0.1:8080/v1/users?pageSize=5&delay=0.5s'": 200,
    "curl -s 'http://127.0.0.1:8080/v1/users?pageSize=2'": 200,
    "curl -s 'http://127.0.0.1:8080/v1/users?pageSize=10'": 200,
    "curl -sN 'http://127.0.0.1:8080/v1/users?pageSize=5&delay=0.5s&follow=true'": 200,
    "curl -sN -H 'Accept: text/event-stream' 'http://127.0.0.1:8080/v1/users?pageSize=3'": 200,
    "curl -s -i http://127.0.0.1:8080/v1/users/99": 404,
    "curl -s -X POST http://127.0.0.1:8080/demo.v1.EchoService/Unbound "
    "-H 'Content-Type: application/json' -d '{\"message\":\"no http rule needed\"}'": 200,
    "curl -G http://127.0.0.1:8080/demo.v1.UserService/GetUser --data-urlencode connect=v1 "
    "--data-urlencode encoding=json --data-urlencode 'message={\"id\":1}'": 200,
    "curl -s -G http://127.0.0.1:8080/demo.v1.UserService/GetUser --data-urlencode connect=v1 "
    "--data-urlencode encoding=json --data-urlencode 'message={\"id\":99}'": 404,
    "curl -s http://127.0.0.1:8080/demo.v1.EchoService/Echo -H 'Content-Type: application/json' "
    "-H 'Connect-Protocol-Version: 1' -d '{\"message\":\"hi\"}'": 200,
    "curl -s -i http://127.0.0.1:8080/demo.v1.EchoService/Fail -H 'Content-Type: application/json' "
    "-H 'Connect-Protocol-Version: 1' -d '{\"code\":3,\"message\":\"bad\"}'": 400,
}


def extract(path):
    """(line number, command) for every curl command in fenced blocks."""
    out = []
    in_block = False
    pending, start = None, 0
    with open(path, encoding='utf-8') as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip('\n')
            if line.lstrip().startswith('```'):
                in_block = not in_block
                pending = None
                continue
            if not in_block:
                continue
            text = line.strip()
            if pending is not None:
                pending += ' ' + text.rstrip('\\').strip()
                if not text.endswith('\\'):
                    out.append((start, pending))
                    pending = None
                continue
            text = re.sub(r'^\$\s+', '', text)
            if text.startswith('curl '):
                cmd = text.split('  #')[0].rstrip()
                if cmd.endswith('\\'):
                    pending, start = cmd.rstrip('\\').strip(), n
                else:
                    out.append((n, cmd))
    return out


def start_demo(grpcgate):
    proc = subprocess.Popen([grpcgate, 'demo', '--listen', '127.0.0.1:0', '--workers', '1'],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r'listening on (\S+)', line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise SystemExit('grpcgate demo did not report its address')


def main(argv):
    grpcgate, root, pages = argv[1], argv[2], argv[3:]
    proc, addr = start_demo(grpcgate)
    passed = failed = skipped = 0
    try:
        for page in pages:
            for lineno, cmd in extract(os.path.join(root, page)):
                where = '%s:%d' % (page, lineno)
                if not ADDR_RE.search(cmd):
                    continue
                if '$' in cmd.replace("'$", ''):
                    print('SKIP %s (uses shell variables): %s' % (where, cmd))
                    skipped += 1
                    continue
                want = EXPECTED.get(cmd)
                if want is None:
                    print('FAIL %s: no expected status for this example: add it to EXPECTED in '
                          'tests/docs/docs_curl_test.py\n  command: %s' % (where, cmd))
                    failed += 1
                    continue
                run = ADDR_RE.sub(addr, cmd)
                # Append the status code so a 5xx is caught; -m bounds streams.
                run = run.replace('curl ', "curl -m 20 -w '\\n@@status=%{http_code}' ", 1)
                r = subprocess.run(['bash', '-c', run], capture_output=True, text=True,
                                   timeout=40)
                m = re.search(r'@@status=(\d+)$', r.stdout)
                status = int(m.group(1)) if m else 0
                body = r.stdout[:m.start()] if m else r.stdout
                ok = r.returncode == 0 and status == want and body.strip() != ''
                if ok:
                    passed += 1
                    print('ok   %s -> HTTP %d' % (where, status))
                else:
                    failed += 1
                    print('FAIL %s -> curl exit %d, HTTP %d (expected %d)\n  command: %s\n  output: %s'
                          % (where, r.returncode, status, want, cmd, r.stdout[:500] + r.stderr[:500]))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    if passed == 0:
        print('no curl example found: the extraction is broken')
        return 1
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
