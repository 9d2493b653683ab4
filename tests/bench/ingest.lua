-- ingest.lua: wrk script for the ingest benchmark. Every request is a batch shaped like
-- tests/cases/ingest/valid-batch.json (5 events, same fields) with a fresh batch_id, sent to
-- POST /v1/outcomes. done() prints machine-readable lines that ingest.sh parses.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tid or 0
  math.randomseed(os.time() * 1000 + thread_id)
  run = string.format("%08x", math.random(0, 0x7fffffff))
end

local template = '{"v":1,"batch_id":"%s","write_key":"demo-site-key","sent_at":1764100000000,"events":[' ..
  '{"kind":"decision","t":1764099990000,"install":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","decision":"a1b2c3d4e5f60718","action":"credit_10","p":0.75,"mode":"rules","reason":"shown: milestone project_completed\\u00d73"},' ..
  '{"kind":"impression","t":1764099990500,"install":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","decision":"a1b2c3d4e5f60718","action":"credit_10"},' ..
  '{"kind":"copy","t":1764099995000,"install":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","decision":"a1b2c3d4e5f60718","action":"credit_10","code":"K7QX2M9PLA"},' ..
  '{"kind":"decision","t":1764099996000,"install":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","decision":"99aa00bb11cc22dd","action":"none","p":1,"mode":"rules","reason":"suppressed: frequency cap 1/1d"},' ..
  '{"kind":"dismiss","t":1764099999000,"install":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","decision":"a1b2c3d4e5f60718","action":"credit_10"}]}'

local headers = { ["Content-Type"] = "text/plain" }

function request()
  counter = counter + 1
  local body = string.format(template, string.format("wrk-%s-%d-%d", run, thread_id, counter))
  return wrk.format("POST", "/v1/outcomes", headers, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("wrk_requests=%d\n", summary.requests))
  io.write(string.format("wrk_duration_us=%d\n", summary.duration))
  io.write(string.format("wrk_non2xx=%d\n", non2xx))
  io.write(string.format("wrk_socket_errors=%d\n", errs))
  io.write(string.format("wrk_p50_us=%d\n", latency:percentile(50)))
  io.write(string.format("wrk_p99_us=%d\n", latency:percentile(99)))
end
