-- wrk script for bench_api.py: POST the JSON file $WRK_BODY; prints one JSON summary line.
-- Optional pacing on a clock: $WRK_RATE requests/s over the whole run, with $WRK_THREADS
-- the -t given to wrk (wrk has no fixed-rate mode). Latency is still wrk's own, from a
-- request's send to its answer: no coordinated-omission correction.
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local rate = tonumber(os.getenv("WRK_RATE") or "0")
if rate > 0 then
  -- wrk calls delay() from a thread's Lua state (one per wrk thread) whenever one of that
  -- thread's connections is ready to send (once connected, then after each answer),
  -- without saying which, and waits the whole milliseconds it returns (it truncates).
  -- So the schedule is the thread's: its share of the rate, one send slot every
  -- threads / rate seconds, each call taking the next slot for whichever connection
  -- asked (per connection that is connections / rate on average). The schedule is
  -- absolute: whole milliseconds (and wrk's millisecond timer) send a request up to
  -- about 2 ms before its slot, but never change the rate. A slot already past waits 0,
  -- so a thread that fell behind catches up at once, as an open-loop client would, as
  -- far as its connections allow.
  local threads = assert(tonumber(os.getenv("WRK_THREADS") or ""), "WRK_RATE needs WRK_THREADS")
  local ffi = require("ffi")  -- wrk embeds LuaJIT; Lua itself has no sub-second clock
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } wrk_post_timespec;
    int clock_gettime(int clock_id, wrk_post_timespec *tp);
  ]])
  local CLOCK_MONOTONIC = 1  -- Linux
  local ts = ffi.new("wrk_post_timespec")
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval_ms = threads / rate * 1e3
  local slot = nil  -- the next send time, ms; set by the first call
  function delay()
    local now = now_ms()
    slot = slot or now
    local wait = slot - now
    slot = slot + interval_ms
    if wait <= 0 then
      return 0
    end
    return math.floor(wait)
  end
end

-- Optional: $WRK_STATUSES=1 counts the answers by status code, printed as "statuses".
-- Off by default: with a response() function wrk hands every answer to Lua, which costs.
local count_statuses = os.getenv("WRK_STATUSES") == "1"
local wrk_threads = {}
if count_statuses then
  statuses = {}  -- global: done() reads each thread's copy with thread:get()
  function setup(thread)
    table.insert(wrk_threads, thread)
  end
  function response(status)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local function statuses_json()
  local total = {}
  for _, thread in ipairs(wrk_threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  return ', "statuses": {' .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d%s}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    count_statuses and statuses_json() or ""))
end
