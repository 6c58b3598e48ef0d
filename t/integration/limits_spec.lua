-- Integration specs: client-side limits. The header read timeout (a
-- slowloris trickle does not extend it), the body read timeout (408), the
-- send timeout for a client that stops reading, and max_connections per
-- worker (extra connections wait in the backlog, they are not dropped).

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local function node(m) return "127.0.0.1:" .. m.port end

local eventually = testutil.eventually

-- The mock's own counters, over a direct connection.
local function mock_stats(m)
  local conn = assert(http.connect(m.port))
  assert(conn:request { path = "/__stats" })
  local resp = assert(conn:read_response { timeout = 3 })
  conn:close()
  return cjson.decode(resp.body)
end

local function assert_serving(gw)
  local conn = assert(http.connect(gw.port))
  assert(conn:request { path = "/echo/alive" })
  local resp = assert(conn:read_response { timeout = 3 })
  conn:close()
  assert.are.equal(200, resp.status)
  assert.are.equal("/echo/alive", cjson.decode(resp.body).target)
end

describe("client limits", function()
  local m, gw

  setup(function()
    m = gateway.mock { id = "lim" }
    gw = gateway.start {
      config = {
        workers = 1,
        client = {
          header_timeout = "400ms",
          body_timeout = "300ms",
          send_timeout = "300ms",
          max_connections = 3,
        },
        routes = { { id = "all", uri = "/*", upstream = { nodes = { node(m) } } } },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  it("header_timeout counts from the first byte: a slowloris trickle gets 408 and a close", function()
    local conn = assert(http.connect(gw.port))
    local t0 = proc.now()
    assert(conn:send("GET /echo HTTP/1.1\r\nHost: x\r\n"))
    -- One header line every 100 ms would keep a per-read timer alive forever.
    local took
    for i = 1, 20 do
      if conn:closed(0.1) then
        took = proc.now() - t0
        break
      end
      conn:send("X-Drip-" .. i .. ": y\r\n")
    end
    assert.is_truthy(took, "the connection stayed open for 2 s of trickled headers")
    local resp = conn:read_response { timeout = 1 }
    conn:close()
    if resp then -- the 408 may be lost to a reset when torii closes on unread input
      assert.are.equal(408, resp.status)
      assert.are.equal("close", (resp.h["connection"] or ""):lower())
    end
    assert.is_true(took < 1.0, "the trickle extended the header timeout: " .. took .. " s")
    assert.is_truthy(gw:wait_log("408: request head not received in time", 2))
    assert_serving(gw)
  end)

  it("body_timeout: a body that stops arriving gets 408 and a close; the upstream request is abandoned", function()
    local before = mock_stats(m)
    local conn = assert(http.connect(gw.port))
    assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"))
    local t0 = proc.now()
    local resp = conn:read_response { timeout = 3 }
    local took = proc.now() - t0
    assert.is_table(resp, "no response to a stalled body")
    assert.are.equal(408, resp.status)
    assert.are.equal("Request Timeout", cjson.decode(resp.body).error)
    assert.are.equal("close", (resp.h["connection"] or ""):lower())
    assert.is_true(conn:closed(2))
    conn:close()
    assert.is_true(took >= 0.25 and took < 1.5, "took " .. took)
    -- The upstream never answered a request with a missing body: its
    -- connection is closed, not returned to the pool half-sent.
    assert.is_truthy(eventually(function()
      return mock_stats(m).connections_open <= before.connections_open
    end, 3), "the upstream connection of the abandoned request is still open")
    assert_serving(gw)
  end)

  it("body_timeout is between reads: a slow but steady body is accepted", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n"))
    for i = 1, 8 do
      proc.sleep(0.1) -- 800 ms in all, each gap well under 300 ms
      assert(conn:send(tostring(i % 10)))
    end
    local resp = assert(conn:read_response { timeout = 3 })
    conn:close()
    assert.are.equal(200, resp.status)
    local doc = cjson.decode(resp.body)
    assert.are.equal(8, doc.body_length)
    assert.are.equal("12345678", doc.body)
  end)

  it("send_timeout: a client that stops reading a large response is cut off; the worker goes on", function()
    local conn = assert(http.connect(gw.port))
    local mark = gw:log_mark()
    assert(conn:request { path = "/big?size=200000000" })
    -- Read a little, then stop reading altogether.
    assert(conn:read_raw(1000, 3))
    local line = gw:wait_log("send timed out", 5, mark)
    assert.is_truthy(line, "no send timeout logged:\n" .. gw:error_log():sub(mark + 1))
    conn:close()
    -- The half-sent response leaves no upstream connection behind.
    assert.is_truthy(eventually(function()
      return mock_stats(m).connections_open <= 1 -- the stats query itself
    end, 5), "upstream connection of the cut response still open")
    local entry = eventually(function()
      for _, l in ipairs(gw:access_log()) do
        if l:find("GET /big?size=200000000", 1, true) then return l end
      end
    end, 3)
    assert.is_truthy(entry, "no access log line for the cut response")
    assert_serving(gw)
  end)

  it("max_connections: beyond the limit a connection waits until one closes, then is served", function()
    local held = {}
    for i = 1, 3 do
      held[i] = assert(http.connect(gw.port))
      assert(held[i]:request { path = "/echo/held" .. i })
      assert.are.equal(200, assert(held[i]:read_response { timeout = 3 }).status)
    end
    local extra = assert(http.connect(gw.port)) -- the kernel accepts; torii does not yet
    assert(extra:request { path = "/echo/extra" })
    assert.is_nil(extra:read_response { timeout = 0.5 }, "served past max_connections")
    assert.is_truthy(gw:wait_log("connection limit %(3%) reached", 2))
    held[1]:close()
    local resp = extra:read_response { timeout = 3 }
    assert.is_table(resp, "the waiting connection was not served after one closed")
    assert.are.equal(200, resp.status)
    assert.are.equal("/echo/extra", cjson.decode(resp.body).target)
    extra:close()
    for i = 2, 3 do held[i]:close() end
    assert_serving(gw)
  end)
end)
