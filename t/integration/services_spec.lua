-- services: what several routes share, an upstream and plugins. A route
-- names one with service_id; its own upstream and plugins win over the
-- service's, which win over global rules'.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"

local function tag(value)
  return { phase = "access", functions = {
    "return function() torii.upstream.set_header('X-Tag', '" .. value .. "') end" } }
end

local function upstream_of(resp)
  return cjson.decode(resp.body).id
end

local function header_of(resp, name)
  for _, h in ipairs(cjson.decode(resp.body).headers) do
    if h[1] == name then return h[2] end
  end
end

describe("services", function()
  local gw, svc_mock, own_mock

  setup(function()
    svc_mock = gateway.mock { id = "svc-upstream" }
    own_mock = gateway.mock { id = "own-upstream" }
    gw = gateway.start {
      config = {
        workers = 1,
        global_rules = { { id = "g", plugins = { serverless = tag("global") } } },
        services = {
          { id = "users", upstream = { nodes = { "127.0.0.1:" .. svc_mock.port } },
            plugins = { serverless = tag("service") } },
          { id = "bare", upstream = { nodes = { "127.0.0.1:" .. svc_mock.port } } },
        },
        routes = {
          { id = "inherits", uri = "/inherits", service_id = "users" },
          { id = "overrides", uri = "/overrides", service_id = "users",
            upstream = { nodes = { "127.0.0.1:" .. own_mock.port } }, plugins = { serverless = tag("route") } },
          { id = "bare", uri = "/bare", service_id = "bare" },
          { id = "none", uri = "/none", upstream = { nodes = { "127.0.0.1:" .. own_mock.port } } },
        },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  local function get(path)
    local resp = assert(http.request(gw.port, { path = path, timeout = 5 }))
    assert.are.equal(200, resp.status, resp.body)
    return resp
  end

  it("a route without its own upstream or plugins takes the service's", function()
    local resp = get("/inherits")
    assert.are.equal("svc-upstream", upstream_of(resp))
    assert.are.equal("service", header_of(resp, "X-Tag"))
  end)

  it("a route's own upstream and plugin instance win over the service's", function()
    local resp = get("/overrides")
    assert.are.equal("own-upstream", upstream_of(resp))
    assert.are.equal("route", header_of(resp, "X-Tag"))
  end)

  it("a service without plugins leaves the global rules in force", function()
    assert.are.equal("global", header_of(get("/bare"), "X-Tag"))
    assert.are.equal("global", header_of(get("/none"), "X-Tag"))
  end)

  local function check_error(config, want)
    local dir = gateway.tmpdir()
    local conf = dir .. "/torii.yaml"
    local f = assert(io.open(conf, "wb"))
    f:write(gateway.encode(config))
    f:close()
    local code, _, err = gateway.run_cli({ "-p", dir, "-c", conf, "-t" })
    assert.are.equal(1, code, err)
    assert.is_truthy(err:find(want, 1, true), err)
  end

  it("configuration errors name what is wrong", function()
    local node = { nodes = { "127.0.0.1:1" } }
    check_error({ listen = "127.0.0.1:1", routes = { { id = "a", uri = "/a", service_id = "nope" } } },
      'route "a": unknown service_id "nope"')
    check_error({ listen = "127.0.0.1:1", services = { { id = "s" } },
      routes = { { id = "a", uri = "/a", service_id = "s" } } },
      'route "a": service "s" has no upstream, and the route none')
    check_error({ listen = "127.0.0.1:1", routes = { { id = "a", uri = "/a" } } },
      'routes[0]: missing required key "upstream" (or "upstream_id" or "service_id")')
    check_error({ listen = "127.0.0.1:1", services = { { id = "s", upstream = node }, { id = "s", upstream = node } },
      routes = { { id = "a", uri = "/a", service_id = "s" } } }, 'services[1]: duplicate service id "s"')
    check_error({ listen = "127.0.0.1:1", services = { { id = "s", upstream = node, plugins = { nope = {} } } },
      routes = { { id = "a", uri = "/a", service_id = "s" } } }, 'services[0].plugins.nope: unknown plugin "nope"')
    check_error({ listen = "127.0.0.1:1", services = { { id = "s", upstream = node, uri = "/x" } },
      routes = { { id = "a", uri = "/a", service_id = "s" } } }, 'services[0].uri: unknown key')
  end)
end)
