-- Plugins on consumers: besides its credentials (key-auth), a consumer may
-- carry plugin instances of its own. Once an authentication plugin has
-- attached the consumer, its instances win over the route's (and the
-- service's and the global rules'), and its plugins whose phases ran
-- already (rewrite) run at once.

local gateway = require "gateway"
local testutil = require "testutil"

local request, upstream_value = testutil.request, testutil.upstream_value
local cjson = require "cjson"

describe("consumer plugins", function()
  local gw, mock

  setup(function()
    mock = gateway.mock({ id = "up" })
    local node = { "127.0.0.1:" .. mock.port }
    gw = gateway.start { config = {
      consumers = {
        { username = "gold", plugins = {
          ["key-auth"] = { key = "gold-key" },
          ["limit-count"] = { count = 2, time_window = 3600, key = "consumer" },
          ["proxy-rewrite"] = { headers = { set = { ["X-Tier"] = "gold" } } },
          serverless = { phase = "access", functions = {
            "return function(conf, ctx) require('torii').upstream.set_header('X-Early', ctx.consumer_name) end" } },
        } },
        { username = "silver", plugins = { ["key-auth"] = { key = "silver-key" } } },
        { username = "bronze", plugins = {
          ["key-auth"] = { key = "bronze-key" },
          ["proxy-rewrite"] = { headers = { set = { ["X-Traced"] = "yes" } },
                                _meta = { filter = { { "http_x_trace", "==", "1" } } } },
        } },
      },
      routes = {
        { id = "api", uri = "/api/*", upstream = { nodes = node },
          plugins = { ["key-auth"] = {}, ["limit-count"] = { count = 100, time_window = 3600, key = "consumer" } } },
        { id = "open", uri = "/open/*", upstream = { nodes = node },
          plugins = { ["limit-count"] = { count = 100, time_window = 3600, key = "route" } } },
      },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
  end)

  local function echo(resp) return cjson.decode(resp.body) end

  it("a consumer's instance wins over the route's", function()
    local first = request(gw, "/api/a", { headers = { { "apikey", "gold-key" } } })
    assert.are.equal(200, first.status)
    assert.are.equal("2", first:header("X-RateLimit-Limit"))
    local doc = echo(first)
    -- proxy-rewrite runs in rewrite, before key-auth (access) knew the
    -- consumer: it ran once the consumer was attached
    assert.are.equal("gold", upstream_value(doc, "X-Tier"))
    -- serverless (priority 10000) sorts before key-auth (2500): it ran its
    -- access phase then too, and saw the consumer
    assert.are.equal("gold", upstream_value(doc, "X-Early"))
    assert.are.equal(200, request(gw, "/api/a", { headers = { { "apikey", "gold-key" } } }).status)
    local third = request(gw, "/api/a", { headers = { { "apikey", "gold-key" } } })
    assert.are.equal(429, third.status)
  end)

  it("a consumer's instance runs only for the requests its _meta.filter describes", function()
    local plain = request(gw, "/api/f", { headers = { { "apikey", "bronze-key" } } })
    assert.are.equal(200, plain.status)
    assert.is_nil(upstream_value(echo(plain), "X-Traced"))
    local traced = request(gw, "/api/f", { headers = { { "apikey", "bronze-key" }, { "X-Trace", "1" } } })
    assert.are.equal(200, traced.status)
    assert.are.equal("yes", upstream_value(echo(traced), "X-Traced"))
  end)

  it("a consumer without plugins of its own gets the route's", function()
    local resp = request(gw, "/api/c", { headers = { { "apikey", "silver-key" } } })
    assert.are.equal(200, resp.status)
    assert.are.equal("100", resp:header("X-RateLimit-Limit"))
    assert.is_nil(upstream_value(echo(resp), "X-Tier"))
  end)

  it("a route without authentication never meets the consumer's plugins", function()
    local resp = request(gw, "/open/x", { headers = { { "apikey", "gold-key" } } })
    assert.are.equal(200, resp.status)
    assert.are.equal("100", resp:header("X-RateLimit-Limit"))
    assert.is_nil(upstream_value(echo(resp), "X-Tier"))
  end)
end)
