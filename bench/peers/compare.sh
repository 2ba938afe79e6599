#!/usr/bin/env bash
# CPU per request and throughput of grpcgate beside grpc-gateway 1.6.4, in
# one run, on one bench-backend (docs/performance.md, "Summary"):
#
#   bench/peers/compare.sh GRPCGATE      e.g. bench/peers/compare.sh build-rel/src/grpcgate
#
# Scenarios: echo (POST /v1/echo | gRPC-Web Echo), get (GET /v1/items/7 |
# gRPC-Web GetItem{id:7}), list (GET /v1/items?count=10 | gRPC-Web
# ListItems{count:10}). Sides: grpc-gateway REST, grpcgate REST, grpcgate
# gRPC-Web. The backend and both gateways share CPU 0, wrk runs on CPU 1
# (PIN=none: no pinning). For every scenario the three sides take turns,
# ROUNDS times, so that the machine's changing load falls on all of them;
# each figure is the median of its rounds. CPU per request is utime+stime
# from /proc/PID/stat over the timed run divided by the requests wrk
# counted: it depends far less on other load than req/s does. Peak RSS is
# the gateway's largest VmRSS, sampled every 0.25 s during the timed runs.
# Knobs: SCENARIOS="echo get list" CONNS=64 ROUNDS=3 DURATION=5 WARMUP=2.
# Needs bench/peers/setup.sh (peers, wrk) and protoc. Every process it
# starts is stopped on exit, by PID.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GW=${1:?usage: compare.sh GRPCGATE}
SCENARIOS=${SCENARIOS:-echo get list}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
PIN=${PIN:-split}
BIN=$HERE/bin
[ -x "$BIN/grpc-gateway-peer" ] || { echo "compare: run bench/peers/setup.sh first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "compare: wrk missing (bench/peers/setup.sh)" >&2; exit 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/peers-compare.XXXXXX")
protoc -I "$HERE" -I /usr/share/gocode/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis \
  -I /usr/include --include_imports --descriptor_set_out="$OUT/bench.pb" "$HERE/bench.proto"

srv=(); load=()
if [ "$PIN" = split ]; then srv=(taskset -c 0); load=(taskset -c 1); fi
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
              echo "compare: nothing on port $1 (logs in $OUT)" >&2; exit 1; }
bport=$(free_port); aport=$(free_port); gport=$(free_port)
"${srv[@]}" "$BIN/bench-backend" -addr "127.0.0.1:$bport" >"$OUT/backend.log" 2>&1 & bpid=$!; pids+=($bpid)
wait_port "$bport"
"${srv[@]}" "$BIN/grpc-gateway-peer" -listen "127.0.0.1:$aport" -backend "127.0.0.1:$bport" \
  >"$OUT/grpc-gateway.log" 2>&1 & apid=$!; pids+=($apid)
"${srv[@]}" "$GW" serve --listen "127.0.0.1:$gport" --backend "http://127.0.0.1:$bport" \
  --descriptor "$OUT/bench.pb" --workers 1 --log-level warn >"$OUT/grpcgate.log" 2>&1 & gpid=$!; pids+=($gpid)
wait_port "$aport"; wait_port "$gport"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# target SIDE SCENARIO -> "pid url [wrk -s script]"
target() {
  case $1-$2 in
    A-echo) echo "$apid http://127.0.0.1:$aport/v1/echo -s $HERE/load/echo.lua" ;;
    A-get)  echo "$apid http://127.0.0.1:$aport/v1/items/7" ;;
    A-list) echo "$apid http://127.0.0.1:$aport/v1/items?count=10" ;;
    B-echo) echo "$gpid http://127.0.0.1:$gport/v1/echo -s $HERE/load/echo.lua" ;;
    B-get)  echo "$gpid http://127.0.0.1:$gport/v1/items/7" ;;
    B-list) echo "$gpid http://127.0.0.1:$gport/v1/items?count=10" ;;
    C-echo) echo "$gpid http://127.0.0.1:$gport/ -s $ROOT/bench/grpcweb/echo.lua" ;;
    C-get)  echo "$gpid http://127.0.0.1:$gport/ -s $HERE/load/grpcweb-get.lua" ;;
    C-list) echo "$gpid http://127.0.0.1:$gport/ -s $ROOT/bench/grpcweb/stream.lua" ;;
  esac
}
name() { case $1 in A) echo "grpc-gateway REST" ;; B) echo "grpcgate REST" ;; C) echo "grpcgate gRPC-Web" ;; esac; }
# measure SIDE SCENARIO CONNS FILE -> appends "rps p99ms gw_us backend_us rss_kib"
measure() {
  local pid url extra g0 b0 g b n w rss peak=0
  read -r pid url extra <<<"$(target "$1" "$2")"
  # shellcheck disable=SC2086
  "${load[@]}" wrk -t1 -c"$3" -d"${WARMUP}s" $extra "$url" >/dev/null
  g0=$(ticks "$pid"); b0=$(ticks "$bpid")
  # shellcheck disable=SC2086
  "${load[@]}" wrk -t1 -c"$3" -d"${DURATION}s" --latency $extra "$url" >"$OUT/wrk.txt" & w=$!
  while kill -0 "$w" 2>/dev/null; do
    rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status"); ((rss > peak)) && peak=$rss
    sleep 0.25
  done
  wait "$w"
  g=$(( $(ticks "$pid") - g0 )); b=$(( $(ticks "$bpid") - b0 ))
  if grep -qE 'Non-2xx|Socket errors' "$OUT/wrk.txt"; then
    echo "compare: $(name "$1") $2: errors:" >&2; grep -E 'Non-2xx|Socket errors' "$OUT/wrk.txt" >&2
  fi
  awk -v g="$g" -v b="$b" -v hz="$hz" -v rss="$peak" '
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { v = $2; u = v; sub(/^[0-9.]+/, "", u); x = v + 0
                  if (u == "us") x /= 1000; else if (u == "s") x *= 1000; p99 = x }
    END { printf "%.0f %.2f %.2f %.2f %d\n", rps, p99, g * 1e6 / hz / n, b * 1e6 / hz / n, rss }' \
    "$OUT/wrk.txt" >>"$4"
}
median() { sort -n | awk '{a[NR] = $1} END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "grpcgate: $GW; load: $(cut -d' ' -f1-3 /proc/loadavg); raw outputs: $OUT"
printf '| scenario | side | conns | gateway CPU/req | backend CPU/req | req/s | p99 ms | one-core bound | peak RSS |\n'
printf '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for s in $SCENARIOS; do
  for c in $CONNS; do
    for side in A B C; do : >"$OUT/$s-$c-$side"; done
    for _ in $(seq "$ROUNDS"); do
      for side in A B C; do measure "$side" "$s" "$c" "$OUT/$s-$c-$side"; done
    done
    for side in A B C; do
      f=$OUT/$s-$c-$side
      rps=$(cut -d' ' -f1 "$f" | median); p99=$(cut -d' ' -f2 "$f" | median)
      gw=$(cut -d' ' -f3 "$f" | median); be=$(cut -d' ' -f4 "$f" | median)
      rss=$(cut -d' ' -f5 "$f" | sort -n | tail -1)
      awk -v s="$s" -v n="$(name "$side")" -v c="$c" -v gw="$gw" -v be="$be" -v rps="$rps" \
        -v p99="$p99" -v rss="$rss" \
        'BEGIN { printf "| %s | %s | %s | %.1f µs | %.1f µs | %.0f | %.2f | %.0f | %.1f MiB |\n",
                 s, n, c, gw, be, rps, p99, 1e6 / (gw + be), rss / 1024 }'
    done
  done
done
