#!/bin/bash
# grpcgate transcode: outputs and exit statuses (0 done, 1 invalid input of any
# kind — syntax, shape, range, numeric kind, depth, in either direction —,
# 2 usage/setup error, 3 the output could not be written).
# usage: transcode_cli.sh GRPCGATE CODEC_TEST_PB
set -u
G=$1
D=$2
T=codec.test.AllTypes
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check NAME WANT_STATUS WANT_STDOUT_OR_- STDERR_FRAGMENT_OR_- -- ARGS... (stdin from $tmp/in)
check() {
    local name=$1 want=$2 out=$3 err=$4
    shift 5
    "$G" transcode "$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL $name: exit $got, want $want; stderr: $(head -c 300 "$tmp/err")"
        fails=$((fails + 1))
        return
    fi
    if [ "$out" != "-" ] && [ "$(cat "$tmp/out")" != "$out" ]; then
        echo "FAIL $name: stdout '$(head -c 300 "$tmp/out")', want '$out'"
        fails=$((fails + 1))
        return
    fi
    if [ "$err" != "-" ] && ! grep -qF -- "$err" "$tmp/err"; then
        echo "FAIL $name: stderr '$(head -c 300 "$tmp/err")' lacks '$err'"
        fails=$((fails + 1))
        return
    fi
    echo "ok $name"
}

printf '{"f_int32": 1, "fColor": "GREEN", "fTimestamp": "2024-01-01T01:00:00+01:00"}' >"$tmp/in"
check json-json 0 '{"fInt32":1,"fColor":"GREEN","fTimestamp":"2024-01-01T00:00:00Z"}' - -- \
    --descriptor "$D" --type $T --from json --to json
check proto-names 0 '{"f_int32":1,"f_color":"GREEN","f_timestamp":"2024-01-01T00:00:00Z"}' - -- \
    --descriptor "$D" --type $T --from json --to json --proto-names
check enums-as-ints 0 '{"fInt32":1,"fColor":2,"fTimestamp":"2024-01-01T00:00:00Z"}' - -- \
    --descriptor "$D" --type $T --from json --to json --enums-as-ints
printf '{"a":1}' >"$tmp/in"
check pretty 0 $'{\n  "a": 1\n}' - -- --descriptor "$D" --type codec.test.Inner --from json --to json --pretty
check emit-defaults 0 '{"a":1,"b":"","c":[]}' - -- \
    --descriptor "$D" --type codec.test.Inner --from json --to json --emit-defaults
# proto2 extensions: "[full.name]" keys both ways, an unknown one exits 1
printf '{"[codec.test2.Extender.nested]":{"label":"x"},"optInt32":1,"[codec.test2.ext_int32]":2}' >"$tmp/in"
check extensions 0 '{"optInt32":1,"[codec.test2.ext_int32]":2,"[codec.test2.Extender.nested]":{"label":"x"}}' - -- \
    --descriptor "$D" --type codec.test2.Proto2 --from json --to json
printf '{"[codec.test2.other_ext]":1}' >"$tmp/in"
check extension-wrong-extendee 1 - 'unknown field "[codec.test2.other_ext]"' -- \
    --descriptor "$D" --type codec.test2.Proto2 --from json --to json
# json -> proto -> json through a pipe
printf '{"message":"hi","number":"5"}' >"$tmp/in"
"$G" transcode --descriptor "$D" --type codec.test.Echo --from json --to proto <"$tmp/in" >"$tmp/bin"
if [ "$(od -An -tx1 "$tmp/bin" | tr -d ' \n')" != "0a026869 1005" ] &&
   [ "$(od -An -tx1 "$tmp/bin" | tr -d ' \n')" != "0a0268691005" ]; then
    echo "FAIL json-proto bytes: $(od -An -tx1 "$tmp/bin")"
    fails=$((fails + 1))
else
    echo "ok json-proto bytes"
fi
cp "$tmp/bin" "$tmp/in"
check proto-json 0 '{"message":"hi","number":"5"}' - -- \
    --descriptor "$D" --type codec.test.Echo --from proto --to json
# status 1: the input cannot be parsed
printf '{"fInt32":' >"$tmp/in"
check bad-json 1 '' 'unexpected end of input' -- --descriptor "$D" --type $T --from json --to proto
printf '{"nope":1}' >"$tmp/in"
check unknown-field 1 '' 'unknown field "nope"' -- --descriptor "$D" --type $T --from json --to json
check ignore-unknown 0 '{}' - -- --descriptor "$D" --type $T --from json --to json --ignore-unknown
printf '\x0a\x05ab' >"$tmp/in"
check bad-proto 1 '' 'malformed protobuf' -- --descriptor "$D" --type codec.test.Echo --from proto --to json
# status 1 as well: well-formed JSON whose value is out of range or of the
# wrong numeric kind is invalid input (issue 12), with the JSON path and the
# byte offset where the value starts.
# input JSON | message type | stderr fragment
while IFS='|' read -r json type frag; do
    [ -z "$json" ] && continue
    printf '%s' "$json" >"$tmp/in"
    check "range $json" 1 '' "$frag" -- --descriptor "$D" --type "$type" --from json --to proto
    check "range $json to json" 1 '' "$frag" -- --descriptor "$D" --type "$type" --from json --to json
done <<'ROWS'
{"fInt32":2147483648}|codec.test.AllTypes|fInt32: '2147483648' is out of range (at byte 10)
{"fInt32":-2147483649}|codec.test.AllTypes|fInt32: '-2147483649' is out of range (at byte 10)
{"fSint32":"3000000000"}|codec.test.AllTypes|fSint32: '3000000000' is out of range (at byte 11)
{"fUint32":4294967296}|codec.test.AllTypes|fUint32: '4294967296' is out of range (at byte 11)
{"fUint32":-1}|codec.test.AllTypes|fUint32: '-1' is out of range (at byte 11)
{"fInt64":"9223372036854775808"}|codec.test.AllTypes|fInt64: '9223372036854775808' is out of range (at byte 10)
{"fInt64":-9223372036854775809}|codec.test.AllTypes|fInt64: '-9223372036854775809' is out of range (at byte 10)
{"fUint64":18446744073709551616}|codec.test.AllTypes|fUint64: '18446744073709551616' is out of range (at byte 11)
{"fUint64":"-1"}|codec.test.AllTypes|fUint64: '-1' is out of range (at byte 11)
{"fInt32":0.5}|codec.test.AllTypes|fInt32: '0.5' is not an integer (at byte 10)
{"fInt64":"1.5"}|codec.test.AllTypes|fInt64: '1.5' is not an integer (at byte 10)
{"fUint32":1e-3}|codec.test.AllTypes|fUint32: '1e-3' is not an integer (at byte 11)
{"fInt32":1e400}|codec.test.AllTypes|fInt32: '1e400' is out of range (at byte 10)
{"rInt32":[1, 2, 2.5]}|codec.test.AllTypes|rInt32[2]: '2.5' is not an integer (at byte 17)
{"mInt32":{"99999999999":1}}|codec.test.AllTypes|mInt32: '99999999999' is out of range (at byte 11)
{"wInt32":4294967296}|codec.test.AllTypes|wInt32: '4294967296' is out of range (at byte 10)
{"fFloat":3.5e38}|codec.test.AllTypes|fFloat: number out of range for float (at byte 10)
{"fDouble":1e309}|codec.test.AllTypes|fDouble: number out of range for double (at byte 11)
{"fValue":-1e309}|codec.test.AllTypes|fValue: number out of range for double (at byte 10)
{"fDuration":"315576000001s"}|codec.test.AllTypes|fDuration: Duration "315576000001s" out of range (at byte 13)
{"fDuration":"-315576000001s"}|codec.test.AllTypes|out of range (at byte 13)
{"fTimestamp":"0000-01-01T00:00:00Z"}|codec.test.AllTypes|fTimestamp: Timestamp "0000-01-01T00:00:00Z" out of range (at byte 14)
{"fTimestamp":"9999-12-31T23:59:59-01:00"}|codec.test.AllTypes|fTimestamp: Timestamp "9999-12-31T23:59:59-01:00" out of range (at byte 14)
{"fAny":{"@type":"type.googleapis.com/no.Such"}}|codec.test.AllTypes|fAny: Any type "type.googleapis.com/no.Such" is not in the registry (at byte 17)
ROWS
# Too deep (docs/codec.md, Depth): refused on the way in, naming the limit.
python3 -c 'import sys; sys.stdout.write("{\"recursive\":" * 100 + "{}" + "}" * 100)' >"$tmp/in"
check too-deep 1 '' 'nesting deeper than 100 message levels' -- \
    --descriptor "$D" --type $T --from json --to proto
# Wire input holding a value JSON cannot carry is invalid input too.
printf '\xf2\x12\x07\x08\x80\x83\xd1\xff\xaf\x07' >"$tmp/in"
check timestamp-range 1 '' 'fTimestamp: Timestamp out of range' -- \
    --descriptor "$D" --type $T --from proto --to json
printf '\xea\x12\x07\x08\x81\xbc\xae\xce\x97\x09' >"$tmp/in"
check duration-range 1 '' 'Duration out of range' -- --descriptor "$D" --type $T --from proto --to json
printf '\xfa\x12\x07\x0a\x05foo_3' >"$tmp/in"
check fieldmask-no-json 1 '' 'no JSON form' -- --descriptor "$D" --type $T --from proto --to json
# status 3: the output cannot be written (a full device), both directions.
printf '{"fInt32":1}' >"$tmp/in"
for to in json proto; do
    "$G" transcode --descriptor "$D" --type $T --from json --to $to <"$tmp/in" >/dev/full \
        2>"$tmp/err"
    got=$?
    if [ "$got" != 3 ] || ! grep -qF 'cannot write the output' "$tmp/err"; then
        echo "FAIL write-error-$to: exit $got, stderr: $(head -c 300 "$tmp/err")"
        fails=$((fails + 1))
    else
        echo "ok write-error-$to"
    fi
done
# status 2: usage or setup
printf '{}' >"$tmp/in"
check no-args 2 '' 'required' --
check bad-flag 2 '' "unknown or incomplete option '--frobnicate'" -- \
    --descriptor "$D" --type $T --from json --to json --frobnicate
check bad-from 2 '' 'required' -- --descriptor "$D" --type $T --from xml --to json
check proto-proto 2 '' 'not supported' -- --descriptor "$D" --type $T --from proto --to proto
check missing-descriptor 2 '' 'no-such-file.pb' -- \
    --descriptor "$tmp/no-such-file.pb" --type $T --from json --to json
printf 'garbage' >"$tmp/garbage.pb"
check bad-descriptor 2 '' - -- --descriptor "$tmp/garbage.pb" --type $T --from json --to json
check unknown-type 2 '' "unknown message type 'codec.test.Nope'" -- \
    --descriptor "$D" --type codec.test.Nope --from json --to json
check help 0 - - -- --help
if [ $fails -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
