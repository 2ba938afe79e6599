// Command bench-backend is the gRPC server every gateway under comparison
// calls (bench/peers/README.md). Its answers are fixed functions of the
// request so that two gateways in front of it can be compared byte for
// byte, and it does little work per call so that the gateway's cost shows.
//
// Built by ../setup.sh (GOPATH mode, Debian's Go packages only).
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/golang/protobuf/ptypes/timestamp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "benchpb"
)

// Limits and fixed values of the answers (README.md, "What the backend
// answers").
const (
	noteDefault = 64
	noteMax     = 1 << 20
	listMax     = 1000000
)

// 2024-01-02T03:04:05.678Z
var createdAt = timestamp.Timestamp{Seconds: 1704164645, Nanos: 678000000}

// One buffer of 'x' that every note is a prefix of.
var xBytes = func() string {
	b := make([]byte, noteMax)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}()

type bench struct{}

func (bench) Echo(ctx context.Context, in *pb.EchoRequest) (*pb.EchoResponse, error) {
	return &pb.EchoResponse{Message: in.GetMessage(), Number: in.GetNumber()}, nil
}

func (bench) GetItem(ctx context.Context, in *pb.GetItemRequest) (*pb.Item, error) {
	size, err := noteLen(in.GetNoteSize())
	if err != nil {
		return nil, err
	}
	return item(in.GetId(), size), nil
}

func (bench) ListItems(in *pb.ListItemsRequest, out pb.Bench_ListItemsServer) error {
	size, err := noteLen(in.GetNoteSize())
	if err != nil {
		return err
	}
	n := in.GetCount()
	if n < 0 || n > listMax {
		return status.Errorf(codes.InvalidArgument, "count must be in [0, %d]", listMax)
	}
	for id := int64(1); id <= int64(n); id++ {
		if err := out.Send(item(id, size)); err != nil {
			return err
		}
	}
	return nil
}

func noteLen(n int32) (int, error) {
	if n == 0 {
		return noteDefault, nil
	}
	if n < 0 || n > noteMax {
		return 0, status.Errorf(codes.InvalidArgument, "note_size must be in [0, %d]", noteMax)
	}
	return int(n), nil
}

// item builds record id: every field set, the checksum a function of id
// (byte i is id*31 + i*7, truncated).
func item(id int64, note int) *pb.Item {
	var sum [16]byte
	for i := 0; i < len(sum); i++ {
		sum[i] = byte(id*31 + int64(7*i))
	}
	ts := createdAt
	return &pb.Item{
		Id:         id,
		Name:       "item-" + strconv.FormatInt(id, 10),
		Note:       xBytes[:note],
		Tags:       []string{"alpha", "beta", "gamma"},
		Status:     pb.Status_STATUS_ACTIVE,
		Dimensions: &pb.Dimensions{Width: 1.5, Height: 2.25, Depth: 0.125},
		Labels:     map[string]string{"color": "blue", "size": "m"},
		CreatedAt:  &ts,
		Revision:   uint64(id + 1000),
		InStock:    true,
		Scores:     []int32{1, 2, 3, 5, 8},
		Checksum:   sum[:],
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "host:port to serve gRPC on (h2c)")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("bench-backend: %v", err)
	}
	srv := grpc.NewServer()
	pb.RegisterBenchServer(srv, bench{})
	hs := health.NewServer()
	for _, name := range []string{"", "benchpb.v1.Bench"} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv) // v1alpha in grpc-go 1.33

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		srv.Stop()
	}()
	log.Printf("bench-backend: gRPC on %s", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		log.Fatalf("bench-backend: %v", err)
	}
}
