-- TORII_PHASE_TIMES: a worker times its plugin phases and, when it exits,
-- writes per phase the runs and their mean time to stderr. Routes without
-- plugins never enter the runtime, and without the variable nothing is
-- timed or written.

local gateway = require "gateway"
local http = require "http"

local FIXTURES = gateway.root .. "/t/integration/fixtures/jit" -- noop: rewrite, access, header_filter, log

local function config(port)
  return {
    workers = 1,
    plugin_dirs = { FIXTURES },
    routes = {
      { id = "timed", uri = "/timed", upstream = { nodes = { "127.0.0.1:" .. port } }, plugins = { noop = {} } },
      { id = "plain", uri = "/plain", upstream = { nodes = { "127.0.0.1:" .. port } } },
    },
  }
end

local function requests(gw, path, n)
  local conn = assert(http.connect(gw.port))
  for i = 1, n do
    assert(conn:request { path = path })
    local resp = assert(conn:read_response())
    assert.are.equal(200, resp.status, path .. " request " .. i)
  end
  conn:close()
end

describe("TORII_PHASE_TIMES", function()
  local m

  setup(function() m = gateway.mock { id = "times" } end)
  teardown(function() gateway.cleanup_all() end)

  it("reports each phase's runs and mean time when the worker exits", function()
    local gw = gateway.start { env = { TORII_PHASE_TIMES = "1" }, config = config(m.port) }
    requests(gw, "/timed", 25)
    requests(gw, "/plain", 10)
    assert.is_true((gw:quit()))
    local text = gw:stderr()
    local line = text:match("torii: worker 1 phase times:[^\n]*")
    assert.is_truthy(line, "no report in stderr:\n" .. text)
    for _, phase in ipairs { "rewrite", "access", "header_filter", "log" } do
      local runs, mean = line:match(" " .. phase .. " (%d+) runs, mean (%d+) ns")
      assert.are.equal("25", runs, phase .. " in: " .. line) -- /plain never entered the runtime
      assert.is_true(tonumber(mean) > 0, phase .. " in: " .. line)
    end
    assert.is_nil(line:find("body_filter", 1, true)) -- no plugin has one
    gw:assert_clean()
  end)

  it("is off without the variable", function()
    local gw = gateway.start { config = config(m.port) }
    requests(gw, "/timed", 5)
    assert.is_true((gw:quit()))
    assert.is_nil(gw:stderr():find("phase times", 1, true))
    gw:assert_clean()
  end)
end)
