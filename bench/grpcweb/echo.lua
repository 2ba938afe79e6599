-- wrk script: gRPC-Web unary Echo through grpcgate, binary mode. The body is
-- one frame: flag 0, length 6, EchoRequest{message: "hi", number: 5} - the
-- same message as bench/peers/bin/echo.grpc and bench/peers/load/echo.lua.
wrk.method = "POST"
wrk.path = "/benchpb.v1.Bench/Echo"
wrk.body = "\0\0\0\0\6\10\2hi\16\5"
wrk.headers["Content-Type"] = "application/grpc-web+proto"
wrk.headers["X-Grpc-Web"] = "1"
