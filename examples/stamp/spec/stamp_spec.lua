-- stamp, in process: `build/torii test examples/stamp/spec`. Each request
-- runs the plugin's phases in this process on the real runtime; the
-- upstream's answer is made up here.
local tt = require "torii.test"

describe("stamp", function()
  local gw
  setup(function()
    -- plugin_dirs is relative to this file; the route is "/*".
    gw = tt.new { plugin_dirs = { ".." }, plugins = { stamp = { tag = "edge-1" } } }
  end)
  teardown(function() gw:close() end)

  it("stamps the request going upstream and the response coming back", function()
    local res = gw:request { path = "/orders/7", upstream = { status = 200, body = "order 7" } }
    assert.status(200, res)
    assert.equal("order 7", res.body)
    assert.matches("^edge%-1; id=%x+$", res.upstream.headers["X-Stamp"])
    assert.header("X-Stamp", "edge-1", res)
    assert.equal(res.upstream.headers["X-Stamp"], res.ctx.stamp)
    assert.logged("%[info%].*stamp: edge%-1; id=%x+ status 200", res)
    assert.clean_log(res)
  end)

  it("keeps the upstream's status and stamps its errors too", function()
    local res = gw:request { path = "/orders/8", upstream = { status = 503, body = "busy" } }
    assert.status(503, res)
    assert.header("X-Stamp", "edge-1", res)
  end)

  it("refuses a request that arrives stamped: 400, and nothing goes upstream", function()
    local res = gw:request { path = "/orders/7", headers = { ["x-stamp"] = "forged" } }
    assert.status(400, res)
    assert.equal("plugin", res.answered)
    assert.is_nil(res.upstream)
    assert.has_no_header("X-Stamp", res) -- header_filter runs only on the upstream's answers
    assert.matches("already carries X%-Stamp", res.body)
  end)

  it("replaces a forged stamp when refuse_forged is off, in the header it is told", function()
    local lax = tt.new { plugin_dirs = { ".." },
      plugins = { stamp = { tag = "t2", header = "X-Edge", refuse_forged = false } } }
    local res = lax:request { path = "/", headers = { ["X-Edge"] = "forged" } }
    assert.status(200, res)
    assert.matches("^t2; id=", res.upstream.headers["X-Edge"])
    assert.is_nil(res.upstream.headers["X-Stamp"])
    lax:close()
  end)

  it("wants a tag of letters, digits, '.', '_' and '-'", function()
    local ok, err = tt.check { plugin_dirs = { ".." }, plugins = { stamp = {} } }
    assert.is_nil(ok)
    assert.matches("routes%[0%]%.plugins%.stamp", err)
    ok, err = tt.check { plugin_dirs = { ".." }, plugins = { stamp = { tag = "a b" } } }
    assert.is_nil(ok)
    assert.matches("stamp%.tag", err)
  end)
end)
