-- Used by bench/load.ts with wrk: counts responses that are 200 and carry the expected x-served-by
-- header (and, for Waymark, the expected x-waymark-cluster), then prints one line of JSON with the
-- counts and wrk's own latency percentiles (microseconds).
--   wrk ... -s bench/wrk-check.lua URL -- <expected x-served-by> [expected x-waymark-cluster]
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expected_served_by = args[1]
  expected_cluster = args[2] or ""
  ok = 0
  bad = 0
  bad_sample = ""
end

function response(status, headers, body)
  local good = status == 200 and headers["x-served-by"] == expected_served_by
  if good and expected_cluster ~= "" then
    good = headers["x-waymark-cluster"] == expected_cluster
  end
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if bad_sample == "" then
      bad_sample = "status " .. tostring(status) .. ", x-served-by " .. tostring(headers["x-served-by"]) ..
        ", x-waymark-cluster " .. tostring(headers["x-waymark-cluster"])
    end
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    if sample == "" then sample = t:get("bad_sample") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},"ok":%d,"bad":%d,"badSample":"%s"}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    ok_total, bad_total, (string.gsub(sample, '"', "'"))))
end
