#!/bin/sh
# What one request costs each process on the pinned core, and what that
# allows: grpcgate's REST, gRPC-Web and Connect (JSON and binary) Echo,
# grpc-gateway's REST Echo, and
# grpcgate answering /healthz (libmicrohttpd plus our loop and classifier,
# no suspend, no backend: the floor of any answer through this front end).
#
#   bench/floor/run.sh GRPCGATE [CONNS...]     e.g. bench/floor/run.sh build-rel/src/grpcgate 16 64
#
#   COMPARE=OTHER_GRPCGATE bench/floor/run.sh GRPCGATE [CONNS...]
#     two grpcgate builds in one run (say libmicrohttpd 1.0.1 against
#     0.9.75, docs/performance.md): both serve the same backend from CPU 0,
#     and for each connection count ROUNDS (default 3) interleaved rounds
#     measure /healthz, REST Echo and gRPC-Web Echo on one, then the other;
#     it prints every round and the median CPU per request of each.
#
# Backend and both gateways on CPU 0, wrk on CPU 1 (as bench/peers/compare.sh).
# Needs bench/peers/setup.sh to have built the peers. CPU time comes from /proc/PID/stat (utime+stime) over each
# 5 s run, so other load on the machine matters less than for req/s. For
# each connection count it prints µs of CPU per request for every process,
# and the throughput ratio over grpc-gateway that the one-core sums allow:
# "measured" with grpcgate's own cost, "at floor" if a call cost grpcgate
# no more than /healthz does.
#
# Without bench/peers built (bench/peers/setup.sh; it needs Debian's golang-go), the backend is
# grpcgate's own demo service (EchoService.Echo: the same request fields) and
# the grpc-gateway rows and ratios are left out: BACKEND=demo forces that.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-$here/../peers}
gw=$1; shift
conns=${*:-16 64}
backend=${BACKEND:-peers}
if [ "$backend" = peers ] && [ ! -x "$peers/bin/grpc-gateway-peer" ]; then
  echo "floor: $peers is not built ($peers/setup.sh): demo service as the backend, no grpc-gateway" >&2
  backend=demo
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/grpcgate-floor.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(free_port); aport=$(free_port); gport=$(free_port)
if [ "$backend" = peers ]; then
  desc=$out/bench.pb
  protoc -I "$peers" -I /usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis \
    -I /usr/include --include_imports --descriptor_set_out="$desc" "$peers/bench.proto"
  echo_path=/benchpb.v1.Bench/Echo
  taskset -c 0 "$peers/bin/bench-backend" -addr "127.0.0.1:$bport" >/dev/null 2>&1 & bpid=$!
  taskset -c 0 "$peers/bin/grpc-gateway-peer" -listen "127.0.0.1:$aport" -backend "127.0.0.1:$bport" \
    >/dev/null 2>&1 & apid=$!
else
  desc=${DEMO_DESC:-$(dirname "$gw")/../schemas/demo.pb}
  echo_path=/demo.v1.EchoService/Echo
  taskset -c 0 "$gw" demo-service --listen "127.0.0.1:$bport" --log-level warn >/dev/null 2>&1 & bpid=$!
  apid=$bpid
fi
taskset -c 0 "$gw" serve --listen "127.0.0.1:$gport" --backend "http://127.0.0.1:$bport" \
  --descriptor "$desc" --workers 1 --log-level warn >"$out/gw.out" 2>&1 & gpid=$!
trap 'kill $gpid $apid $bpid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do grep -q '^listening on' "$out/gw.out" && break; sleep 0.1; done
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# run NAME CONNS URL [wrk args] -> "rps gw_us backend_us" for the gateway process named by NAME
run() {
  name=$1 c=$2; shift 2
  pid=$gpid; [ "$name" = grpc-gateway ] && pid=$apid
  taskset -c 1 wrk -t1 -c"$c" -d2s "$@" >/dev/null
  g0=$(ticks $pid); b0=$(ticks $bpid)
  taskset -c 1 wrk -t1 -c"$c" -d5s --latency "$@" >"$out/wrk.txt"
  g=$(( $(ticks $pid) - g0 )); b=$(( $(ticks $bpid) - b0 ))
  n=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
  awk -v g=$g -v b=$b -v n=$n -v hz=$hz '/Requests\/sec/ {
    printf "%.0f %.2f %.2f\n", $2, g*1e6/hz/n, b*1e6/hz/n }' "$out/wrk.txt"
}
echo_lua=$peers/load/echo.lua
[ -f "$echo_lua" ] || echo_lua=$here/rest.lua
gwe_lua=$here/grpcweb.lua
cj_lua=$here/connect_json.lua
cp_lua=$here/connect_proto.lua
if [ -n "${COMPARE:-}" ]; then
  pport=$(free_port)
  taskset -c 0 "$COMPARE" serve --listen "127.0.0.1:$pport" --backend "http://127.0.0.1:$bport" \
    --descriptor "$desc" --workers 1 --log-level warn >"$out/gw2.out" 2>&1 & ppid=$!
  trap 'kill $gpid $ppid $apid $bpid 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 100); do grep -q '^listening on' "$out/gw2.out" && break; sleep 0.1; done
  sleep 1
  # crun PID PORT CONNS PATH [wrk args] -> "rps gw_us"
  crun() {
    pid=$1 port=$2 c=$3 path=$4; shift 4
    taskset -c 1 wrk -t1 -c"$c" -d1s "$@" "http://127.0.0.1:$port$path" >/dev/null
    g0=$(ticks $pid)
    taskset -c 1 wrk -t1 -c"$c" -d4s "$@" "http://127.0.0.1:$port$path" >"$out/wrk.txt"
    g=$(( $(ticks $pid) - g0 ))
    n=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
    awk -v g=$g -v n=$n -v hz=$hz '/Requests\/sec/ { printf "%.0f %.2f\n", $2, g*1e6/hz/n }' "$out/wrk.txt"
  }
  printf '%-5s %-5s %-24s %-14s %9s %12s\n' conns round case build req/s "gateway µs"
  for c in $conns; do
    : >"$out/rounds.txt"
    for r in $(seq "${ROUNDS:-3}"); do
      for case in healthz rest grpcweb; do
        case $case in
          healthz) args="/healthz" ;;
          rest) args="/v1/echo -s $echo_lua" ;;
          grpcweb) args="$echo_path -s $gwe_lua" ;;
        esac
        for which in A B; do
          if [ $which = A ]; then set -- $(crun $gpid $gport $c $args); else set -- $(crun $ppid $pport $c $args); fi
          printf '%-5s %-5s %-24s %-14s %9s %12s\n' $c $r $case "$which" "$1" "$2"
          echo "$case $which $2" >>"$out/rounds.txt"
        done
      done
    done
    for case in healthz rest grpcweb; do
      a=$(awk -v k=$case '$1 == k && $2 == "A" {print $3}' "$out/rounds.txt" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
      b=$(awk -v k=$case '$1 == k && $2 == "B" {print $3}' "$out/rounds.txt" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
      awk -v c=$c -v k=$case -v a=$a -v b=$b 'BEGIN {
        printf "c%-4s median %-8s A (%s) %.2f us, B (COMPARE) %.2f us: A/B %.3f\n", c, k, "GRPCGATE", a, b, a / b }'
    done
  done
  exit 0
fi
printf '%-5s %-30s %9s %13s %13s\n' conns case req/s "gateway µs" "backend µs"
for c in $conns; do
  set -- $(run grpcgate "$c" "http://127.0.0.1:$gport/healthz");            fl_rps=$1 fl=$2
  if [ "$backend" = peers ]; then
    set -- $(run grpc-gateway "$c" "http://127.0.0.1:$aport/v1/echo" -s "$echo_lua"); a_rps=$1 a=$2 ab=$3
  fi
  set -- $(run grpcgate "$c" "http://127.0.0.1:$gport/v1/echo" -s "$echo_lua");    r_rps=$1 r=$2 rb=$3
  set -- $(run grpcgate "$c" "http://127.0.0.1:$gport$echo_path" -s "$gwe_lua"); w_rps=$1 w=$2 wb=$3
  set -- $(run grpcgate "$c" "http://127.0.0.1:$gport$echo_path" -s "$cj_lua");  j_rps=$1 j=$2 jb=$3
  set -- $(run grpcgate "$c" "http://127.0.0.1:$gport$echo_path" -s "$cp_lua");  p_rps=$1 p=$2 pb=$3
  printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpcgate GET /healthz" "$fl_rps" "$fl" "-"
  [ "$backend" = peers ] && printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpc-gateway REST Echo" "$a_rps" "$a" "$ab"
  printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpcgate REST Echo" "$r_rps" "$r" "$rb"
  printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpcgate gRPC-Web Echo" "$w_rps" "$w" "$wb"
  printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpcgate Connect JSON Echo" "$j_rps" "$j" "$jb"
  printf '%-5s %-30s %9s %13s %13s\n' "$c" "grpcgate Connect proto Echo" "$p_rps" "$p" "$pb"
  [ "$backend" = peers ] || continue
  awk -v a=$a -v ab=$ab -v r=$r -v rb=$rb -v w=$w -v wb=$wb -v fl=$fl -v c=$c 'BEGIN {
    ref = a + ab
    printf "c%-4s one-core ratio over grpc-gateway: REST measured %.2f, at floor %.2f; gRPC-Web measured %.2f, at floor %.2f\n",
      c, ref / (r + rb), ref / (fl + rb), ref / (w + wb), ref / (fl + wb)
    printf "c%-4s grpcgate cost per call allowed by 3x: REST %.2f us, gRPC-Web %.2f us (floor %.2f us)\n",
      c, ref / 3 - rb, ref / 3 - wb, fl }'
done
