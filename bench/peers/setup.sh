#!/usr/bin/env bash
# Builds the comparison peers into bench/peers/bin/ (git-ignored):
#   bin/bench-backend       the gRPC backend (backend/main.go)
#   bin/grpc-gateway-peer   grpc-gateway 1.6.4's reverse proxy for bench.proto
#                           (gateway/main.go + the generated code)
#   bin/echo.grpc           EchoRequest{message:"hi", number:5} as a gRPC
#                           body (5-byte prefix), for h2load
# from Debian 12 packages only (GOPATH mode, no module proxy). Not part of
# scripts/setup: run it when you want to rerun docs/performance.md or the
# rest-grpc-gateway-parity test.
#
#   bench/peers/setup.sh               install what is missing (apt-get), build
#   bench/peers/setup.sh --no-install  build only; fail if something is missing
#
# Rerunning regenerates and rebuilds (about a second with Go's cache).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/bin
WORK=$HERE/.build
GOCODE=/usr/share/gocode
GOOGLEAPIS=$GOCODE/src/github.com/grpc-ecosystem/grpc-gateway/third_party/googleapis

# Go 1.19, grpc-go 1.33, grpc-gateway 1.6.4 (runtime + protoc plugin), and the
# APIv1 protoc-gen-go 1.3.5 they are built against (protoc-gen-go-1-3; the
# APIv2 protoc-gen-go packages conflict with it and do not fit grpc-go 1.33).
# wrk and h2load drive the load.
PKGS=(golang-go golang-grpc-gateway golang-github-grpc-ecosystem-grpc-gateway-dev
      golang-google-grpc-dev golang-goprotobuf-dev protoc-gen-go-1-3
      protobuf-compiler libprotobuf-dev wrk nghttp2-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "${1:-}" = --no-install ]; then
    echo "peers: missing Debian packages: ${missing[*]} (run bench/peers/setup.sh)" >&2
    exit 1
  fi
  echo "peers: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
case "$(dpkg -S /usr/bin/protoc-gen-go 2>/dev/null | cut -d: -f1)" in
  protoc-gen-go-1-3) ;;
  *) echo "peers: /usr/bin/protoc-gen-go is not protoc-gen-go-1-3's" >&2; exit 1 ;;
esac

# Generated code in a private GOPATH entry, import path "benchpb". Debian's
# timestamp.proto names the APIv2 Go package; both plugins are told to use
# the APIv1 one that grpc-go 1.33 and grpc-gateway 1.6.4 speak.
pkg=$WORK/gopath/src/benchpb
rm -rf "$pkg"
mkdir -p "$pkg" "$OUT"
ts=Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp
protoc -I "$HERE" -I "$GOOGLEAPIS" -I /usr/include \
  --plugin=protoc-gen-go=/usr/bin/protoc-gen-go \
  --go_out="plugins=grpc,paths=source_relative,$ts:$pkg" \
  --plugin=protoc-gen-grpc-gateway=/usr/bin/protoc-gen-grpc-gateway \
  --grpc-gateway_out="logtostderr=true,paths=source_relative,$ts:$pkg" \
  "$HERE/bench.proto"

export GO111MODULE=off GOPROXY=off GOFLAGS= CGO_ENABLED=0
export GOPATH=$WORK/gopath:$GOCODE
export GOCACHE=${GOCACHE:-$WORK/gocache}
cd "$HERE"
go build -trimpath -o "$OUT/bench-backend" ./backend
go build -trimpath -o "$OUT/grpc-gateway-peer" ./gateway

# EchoRequest{message:"hi", number:5}: 0a 02 'h' 'i' 10 05, after the gRPC
# prefix (not compressed, length 6).
printf '\000\000\000\000\006\012\002hi\020\005' >"$OUT/echo.grpc"
echo "peers: built $OUT/bench-backend and $OUT/grpc-gateway-peer"
