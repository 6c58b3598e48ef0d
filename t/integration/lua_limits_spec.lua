-- Lua limits: a plugin phase that runs past lua.cpu_budget is stopped (its
-- request fails with 500, the worker goes on); one the hook cannot reach
-- (a loop compiled to machine code) costs its worker, which the master
-- replaces; a VM that grows past 3/4 of lua.memory_limit is replaced by a
-- fresh one for new requests, and an allocation past the limit fails only
-- its request. The fixture plugin `hog` misbehaves on demand.

local gateway = require "gateway"
local cjson = require "cjson"
local testutil = require "testutil"

local eventually = testutil.eventually

describe("Lua limits", function()
  local gw

  setup(function()
    gw = gateway.start { config = {
      workers = 1,
      lua = { cpu_budget = "200ms", memory_limit = "64m" },
      plugin_dirs = { gateway.root .. "/t/integration/fixtures/lualimits" },
      routes = { { id = "hog", uri = "/hog", upstream = { nodes = { "127.0.0.1:1" } }, plugins = { hog = {} } } },
    } }
  end)

  teardown(function() gateway.cleanup_all() end)

  local function get(query, opts)
    return testutil.request(gw, "/hog" .. (query or ""), opts)
  end

  it("stops a phase past its CPU budget: 500 for that request, the worker serves on", function()
    local pid = cjson.decode(get().body).pid
    local from = gw:log_mark()
    local resp = get("?spin=interp", { timeout = 10 })
    assert.are.equal(500, resp.status)
    assert.is_truthy(gw:wait_log("CPU budget of 200 ms exceeded", 5, from))
    assert.is_truthy(gw:wait_log("hog", 5, from))
    local after = get()
    assert.are.equal(200, after.status)
    assert.are.equal(pid, cjson.decode(after.body).pid)
  end)

  it("replaces the worker when compiled code cannot be interrupted", function()
    local pid = cjson.decode(get().body).pid
    local from = gw:log_mark()
    local http = require "http"
    local resp = http.request(gw.port, { path = "/hog?spin=jit", timeout = 10 })
    assert.is_true(resp == nil or resp.incomplete ~= nil or resp.status >= 500)
    assert.is_truthy(gw:wait_log("overran its CPU budget", 10, from))
    local new = eventually(function()
      local r = http.request(gw.port, { path = "/hog", timeout = 2 })
      return r and r.status == 200 and cjson.decode(r.body).pid
    end, 10, 0.1)
    assert.is_truthy(new)
    assert.are_not.equal(pid, new)
  end)

  it("fails only the request whose allocation goes past the memory limit", function()
    local from = gw:log_mark()
    local resp = get("?alloc=80")
    assert.are.equal(500, resp.status)
    assert.is_truthy(gw:wait_log("not enough memory", 5, from))
    assert.are.equal(200, get().status)
  end)

  it("gives new requests a fresh VM when the VM stays over 3/4 of its limit", function()
    local from = gw:log_mark()
    local held = 0
    for _ = 1, 20 do
      local r = get("?grow=4")
      assert.are.equal(200, r.status)
      local h = cjson.decode(r.body).held
      if h < held then break end -- a fresh VM holds nothing
      held = h
    end
    assert.is_truthy(gw:wait_log("new requests run on a fresh VM", 5, from))
    assert.is_true(cjson.decode(get().body).held < 12)
    gw:assert_clean({ "CPU budget", "not enough memory", "overran", "exited with code 70" })
  end)
end)
