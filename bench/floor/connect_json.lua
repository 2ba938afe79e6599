-- wrk script: Connect unary Echo, JSON (application/json with
-- Connect-Protocol-Version), the same message as load/echo.lua and
-- bench/grpcweb/echo.lua. The path comes from the URL given to wrk.
wrk.method = "POST"
wrk.body = '{"message":"hi","number":"5"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Connect-Protocol-Version"] = "1"
