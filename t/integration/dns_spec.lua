-- Upstream host names: resolved at load by torii's own resolver (the
-- nameservers of `resolver:`), then asked for again when their TTL runs
-- out, without a reload and without blocking the worker; the last good
-- addresses stay in use while the nameservers fail.
--
-- build/mock-dns answers from a zone file the spec rewrites. The name
-- svc.test moves between 127.0.0.1 (an A record) and ::1 (an AAAA
-- record), where two mock upstreams listen on the same port: the
-- X-Upstream-Id of each response tells which address the try went to.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local socket = require "socket"
local testutil = require "testutil"

local V4 = "svc.test A 1 127.0.0.1\n"
local V6 = "svc.test AAAA 1 ::1\n"

local function dns_bin()
  return os.getenv("TORII_MOCK_DNS_BIN") or (gateway.root .. "/build/mock-dns")
end

-- Start build/mock-dns on 127.0.0.1 with a zone: {port, pid, dir, zone, log}.
local function start_dns(zone_text)
  local d = { port = gateway.free_port(), dir = gateway.tmpdir() }
  d.zone, d.log = d.dir .. "/zone", d.dir .. "/queries.log"
  testutil.write_file(d.zone, zone_text)
  d.pid = assert(proc.spawn({ dns_bin(), "--listen", "127.0.0.1:" .. d.port, "--zone", d.zone },
    { stdout = d.log, stderr = d.dir .. "/stderr.log" }))
  assert(testutil.eventually(function() return (testutil.read_file(d.log) or ""):find("ready") end, 5),
    "mock-dns did not start")
  return d
end

local function stop_dns(d)
  if d and d.pid then
    proc.stop(d.pid, 5)
    d.pid = nil
    gateway.rmdir(d.dir)
  end
end

-- Replace the zone in one step (a rename), so that no read sees half of it.
local function set_zone(d, text)
  testutil.write_file(d.zone .. ".new", text)
  assert(os.rename(d.zone .. ".new", d.zone))
end

-- Queries the server got for name and type so far.
local function queries(d, name, qtype)
  local n = 0
  for _ in (testutil.read_file(d.log) or ""):gmatch("query " .. name:gsub("%.", "%%.") .. " " .. qtype .. " ") do
    n = n + 1
  end
  return n
end

-- A mock upstream on [::1]:port (gateway.mock waits on 127.0.0.1 only).
local function mock_v6(port, id, args)
  local argv = { "--listen", "[::1]:" .. port }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local m = gateway.mock({ id = id, port = port, args = argv, wait = false })
  assert(testutil.eventually(function()
    local s = socket.tcp6()
    s:settimeout(0.2)
    local ok = s:connect("::1", port)
    s:close()
    return ok
  end, 5), "mock upstream on ::1 did not start")
  return m
end

local function upstream_id(gw)
  local resp, err = http.request(gw.port, { path = "/echo", timeout = 5 })
  assert(resp, "no response: " .. tostring(err))
  return resp.status == 200 and resp:header("X-Upstream-Id") or resp.status
end

describe("upstream host names", function()
  local dns, gw, port

  setup(function()
    dns = start_dns(V4)
    port = gateway.free_port()
    gateway.mock({ id = "v4", port = port })
    mock_v6(port, "v6")
    gw = gateway.start { config = {
      workers = 1,
      resolver = { nameservers = { "127.0.0.1:" .. dns.port }, timeout = "200ms", retries = 1 },
      upstreams = { { id = "svc", nodes = { "svc.test:" .. port } } },
      routes = { { id = "r", uri = "/*", upstream_id = "svc" } },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
    stop_dns(dns)
  end)

  it("are resolved at load through the configured nameserver", function()
    assert.are.equal("v4", upstream_id(gw))
    assert.is_true(queries(dns, "svc.test", "A") >= 1)
  end)

  it("follow the zone on their TTL, without a reload and without a failed request", function()
    local from = gw:log_mark()
    set_zone(dns, V6)
    local seen, deadline, failed = {}, proc.now() + 6, {}
    while proc.now() < deadline and not seen.v6 do
      local id = upstream_id(gw)
      if id ~= "v4" and id ~= "v6" then failed[#failed + 1] = id end
      seen[id] = true
      proc.sleep(0.02)
    end
    assert.is_true(seen.v6, "traffic never moved to ::1")
    assert.are.same({}, failed)
    assert.is_truthy(gw:wait_log("upstream host svc%.test: addresses now ::1 %(were 127%.0%.0%.1%)", 2, from))
    -- and back
    set_zone(dns, V4)
    assert.is_truthy(testutil.eventually(function() return upstream_id(gw) == "v4" end, 6, 0.05))
  end)

  it("are asked for about once per TTL, not per request", function()
    local before = queries(dns, "svc.test", "A")
    local t0, requests = proc.now(), 0
    while proc.now() - t0 < 3 do
      assert.are.equal("v4", upstream_id(gw))
      requests = requests + 1
      proc.sleep(0.01)
    end
    local asked = queries(dns, "svc.test", "A") - before
    -- a TTL of 1 s over 3 s: about 3 (one more for a refresh at the edges)
    assert.is_true(asked >= 2 and asked <= 5, asked .. " queries in 3 s")
    assert.is_true(requests > 4 * asked, requests .. " requests, " .. asked .. " queries")
  end)

  it("keep their last good addresses while the nameserver does not answer", function()
    local from = gw:log_mark()
    set_zone(dns, "drop\n")
    assert.is_truthy(gw:wait_log("upstream host svc%.test: no answer from the nameservers %(timed out%); its last "
      .. "addresses %(127%.0%.0%.1%) stay in use", 5, from))
    for _ = 1, 20 do
      assert.are.equal("v4", upstream_id(gw))
      proc.sleep(0.02)
    end
    -- the server answers again, with another address: taken on the next refresh
    set_zone(dns, V6)
    assert.is_truthy(testutil.eventually(function() return upstream_id(gw) == "v6" end, 8, 0.05))
    set_zone(dns, V4)
    assert.is_truthy(testutil.eventually(function() return upstream_id(gw) == "v4" end, 6, 0.05))
  end)
end)

describe("active health checks of a host name", function()
  local dns, gw, port

  setup(function()
    dns = start_dns(V4)
    port = gateway.free_port()
    gateway.mock({ id = "v4", port = port })
    mock_v6(port, "v6", { "--status", "503" }) -- unhealthy
    gw = gateway.start { config = {
      workers = 1,
      resolver = { nameservers = { "127.0.0.1:" .. dns.port }, timeout = "200ms", retries = 1 },
      upstreams = { {
        id = "svc", nodes = { "svc.test:" .. port },
        checks = { active = {
          http_path = "/status/200", timeout = "500ms",
          healthy = { interval = "100ms", successes = 1 },
          unhealthy = { interval = "100ms", http_failures = 2 },
        } },
      } },
      routes = { { id = "r", uri = "/*", upstream_id = "svc" } },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
    stop_dns(dns)
  end)

  it("probe the address the name has now", function()
    proc.sleep(0.5)
    assert.is_nil((gw:wait_log("health check: .* is down", 0.1)))
    local from = gw:log_mark()
    set_zone(dns, V6)
    assert.is_truthy(gw:wait_log("health check: upstream svc node svc%.test:%d+ is down: 2 consecutive probes "
      .. "answered an unhealthy status, last status 503", 6, from))
    set_zone(dns, V4)
    assert.is_truthy(gw:wait_log("health check: upstream svc node svc%.test:%d+ is up again", 6, from))
  end)
end)

describe("upstream host names across a reload", function()
  local dns, gw, mock

  setup(function()
    dns = start_dns("fresh.test A 60 127.0.0.1\n")
    mock = gateway.mock({ id = "m" })
    gw = gateway.start { config = {
      workers = 1,
      resolver = { nameservers = { "127.0.0.1:" .. dns.port }, timeout = "200ms", retries = 1 },
      upstreams = { { id = "u", nodes = { "fresh.test:" .. mock.port } } },
      routes = { { id = "r", uri = "/*", upstream_id = "u" } },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
    stop_dns(dns)
  end)

  it("are not asked for again while their answer is fresh", function()
    assert.are.equal("m", upstream_id(gw))
    local before = queries(dns, "fresh.test", "A")
    local from = gw:log_mark()
    assert.is_true(gw:signal("HUP"))
    assert.is_truthy(gw:wait_log("generation 2 is current", 10, from))
    assert.are.equal("m", upstream_id(gw))
    assert.are.equal(before, queries(dns, "fresh.test", "A"))
  end)
end)

describe("upstream host names at load", function()
  local dns

  setup(function() dns = start_dns("known.test A 5 127.0.0.1\n") end)
  teardown(function() stop_dns(dns) end)

  local function check(nodes)
    local code, _, err, _, dir = gateway.check_config(([[
listen: 127.0.0.1:1
resolver: {nameservers: ["127.0.0.1:%d"], timeout: 200ms, retries: 1}
upstreams:
  - id: u
    nodes: %s
]]):format(dns.port, nodes))
    gateway.rmdir(dir)
    return code, err
  end

  it("`torii -t` accepts a name the nameserver knows", function()
    assert.are.equal(0, (check('["known.test:80"]')))
  end)

  it("`torii -t` names the file and line of a name the nameserver does not know", function()
    local code, err = check('["known.test:80", "nope.test:80"]')
    assert.are.equal(1, code)
    assert.matches('torii%.yaml:5: upstreams%[0%]%.nodes%[1%]: cannot resolve "nope%.test": '
      .. 'name not found %(NXDOMAIN%)', err)
  end)

  it("`torii -t` fails, bounded by timeout and retries, when the nameserver does not answer", function()
    set_zone(dns, "drop\n")
    local t0 = proc.now()
    local code, err = check('[{host: known.test, port: 80}]')
    assert.are.equal(1, code)
    assert.matches('cannot resolve "known%.test": no answer from the nameservers %(timed out%)', err)
    assert.is_true(proc.now() - t0 < 5)
  end)
end)

describe("resolver configuration errors", function()
  local cases = {
    { "resolver: {colour: red}", "resolver%.colour: unknown key" },
    { "resolver: {timeout: 0ms}", "resolver%.timeout: must be at least 10ms" },
    { "resolver: {retries: 11}", "resolver%.retries: must be <= 10" },
    { "resolver: {retries: x}", "resolver%.retries: must be an integer" },
    { "resolver: {min_ttl: 10s, max_ttl: 5s}", "resolver: min_ttl must not be more than max_ttl" },
    { "resolver: {min_ttl: 0s}", "resolver%.min_ttl: must be at least 100ms" },
    { "resolver: {nameservers: []}", "resolver%.nameservers: must list 1 to 8 nameservers" },
    { "resolver: {nameservers: [dns.example:53]}", 'resolver%.nameservers%[0%]: invalid nameserver "dns%.example:53"' },
    { "resolver: {nameservers: \"127.0.0.1\"}", "resolver%.nameservers: must be a list" },
    { "resolver: [1]", "resolver: must be a map" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local err = testutil.config_error(case[1] .. "\n")
      assert.matches("torii%.yaml:2: " .. case[2], err)
    end)
  end

  it("an invalid host name", function()
    local err = testutil.config_error("upstreams:\n  - id: u\n    nodes: [\"bad_name!.test:80\"]\n")
    assert.matches('upstreams%[0%]%.nodes%[0%]: invalid host "bad_name!%.test": invalid host name', err)
  end)
end)
