-- _meta.filter: a plugin runs only for the requests its condition (the
-- router's vars language) describes, on a route or in a global rule; a bad
-- condition stops the configuration with its path.

local gateway = require "gateway"
local http = require "http"

local function block(status)
  return { phase = "access", functions = { "return function() torii.response.exit(" .. status .. ", 'blocked') end" } }
end

describe("_meta.filter", function()
  local gw, m

  setup(function()
    m = gateway.mock { id = "filter" }
    local node = { nodes = { "127.0.0.1:" .. m.port } }
    local route_block = block(403)
    route_block._meta = { filter = { { "http_x_block", "==", "1" } } }
    local global_block = block(451)
    global_block._meta = { filter = { "OR", { "arg_legal", "==", "no" }, { "uri", "~~", "^/forbidden" } } }
    gw = gateway.start {
      config = {
        workers = 1,
        global_rules = { { id = "g", plugins = { serverless = global_block } } },
        routes = {
          { id = "r", uri = "/r/*", upstream = node, plugins = { serverless = route_block } },
          { id = "plain", uri = "/*", upstream = node },
        },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  local function status(path, headers)
    return assert(http.request(gw.port, { path = path, headers = headers, timeout = 5 })).status
  end

  it("runs a route's plugin only when the condition holds", function()
    assert.are.equal(200, status("/r/a"))
    assert.are.equal(403, status("/r/a", { { "X-Block", "1" } }))
    assert.are.equal(200, status("/r/a", { { "X-Block", "2" } }))
  end)

  it("filters a global rule's plugin on every route that has no instance of its own", function()
    assert.are.equal(200, status("/x"))
    assert.are.equal(451, status("/x?legal=no"))
    assert.are.equal(451, status("/forbidden/thing"))
    -- the route's own instance (with its own filter) replaces the global one
    assert.are.equal(200, status("/r/a?legal=no"))
  end)

  it("a bad condition is a configuration error naming its path", function()
    local bad = block(403)
    bad._meta = { filter = { { "http_x", "=~", "1" } } }
    local dir = gateway.tmpdir()
    local conf = dir .. "/torii.yaml"
    local f = assert(io.open(conf, "wb"))
    f:write(gateway.encode({ listen = "127.0.0.1:1", routes = { { id = "a", uri = "/a",
      upstream = { nodes = { "127.0.0.1:1" } }, plugins = { serverless = bad } } } }))
    f:close()
    local code, _, err = gateway.run_cli({ "-p", dir, "-c", conf, "-t" })
    assert.are.equal(1, code)
    assert.is_truthy(err:find("routes[0].plugins.serverless._meta.filter[0][1]: unknown operator \"=~\"", 1, true), err)
  end)
end)
