-- refresh_token grant with rotation: every request spends a refresh token that has never been used.
-- RT_FILE holds a pool of fresh refresh tokens (one per line, at least one per connection). Each request takes
-- the oldest token from the queue; each 200 answer puts the new (rotated) refresh token at the back, so the
-- pool never shrinks while the server answers 200 and no token is ever sent twice. A failed request loses its
-- token; when the queue is empty the request carries "exhausted" and is answered 400 (counted by wrk as
-- non-2xx, so a broken chain shows up in the results instead of silently measuring the error path).
-- Run with -t1 (one Lua state owns the whole queue).
local queue, head, tail = {}, 1, 0
local file = os.getenv("RT_FILE")
if file == nil or file == "" then error("RT_FILE env var is empty") end
for line in io.lines(file) do
  if line ~= "" then tail = tail + 1; queue[tail] = line end
end
if tail == 0 then error("RT_FILE has no refresh tokens") end
local client = os.getenv("CLIENT_ID") or "portcullis"
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

-- Requests sent as "exhausted" are also counted in RT_FILE.exhausted (one line each): the server answers them 400
-- invalid_grant like any bad token, so the report needs the count to tell harness starvation from server refusals.
-- Starvation happens when a token is lost: wrk may take a request from this function and never send it (it did so
-- for one connection at start-up in our runs), and a request cut off at the end of a run loses its rotated token.
-- bench/run.sh therefore starts with more tokens than connections.
local starved = nil
request = function()
  local token = "exhausted"
  if head <= tail then token = queue[head]; queue[head] = nil; head = head + 1
  else
    starved = starved or io.open(file .. ".exhausted", "a")
    starved:write("x\n"); starved:flush()
  end
  return wrk.format("POST", nil, headers,
    "grant_type=refresh_token&client_id=" .. client .. "&refresh_token=" .. token)
end

-- Answers other than 200 are appended to RT_FILE.errors (status and the start of the body) for the report.
local errors = nil
response = function(status, _, body)
  if status == 200 then
    local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if token then tail = tail + 1; queue[tail] = token end
  else
    errors = errors or io.open(file .. ".errors", "a")
    errors:write(status, " ", (body or ""):sub(1, 200):gsub("%s+", " "), "\n")
    errors:flush()
  end
end
