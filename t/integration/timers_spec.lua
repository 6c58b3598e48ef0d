-- torii.timer: timers started in init_worker run in the worker without a
-- request; `every` repeats, `at` runs once, `cancel` stops one, and when
-- the worker stops every pending timer runs once more with premature =
-- true.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"
local testutil = require "testutil"

describe("torii.timer", function()
  local gw, mark

  setup(function()
    local dir = gateway.tmpdir()
    mark = dir .. "/timer-mark.txt"
    gw = gateway.start {
      env = { TORII_TIMER_MARK = mark },
      config = {
        workers = 1,
        plugin_dirs = { gateway.root .. "/t/integration/fixtures/timers" },
        routes = { { id = "t", uri = "/t", upstream = { nodes = { "127.0.0.1:1" } },
          plugins = { ticker = {} } } },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)

  local function state()
    local resp = assert(http.request(gw.port, { path = "/t", timeout = 5 }))
    assert.are.equal(200, resp.status)
    return cjson.decode(resp.body)
  end

  it("every repeats, at runs once, cancel stops one", function()
    local first = state()
    local later = testutil.eventually(function()
      local s = state()
      return s.ticks >= first.ticks + 3 and s
    end, 5, 0.05)
    assert.is_truthy(later, "the every timer does not repeat")
    assert.are.equal("ran", later.once)
    assert.is_nil(later.cancelled)
  end)

  it("a timer started during a request runs too", function()
    assert.is_truthy(testutil.eventually(function() return state().late end, 3, 0.05))
  end)

  it("pending timers run with premature = true when the worker stops", function()
    assert.is_true(gw:quit(10))
    local text = testutil.read_file(mark) or ""
    assert.is_truthy(text:find("premature every", 1, true), text)
    assert.is_truthy(text:find("premature at", 1, true), text)
    assert.is_nil(text:find("early", 1, true))
  end)
end)
