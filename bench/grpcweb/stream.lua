-- wrk script: gRPC-Web server stream through grpcgate: ListItems{count: 10},
-- ten Item messages and the trailer frame per request.
wrk.method = "POST"
wrk.path = "/benchpb.v1.Bench/ListItems"
wrk.body = "\0\0\0\0\2\8\10"
wrk.headers["Content-Type"] = "application/grpc-web+proto"
wrk.headers["X-Grpc-Web"] = "1"
