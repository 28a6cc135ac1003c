-- POST a fixed body: BODY and CONTENT_TYPE come from the environment.
local body = os.getenv("BODY")
if body == nil or body == "" then error("BODY env var is empty") end
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-www-form-urlencoded"
local token = os.getenv("TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
