#!/bin/sh
# gRPC-Web through `grpcgate serve` beside the backend alone and grpc-gateway's
# REST echo, pinned as in bench/peers/README.md (PIN=split): backend and
# gateway share CPU 0, the load generator runs on CPU 1.
#
#   bench/grpcweb/run.sh [BUILD_DIR]       (default: build)
#
# Needs bench/peers/setup.sh to have built the peers, and BUILD_DIR/schemas/bench.pb.
# Every process it starts is killed by PID on exit. DURATION (10), CONNS ("16 64").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
peers=${PEERS:-$root/bench/peers}
duration=${DURATION:-10}
conns=${CONNS:-"16 64"}
gw=$build/src/grpcgate
desc=$build/schemas/bench.pb
out=$(mktemp -d "${TMPDIR:-/tmp}/grpcweb-bench.XXXXXX")
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

for f in "$gw" "$desc" "$peers/bin/bench-backend" "$peers/bin/grpc-gateway-peer"; do
  [ -e "$f" ] || { echo "missing $f" >&2; exit 2; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time of a process in clock ticks (utime + stime).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

bport=$(free_port); pport=$(free_port)
taskset -c 0 "$peers/bin/bench-backend" -addr "127.0.0.1:$bport" >"$out/backend.log" 2>&1 & bpid=$!; pids="$pids $bpid"
taskset -c 0 "$peers/bin/grpc-gateway-peer" -listen "127.0.0.1:$pport" -backend "127.0.0.1:$bport" >"$out/peer.log" 2>&1 & ppid=$!; pids="$pids $ppid"
taskset -c 0 "$gw" serve --listen 127.0.0.1:0 --backend "http://127.0.0.1:$bport" \
  --descriptor "$desc" --workers 1 --log-level warn >"$out/gw.out" 2>"$out/gw.err" & gpid=$!; pids="$pids $gpid"
for _ in $(seq 100); do grep -q '^listening on' "$out/gw.out" && break; sleep 0.1; done
gport=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out/gw.out")
wait_port "$bport"; wait_port "$pport"; wait_port "$gport"
echo "results in $out"

summary() {  # name file extra
  rps=$(awk '/Requests\/sec/ {print $2}' "$2")
  p50=$(awk '$1=="50%" {print $2}' "$2"); p99=$(awk '$1=="99%" {print $2}' "$2")
  echo "$1: $rps req/s  p50 $p50  p99 $p99  $3"
}

# CPU microseconds per request of the gateway and of the backend during a
# run: robust against other load on the machine, unlike req/s. On one core
# the throughput bound is 1e6 / (gateway + backend) us.
cpu_line() {  # gw_ticks backend_ticks file
  reqs=$(awk '/requests in/ {print $1}' "$3")
  awk -v g="$1" -v b="$2" -v n="$reqs" -v hz="$hz" 'BEGIN {
    if (n > 0) { gu = g * 1e6 / hz / n; bu = b * 1e6 / hz / n;
      printf "    cpu/request: gateway %.1f us, backend %.1f us -> one-core bound %.0f req/s\n", gu, bu, 1e6 / (gu + bu) } }'
}

echo "== backend alone (h2load, gRPC Echo)"
taskset -c 1 h2load -n 200000 -c 16 -m 10 -d "$peers/bin/echo.grpc" \
  -H 'content-type: application/grpc' -H 'te: trailers' \
  "http://127.0.0.1:$bport/benchpb.v1.Bench/Echo" >"$out/h2load-echo.txt" 2>&1 || true
grep -E "finished in|requests:" "$out/h2load-echo.txt"

run_wrk() {  # name pid url script conns
  taskset -c 1 wrk -t1 -c16 -d2s -s "$4" "$3" >/dev/null 2>&1 || true
  g0=$(ticks "$2"); b0=$(ticks "$bpid")
  taskset -c 1 wrk -t1 -c"$5" -d"${duration}s" --latency -s "$4" "$3" >"$out/$1.txt" 2>&1 &
  w=$!; max=0
  while kill -0 "$w" 2>/dev/null; do r=$(rss "$2"); [ "$r" -gt "$max" ] && max=$r; sleep 0.25; done
  wait "$w" || true
  summary "$1" "$out/$1.txt" "RSS max ${max} KiB"
  cpu_line $(( $(ticks "$2") - g0 )) $(( $(ticks "$bpid") - b0 )) "$out/$1.txt"
}

for c in $conns; do
  echo "== -c$c"
  run_wrk "grpcgate-grpcweb-echo-c$c" "$gpid" "http://127.0.0.1:$gport/benchpb.v1.Bench/Echo" "$here/echo.lua" "$c"
  run_wrk "grpcgate-grpcweb-stream10-c$c" "$gpid" "http://127.0.0.1:$gport/benchpb.v1.Bench/ListItems" "$here/stream.lua" "$c"
  run_wrk "grpc-gateway-rest-echo-c$c" "$ppid" "http://127.0.0.1:$pport/v1/echo" "$peers/load/echo.lua" "$c"
done
