-- body_filter: plugins see the response body piece by piece and may
-- replace each piece; the response is then re-framed (chunked for HTTP/1.1,
-- close-delimited for 1.0) since its length may change; a failure after the
-- head is out cuts the stream and is logged.

local gateway = require "gateway"
local http = require "http"
local testutil = require "testutil"

describe("body_filter", function()
  local gw, m

  setup(function()
    m = gateway.mock { id = "body" }
    local node = { nodes = { "127.0.0.1:" .. m.port } }
    gw = gateway.start {
      config = {
        workers = 1,
        log = { level = "info" },
        plugin_dirs = { gateway.root .. "/t/integration/fixtures/body" },
        routes = {
          { id = "up", uri = "/*", hosts = { "up.test" }, upstream = node,
            plugins = { upper = { suffix = "\n-- the end\n" } } },
          { id = "cut", uri = "/*", hosts = { "cut.test" }, upstream = node, plugins = { cutter = {} } },
          { id = "plain", uri = "/*", upstream = node },
        },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)

  it("replaces every piece and appends at the end; the length is framed anew", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = "/echo?x=abc", headers = { { "Host", "up.test" } } })
    local resp = assert(conn:read_response { timeout = 5 })
    assert.are.equal(200, resp.status)
    assert.are.equal("chunked", resp.framing)
    assert.are.equal(0, resp:count("Content-Length"))
    assert.is_truthy(resp.body:find('"TARGET": "/ECHO?X=ABC"', 1, true), resp.body)
    assert.are.equal("\n-- the end\n", resp.body:sub(-12))
    -- the connection goes on
    assert(conn:request { path = "/plain/echo" })
    local plain = assert(conn:read_response { timeout = 5 })
    assert.is_truthy(plain.body:find('"target": "/plain/echo"', 1, true))
    conn:close()
    assert.is_truthy(gw:wait_log("upper saw %d+ piece", 3))
  end)

  it("a large streamed body passes piece by piece, every byte accounted for", function()
    local size = 3000000
    local resp = assert(http.request(gw.port, { path = "/big?size=" .. size, headers = { { "Host", "up.test" } },
      timeout = 20 }))
    assert.are.equal(200, resp.status)
    assert.are.equal(size + #"\n-- the end\n", #resp.body)
  end)

  it("HTTP/1.0 clients get the filtered body close-delimited", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:send("GET /echo HTTP/1.0\r\nHost: up.test\r\n\r\n"))
    local raw = assert(conn:read_all(5))
    conn:close()
    assert.is_nil(raw:lower():find("content%-length"), raw)
    assert.is_truthy(raw:find("-- the end", 1, true), raw)
  end)

  it("a failure once the body has started cuts the stream and is logged", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = "/big?size=2000000", headers = { { "Host", "cut.test" } } })
    local resp = conn:read_response { timeout = 10 }
    conn:close()
    assert.is_true(resp == nil or #resp.body < 2000000, "the whole body arrived")
    assert.is_truthy(testutil.eventually(function()
      return gw:error_log():find("plugin cutter failed in body_filter", 1, true)
    end, 3))
    local again = assert(http.request(gw.port, { path = "/plain/echo", timeout = 5 }))
    assert.are.equal(200, again.status)
  end)
end)
