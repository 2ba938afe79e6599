-- wrk script: Connect unary Echo, binary (application/proto): the bare
-- EchoRequest{message: "hi", number: 5}. The path comes from the URL.
wrk.method = "POST"
wrk.body = "\10\2hi\16\5"
wrk.headers["Content-Type"] = "application/proto"
wrk.headers["Connect-Protocol-Version"] = "1"
