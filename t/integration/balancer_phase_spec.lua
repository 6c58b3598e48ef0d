-- The balancer phase: a plugin's balancer(conf, ctx) runs before each try
-- and may choose its node (by id or address) or another upstream; on a
-- retry it learns how the last try failed. It may not wait, and its
-- functions refuse to run in other phases.

local gateway = require "gateway"
local http = require "http"

-- The fixture: X-Node / X-Upstream headers choose (X-Retry-Node on a
-- retry); every try adds "try:last:status" to X-Balancer; X-Nodes lists
-- what get_nodes saw; X-Wait makes it wait (refused).
local PINNER = [[
local torii = require "torii"
return {
  name = "pinner", version = "1", priority = 0, schema = { type = "object" },
  balancer = function(conf, ctx)
    local b, req = torii.balancer, torii.request
    local try, last, status = b.get_try()
    torii.response.add_header("X-Balancer", try .. ":" .. (last or "-") .. ":" .. (status or "-"))
    if req.get_header("X-Wait") then torii.sleep(0.01) end
    local up = req.get_header("X-Upstream")
    if up then assert(b.set_upstream(up)) end
    local node = try > 1 and req.get_header("X-Retry-Node") or req.get_header("X-Node")
    if node then assert(b.set_node(node)) end
    if try == 1 then
      local seen = {}
      for _, n in ipairs(b.get_nodes()) do
        seen[#seen + 1] = (n.id or "") .. "=" .. n.address .. "/" .. n.weight .. (n.down and "/down" or "")
      end
      torii.response.set_header("X-Nodes", table.concat(seen, ","))
    end
  end,
  access = function()
    if torii.request.get_header("X-Early") then torii.balancer.set_node("a") end
  end,
}
]]

describe("balancer phase", function()
  local gw, a, b, c, bad

  setup(function()
    a = gateway.mock({ id = "A" })
    b = gateway.mock({ id = "B" })
    c = gateway.mock({ id = "C" })
    bad = gateway.mock({ id = "BAD", args = { "--status", "500" } })
    gw = gateway.start {
      config = {
        workers = 1,
        plugin_dirs = { "plugins" },
        upstreams = {
          { id = "pair", nodes = { { host = "127.0.0.1", port = a.port, id = "a" },
                                   { host = "127.0.0.1", port = b.port, id = "b", weight = 2 } } },
          { id = "other", nodes = { "127.0.0.1:" .. c.port } },
          { id = "flaky", nodes = { { host = "127.0.0.1", port = bad.port, id = "bad" },
                                    { host = "127.0.0.1", port = a.port, id = "good" } },
            retry = { count = 1, on = { 500 } } },
        },
        routes = {
          { id = "r", uri = "/r/*", upstream_id = "pair", plugins = { pinner = {} } },
          { id = "f", uri = "/f/*", upstream_id = "flaky", plugins = { pinner = {} } },
        },
      },
      extra_files = { ["plugins/pinner.lua"] = PINNER },
    }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "plugin pinner failed", "balancer" }) end
    gateway.cleanup_all()
  end)

  local function get(path, headers)
    return assert(http.request(gw.port, { path = path, headers = headers, timeout = 5 }))
  end

  it("leaves the choice to the upstream's balancer when it chooses nothing", function()
    local seen = {}
    for _ = 1, 6 do
      local resp = get("/r/x")
      assert.are.equal(200, resp.status)
      assert.are.equal("1:-:-", resp:header("X-Balancer"))
      seen[#seen + 1] = resp:header("X-Upstream-Id")
    end
    table.sort(seen)
    assert.are.equal("A,A,B,B,B,B", table.concat(seen, ","))
  end)

  it("sends the try to the node it names, by id or by address", function()
    for _ = 1, 4 do
      assert.are.equal("A", get("/r/x", { { "X-Node", "a" } }):header("X-Upstream-Id"))
      assert.are.equal("B", get("/r/x", { { "X-Node", "127.0.0.1:" .. b.port } }):header("X-Upstream-Id"))
    end
  end)

  it("sends the try to another upstream", function()
    assert.are.equal("C", get("/r/x", { { "X-Upstream", "other" } }):header("X-Upstream-Id"))
  end)

  it("sees the upstream's nodes with their ids, addresses and weights", function()
    assert.are.equal(("a=127.0.0.1:%d/1,b=127.0.0.1:%d/2"):format(a.port, b.port), get("/r/x"):header("X-Nodes"))
  end)

  it("runs again before a retry, knowing how the last try failed", function()
    -- the first try goes to the node answering 500; the retry is steered
    local resp = get("/f/x", { { "X-Node", "bad" }, { "X-Retry-Node", "good" } })
    assert.are.equal(200, resp.status)
    assert.are.equal("A", resp:header("X-Upstream-Id"))
    local trail = {}
    for _, h in ipairs(resp.headers) do
      if h[1]:lower() == "x-balancer" then trail[#trail + 1] = h[2] end
    end
    assert.are.same({ "1:-:-", "2:status:500" }, trail)
  end)

  it("fails the request, logged, when its choice does not exist", function()
    local mark = gw:log_mark()
    assert.are.equal(500, get("/r/x", { { "X-Node", "nope" } }).status)
    assert.is_truthy(gw:wait_log("plugin pinner failed in balancer: .*no node with this id or address", 5, mark))
    assert.are.equal(500, get("/r/x", { { "X-Upstream", "ghost" } }).status)
    assert.is_truthy(gw:wait_log("no upstream with this id in upstreams:", 5, mark))
  end)

  it("may not wait, and its functions refuse other phases", function()
    local mark = gw:log_mark()
    assert.are.equal(500, get("/r/x", { { "X-Wait", "1" } }).status)
    assert.is_truthy(gw:wait_log("cannot wait in balancer", 5, mark))
    assert.are.equal(500, get("/r/x", { { "X-Early", "1" } }).status)
    assert.is_truthy(gw:wait_log("only the balancer phase chooses a try's node or upstream", 5, mark))
    -- the worker goes on
    assert.are.equal(200, get("/r/x").status)
  end)
end)
