-- One wrk script for every HTTP scenario of the benchmark, so that each pays the same
-- per-request cost in the load generator, the ceiling (/health/live) included.
--
--   wrk -s scenario.lua URL -- MODE USERS_FILE [EXTRA]
--
-- MODE: health | licenses | entitlements | catalogue | catalogue304 | purchase
-- USERS_FILE: lines `USER_ID TOKEN`; each request picks a random user and sends that user's
--   own token.
-- EXTRA: the ETag to send as If-None-Match (catalogue304), or `RUN,PRODUCT,PRODUCT...` for
--   purchase (RUN makes the idempotency keys of this run unique).
-- Every request says `Accept-Encoding: gzip`, as the HTTP stacks of set-top boxes, phones and
-- browsers do by default.
-- The summary is printed as one line, `BENCH {json}`, for bench/src/load.rs to read.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

local mode, users, etag, run, products = nil, {}, nil, nil, {}
local counter = 0

local API = "/api/license/v4"
local PURCHASE = '{"data":{"type":"License","attributes":{"payment_method":"billing"},'
  .. '"relationships":{"product":{"data":{"type":"Product","id":"%s"}}}}}'

local GZIP = "gzip, deflate"

-- The request of every user, made once in `init`: wrk's own advice (its SCRIPTING notes), as
-- building a request in Lua costs the load generator about as much CPU as the service spends
-- answering it, and on two shared cores that CPU is taken from the service. Purchases differ
-- by their Idempotency-Key, so they are made one by one.
local prebuilt = {}

local function build(user)
  local headers = { Authorization = user[2], ["Accept-Encoding"] = GZIP }
  if mode == "licenses" then
    return wrk.format("GET", API .. "/users/" .. user[1] .. "/licenses", headers)
  elseif mode == "entitlements" then
    return wrk.format("GET", API .. "/users/" .. user[1] .. "/entitlements", headers)
  elseif mode == "catalogue" then
    return wrk.format("GET", API .. "/products", headers)
  elseif mode == "catalogue304" then
    headers["If-None-Match"] = etag
    return wrk.format("GET", API .. "/products", headers)
  elseif mode == "purchase" then
    counter = counter + 1
    headers["Content-Type"] = "application/vnd.api+json"
    headers["Idempotency-Key"] = run .. "-" .. thread_no .. "-" .. counter
    local product = products[math.random(#products)]
    return wrk.format("POST", API .. "/users/" .. user[1] .. "/licenses", headers,
      string.format(PURCHASE, product))
  end
  error("unknown mode " .. tostring(mode))
end

local function prebuild()
  if mode == "health" then
    prebuilt[1] = wrk.format("GET", "/health/live", { ["Accept-Encoding"] = GZIP })
  elseif mode ~= "purchase" then
    for i, user in ipairs(users) do
      prebuilt[i] = build(user)
    end
  end
end

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    local id, token = line:match("^(%S+)%s+(%S+)$")
    if id then
      users[#users + 1] = { id, "Bearer " .. token }
    end
  end
  if mode == "catalogue304" then
    etag = args[3]
  elseif mode == "purchase" then
    for item in args[3]:gmatch("[^,]+") do
      if run == nil then run = item else products[#products + 1] = item end
    end
  end
  math.randomseed(os.time() * 1000 + thread_no)
  if mode == "purchase" then
    -- A fresh nonce for each thread of each wrk run: the warm-up and the measured run must
    -- never send the same Idempotency-Key (a replay, or 422 for another product).
    local f = assert(io.open("/proc/sys/kernel/random/uuid"))
    run = run .. "-" .. f:read("*l")
    f:close()
  end
  prebuild()
end

function request()
  if mode == "purchase" then
    return build(users[math.random(#users)])
  end
  return prebuilt[math.random(#prebuilt)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
