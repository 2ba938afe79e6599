#!/bin/sh
# Quick A/B of gateway builds: one 5 s wrk run (-c64, after a 2 s warm-up)
# of the binary gRPC-Web Echo against the bench backend, printing req/s and
# the CPU microseconds per request of the gateway and of the backend (from
# /proc/PID/stat, so that other load on the machine matters less).
#
#   bench/grpcweb/cpu.sh GRPCGATE BENCH_PB      e.g. build/src/grpcgate build/schemas/bench.pb
set -eu
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-$here/../peers}
gw=$1; desc=$2
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
out=$(mktemp -d "${TMPDIR:-/tmp}/grpcweb-cpu.XXXXXX")
bport=$(free_port)
taskset -c 0 "$peers/bin/bench-backend" -addr "127.0.0.1:$bport" >/dev/null 2>&1 & bpid=$!
taskset -c 0 "$gw" serve --listen 127.0.0.1:0 --backend "http://127.0.0.1:$bport" \
  --descriptor "$desc" --workers 1 --log-level warn >"$out/gw.out" 2>&1 & gpid=$!
trap 'kill $gpid $bpid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do grep -q '^listening on' "$out/gw.out" && break; sleep 0.1; done
sleep 0.5
gport=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out/gw.out")
url=http://127.0.0.1:$gport/benchpb.v1.Bench/Echo
taskset -c 1 wrk -t1 -c64 -d2s -s "$here/echo.lua" "$url" >/dev/null
g0=$(ticks $gpid); b0=$(ticks $bpid)
taskset -c 1 wrk -t1 -c64 -d5s -s "$here/echo.lua" "$url" >"$out/wrk.txt"
g=$(( $(ticks $gpid) - g0 )); b=$(( $(ticks $bpid) - b0 ))
n=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
awk -v g=$g -v b=$b -v n=$n -v hz=$hz '/Requests\/sec/ {
  printf "%s req/s  gateway %.1f us/req  backend %.1f us/req\n", $2, g*1e6/hz/n, b*1e6/hz/n }' "$out/wrk.txt"
