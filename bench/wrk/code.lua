-- authorization_code grant with PKCE: every request spends a code that has never been used.
-- CODE_FILE holds a pool of fresh codes (one per line, from bench/codes.py, all issued for CODE_CLIENT_ID and REDIRECT_URI
-- with the challenge of VERIFIER). Each request takes the next code; when the pool is empty the request carries
-- "exhausted" and is answered 400 (counted by wrk as non-2xx, and in CODE_FILE.exhausted), so a pool too small for
-- the run shows up in the results instead of silently measuring the error path. Run with -t1.
local queue, head, tail = {}, 1, 0
local file = os.getenv("CODE_FILE")
if file == nil or file == "" then error("CODE_FILE env var is empty") end
for line in io.lines(file) do
  if line ~= "" then tail = tail + 1; queue[tail] = line end
end
if tail == 0 then error("CODE_FILE has no codes") end
local client = os.getenv("CODE_CLIENT_ID")
local redirect = os.getenv("REDIRECT_URI")
local verifier = os.getenv("VERIFIER")
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

local starved = nil
request = function()
  local code = "exhausted"
  if head <= tail then code = queue[head]; queue[head] = nil; head = head + 1
  else
    starved = starved or io.open(file .. ".exhausted", "a")
    starved:write("x\n"); starved:flush()
  end
  return wrk.format("POST", nil, headers,
    "grant_type=authorization_code&client_id=" .. client .. "&code=" .. code .. "&redirect_uri=" .. redirect
    .. "&code_verifier=" .. verifier)
end

local errors = nil
response = function(status, _, body)
  if status ~= 200 then
    errors = errors or io.open(file .. ".errors", "a")
    errors:write(status, " ", (body or ""):sub(1, 200):gsub("%s+", " "), "\n")
    errors:flush()
  end
end
