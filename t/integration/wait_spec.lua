-- torii.sleep: a plugin waits without blocking its worker. The request's
-- coroutine is suspended and resumed by a timer; other requests go on
-- meanwhile; a client leaving during the wait costs nothing.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"
local testutil = require "testutil"

local function serverless(phase, src)
  return { serverless = { phase = phase, functions = { src } } }
end

describe("torii.sleep", function()
  local gw, m

  setup(function()
    m = gateway.mock { id = "wait" }
    local node = { nodes = { "127.0.0.1:" .. m.port } }
    gw = gateway.start {
      config = {
        workers = 1,
        routes = {
          { id = "slow", uri = "/slow/*", upstream = node, plugins = serverless("access", [[
            return function(conf, ctx)
              ctx.before = torii.request.get_path()
              torii.sleep(tonumber(torii.request.get_query_arg("s") or "0.2"))
              torii.upstream.set_header("X-Slept", ctx.before)
            end]]) },
          { id = "twice", uri = "/twice", upstream = node, plugins = serverless("rewrite", [[
            return function(conf, ctx)
              torii.sleep(0.05)
              torii.sleep(0)
              torii.response.exit(200, "slept twice")
            end]]) },
          { id = "fast", uri = "/fast", upstream = node },
          { id = "bad", uri = "/bad", upstream = node, plugins = serverless("access", [[
            return function(conf, ctx) torii.sleep(-1) end]]) },
        },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)

  it("resumes the phase where it stopped, with ctx intact", function()
    local resp = assert(http.request(gw.port, { path = "/slow/a?s=0.1", timeout = 5 }))
    assert.are.equal(200, resp.status)
    local doc = cjson.decode(resp.body)
    local slept
    for _, h in ipairs(doc.headers) do
      if h[1] == "X-Slept" then slept = h[2] end
    end
    assert.are.equal("/slow/a", slept)
  end)

  it("waits more than once in a phase, then answers", function()
    local resp = assert(http.request(gw.port, { path = "/twice", timeout = 5 }))
    assert.are.equal(200, resp.status)
    assert.are.equal("slept twice", resp.body)
  end)

  it("does not block the worker: a request sent during a wait is answered first", function()
    local slow = assert(http.connect(gw.port))
    assert(slow:request { path = "/slow/b?s=2" })
    local fast = assert(http.request(gw.port, { path = "/fast", timeout = 5 }))
    assert.are.equal(200, fast.status)
    -- the slow one is still waiting: nothing has arrived on its connection
    assert.is_nil(slow:read_response { timeout = 0.2 }, "the waiting request was answered before the fast one")
    local resp = assert(slow:read_response { timeout = 5 })
    slow:close()
    assert.are.equal(200, resp.status)
  end)

  it("a client that leaves during the wait leaves the worker healthy", function()
    for _ = 1, 5 do
      local c = assert(http.connect(gw.port))
      assert(c:request { path = "/slow/c?s=0.3" })
      c:close()
    end
    local resp = assert(http.request(gw.port, { path = "/slow/d?s=0", timeout = 5 }))
    assert.are.equal(200, resp.status)
    gw:assert_clean()
  end)

  it("a bad duration fails the request with 500 and names the reason", function()
    local resp = assert(http.request(gw.port, { path = "/bad", timeout = 5 }))
    assert.are.equal(500, resp.status)
    assert.is_truthy(testutil.eventually(function()
      return gw:error_log():find("sleep takes 0 to 86400 seconds", 1, true)
    end, 3))
  end)
end)
