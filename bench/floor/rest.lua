-- wrk script: REST POST /v1/echo, the body of bench/peers/load/echo.lua
-- (for runs without the peers).
wrk.method = "POST"
wrk.body = '{"message":"hi","number":"5"}'
wrk.headers["Content-Type"] = "application/json"
