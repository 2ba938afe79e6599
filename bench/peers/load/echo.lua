-- wrk: REST POST /v1/echo, the JSON form of EchoRequest{message: "hi", number: 5}.
wrk.method = "POST"
wrk.path = "/v1/echo"
wrk.body = '{"message":"hi","number":"5"}'
wrk.headers["Content-Type"] = "application/json"
