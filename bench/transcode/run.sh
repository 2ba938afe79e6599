#!/bin/bash
# Runs the codec benchmark and the libprotobuf comparison on the same inputs
# and prints one table. usage: bench/transcode/run.sh [BUILD_DIR]
# (BUILD_DIR defaults to ./build; it must be a release-type build, e.g.
#  meson setup build-bench -Dbuildtype=release).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
desc=$build/tests/codec/codec_test.pb
ninja -C "$build" bench/transcode/bench_transcode tests/codec/codec_test.pb >/dev/null
has_cpp=0
if ninja -C "$build" bench/transcode/bench_transcode_libprotobuf >/dev/null 2>&1; then
    has_cpp=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The large repeated message: 1000 records with different ids.
{
    printf '{"records":['
    for i in $(seq 1 1000); do
        [ "$i" -gt 1 ] && printf ','
        sed "s/\"id\":\"1234567\"/\"id\":\"$((1234567 + i))\"/" "$here/record.json" | tr -d '\n'
    done
    printf ']}'
} >"$tmp/list.json"
args=(codec.test.Echo "$here/echo.json" codec.test.Record "$here/record.json"
      codec.test.RecordList "$tmp/list.json")
"$build/bench/transcode/bench_transcode" "$desc" "${args[@]}" >"$tmp/ours"
if [ $has_cpp = 1 ]; then
    "$build/bench/transcode/bench_transcode_libprotobuf" "$desc" "${args[@]}" >"$tmp/theirs"
else
    : >"$tmp/theirs"
    echo "(libprotobuf comparison not built: no C++ compiler or libprotobuf-dev)" >&2
fi
printf '%-12s %-9s %9s | %12s %10s | %12s %10s | %7s\n' message direction "in bytes" \
    "grpcgate ns" "MB/s" "libpb ns" "MB/s" speedup
awk 'NR == FNR { key = $2 " " $3; ns[key] = $5; mb[key] = $6; next }
     { key = $2 " " $3; t = (key in ns) ? ns[key] : "-"; m = (key in mb) ? mb[key] : "-";
       sp = (key in ns) ? sprintf("%.1fx", ns[key] / $5) : "-";
       printf "%-12s %-9s %9s | %12s %10s | %12s %10s | %7s\n", $2, $3, $4, $5, $6, t, m, sp }' \
    "$tmp/theirs" "$tmp/ours"
