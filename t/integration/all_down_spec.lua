-- When health checks have every node of an upstream down: by default a
-- try goes to one anyway (the checks may be wrong, and a 5xx from the
-- node says more than torii's own 503); `all_down: fail` answers 503 at
-- once and sends nothing upstream.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local testutil = require "testutil"

describe("every node down", function()
  local gw, sick

  setup(function()
    sick = gateway.mock({ id = "S", args = { "--status", "503" } })
    local function up(id, all_down)
      return { id = id, nodes = { "127.0.0.1:" .. sick.port }, all_down = all_down,
               checks = { passive = { unhealthy = { http_failures = 1, http_statuses = { 503 } }, cooldown = "30s" } } }
    end
    gw = gateway.start { config = {
      workers = 1,
      upstreams = { up("tries", nil), up("fails", "fail") },
      routes = {
        { id = "t", uri = "/t/*", upstream_id = "tries" },
        { id = "f", uri = "/f/*", upstream_id = "fails" },
      },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "marked down", "is down" }) end
    gateway.cleanup_all()
  end)

  local function get(path)
    return assert(http.request(gw.port, { path = path, timeout = 5 }))
  end

  it("tries a node anyway by default", function()
    assert.are.equal(503, get("/t/x").status) -- the node's own 503: it goes down
    assert.is_truthy(gw:wait_log("marked down", 2))
    local before = testutil.upstream_requests(sick)
    local resp = get("/t/x")
    assert.are.equal(503, resp.status)
    assert.are.equal("S", resp:header("X-Upstream-Id"))
    assert.are.equal(before + 2, testutil.upstream_requests(sick)) -- this try and the /__stats question
  end)

  it("answers 503 at once with all_down: fail", function()
    assert.are.equal(503, get("/f/x").status)
    proc.sleep(0.1)
    local before = testutil.upstream_requests(sick)
    local resp = get("/f/x")
    assert.are.equal(503, resp.status)
    assert.is_nil(resp:header("X-Upstream-Id"))
    assert.matches("every node of the upstream is down %(all_down: fail%)", resp.body)
    assert.are.equal(before + 1, testutil.upstream_requests(sick)) -- only the /__stats question
    assert.is_truthy(gw:wait_log("every node of the upstream is down %(all_down: fail%)", 2))
  end)

  it("checks the setting", function()
    local err = testutil.config_error('upstreams: [{id: u, nodes: ["127.0.0.1:1"], all_down: maybe}]\n')
    assert.matches("upstreams%[0%]%.all_down: must be try %(a node anyway%) or fail %(503 at once%), got \"maybe\"",
      err)
  end)
end)
