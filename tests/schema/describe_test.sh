#!/bin/sh
# Integration test of `grpcgate describe`: the demo schema's output must match
# the golden file byte for byte; load errors exit 1 naming the file and the
# symbol; usage errors exit 2.
# usage: describe_test.sh GRPCGATE DEMO_PB GOLDEN REGISTRY_PB BAD_PB
set -u
gw=$1 demo=$2 golden=$3 registry=$4 bad=$5
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run NAME WANT_STATUS ARGS...: runs grpcgate, keeps stdout/stderr in $tmp.
run() {
    name=$1 want=$2
    shift 2
    "$gw" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    got=$?
    [ "$got" -eq "$want" ] || fail "$name: exit status $got, want $want ($(head -c 300 "$tmp/$name.err"))"
}

# expect_in NAME STREAM TEXT: the stream (out|err) contains TEXT.
expect_in() {
    grep -F -q -- "$3" "$tmp/$1.$2" || fail "$1: $2 lacks '$3': $(head -c 300 "$tmp/$1.$2")"
}

expect_empty() {
    [ ! -s "$tmp/$1.$2" ] || fail "$1: $2 should be empty: $(head -c 300 "$tmp/$1.$2")"
}

run demo 0 describe --descriptor "$demo"
if ! cmp -s "$tmp/demo.out" "$golden"; then
    fail "demo: output differs from $golden:"
    diff -u "$golden" "$tmp/demo.out" | head -40
fi
expect_empty demo err

run demo_eq 0 describe "--descriptor=$demo"
cmp -s "$tmp/demo_eq.out" "$golden" || fail "demo_eq: --descriptor=FILE output differs"

run two 0 describe --descriptor "$demo" --descriptor "$registry"
expect_in two out "total: 5 services, 29 methods, 25 routes"
expect_in two out "    route OPTIONS /v1/d:probe (additional)"
expect_in two out "  method /registry.test.svc.Streams/Bidi bidi-streaming registry.test.svc.Req -> registry.test.svc.Resp"

run bad 1 describe --descriptor "$bad"
expect_empty bad out
expect_in bad err "grpcgate describe: $bad: user.proto: fx.v1.User.address: unknown type .fx.v1.Adress"

run missing 1 describe --descriptor "$tmp/nonexistent.pb"
expect_in missing err "$tmp/nonexistent.pb"

printf 'not a descriptor set' >"$tmp/text.pb"
run text 1 describe --descriptor "$tmp/text.pb"
expect_in text err "$tmp/text.pb: not a descriptor set"

: >"$tmp/empty.pb"
run empty 1 describe --descriptor "$tmp/empty.pb"
expect_in empty err "$tmp/empty.pb: empty file"

run noargs 2 describe
expect_in noargs err "at least one --descriptor"
expect_in noargs err "usage: grpcgate describe"
expect_empty noargs out

run badflag 2 describe --descriptor "$demo" --bogus
expect_in badflag err "unknown argument '--bogus'"
expect_empty badflag out

run noval 2 describe --descriptor
expect_in noval err "--descriptor needs a file"

run help 0 describe --help
expect_in help out "usage: grpcgate describe --descriptor FILE"
expect_empty help err

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "describe: all checks passed"
