-- Active health checks (checks.active): one prober for the whole instance
-- (worker 1), states shared by every worker through shared memory. A
-- killed node is taken out by the probes before requests ever meet it,
-- and brought back once it answers again; the probes' state survives a
-- reload.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local testutil = require "testutil"

describe("active health checks", function()
  local gw, a, b, a_port

  local function stats(m)
    local resp = assert(http.get(m.port, "/__stats", { timeout = 2 }))
    return tonumber(resp.body:match('"requests_total"%s*:%s*(%d+)'))
  end

  local function config()
    return {
      workers = 2,
      upstreams = { {
        id = "pair", nodes = { "127.0.0.1:" .. a_port, "127.0.0.1:" .. b.port },
        checks = { active = {
          http_path = "/status/200", timeout = "500ms",
          healthy = { interval = "100ms", successes = 1 },
          unhealthy = { interval = "100ms", tcp_failures = 1, http_failures = 1 },
        } },
      } },
      routes = { { id = "r", uri = "/*", upstream_id = "pair" } },
    }
  end

  setup(function()
    a = gateway.mock({ id = "A" })
    b = gateway.mock({ id = "B" })
    a_port = a.port
    gw = gateway.start { config = config() }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "health check", "upstream" }) end
    gateway.cleanup_all()
  end)

  local function ids(n)
    local out = {}
    for i = 1, n do
      local resp = assert(http.request(gw.port, { path = "/echo", timeout = 5 }))
      out[i] = resp.status == 200 and resp:header("X-Upstream-Id") or resp.status
    end
    return out
  end

  it("probes each node once for the whole instance, not once per worker", function()
    local before = stats(b)
    proc.sleep(1)
    local probes = stats(b) - before - 1 -- minus this question
    -- every 100 ms: about 10 in a second from one prober; 2 workers probing would make about 20
    assert.is_true(probes >= 5 and probes <= 14, "probes in 1 s: " .. probes)
  end)

  it("takes a killed node out in every worker, and brings it back when it returns", function()
    a.stop()
    assert.is_truthy(gw:wait_log("node 127%.0%.0%.1:" .. a_port .. " is down", 5))
    proc.sleep(0.3) -- every worker syncs within 100 ms
    for _, id in ipairs(ids(20)) do assert.are.equal("B", id) end
    a = gateway.mock({ id = "A", port = a_port })
    assert.is_truthy(gw:wait_log("node 127%.0%.0%.1:" .. a_port .. " is up again", 5))
    local back = testutil.eventually(function()
      for _, id in ipairs(ids(6)) do if id == "A" then return true end end
    end, 5, 0.2)
    assert.is_truthy(back, "A never got traffic again")
  end)

  it("keeps what the probes found across a reload", function()
    local mark = gw:log_mark()
    a.stop()
    assert.is_truthy(gw:wait_log("node 127%.0%.0%.1:" .. a_port .. " is down", 5, mark))
    local from = gw:log_mark()
    assert.are.equal(0, (gw:cli({ "-s", "reload" }, { timeout = 60 })))
    proc.sleep(0.3)
    for _, id in ipairs(ids(10)) do assert.are.equal("B", id) end
    -- the new generation's prober did not have to find it down again
    assert.is_nil((gw:wait_log("is down", 0.5, from)))
  end)
end)

describe("active tcp probes", function()
  local gw, a, b, a_port

  setup(function()
    -- A answers every request with 500: an http probe would take it out,
    -- a tcp probe only connects and keeps it in.
    a = gateway.mock({ id = "A", args = { "--status", "500" } })
    b = gateway.mock({ id = "B" })
    a_port = a.port
    gw = gateway.start { config = {
      workers = 2,
      upstreams = { {
        id = "pair", nodes = { "127.0.0.1:" .. a_port, "127.0.0.1:" .. b.port },
        checks = { active = {
          type = "tcp", timeout = "500ms",
          healthy = { interval = "100ms", successes = 1 },
          unhealthy = { interval = "100ms", tcp_failures = 1 },
        } },
      } },
      routes = { { id = "r", uri = "/*", upstream_id = "pair" } },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "health check", "upstream" }) end
    gateway.cleanup_all()
  end)

  local function answers(n)
    local out = { A = 0, B = 0, other = 0 }
    for _ = 1, n do
      local resp = assert(http.request(gw.port, { path = "/echo", timeout = 5 }))
      local id = resp:header("X-Upstream-Id")
      if id == "A" or id == "B" then out[id] = out[id] + 1 else out.other = out.other + 1 end
    end
    return out
  end

  it("keeps a node that accepts connections, whatever it answers", function()
    proc.sleep(0.5) -- several rounds of probes
    assert.is_nil((gw:wait_log("is down", 0.1)))
    local got = answers(20)
    assert.is_true(got.A >= 5, "A took " .. got.A .. " of 20")
  end)

  it("takes a node that refuses connections out, and brings it back", function()
    a.stop()
    assert.is_truthy(gw:wait_log("node 127%.0%.0%.1:" .. a_port .. " is down: 1 consecutive probes refused", 5))
    proc.sleep(0.3)
    assert.are.same({ A = 0, B = 20, other = 0 }, answers(20))
    a = gateway.mock({ id = "A", port = a_port, args = { "--status", "500" } })
    assert.is_truthy(gw:wait_log("node 127%.0%.0%.1:" .. a_port .. " is up again", 5))
    local back = testutil.eventually(function() return answers(6).A > 0 end, 5, 0.2)
    assert.is_truthy(back, "A never got traffic again")
  end)
end)

describe("active health check configuration errors", function()
  local check = require("testutil").config_error

  it("names what is wrong", function()
    assert.matches("upstreams%[0%]%.checks%.active%.type: https probes need TLS to upstreams",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"], checks: {active: {type: https}}}]\n"))
    assert.matches("upstreams%[0%]%.checks%.active%.type: must be http or tcp, got \"udp\"",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"], checks: {active: {type: udp}}}]\n"))
    assert.matches("upstreams%[0%]%.checks%.active: http_path is for http probes; a tcp probe only connects",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"], checks: {active: {type: tcp, http_path: /h}}}]\n"))
    assert.matches("healthy%.http_statuses is for http probes",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"],\n"
        .. "  checks: {active: {type: tcp, healthy: {http_statuses: [200]}}}}]\n"))
    assert.matches("http_path must start with /",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"], checks: {active: {http_path: health}}}]\n"))
    assert.matches("upstreams%[0%]%.checks%.active%.healthy%.interval: must be at least 10ms",
      check("upstreams: [{id: u, nodes: [\"127.0.0.1:1\"], checks: {active: {healthy: {interval: 1ms}}}}]\n"))
  end)
end)
