-- proxy-rewrite, in process: what goes upstream.
local tt = require "torii.test"

local function rewrite(conf, uri)
  return tt.new { plugins = { ["proxy-rewrite"] = conf }, uri = uri }
end

describe("proxy-rewrite", function()
  it("uri replaces the path and keeps the query", function()
    local res = rewrite({ uri = "/new" }):request { path = "/old/path?a=1&b=2" }
    assert.status(200, res)
    assert.equal("/new?a=1&b=2", res.upstream.target)
  end)

  it("uri takes the route's parameters as $name, escaped; an unknown $name stays", function()
    local gw = rewrite({ uri = "/v2/users/$id/$nope" }, "/users/:id")
    assert.equal("/v2/users/42/$nope", gw:request({ path = "/users/42" }).upstream.target)
    assert.equal("/v2/users/a%20b/$nope", gw:request({ path = "/users/a%20b" }).upstream.target)
  end)

  it("regex_uri rewrites with captures; a path it does not match stays as it came", function()
    local gw = rewrite { regex_uri = { "^/external-service/(.+)", "/$1" } }
    assert.equal("/orders/7?x=1", gw:request({ path = "/external-service/orders/7?x=1" }).upstream.target)
    assert.equal("/other", gw:request({ path = "/other" }).upstream.target)
  end)

  it("uri wins over regex_uri", function()
    local res = rewrite({ uri = "/u", regex_uri = { "^/(.*)", "/r/$1" } }):request { path = "/x" }
    assert.equal("/u", res.upstream.target)
  end)

  it("host replaces the Host sent upstream; X-Forwarded-Host keeps the client's", function()
    local res = rewrite({ host = "backend.internal" }):request { path = "/", host = "api.example.com" }
    assert.upstream_header("Host", "backend.internal", res)
    assert.upstream_header("X-Forwarded-Host", "api.example.com", res)
  end)

  it("method changes the method, and the body goes along", function()
    local res = rewrite({ method = "PUT" }):request { method = "POST", path = "/", body = "data" }
    assert.equal("PUT", res.upstream.method)
    assert.equal("data", res.upstream.body)
    assert.upstream_header("Content-Length", "4", res)
  end)

  it("headers: set replaces, add appends, remove drops", function()
    local gw = rewrite { headers = { set = { ["X-Set"] = "new" }, add = { ["X-Add"] = "2" }, remove = { "X-Drop" } } }
    local res = gw:request { path = "/", headers = { { "X-Set", "old" }, { "X-Add", "1" }, { "X-Drop", "d" } } }
    assert.upstream_header("X-Set", "new", res)
    assert.upstream_header("X-Add", "1, 2", res)
    assert.has_no_upstream_header("X-Drop", res)
  end)

  it("refuses to touch torii's own headers: the request fails with 500", function()
    local res = rewrite({ headers = { set = { ["X-Forwarded-For"] = "1.2.3.4" } } }):request { path = "/" }
    assert.status(500, res)
    assert.logged("X%-Forwarded%-%* headers are torii's own", res)
  end)

  it("rejects a bad regex, a uri without '/' and a method not in the list", function()
    local ok, err = tt.check { plugins = { ["proxy-rewrite"] = { regex_uri = { "(", "/" } } } }
    assert.is_nil(ok)
    assert.matches("regex_uri", err)
    ok, err = tt.check { plugins = { ["proxy-rewrite"] = { uri = "relative" } } }
    assert.is_nil(ok)
    assert.matches("proxy%-rewrite%.uri", err)
    ok = tt.check { plugins = { ["proxy-rewrite"] = { method = "BREW" } } }
    assert.is_nil(ok)
  end)
end)
