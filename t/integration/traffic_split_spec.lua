-- traffic-split (plugins/traffic-split.lua): 80% of a route's requests to
-- the old API with its path, 20% to the new service with a rewritten
-- path; the split exact in every window of 100 requests; a header that
-- forces the canary; errors named.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"

describe("traffic-split", function()
  local gw, old, new

  setup(function()
    old = gateway.mock({ id = "old" })
    new = gateway.mock({ id = "new" })
    gw = gateway.start { config = {
      workers = 1,
      upstreams = { { id = "new-api", nodes = { "127.0.0.1:" .. new.port } } },
      routes = {
        { id = "orders", uri = "/api/orders/*", upstream = { nodes = { "127.0.0.1:" .. old.port } },
          plugins = { ["traffic-split"] = { rules = {
            { match = { { vars = { { "http_x_canary", "==", "1" } } } },
              weighted_upstreams = { { upstream_id = "new-api", weight = 1, uri = "/v2/orders" } } },
            { weighted_upstreams = {
              { upstream_id = "new-api", weight = 20, uri = "/v2/orders" },
              { weight = 80 } } },
          } } } },
      },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
  end)

  local function send(conn, headers)
    assert(conn:request({ method = "GET", path = "/api/orders/7?x=1", headers = headers }))
    local resp = assert(conn:read_response({ timeout = 10 }))
    assert.are.equal(200, resp.status)
    return resp:header("X-Upstream-Id"), cjson.decode(resp.body)
  end

  it("splits 80/20 over 10,000 requests, exactly in every window of 100, rewriting the canary's path", function()
    local conn = assert(http.connect(gw.port, { timeout = 10 }))
    local counts, seen = { old = 0, new = 0 }, 0
    local total = { old = 0, new = 0 }
    for i = 1, 10000 do
      if i % 900 == 0 then -- keepalive_requests: a new connection now and then
        conn:close()
        conn = assert(http.connect(gw.port, { timeout = 10 }))
      end
      local id, doc = send(conn)
      counts[id] = counts[id] + 1
      total[id] = total[id] + 1
      seen = seen + 1
      if id == "new" then
        assert.are.equal("/v2/orders?x=1", doc.target)
      else
        assert.are.equal("/api/orders/7?x=1", doc.target)
      end
      if seen % 100 == 0 then
        assert.are.same({ old = 80, new = 20 }, counts, "window ending at request " .. i)
        counts = { old = 0, new = 0 }
      end
    end
    conn:close()
    assert.are.same({ old = 8000, new = 2000 }, total)
  end)

  it("a matching header forces the canary", function()
    local conn = assert(http.connect(gw.port, { timeout = 10 }))
    for _ = 1, 10 do
      local id = send(conn, { { "X-Canary", "1" } })
      assert.are.equal("new", id)
    end
    conn:close()
  end)

  it("names what is wrong in its configuration", function()
    local code, _, err, _, dir = gateway.check_config([[
listen: 127.0.0.1:1
routes:
  - id: r
    uri: /x
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      traffic-split:
        rules: [{weighted_upstreams: [{upstream_id: a, weight: -1}]}]
]])
    gateway.rmdir(dir)
    assert.are.equal(1, code)
    assert.matches("routes%[0%]%.plugins%.traffic%-split%.rules%[0%]%.weighted_upstreams%[0%]%.weight", err)
  end)

  it("sends a share to an upstream written inline, balanced and retried by its own settings", function()
    local third = gateway.mock({ id = "third" })
    local dead = gateway.free_port()
    local g2 = gateway.start { config = {
      workers = 1,
      routes = { { id = "r", uri = "/x", upstream = { nodes = { "127.0.0.1:" .. old.port } },
        plugins = { ["traffic-split"] = { rules = { { weighted_upstreams = {
          { upstream = { nodes = { "127.0.0.1:" .. new.port, "127.0.0.1:" .. third.port, "127.0.0.1:" .. dead },
                         retry = { count = 2, on = { "connect_error" } } },
            weight = 30, uri = "/canary" },
          { weight = 70 } } } } } } } },
    } }
    local conn = assert(http.connect(g2.port, { timeout = 10 }))
    local counts = { old = 0, new = 0, third = 0 }
    for _ = 1, 300 do
      assert(conn:request({ method = "GET", path = "/x" }))
      local resp = assert(conn:read_response({ timeout = 10 }))
      assert.are.equal(200, resp.status)
      local id = resp:header("X-Upstream-Id")
      counts[id] = counts[id] + 1
      assert.are.equal(id == "old" and "/x" or "/canary", cjson.decode(resp.body).target)
    end
    conn:close()
    -- 90 canary requests over three nodes in turn; the dead node's third
    -- is retried on the node after it, which is the new node.
    assert.are.equal(210, counts.old)
    assert.are.equal(90, counts.new + counts.third)
    assert.is_true(counts.new >= 30 and counts.third >= 30, cjson.encode(counts))
    g2:cleanup()
    third:stop()
  end)

  it("compiles an inline upstream once when YAML aliases share it", function()
    local probed = gateway.mock({ id = "probed" })
    local g2 = gateway.start { config_text = ([[
listen: 127.0.0.1:${PORT}
workers: 1
log: {error: logs/error.log, access: logs/access.log}
routes:
  - id: a
    uri: /a
    upstream: {nodes: ["127.0.0.1:%d"]}
    plugins: &split
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream:
                  nodes: ["127.0.0.1:%d"]
                  checks: {active: {http_path: /probe, healthy: {interval: 100ms}}}
  - {id: b, uri: /b, upstream: {nodes: ["127.0.0.1:%d"]}, plugins: *split}
  - {id: c, uri: /c, upstream: {nodes: ["127.0.0.1:%d"]}, plugins: *split}
]]):format(old.port, probed.port, old.port, old.port) }
    local testutil = require "testutil"
    local before = testutil.upstream_requests(probed)
    require("proc").sleep(1)
    local probes = testutil.upstream_requests(probed) - before - 1
    -- one prober every 100 ms: about 10; three copies of the upstream would make about 30
    assert.is_true(probes >= 5 and probes <= 14, "probes in 1 s: " .. probes)
    assert.are.equal("probed", assert(http.get(g2.port, "/b", { timeout = 5 })):header("X-Upstream-Id"))
    g2:cleanup()
    probed:stop()
  end)

  it("builds no upstream for a disabled instance", function()
    local probed = gateway.mock({ id = "probed" })
    local g2 = gateway.start { config = {
      workers = 1,
      routes = { { id = "r", uri = "/x", upstream = { nodes = { "127.0.0.1:" .. old.port } },
        plugins = { ["traffic-split"] = { _meta = { disable = true }, rules = { { weighted_upstreams = {
          { upstream = { nodes = { "127.0.0.1:" .. probed.port },
                         checks = { active = { healthy = { interval = "100ms" } } } } } } } } } } } },
    } }
    local testutil = require "testutil"
    local before = testutil.upstream_requests(probed)
    require("proc").sleep(0.5)
    assert.are.equal(before + 1, testutil.upstream_requests(probed)) -- no probe, only this question
    assert.are.equal("old", assert(http.get(g2.port, "/x", { timeout = 5 })):header("X-Upstream-Id"))
    g2:cleanup()
    probed:stop()
  end)

  it("a failed set_upstream keeps the upstream an earlier plugin chose", function()
    local g2 = gateway.start { config = {
      workers = 1,
      upstreams = { { id = "new-api", nodes = { "127.0.0.1:" .. new.port } } },
      routes = { { id = "r", uri = "/x", upstream = { nodes = { "127.0.0.1:" .. old.port } },
        plugins = {
          ["traffic-split"] = { rules = { { weighted_upstreams = { { upstream_id = "new-api" } } } } },
          serverless = { phase = "access", _meta = { priority = 1 }, functions = { [[return function()
            local ok, err = require("torii").upstream.set_upstream("ghost")
            assert(ok == nil and err:find("no upstream with this id"))
          end]] } },
        } } },
    } }
    local resp = assert(http.get(g2.port, "/x", { timeout = 5 }))
    assert.are.equal(200, resp.status)
    assert.are.equal("new", resp:header("X-Upstream-Id"))
    g2:cleanup()
  end)

  it("checks an inline upstream when the configuration loads, naming where", function()
    local check = require("testutil").config_error
    local err = check([[
routes:
  - id: r
    uri: /x
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      traffic-split:
        rules:
          - weighted_upstreams:
              - upstream: {nodes: ["127.0.0.1:99999"]}
]])
    assert.matches(
      ":10: routes%[0%]%.plugins%.traffic%-split%.rules%[0%]%.weighted_upstreams%[0%]%.upstream%.nodes%[0%]", err)
    err = check([[
upstreams: [{id: a, nodes: ["127.0.0.1:1"]}]
routes:
  - id: r
    uri: /x
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      traffic-split:
        rules: [{weighted_upstreams: [{upstream_id: a, upstream: {nodes: ["127.0.0.1:2"]}}]}]
]])
    assert.matches("weighted_upstreams%[0%]: give upstream_id or upstream, not both", err)
    err = check([[
routes:
  - id: r
    uri: /x
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      traffic-split:
        rules: [{weighted_upstreams: [{upstream: {nodes: ["127.0.0.1:2"], typo: 1}}]}]
]])
    assert.matches("weighted_upstreams%[0%]%.upstream%.typo: unknown key", err)
  end)

  it("an upstream_id that does not exist fails the request, logged", function()
    local g2 = gateway.start { config = {
      workers = 1,
      routes = { { id = "r", uri = "/x", upstream = { nodes = { "127.0.0.1:" .. old.port } },
        plugins = { ["traffic-split"] = { rules = { { weighted_upstreams = { { upstream_id = "ghost" } } } } } } } },
    } }
    local resp = assert(http.get(g2.port, "/x", { timeout = 5 }))
    assert.are.equal(500, resp.status)
    assert.is_truthy(g2:wait_log("no upstream with this id", 5))
    g2:cleanup()
  end)
end)
