-- key-auth, in process (`torii test plugins/spec`): keys checked against
-- the consumers', consumer attached, key hidden on demand.
local tt = require "torii.test"
local cjson = require "cjson"

local CONSUMERS = {
  { username = "ann", plugins = { ["key-auth"] = { key = "ann-key" } } },
  { username = "bob", plugins = { ["key-auth"] = { key = "bob key" } } },
}

local function gw_with(conf)
  return tt.new { plugins = { ["key-auth"] = conf or {} }, consumers = CONSUMERS }
end

describe("key-auth", function()
  local gw
  setup(function() gw = gw_with() end)
  teardown(function() gw:close() end)

  it("answers 401 without a key, and nothing goes upstream", function()
    local res = gw:request { path = "/x" }
    assert.status(401, res)
    assert.equal("plugin", res.answered)
    assert.is_nil(res.upstream)
    assert.same({ message = "Missing API key found in request" }, cjson.decode(res.body))
    assert.header("Content-Type", "application/json", res)
  end)

  it("answers 401 to a key no consumer has", function()
    local res = gw:request { path = "/x", headers = { apikey = "nope" } }
    assert.status(401, res)
    assert.same({ message = "Invalid API key in request" }, cjson.decode(res.body))
  end)

  it("attaches the consumer of a key in the header (any case) and names it upstream", function()
    local res = gw:request { path = "/x", headers = { APIKEY = "ann-key", ["X-Consumer-Username"] = "forged" } }
    assert.status(200, res)
    assert.upstream_header("X-Consumer-Username", "ann", res)
    assert.equal("ann", res.ctx.consumer_name)
    assert.equal("ann", res.ctx.consumer.username)
    assert.upstream_header("apikey", "ann-key", res) -- hide_credentials is off by default
    assert.clean_log(res)
  end)

  it("takes the key from the query argument, decoded", function()
    local res = gw:request { path = "/x?apikey=bob+key&a=1" }
    assert.status(200, res)
    assert.upstream_header("X-Consumer-Username", "bob", res)
    assert.equal("/x?apikey=bob+key&a=1", res.upstream.target)
  end)

  it("prefers the header over the query argument, also when the header's key is wrong", function()
    local res = gw:request { path = "/x?apikey=ann-key", headers = { apikey = "wrong" } }
    assert.status(401, res)
  end)

  describe("with hide_credentials", function()
    local hiding
    setup(function() hiding = gw_with { hide_credentials = true, header = "X-Key", query = "k" } end)
    teardown(function() hiding:close() end)

    it("removes the key's header, and nothing else", function()
      local res = hiding:request { path = "/x", headers = { ["X-Key"] = "ann-key", ["X-Other"] = "o" } }
      assert.status(200, res)
      assert.has_no_upstream_header("X-Key", res)
      assert.upstream_header("X-Other", "o", res)
    end)

    it("removes just the key's query argument, the others as they came", function()
      local res = hiding:request { path = "/x?a=1&k=bob%20key&flag&a=2" }
      assert.status(200, res)
      assert.equal("/x?a=1&flag&a=2", res.upstream.target)
    end)

    it("no longer reads the default names", function()
      assert.status(401, hiding:request { path = "/x", headers = { apikey = "ann-key" } })
    end)
  end)

  it("rejects an unknown property, and two consumers with one key", function()
    local ok, err = tt.check { plugins = { ["key-auth"] = { headr = "x" } } }
    assert.is_nil(ok)
    assert.matches("routes%[0%]%.plugins%.key%-auth", err)
    ok, err = tt.check { plugins = { ["key-auth"] = {} }, consumers = {
      { username = "a", plugins = { ["key-auth"] = { key = "same" } } },
      { username = "b", plugins = { ["key-auth"] = { key = "same" } } },
    } }
    assert.is_nil(ok)
    assert.matches("the same key as consumers%[0%]", err)
  end)
end)
