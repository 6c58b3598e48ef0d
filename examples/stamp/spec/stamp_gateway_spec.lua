-- stamp, through the running gateway: the torii binary (TORII_BIN, default
-- build/torii) with a configuration, and a mock upstream that echoes each
-- request as JSON. Runs under `torii test` like the in-process spec.
local gateway = require "torii.testing.gateway"
local http = require "torii.testing.http"
local assertions = require "torii.testing.assertions"

describe("stamp, through the gateway", function()
  local gw, up
  setup(function()
    up = gateway.mock() -- build/mock-upstream on a free port
    gw = gateway.start { config = {
      plugin_dirs = { gateway.here("..") }, -- absolute: the configuration is written elsewhere
      routes = { {
        id = "orders", uri = "/orders/*",
        upstream = { nodes = { "127.0.0.1:" .. up.port } },
        plugins = { stamp = { tag = "edge-1" } },
      } },
    } }
  end)
  teardown(function() gateway.cleanup_all() end)
  after_each(function() assert.clean_log(gw) end) -- no [error] line, no sanitizer report

  it("stamps both ways", function()
    local res = assert(http.request(gw.port, { path = "/orders/7" }))
    assert.status(200, res)
    assert.header("X-Stamp", "edge-1", res)
    assert.matches("^edge%-1; id=%x+$", assertions.upstream_header(res, "X-Stamp"))
    assert.truthy(gw:wait_log("stamp: edge%-1; id=%x+ status 200"))
  end)

  it("refuses a forged stamp before the upstream sees it", function()
    local res = assert(http.request(gw.port, { path = "/orders/7", headers = { { "X-Stamp", "forged" } } }))
    assert.status(400, res)
    assert.has_no_header("X-Stamp", res)
  end)
end)
