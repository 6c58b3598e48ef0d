-- Short writes: every send torii makes hands the kernel at most a few
-- bytes (t/support/short_send.c, preloaded), as a socket with a nearly
-- full send buffer would take them. What torii queued must still go out
-- whole and in order, and a response's connection be reused or closed only
-- once all of it went: answers, streamed and chunked bodies, uploads to
-- the upstream, error answers before a close, and tunnels.
--
-- The library sees plain calls only, so torii runs with `io_uring: false`.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"

local LIB = gateway.root .. "/build/short-send.so"
local pattern = gateway.mock_pattern -- n bytes of the mock's body pattern

local function start(mock, send_max, extra)
  local cfg = {
    workers = 1,
    io_uring = false,
    client = { max_body_size = "1m" },
    routes = {
      { id = "ws", uri = "/ws", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
      { id = "r", uri = "/*", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
    },
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  -- The sanitizer runtime wants to be first; the library only forwards to it.
  local asan = (os.getenv("ASAN_OPTIONS") or "detect_leaks=1")
  return gateway.start {
    config = cfg,
    env = {
      LD_PRELOAD = LIB, TORII_TEST_SEND_MAX = tostring(send_max),
      ASAN_OPTIONS = asan .. ":verify_asan_link_order=0",
    },
  }
end

local function assert_pattern(n, body, what)
  assert.are.equal(n, #body, what .. ": length")
  assert.is_true(body == pattern(n), what .. ": the bytes differ from the upstream's")
end

describe("short writes", function()
  local m, gw

  local function stop()
    if gw then
      gw:assert_clean()
      gw:cleanup()
      gw = nil
    end
  end

  -- `raw` is answered with `status` and a JSON error, sent whole, then a close.
  local function answered_then_closed(raw, status)
    local conn = assert(http.connect(gw.port, { timeout = 10 }))
    assert(conn:send(raw))
    local resp = assert(conn:read_response { timeout = 10 })
    assert.are.equal(status, resp.status)
    assert.is_string(cjson.decode(resp.body).error)
    assert.is_true(conn:closed(5), "the connection stays open after a " .. status)
  end

  setup(function()
    local f = io.open(LIB, "rb")
    assert(f, LIB .. " is missing: `make build` makes it")
    f:close()
    m = gateway.mock { id = "short" }
  end)
  teardown(function() gateway.cleanup_all() end)

  describe("of 997 bytes at most", function()
    setup(function() gw = start(m, 997) end)
    teardown(stop)

    it("runs with the library loaded, and a cut request head still arrives whole", function()
      local pids = gw:workers()
      assert.are.equal(1, #pids)
      local f = assert(io.open("/proc/" .. pids[1] .. "/maps", "rb"))
      local maps = f:read("*a")
      f:close()
      assert.is_truthy(maps:find("short-send.so", 1, true), "the worker has not loaded the library")
      local target = "/echo?x=" .. ("q"):rep(3000)
      local resp = assert(http.get(gw.port, target))
      assert.are.equal(200, resp.status)
      assert.are.equal(target, cjson.decode(resp.body).target)
    end)

    it("sends large Content-Length and chunked responses whole, then reuses the connection", function()
      local conn = assert(http.connect(gw.port, { timeout = 20 }))
      for _, path in ipairs { "/big?size=300000", "/big?size=300000&chunked=1", "/big?size=5000" } do
        assert(conn:send(http.build_request { path = path }))
        local resp = assert(conn:read_response { timeout = 20 })
        assert.are.equal(200, resp.status)
        assert_pattern(tonumber(path:match("size=(%d+)")), resp.body, path)
      end
      conn:close()
    end)

    it("answers pipelined requests in order, each whole", function()
      local conn = assert(http.connect(gw.port, { timeout = 20 }))
      local reqs = {}
      for k = 1, 6 do reqs[k] = http.build_request { path = "/big?size=" .. (4000 * k) } end
      assert(conn:send(table.concat(reqs)))
      for k = 1, 6 do
        local resp = assert(conn:read_response { timeout = 20 })
        assert.are.equal(200, resp.status)
        assert_pattern(4000 * k, resp.body, "pipelined response " .. k)
      end
      conn:close()
    end)

    it("streams a slow chunked response whole", function()
      local resp = assert(http.get(gw.port, "/stream?chunks=20&size=3000&interval=5", { timeout = 20 }))
      assert.are.equal(200, resp.status)
      assert.are.equal(60000, #resp.body)
    end)

    it("forwards an upload to the upstream whole", function()
      local body = pattern(200000)
      local resp = assert(http.request(gw.port, { method = "POST", path = "/echo", body = body, timeout = 20 }))
      assert.are.equal(200, resp.status)
      local doc = cjson.decode(resp.body)
      assert.are.equal(#body, doc.body_length)
    end)

    it("tunnels bytes both ways whole after an upgrade", function()
      local conn = assert(http.connect(gw.port, { timeout = 10 }))
      assert(conn:send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
      local resp = assert(conn:read_response { timeout = 10 })
      assert.are.equal(101, resp.status)
      local blob = pattern(100000)
      assert(conn:send(blob))
      local back = assert(conn:read_raw(#blob, 10))
      assert.is_true(back == blob, "tunnel echo differs")
      conn:close()
    end)
  end)

  describe("of 7 bytes at most", function()
    setup(function() gw = start(m, 7, { client = { max_body_size = 100 } }) end)
    teardown(stop)

    it("sends a response head and body cut into many pieces", function()
      local resp = assert(http.get(gw.port, "/big?size=3000", { timeout = 20 }))
      assert.are.equal(200, resp.status)
      assert_pattern(3000, resp.body, "/big")
    end)

    it("sends a whole error answer before it closes (413)", function()
      answered_then_closed(http.build_request { method = "POST", path = "/echo", body = pattern(500) }, 413)
    end)

    it("sends a whole 400 before it closes, for a malformed request", function()
      answered_then_closed("GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400)
    end)
  end)
end)
