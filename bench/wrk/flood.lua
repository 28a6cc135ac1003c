-- Login flood (issue 25 §2): password grants for random usernames with a long wrong password, so every attempt
-- would cost one Argon2id verification (the dummy hash of an unknown name). done() prints the answers by status
-- and the latency percentiles wrk's --latency table leaves out (p95).
local threads = {}
local counter = 0
statuses = {} -- global: done() reads it from each thread with thread:get
local wrong = string.rep("not-the-password-", 14) -- 238 characters

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 100 + (id or 0))
  statuses = {}
end

function request()
  counter = counter + 1
  local body = "grant_type=password&client_id=portcullis&username=flood" .. (id or 0) .. "n" .. counter .. "r" ..
    math.random(1, 1000000000) .. "&password=" .. wrong
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses") or {}) do
      totals[code] = (totals[code] or 0) + n
    end
  end
  for code, n in pairs(totals) do
    io.write(string.format("status %d %d\n", code, n))
  end
  io.write(string.format("latency_ms p50 %.1f p95 %.1f p99 %.1f max %.1f\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
