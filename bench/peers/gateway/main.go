// Command grpc-gateway-peer is the reference gateway: the reverse proxy that
// Debian's grpc-gateway 1.6.4 (protoc-gen-grpc-gateway) generates for
// ../bench.proto, on net/http (HTTP/1.1), with grpc-gateway's default
// ServeMux (JSON with proto field names, zero values left out).
//
// Built by ../setup.sh (GOPATH mode, Debian's Go packages only).
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	"google.golang.org/grpc"

	pb "benchpb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "host:port to serve HTTP on")
	backend := flag.String("backend", "127.0.0.1:50051", "host:port of the gRPC backend (h2c)")
	camel := flag.Bool("camel", false, "JSON field names in lowerCamelCase instead of grpc-gateway 1.x's proto names")
	zeros := flag.Bool("emit-defaults", false, "print fields with zero values too")
	flag.Parse()

	var mux *runtime.ServeMux
	if *camel || *zeros {
		m := &runtime.JSONPb{OrigName: !*camel, EmitDefaults: *zeros}
		mux = runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, m))
	} else {
		mux = runtime.NewServeMux()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := pb.RegisterBenchHandlerFromEndpoint(ctx, mux, *backend, []grpc.DialOption{grpc.WithInsecure()})
	if err != nil {
		log.Fatalf("grpc-gateway-peer: %v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("grpc-gateway-peer: %v", err)
	}
	hs := &http.Server{Handler: mux}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		hs.Close()
	}()
	log.Printf("grpc-gateway-peer: HTTP on %s, backend %s", ln.Addr(), *backend)
	if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("grpc-gateway-peer: %v", err)
	}
}
