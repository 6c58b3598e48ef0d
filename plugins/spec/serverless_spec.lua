-- serverless, in process: Lua functions from the configuration.
local tt = require "torii.test"
local cjson = require "cjson"

local function serverless(conf)
  return tt.new { plugins = { serverless = conf } }
end

describe("serverless", function()
  it("runs its functions in rewrite by default, in order, with torii in scope", function()
    local res = serverless({ functions = {
      "return function(conf, ctx) ctx.order = 'a' torii.upstream.set_header('X-Phase', torii.get_phase()) end",
      "return function(conf, ctx) ctx.order = ctx.order .. 'b' end",
    } }):request { path = "/" }
    assert.status(200, res)
    assert.upstream_header("X-Phase", "rewrite", res)
    assert.equal("ab", res.ctx.order)
  end)

  it("runs in access when asked", function()
    local res = serverless({ phase = "access", functions = {
      "return function() torii.upstream.set_header('X-Phase', torii.get_phase()) end" } }):request {}
    assert.upstream_header("X-Phase", "access", res)
  end)

  it("can answer the request itself", function()
    local gw = serverless { functions = { [[
      return function()
        if torii.request.get_header("x-block") then
          torii.response.exit(403, { message = "blocked" })
        end
      end]] } }
    local res = gw:request { headers = { ["X-Block"] = "1" } }
    assert.status(403, res)
    assert.same({ message = "blocked" }, cjson.decode(res.body))
    assert.status(200, gw:request {})
  end)

  it("may wait", function()
    local res = serverless({ functions = { "return function(_, ctx) torii.sleep(0.02) ctx.woke = true end" } })
      :request {}
    assert.status(200, res)
    assert.is_true(res.ctx.woke)
  end)

  it("fails only its request when a function raises: 500, logged with the chunk's line", function()
    local res = serverless({ functions = { "return function()\n  error('nope')\nend" } }):request {}
    assert.status(500, res)
    assert.logged("plugin serverless failed in rewrite: serverless%[0%]:2: nope", res)
  end)

  it("rejects a chunk that does not compile or does not return a function", function()
    local ok, err = tt.check { plugins = { serverless = { functions = { "return function(" } } } }
    assert.is_nil(ok)
    assert.matches("functions%[0%]", err)
    ok, err = tt.check { plugins = { serverless = { functions = { "return 42" } } } }
    assert.is_nil(ok)
    assert.matches("must return a function", err)
  end)
end)
