-- Integration specs: the access log (one line per request, its fields, 499,
-- escaping, `log.access: off`) and the error log level.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local eventually = testutil.eventually

local file_exists = testutil.file_exists

-- Wait until the access log has n lines (bounded); returns them.
local function wait_lines(gw, n, timeout)
  local lines = eventually(function()
    local l = gw:access_log()
    return #l >= n and l
  end, timeout or 3)
  assert.is_truthy(lines, "expected " .. n .. " access log line(s), got " .. #gw:access_log()
    .. ":\n" .. table.concat(gw:access_log(), "\n"))
  return lines
end

-- Fields of an access log line (asserting the whole line's shape).
local LINE = "^(%S+) %- %- %[(%d%d/%a%a%a/%d%d%d%d:%d%d:%d%d:%d%d [%+%-]%d%d%d%d)%] "
  .. '"(.*)" (%d%d%d) (%d+) upstream=(%S+) upstream_time=(%S+) time=(%d+%.%d+) '
  .. "route=(%S+) request_id=(%S+)$"

local function parse(line)
  local peer, ts, req, status, bytes, up, up_time, time, route, rid = line:match(LINE)
  assert.is_truthy(peer, "access log line has not the expected shape:\n" .. line)
  assert.is_truthy(rid:match("^%x+$") and #rid == 16, "request_id should be 16 hex digits: " .. line)
  return {
    peer = peer, ts = ts, request = req, status = tonumber(status), bytes = tonumber(bytes),
    upstream = up, upstream_time = up_time, time = tonumber(time), route = route, request_id = rid,
  }
end

-- Total bytes of a response as received (head + body on the wire).
local function wire_size(resp)
  return #resp.raw_head + #(resp.raw_body or resp.body or "")
end

local function start(mock, extra)
  local cfg = { workers = 1, routes = {
    { id = "echo", uri = "/echo*", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
    { id = "delay", uri = "/delay/*", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
    { id = "any", uri = "/x/*", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
  } }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return gateway.start { config = cfg }
end

describe("access log", function()
  local mock

  before_each(function()
    mock = gateway.mock { id = "m" }
  end)

  after_each(function()
    gateway.cleanup_all()
  end)

  it("one line per request with all fields; bytes equal the bytes the client received", function()
    local gw = start(mock)
    local conn = assert(http.connect(gw.port))
    local sizes = {}
    local reqs = {
      { method = "GET", path = "/echo?q=1&b=2" },
      { method = "POST", path = "/echo/post", body = string.rep("p", 300) },
      { method = "HEAD", path = "/echo/head" },
      { method = "GET", path = "/x/big?size=5000" },
    }
    for i, req in ipairs(reqs) do
      assert(conn:request(req))
      local resp = assert(conn:read_response())
      assert.are.equal(200, resp.status, req.path)
      sizes[i] = wire_size(resp)
    end
    conn:close()
    local lines = wait_lines(gw, #reqs)
    assert.are.equal(#reqs, #lines)
    local seen_ids = {}
    for i, req in ipairs(reqs) do
      local f = parse(lines[i])
      assert.are.equal("127.0.0.1", f.peer)
      assert.are.equal(req.method .. " " .. req.path .. " HTTP/1.1", f.request)
      assert.are.equal(200, f.status)
      assert.are.equal(sizes[i], f.bytes, "bytes sent for " .. req.path)
      assert.are.equal("127.0.0.1:" .. mock.port, f.upstream)
      assert.is_truthy(f.upstream_time:match("^%d+%.%d%d%d$"), lines[i])
      assert.is_true(f.time >= tonumber(f.upstream_time), lines[i])
      assert.are.equal(i == 4 and "any" or "echo", f.route)
      assert.is_nil(seen_ids[f.request_id], "request ids must differ")
      seen_ids[f.request_id] = true
    end
    gw:assert_clean()
  end)

  it("times: upstream_time and time cover a slow upstream", function()
    local gw = start(mock)
    local resp = assert(http.get(gw.port, "/delay/300"))
    assert.are.equal(200, resp.status)
    local f = parse(wait_lines(gw, 1)[1])
    assert.are.equal("GET /delay/300 HTTP/1.1", f.request)
    assert.are.equal("delay", f.route)
    local ut = tonumber(f.upstream_time)
    assert.is_true(ut >= 0.29 and ut < 2, "upstream_time=" .. f.upstream_time)
    assert.is_true(f.time >= ut and f.time < 2, "time=" .. f.time)
    gw:assert_clean()
  end)

  it("HTTP/1.0 requests are logged with their version", function()
    local gw = start(mock)
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = "/echo/old", version = "1.0" })
    local resp = assert(conn:read_response())
    assert.are.equal(200, resp.status)
    local data = conn:read_all(2)
    conn:close()
    local f = parse(wait_lines(gw, 1)[1])
    assert.are.equal("GET /echo/old HTTP/1.0", f.request)
    assert.are.equal(wire_size(resp) + #data, f.bytes)
    gw:assert_clean()
  end)

  it("404: upstream=- route=-, request_id matches the error body", function()
    local gw = start(mock)
    local resp = assert(http.get(gw.port, "/nowhere?a=b"))
    assert.are.equal(404, resp.status)
    local body = cjson.decode(resp.body)
    local f = parse(wait_lines(gw, 1)[1])
    assert.are.equal("GET /nowhere?a=b HTTP/1.1", f.request)
    assert.are.equal(404, f.status)
    assert.are.equal(wire_size(resp), f.bytes)
    assert.are.equal("-", f.upstream)
    assert.are.equal("-", f.upstream_time)
    assert.are.equal("-", f.route)
    assert.are.equal(body.request_id, f.request_id)
    gw:assert_clean()
  end)

  it("502 from a dead upstream: request_id matches the error body, route is named", function()
    local dead = gateway.free_port()
    local gw = gateway.start { config = { workers = 1, routes = {
      { id = "dead", uri = "/dead", upstream = { nodes = { "127.0.0.1:" .. dead } } } } } }
    local resp = assert(http.get(gw.port, "/dead"))
    assert.are.equal(502, resp.status)
    local body = cjson.decode(resp.body)
    local f = parse(wait_lines(gw, 1)[1])
    assert.are.equal(502, f.status)
    assert.are.equal("dead", f.route)
    assert.are.equal("127.0.0.1:" .. dead, f.upstream)
    assert.are.equal(wire_size(resp), f.bytes)
    assert.are.equal(body.request_id, f.request_id)
    gw:assert_clean({ "127%.0%.0%.1:" .. dead })
  end)

  it("400 framing errors are logged, with the error body's request_id", function()
    local gw = start(mock)
    local before = cjson.decode(assert(http.get(mock.port, "/__stats")).body).requests_total
    local raw = {
      "GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET /echo HTTP/1.1\r\n\r\n",
    }
    local got = {}
    for i, bytes in ipairs(raw) do
      local conn = assert(http.connect(gw.port))
      assert(conn:send(bytes))
      local resp = assert(conn:read_response())
      assert.are.equal(400, resp.status)
      local rest = conn:read_all(2)
      conn:close()
      got[i] = { resp = resp, size = wire_size(resp) + #rest, rid = cjson.decode(resp.body).request_id }
    end
    local lines = wait_lines(gw, #raw)
    assert.are.equal(#raw, #lines)
    for i, g in ipairs(got) do
      local f = parse(lines[i])
      assert.are.equal(400, f.status)
      assert.are.equal(g.rid, f.request_id)
      assert.are.equal(g.size, f.bytes)
      assert.are.equal("-", f.upstream)
      assert.are.equal("-", f.route)
      assert.is_truthy(f.request:match("^%u+ /echo HTTP/1%.1$"), lines[i])
    end
    -- the upstream saw none of them
    local after = cjson.decode(assert(http.get(mock.port, "/__stats")).body).requests_total
    assert.are.equal(1, after - before) -- only one of the /__stats requests
    gw:assert_clean()
  end)

  it("499 when the client closes before the response", function()
    local gw = start(mock)
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = "/delay/500" })
    proc.sleep(0.1)
    conn:close()
    local f = parse(wait_lines(gw, 1, 3)[1])
    assert.are.equal("GET /delay/500 HTTP/1.1", f.request)
    assert.are.equal(499, f.status)
    assert.are.equal(0, f.bytes)
    assert.are.equal("delay", f.route)
    assert.is_true(f.time < 0.5, "logged at the close, not after the upstream answered: time=" .. f.time)
    gw:assert_clean()
  end)

  -- \xhh → \xHH, so either hex case is accepted
  local function upper_hex(s)
    return (s:gsub("\\x(%x%x)", function(h) return "\\x" .. h:upper() end))
  end

  it("a quote in the target is escaped as \\x22", function()
    local gw = start(mock)
    local conn = assert(http.connect(gw.port))
    assert(conn:send('GET /x/a"b?q="1" HTTP/1.1\r\nHost: x\r\n\r\n'))
    local resp = assert(conn:read_response())
    conn:close()
    local line = wait_lines(gw, 1)[1]
    local f = parse(line)
    assert.are.equal(resp.status, f.status)
    assert.are.equal("GET /x/a\\x22b?q=\\x221\\x22 HTTP/1.1", upper_hex(f.request))
    gw:assert_clean()
  end)

  it("control bytes in the target are escaped as \\xHH (the request line is still logged)", function()
    local gw = start(mock)
    local conn = assert(http.connect(gw.port))
    assert(conn:send("GET /x/\1\127\27[0m HTTP/1.1\r\nHost: x\r\n\r\n"))
    local resp = assert(conn:read_response())
    conn:close()
    local line = wait_lines(gw, 1)[1]
    assert.is_nil(line:find("[%z\1-\31\127]"), "raw control byte in the access log")
    local f = parse(line)
    assert.are.equal(resp.status, f.status)
    assert.are.equal(cjson.decode(resp.body).request_id, f.request_id)
    assert.are.equal("GET /x/\\x01\\x7F\\x1B[0m HTTP/1.1", upper_hex(f.request))
    gw:assert_clean()
  end)

  it("log.access: off writes no access log", function()
    local gw = start(mock, { log = { access = "off" } })
    for i = 1, 3 do
      assert.are.equal(200, assert(http.get(gw.port, "/echo?n=" .. i)).status)
    end
    assert.are.equal(404, assert(http.get(gw.port, "/nowhere")).status)
    proc.sleep(0.2)
    assert.is_false(file_exists(gw.prefix .. "/logs/access.log"))
    assert.is_false(file_exists(gw.prefix .. "/logs/off"))
    assert.is_true((gw:stop(5)))
    assert.is_false(file_exists(gw.prefix .. "/logs/access.log"))
    gw:assert_clean()
  end)

  it("an access log path relative to the prefix is honoured", function()
    local gw = start(mock, { log = { access = "logs/other-access.log" } })
    assert.are.equal(200, assert(http.get(gw.port, "/echo/other")).status)
    assert.is_truthy(eventually(function()
      return (proc.read_file(gw.prefix .. "/logs/other-access.log") or ""):find('"GET /echo/other ', 1, true)
    end, 3))
    assert.is_false(file_exists(gw.prefix .. "/logs/access.log"))
    gw:assert_clean()
  end)
end)

describe("error log level", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  local function levels(text)
    local seen = {}
    for line in text:gmatch("[^\n]+") do
      local level = line:match("^%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d %[(%a+)%] %d+#%d+: ")
      assert.is_truthy(level, "error log line of unexpected shape: " .. line)
      seen[level] = (seen[level] or 0) + 1
    end
    return seen
  end

  it("log.level: debug shows debug lines", function()
    local mock = gateway.mock { id = "m" }
    local gw = start(mock, { log = { level = "debug" } })
    assert.are.equal(200, assert(http.get(gw.port, "/echo")).status)
    assert.is_truthy(gw:wait_log("%[debug%]", 3), "no [debug] line:\n" .. gw:error_log())
    local seen = levels(gw:error_log())
    assert.is_true((seen.info or 0) > 0)
    assert.is_true((seen.notice or 0) > 0)
    gw:assert_clean()
  end)

  it("log.level: info (default) hides debug lines", function()
    local mock = gateway.mock { id = "m" }
    local gw = start(mock)
    assert.are.equal(200, assert(http.get(gw.port, "/echo")).status)
    assert.is_truthy(gw:wait_log("%[info%] %d+#1: worker 1 started", 3))
    assert.is_true((gw:stop(5)))
    local seen = levels(gw:error_log())
    assert.is_nil(seen.debug)
    gw:assert_clean()
  end)

  it("log.level: error hides info and notice lines but keeps errors", function()
    local dead = gateway.free_port()
    local gw = gateway.start { config = { workers = 1, log = { level = "error" }, routes = {
      { id = "dead", uri = "/dead", upstream = { nodes = { "127.0.0.1:" .. dead } } } } } }
    assert.are.equal(502, assert(http.get(gw.port, "/dead")).status)
    assert.is_truthy(gw:wait_log("%[error%].*127%.0%.0%.1:" .. dead, 3), gw:error_log())
    assert.is_true((gw:stop(5)))
    local seen = levels(gw:error_log())
    assert.is_nil(seen.debug)
    assert.is_nil(seen.info, gw:error_log())
    assert.is_nil(seen.notice, gw:error_log())
    assert.is_nil(seen.warn, gw:error_log())
    assert.is_true(seen.error >= 1)
    gw:assert_clean({ "127%.0%.0%.1:" .. dead })
  end)
end)
