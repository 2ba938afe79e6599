-- wrk: gRPC-Web GetItem through grpcgate, binary mode: one frame (flag 0,
-- length 2) holding GetItemRequest{id: 7}, the gRPC-Web twin of
-- GET /v1/items/7.
wrk.method = "POST"
wrk.path = "/benchpb.v1.Bench/GetItem"
wrk.body = "\0\0\0\0\2\8\7"
wrk.headers["Content-Type"] = "application/grpc-web+proto"
wrk.headers["X-Grpc-Web"] = "1"
