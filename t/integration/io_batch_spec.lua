-- Socket calls in rounds: a worker gathers the reads and sends its
-- handlers ask for during a loop pass and makes them together, through
-- io_uring where the kernel allows (`io_uring: true`, the default), else
-- one by one. Both ways must proxy the same: many connections at once,
-- pipelined requests, large bodies both ways with back-pressure, upstream
-- failures. The worker's exit report says how its calls were made.

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"
local socket = require "socket"

local pattern = gateway.mock_pattern -- n bytes of the mock's body pattern

local function config(port, io_uring)
  return {
    workers = 1,
    io_uring = io_uring,
    client = { max_body_size = "8m" },
    routes = { { id = "r", uri = "/*", upstream = { nodes = { "127.0.0.1:" .. port } } } },
  }
end

-- The worker's report, written to the error log when it exits.
local function report(gw)
  local line = gw:error_log():match("worker 1: socket I/O:[^\n]*")
  assert.is_truthy(line, "no socket I/O report in the error log:\n" .. gw:error_log())
  local ops, rounds, batched, enters, plain =
    line:match("(%d+) operations in (%d+) rounds, (%d+) through io_uring in (%d+) submissions, (%d+) plain calls")
  assert.is_truthy(ops, line)
  return { ops = tonumber(ops), rounds = tonumber(rounds), batched = tonumber(batched),
           enters = tonumber(enters), plain = tonumber(plain), line = line }
end

-- N connections, each sending DEPTH pipelined requests in one write before
-- any answer is read: the worker finds many sockets ready in one pass.
local function many_at_once(gw, n, depth)
  local conns = {}
  for i = 1, n do conns[i] = assert(http.connect(gw.port, { timeout = 10 })) end
  for i = 1, n do
    local reqs = {}
    for k = 1, depth do reqs[k] = http.build_request { path = ("/echo?c=%d&k=%d"):format(i, k) } end
    assert(conns[i]:send(table.concat(reqs)))
  end
  for i = 1, n do
    for k = 1, depth do
      local resp = assert(conns[i]:read_response { timeout = 10 })
      assert.are.equal(200, resp.status)
      assert.are.equal(("/echo?c=%d&k=%d"):format(i, k), cjson.decode(resp.body).target)
    end
    conns[i]:close()
  end
end

-- A client that reads a large response slowly at first, then all of it.
local function slow_reader(gw, size)
  local conn = assert(http.connect(gw.port, { timeout = 20 }))
  assert(conn:send(http.build_request { path = "/big?size=" .. size }))
  socket.sleep(0.3) -- the worker meets a full socket and must wait for it
  local resp = assert(conn:read_response { timeout = 20 })
  conn:close()
  assert.are.equal(200, resp.status)
  assert.are.equal(size, #resp.body)
  assert.is_true(resp.body == pattern(size), "the body differs from the upstream's")
end

local MODES = { { name = "through io_uring", io_uring = true }, { name = "with plain calls", io_uring = false } }
for _, mode in ipairs(MODES) do
  describe("socket calls " .. mode.name, function()
    local m, gw

    setup(function()
      m = gateway.mock { id = "io" }
      gw = gateway.start { config = config(m.port, mode.io_uring) }
    end)
    teardown(function() gateway.cleanup_all() end)

    it("proxies 40 connections with 5 pipelined requests each, all answered in order", function()
      many_at_once(gw, 40, 5)
    end)

    it("streams a 3 MB response to a client that reads late", function()
      slow_reader(gw, 3000000)
    end)

    it("streams a 2 MB upload to the upstream", function()
      local body = pattern(2000000)
      local resp = assert(http.request(gw.port, { method = "POST", path = "/echo", body = body, timeout = 20 }))
      assert.are.equal(200, resp.status)
      assert.are.equal(#body, cjson.decode(resp.body).body_length)
    end)

    it("answers 502 when the upstream resets, and goes on serving", function()
      local resp = assert(http.get(gw.port, "/reset", { timeout = 5 }))
      assert.are.equal(502, resp.status)
      local conn = assert(http.connect(gw.port))
      assert(conn:request { path = "/truncate?size=1000000&send=200000" })
      resp = assert(conn:read_response { timeout = 5 })
      assert.is_true(resp.incomplete, "the response must not look complete")
      assert.is_true(resp.body == pattern(#resp.body), "body bytes altered")
      assert.is_true(conn:closed(2))
      conn:close()
      many_at_once(gw, 5, 2)
    end)

    it("says how the calls were made when the worker exits", function()
      many_at_once(gw, 40, 5)
      assert.is_true((gw:quit()))
      local r = report(gw)
      assert.is_true(r.ops >= 40 * 4, r.line) -- per connection: read, send upstream, read, send back
      if mode.io_uring and gw:error_log():find("socket calls through io_uring", 1, true) then
        assert.is_true(r.batched > 0 and r.enters > 0, r.line)
        -- Rounds are what saves calls: more than one operation per submission.
        assert.is_true(r.batched > r.enters, r.line)
      elseif mode.io_uring then
        -- No ring here: the worker said why and made plain calls.
        assert.is_truthy(gw:error_log():find("no io_uring %("), gw:error_log())
        assert.are.equal(0, r.batched)
      else
        assert.are.equal(0, r.batched, r.line)
        assert.are.equal(0, r.enters, r.line)
        assert.are.equal(r.ops, r.plain, r.line)
        assert.is_nil(gw:error_log():find("io_uring (", 1, true))
      end
      -- Fewer rounds than operations: a pass's calls go together.
      assert.is_true(r.rounds < r.ops, r.line)
      gw:assert_clean { 'request: "GET /reset"', 'request: "GET /truncate' }
    end)
  end)
end

describe("io_uring on reload", function()
  teardown(function() gateway.cleanup_all() end)

  it("is given up and taken again by a running worker", function()
    local m = gateway.mock { id = "io" }
    local gw = gateway.start { config = config(m.port, true) }
    many_at_once(gw, 10, 3)
    local has_ring = gw:error_log():find("socket calls through io_uring", 1, true) ~= nil
    for _, step in ipairs { { io_uring = false, says = "socket calls made one by one" },
                            { io_uring = true, says = "socket calls through io_uring" } } do
      local mark = gw:log_mark()
      gw:write_config(config(m.port, step.io_uring))
      assert.are.equal(0, (gw:cli { "-s", "reload" }))
      -- Without a ring on this machine there is nothing to switch.
      assert.is_truthy(gw:wait_log(has_ring and step.says or "generation %d+ is current", 10, mark))
      many_at_once(gw, 10, 3)
    end
    assert.is_true((gw:quit()))
    gw:assert_clean()
  end)
end)
