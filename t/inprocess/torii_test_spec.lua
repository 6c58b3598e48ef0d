-- Specs of torii.test itself (run by `torii test`): requests walk through
-- the real runtime in this process; the probe plugin (fixtures/) does in
-- each phase what its configuration says.
local tt = require "torii.test"
local torii = require "torii"
local gateway = require "torii.testing.gateway"
local cjson = require "cjson"

-- A gateway with probe (and `after`, which runs later in access) on /*.
local function probe_gw(conf, extra)
  local plugins = { probe = conf or {} }
  for k, v in pairs(extra or {}) do plugins[k] = v end
  return tt.new { plugin_dirs = { "fixtures" }, plugins = plugins }
end

local function now()
  return require("socket").gettime()
end

describe("torii.test", function()
  it("proxies a request and shows what went upstream and what came back", function()
    local gw = probe_gw({}, { after = {} })
    local res = gw:request {
      method = "POST", path = "/a/b?x=1", headers = { ["X-Client"] = "c1", Connection = "keep-alive" },
      body = "payload", upstream = { status = 201, headers = { ["X-Up"] = "u" }, body = "created" },
    }
    assert.status(201, res)
    assert.equal("upstream", res.answered)
    assert.equal("created", res.body)
    assert.header("X-Up", "u", res)
    assert.equal("POST", res.upstream.method)
    assert.equal("/a/b?x=1", res.upstream.target)
    assert.equal("/a/b", res.upstream.path)
    assert.equal("x=1", res.upstream.query)
    assert.equal("payload", res.upstream.body)
    assert.upstream_header("X-Client", "c1", res)
    assert.upstream_header("X-After", "1", res)
    assert.upstream_header("X-Forwarded-For", "127.0.0.1", res)
    assert.has_no_upstream_header("Connection", res) -- hop-by-hop: never forwarded
    assert.equal("rewrite;access;header_filter;", res.ctx.seen)
    assert.is_true(res.ctx.after)
    assert.is_true(res.ctx.logged)
    assert.equal(201, res.ctx.upstream_status)
    assert.clean_log(res)
    gw:close()
  end)

  it("applies the plugins' edits to the upstream request as a worker does", function()
    local gw = probe_gw { rewrite = { uri = "/v2/items?page=2", method = "PUT", host = "backend.internal" },
      access = { upstream_header = { "X-Token", "t1" }, clear_upstream_header = "X-Secret" } }
    local res = gw:request { path = "/items", host = "api.example.com",
      headers = { { "X-Secret", "s" }, { "X-Keep", "k" } } }
    assert.status(200, res)
    assert.equal("PUT", res.upstream.method)
    assert.equal("/v2/items?page=2", res.upstream.target)
    assert.upstream_header("Host", "backend.internal", res)
    assert.upstream_header("X-Forwarded-Host", "api.example.com", res)
    assert.upstream_header("X-Token", "t1", res)
    assert.upstream_header("X-Keep", "k", res)
    assert.has_no_upstream_header("X-Secret", res)
  end)

  it("waits: a sleep in access suspends the request and the event loop resumes it", function()
    local gw = probe_gw { rewrite = { sleep = 0.05 }, access = { sleep = 0.1 } }
    local t0 = now()
    local res = gw:request { path = "/" }
    local took = now() - t0
    assert.status(200, res)
    assert.equal(2, res.ctx.slept)
    assert.is_true(took >= 0.14, "took " .. took)
    assert.clean_log(res)
  end)

  it("gives 500 and logs the traceback when a plugin fails", function()
    local gw = probe_gw({ access = { fail = "boom in access" } }, { after = {} })
    local res = gw:request { path = "/" }
    assert.status(500, res)
    assert.equal("torii", res.answered)
    assert.is_nil(res.upstream)
    assert.equal("a plugin failed", cjson.decode(res.body).message)
    assert.logged("%[error%].*plugin probe failed in access: .*boom in access", res)
    assert.logged("stack traceback:", res)
    assert.logged("route: test, request_id: ", res)
    assert.is_nil(res.ctx.after) -- the chain stopped there
    assert.has_error(function() assert.clean_log(res) end)
    assert.clean_log(res, { "boom in access" })
  end)

  it("stops the chain when a plugin exits, and nothing goes upstream", function()
    local gw = probe_gw({ access = { exit = 403, body = { message = "go away" }, headers = { ["X-Why"] = "probe" } } },
      { after = {} })
    local res = gw:request { path = "/" }
    assert.status(403, res)
    assert.equal("plugin", res.answered)
    assert.is_nil(res.upstream)
    assert.is_nil(res.ctx.after)
    assert.same({ message = "go away" }, cjson.decode(res.body))
    assert.header("Content-Type", "application/json", res)
    assert.header("X-Why", "probe", res)
    assert.equal("rewrite;access;", res.ctx.seen) -- no header_filter without an upstream answer
    assert.is_true(res.ctx.logged)
  end)

  it("passes the upstream's answer through header_filter and body_filter, piece by piece", function()
    local gw = probe_gw { header_filter = { response_header = { "X-Filtered", "yes" } },
      body_filter = { upper = true, append = "!" }, log = true }
    local res = gw:request { path = "/", upstream = { status = 200, body = { "ab", "cd" } } }
    assert.status(200, res)
    assert.equal("ABCD!", res.body)
    assert.equal(3, res.ctx.pieces) -- two pieces, then the end
    assert.header("X-Filtered", "yes", res)
    assert.header("Transfer-Encoding", "chunked", res) -- its length may change: framed anew
    assert.has_no_header("Content-Length", res)
    assert.logged("%[info%].*probe saw status 200", res)
  end)

  it("says when a body_filter cut the response", function()
    local gw = probe_gw { body_filter = { fail = "late failure" } }
    local res = gw:request { path = "/", upstream = { body = "abc" } }
    assert.status(200, res) -- the head was out already
    assert.is_true(res.cut)
    assert.logged("late failure", res)
  end)

  it("refuses a wait in header_filter, naming the phase", function()
    local gw = probe_gw { header_filter = { sleep = 0.01 } }
    local res = gw:request { path = "/" }
    assert.status(500, res)
    assert.logged("cannot wait in header_filter", res)
  end)

  it("answers 404 itself when no route matches", function()
    local gw = tt.new { config = { routes = { { id = "api", uri = "/api/*", plugins = {} } } } }
    local res = gw:request { path = "/elsewhere" }
    assert.status(404, res)
    assert.equal("torii", res.answered)
    assert.status(200, gw:request { path = "/api/x" })
  end)

  it("takes a YAML configuration, with routes, hosts and services", function()
    local gw = tt.new { config = [[
plugin_dirs: [fixtures]
services:
  - id: svc
    upstream: {nodes: ["127.0.0.1:9"]}
    plugins: {probe: {access: {upstream_header: [X-Service, svc]}}}
routes:
  - {id: a, uri: /a, hosts: [a.example], service_id: svc}
  - {id: b, uri: /b, upstream: {nodes: ["127.0.0.1:9"]}, plugins: {after: {}}}
]] }
    local res = gw:request { path = "/a", host = "a.example" }
    assert.upstream_header("X-Service", "svc", res)
    assert.upstream_header("Host", "a.example", res)
    assert.status(404, gw:request { path = "/a", host = "b.example" })
    res = gw:request { path = "/b", upstream = { body = "plain" } }
    assert.upstream_header("X-After", "1", res)
    assert.equal("5", res.headers["content-length"]) -- no body_filter: the length stays
  end)

  it("reports a bad configuration with the loader's message", function()
    local ok, err = tt.check { plugins = { ["limit-count"] = { count = 0, time_window = 60 } } }
    assert.is_nil(ok)
    assert.matches("routes%[0%]%.plugins%.limit%-count%.count", err)
    assert.has_error(function() tt.new { plugins = { nope = {} } } end)
    assert.is_true(tt.check { plugins = { ["limit-count"] = { count = 1, time_window = 60 } } })
  end)

  it("sets the client's address", function()
    local gw = probe_gw()
    local res = gw:request { path = "/", remote_addr = "10.1.2.3" }
    assert.upstream_header("X-Real-IP", "10.1.2.3", res)
  end)

  it("fires timers while tt.sleep runs the event loop, and ends them when the gateway closes", function()
    local gw = probe_gw { access = { timer = 0.05 } }
    local dict = torii.shared.probe
    dict:delete("fired")
    gw:request { path = "/" }
    assert.is_nil(dict:get("fired"))
    tt.sleep(0.1)
    assert.equal("on time", dict:get("fired"))
    dict:delete("fired")
    gw:request { path = "/" } -- a timer 0.05 s away, pending when the gateway closes
    gw:close()
    assert.equal("premature", dict:get("fired"))
  end)

  it("keeps gateways apart: each has its own VM and its own timers", function()
    local a = probe_gw { access = { upstream_header = { "X-Gw", "a" } } }
    local b = probe_gw { access = { upstream_header = { "X-Gw", "b" } } }
    assert.upstream_header("X-Gw", "a", a:request {})
    assert.upstream_header("X-Gw", "b", b:request {})
    assert.upstream_header("X-Gw", "a", a:request {})
    a:close()
    assert.upstream_header("X-Gw", "b", b:request {})
    assert.has_error(function() a:request {} end)
  end)

  it("refuses torii.timer in the spec itself: there is no worker VM for it to run in", function()
    local id, err = torii.timer.at(0, function() end)
    assert.is_nil(id)
    assert.matches("workers only", err)
  end)

  it("sends the request to a real upstream when given its address", function()
    local mock = gateway.mock()
    finally(function() mock.stop() end)
    local gw = probe_gw { access = { upstream_header = { "X-Probe", "p" } } }
    local res = gw:request { method = "POST", path = "/echo?a=1", body = "hello", upstream = "127.0.0.1:" .. mock.port }
    assert.status(200, res)
    local echo = cjson.decode(res.body)
    assert.equal("POST", echo.method)
    assert.equal("hello", echo.body)
    assert.upstream_header("X-Probe", "p", res)
  end)

  it("writes numbers in header values as tostring does", function()
    local values = { 5, -3, 2.5, 1e20, 2 ^ 53, -0.0, 1 / 3, 0 / 0, 1 / 0, -1 / 0, 0.1, 1e-300,
      0, 99999999999999, -99999999999999, 1e14, -1e14, 123456789012346, 1000000000 }
    local gw = tt.new { plugins = { serverless = { phase = "access", functions = { [[
      local values = { 5, -3, 2.5, 1e20, 2 ^ 53, -0.0, 1 / 3, 0 / 0, 1 / 0, -1 / 0, 0.1, 1e-300,
      0, 99999999999999, -99999999999999, 1e14, -1e14, 123456789012346, 1000000000 }
      return function()
        local torii = require "torii"
        for i, v in ipairs(values) do
          torii.response.set_header("X-R" .. i, v)
          torii.upstream.set_header("X-U" .. i, v)
        end
        torii.response.add_header("X-Add", 7)
        torii.upstream.add_header("X-Add", 8)
      end]] } } } }
    local res = gw:request { path = "/n" }
    assert.status(200, res)
    for i, v in ipairs(values) do
      assert.header("X-R" .. i, tostring(v), res)
      assert.upstream_header("X-U" .. i, tostring(v), res)
    end
    assert.header("X-Add", "7", res)
    assert.upstream_header("X-Add", "8", res)
    gw:close()
  end)

  it("blames the plugin's line for a refused header, whatever the value's type", function()
    for _, value in ipairs({ '"5"', "5" }) do -- a string, then a number
      local gw = tt.new { plugins = { serverless = { phase = "access", functions = {
        "return function()\n require('torii').response.set_header('Content-Length', " .. value .. ")\nend" } } } }
      local res = gw:request { path = "/n" }
      assert.status(500, res)
      local said = {}
      for _, l in ipairs(res.logs) do said[#said + 1] = l.message end
      assert.matches("serverless%[0%]:2: torii%.response%.set_header: framing and hop%-by%-hop headers",
        table.concat(said, "\n"))
      gw:close()
    end
  end)

  it("runs the balancer phase before the try", function()
    local gw = tt.new { plugin_dirs = { "fixtures" }, plugins = { steer = {} } }
    local res = gw:request { path = "/b" }
    assert.status(200, res)
    assert.header("X-Try", "1", res)
    assert.header("X-Node-Count", "1", res)
    assert.is_nil(res.upstream.balancer)
    res = gw:request { path = "/b", headers = { ["X-Node"] = "127.0.0.1:1" } }
    assert.same({ node = "127.0.0.1:1" }, res.upstream.balancer)
    res = gw:request { path = "/b", headers = { ["X-Upstream"] = "canary", ["X-Node"] = "c1" } }
    assert.same({ upstream = "canary", node = "c1" }, res.upstream.balancer)
    res = gw:request { path = "/b", headers = { ["X-Node"] = "nowhere:1" } }
    assert.status(500, res)
    local said = {}
    for _, l in ipairs(res.logs) do said[#said + 1] = l.message end
    assert.matches("plugin steer failed in balancer: .*no node with this id or address", table.concat(said, "\n"))
    gw:close()
  end)
end)
