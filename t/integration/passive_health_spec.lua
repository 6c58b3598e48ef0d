-- Passive health checks: a node whose tries keep failing (refused or
-- reset connections, timeouts, configured statuses) is taken out of its
-- upstream for a cool-down, then tried again; with no active checks at
-- all, a node that came back gets its traffic back.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local testutil = require "testutil"

describe("passive health checks", function()
  local gw, a, b, a_port

  setup(function()
    a = gateway.mock({ id = "A" })
    b = gateway.mock({ id = "B" })
    a_port = a.port
    gw = gateway.start { config = {
      workers = 1,
      upstreams = { {
        id = "pair", nodes = { "127.0.0.1:" .. a.port, "127.0.0.1:" .. b.port },
        checks = { passive = {
          unhealthy = { tcp_failures = 2, http_failures = 2, http_statuses = { 503 } },
          cooldown = "1s",
        } },
      } },
      routes = { { id = "r", uri = "/*", upstream_id = "pair" } },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "upstream", "marked down" }) end
    gateway.cleanup_all()
  end)

  local function ids(n, path)
    local out = {}
    for i = 1, n do
      local resp = assert(http.request(gw.port, { path = path or "/echo", timeout = 5 }))
      out[i] = resp.status == 200 and resp:header("X-Upstream-Id") or resp.status
    end
    return out
  end

  it("takes a killed node out after its failures, and back once it returns", function()
    assert.are.same({ "A", "B", "A", "B" }, ids(4))
    a.stop()
    -- two refused tries on A (502 each), then only B
    local got = ids(10)
    local failures = 0
    for _, v in ipairs(got) do if v == 502 then failures = failures + 1 end end
    assert.are.equal(2, failures, table.concat(got, " "))
    for i = #got - 5, #got do assert.are.equal("B", got[i]) end
    assert.is_truthy(gw:wait_log("marked down", 2))
    -- A comes back on its port; after the cool-down it is tried again
    a = gateway.mock({ id = "A", port = a_port })
    proc.sleep(1.2)
    local back = testutil.eventually(function()
      for _, v in ipairs(ids(4)) do if v == "A" then return true end end
    end, 5, 0.2)
    assert.is_truthy(back, "A never got traffic again")
  end)

  it("configured statuses count as failures", function()
    -- /status/503 answers 503 from whichever node: both go down after two each,
    -- then every node is down and torii tries anyway (no 503 of its own)
    local got = ids(6, "/status/503")
    for _, v in ipairs(got) do assert.are.equal(503, v) end
    assert.is_truthy(gw:wait_log("2 consecutive failed tries", 2))
    proc.sleep(1.2) -- cool-down: both back
    assert.are.same({ "A", "B" }, (function()
      local t = ids(2)
      table.sort(t)
      return t
    end)())
  end)
end)

describe("passive health configuration errors", function()
  it("names what is wrong", function()
    local err = testutil.config_error([[
upstreams:
  - id: u
    nodes: ["127.0.0.1:1"]
    checks: {passive: {unhealthy: {tcp_failures: -1}}}
]])
    assert.matches("upstreams%[0%]%.checks%.passive%.unhealthy%.tcp_failures: must be >= 0", err)
  end)
end)
