-- wrk script: gRPC-Web unary Echo, binary: bench/grpcweb/echo.lua without
-- its fixed path, so that it also runs against the demo service.
wrk.method = "POST"
wrk.body = "\0\0\0\0\6\10\2hi\16\5"
wrk.headers["Content-Type"] = "application/grpc-web+proto"
wrk.headers["X-Grpc-Web"] = "1"
