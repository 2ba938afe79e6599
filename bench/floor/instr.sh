#!/bin/sh
# Instructions per request of the gateway process, counted by callgrind:
# the figure of bench/floor/run.sh that other load on the machine cannot
# move (instructions, not seconds; the same binary, requests and
# environment give the same count within a fraction of a percent).
#
#   bench/floor/instr.sh GRPCGATE [OTHER_GRPCGATE...]
#     e.g. bench/floor/instr.sh build-rel/src/grpcgate build-legacy/src/grpcgate
#
# For each gateway binary: the embedded demo service as the backend
# (native), the gateway under valgrind --tool=callgrind with one worker,
# h2load --h1 as the client. Per case (GET /healthz, REST POST /v1/echo,
# gRPC-Web binary Echo, Connect JSON Echo) it sends WARM requests, zeroes
# the counters (callgrind_control --zero), sends N requests, dumps, and
# prints the gateway's instructions per request (all threads). Knobs: N
# (default 2000), WARM (default 500), CONNS (default 8).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
n=${N:-2000}
warm=${WARM:-500}
conns=${CONNS:-8}
out=$(mktemp -d "${TMPDIR:-/tmp}/grpcgate-instr.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
printf '\000\000\000\000\006\012\002hi\020\005' >"$out/grpcweb.bin"
printf '{"message":"hi","number":"5"}' >"$out/echo.json"

# load PORT COUNT CASE
load() {
  port=$1 count=$2
  case $3 in
    healthz) set -- "http://127.0.0.1:$port/healthz" ;;
    rest) set -- -d "$out/echo.json" -H 'content-type: application/json' \
            "http://127.0.0.1:$port/v1/echo" ;;
    grpcweb) set -- -d "$out/grpcweb.bin" -H 'content-type: application/grpc-web+proto' \
               -H 'x-grpc-web: 1' "http://127.0.0.1:$port/demo.v1.EchoService/Echo" ;;
    connect) set -- -d "$out/echo.json" -H 'content-type: application/json' \
               -H 'connect-protocol-version: 1' "http://127.0.0.1:$port/demo.v1.EchoService/Echo" ;;
  esac
  h2load --h1 -n "$count" -c "$conns" "$@" >"$out/h2load.txt" 2>&1 || { cat "$out/h2load.txt" >&2; return 1; }
  if ! grep -q " 0 failed, 0 errored" "$out/h2load.txt" ||
     ! grep -Eq "status codes: $count 2xx" "$out/h2load.txt"; then
    echo "instr: not every request answered 2xx:" >&2
    grep -E "requests:|status codes:" "$out/h2load.txt" >&2
    return 1
  fi
}

printf '%-40s %-9s %14s\n' gateway case "instr/req"
for gw in "$@"; do
  bport=$(free_port); gport=$(free_port)
  desc=${DEMO_DESC:-$(dirname "$gw")/../schemas/demo.pb}
  "$gw" demo-service --listen "127.0.0.1:$bport" --log-level warn >/dev/null 2>&1 &
  bpid=$!
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" \
    "$gw" serve --listen "127.0.0.1:$gport" --backend "http://127.0.0.1:$bport" \
    --descriptor "$desc" --workers 1 --log-level warn >"$out/gw.out" 2>&1 &
  gpid=$!
  trap 'kill $gpid $bpid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 600); do grep -q '^listening on' "$out/gw.out" && break; sleep 0.1; done
  grep -q '^listening on' "$out/gw.out" || { cat "$out/gw.out" >&2; exit 1; }
  for case in healthz rest grpcweb connect; do
    load "$gport" "$warm" "$case"
    callgrind_control --zero "$gpid" >/dev/null 2>&1
    load "$gport" "$n" "$case"
    rm -f "$out/cg.$gpid".*
    callgrind_control --dump="$case" "$gpid" >/dev/null 2>&1
    f=$(ls -t "$out/cg.$gpid".* 2>/dev/null | head -1)
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
    awk -v g="$gw" -v c="$case" -v t="$total" -v n="$n" \
      'BEGIN { printf "%-40s %-9s %14.0f\n", g, c, t / n }'
  done
  kill "$gpid" "$bpid" 2>/dev/null || true
  wait 2>/dev/null || true
done
rm -rf "$out"
