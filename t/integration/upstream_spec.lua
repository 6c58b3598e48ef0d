-- Integration specs: the upstream side of torii. The per-worker keep-alive
-- pool (reuse, size 0, requests, idle_timeout, upstreams closing idle
-- connections), round-robin, retry-once of idempotent requests on a reused
-- connection, 502/504 for failing upstreams (JSON body, [error] line naming
-- the upstream, access log), truncated responses, and that the gateway keeps
-- serving afterwards.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local eventually = testutil.eventually

local esc = testutil.escape

local function node(m) return "127.0.0.1:" .. m.port end

local function route(id, uri, nodes, extra)
  local r = { id = id, uri = uri, upstream = { nodes = nodes } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- A gateway with one catch-all route to the given nodes; extra merged into
-- the config, route_extra into the route.
local function start(nodes, extra, route_extra)
  local cfg = { workers = 1, routes = { route("all", "/*", nodes, route_extra) } }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return gateway.start { config = cfg }
end

-- Mock counters over one persistent direct connection (so that the querying
-- itself adds exactly one connection and one request per call).
local function stats_reader(m)
  local conn = assert(http.connect(m.port))
  return function()
    assert(conn:request { path = "/__stats" })
    local resp = assert(conn:read_response())
    assert.are.equal(200, resp.status)
    return cjson.decode(resp.body)
  end
end

-- GET/any request on conn; asserts 200 and returns the decoded echo.
local function echo(conn, req)
  req = req or {}
  req.path = req.path or "/echo"
  assert(conn:request(req))
  local resp = assert(conn:read_response())
  assert.are.equal(200, resp.status, resp.body)
  return cjson.decode(resp.body), resp
end

local function echo_new(port, req)
  local conn = assert(http.connect(port))
  local doc, resp = echo(conn, req)
  conn:close()
  return doc, resp
end

-- A torii error response: status, JSON content type, exact Content-Length,
-- body {"error":..., "message":..., "request_id": 16 hex}\n. Returns the doc.
local function assert_error_response(resp, status, reason)
  assert.is_truthy(resp, "no response")
  assert.are.equal(status, resp.status, resp.raw_head)
  assert.are.equal("application/json", resp.h["content-type"])
  assert.are.equal(1, resp:count("Content-Length"))
  assert.are.equal(#resp.body, tonumber(resp.h["content-length"]))
  assert.are.equal("\n", resp.body:sub(-1), "error body ends with a newline")
  local doc = cjson.decode(resp.body)
  assert.are.equal(reason, doc.error)
  assert.are.equal("string", type(doc.message))
  assert.is_true(#doc.message > 0)
  assert.are.equal("string", type(doc.request_id))
  assert.is_truthy(doc.request_id:match("^%x+$") and #doc.request_id == 16, doc.request_id)
  return doc
end

-- Access log line fields.
local LINE = "^(%S+) %- %- %[[^%]]+%] \"(.*)\" (%d%d%d) (%d+) upstream=(%S+) upstream_time=(%S+) "
  .. "time=(%S+) route=(%S+) request_id=(%x+)$"

local function access_entry(gw, rid, timeout)
  local line = eventually(function()
    for _, l in ipairs(gw:access_log()) do
      if l:find("request_id=" .. rid, 1, true) then return l end
    end
  end, timeout or 3)
  assert.is_truthy(line, "no access log line with request_id=" .. rid .. ":\n"
    .. table.concat(gw:access_log(), "\n"))
  local peer, req, status, bytes, up, _, _, rt, id = line:match(LINE)
  assert.is_truthy(peer, "access log line has not the expected shape: " .. line)
  return { line = line, request = req, status = tonumber(status), bytes = tonumber(bytes),
    upstream = up, route = rt, request_id = id }
end

-- How many access log lines carry this request id.
local function access_count(gw, rid)
  local n = 0
  for _, l in ipairs(gw:access_log()) do
    if l:find("request_id=" .. rid, 1, true) then n = n + 1 end
  end
  return n
end

-- The [error] line about this upstream address (optionally from log offset).
local function error_line(gw, addr, from, extra_pat)
  local line = gw:wait_log("%[error%].*" .. esc(addr) .. (extra_pat or ""), 3, from)
  assert.is_truthy(line, "no [error] line naming " .. addr .. (extra_pat or "") .. ":\n"
    .. gw:error_log():sub((from or 0) + 1))
  return line
end

-- After a failure: the same connection (unless the error said it closes)
-- and a new one are served normally.
local function assert_still_serving(gw, conn, resp)
  if conn then
    if (resp.h["connection"] or ""):lower():find("close") then
      assert.is_true(conn:closed(2), "Connection: close, but the socket stays open")
    else
      local doc = echo(conn, { path = "/echo/after" })
      assert.are.equal("/echo/after", doc.target)
    end
  end
  local doc = echo_new(gw.port, { path = "/echo/fresh" })
  assert.are.equal("/echo/fresh", doc.target)
end

describe("upstream keep-alive pool", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  it("sequential requests reuse one upstream connection", function()
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local gw = start({ node(m) })
    local base = stats()
    local first
    -- on separate client connections...
    for i = 1, 3 do
      local doc = echo_new(gw.port)
      first = first or doc
      assert.are.equal(first.conn, doc.conn, "request " .. i .. " used another upstream connection")
      assert.are.equal(first.remote_port, doc.remote_port)
      assert.are.equal(i, doc.conn_requests)
    end
    -- ...and on one client connection
    local conn = assert(http.connect(gw.port))
    for i = 4, 6 do
      local doc = echo(conn, { method = i == 5 and "POST" or "GET", body = i == 5 and "abc" or nil })
      assert.are.equal(first.conn, doc.conn)
      assert.are.equal(i, doc.conn_requests)
    end
    conn:close()
    local s = stats()
    assert.are.equal(1, s.connections_total - base.connections_total, cjson.encode(s))
    assert.are.equal(2, s.connections_open, "the pooled connection and ours: " .. cjson.encode(s))
    assert.are.equal(6 + 1, s.requests_total - base.requests_total)
    gw:assert_clean()
  end)

  it("keepalive_pool.size: 0 opens a new upstream connection per request", function()
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local gw = start({ node(m) }, { proxy = { keepalive_pool = { size = 0 } } })
    local base = stats()
    local conn = assert(http.connect(gw.port))
    local seen = {}
    for i = 1, 4 do
      local doc = echo(conn)
      assert.are.equal(1, doc.conn_requests, "request " .. i)
      assert.is_nil(seen[doc.conn], "connection reused with size 0")
      seen[doc.conn] = true
    end
    conn:close()
    local s = stats()
    assert.are.equal(4, s.connections_total - base.connections_total)
    -- nothing is kept: only our stats connection stays open
    assert.is_truthy(eventually(function() return stats().connections_open == 1 end, 3),
      "upstream connections left open: " .. cjson.encode(stats()))
    gw:assert_clean()
  end)

  it("keepalive_pool.requests: N requests per upstream connection, then a new one", function()
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local gw = start({ node(m) }, { proxy = { keepalive_pool = { requests = 3 } } })
    local base = stats()
    local conn = assert(http.connect(gw.port))
    local conns, counts = {}, {}
    for i = 1, 7 do
      local doc = echo(conn)
      conns[i], counts[i] = doc.conn, doc.conn_requests
    end
    conn:close()
    assert.are.same({ 1, 2, 3, 1, 2, 3, 1 }, counts)
    assert.are.equal(conns[1], conns[2]); assert.are.equal(conns[1], conns[3])
    assert.are.equal(conns[4], conns[5]); assert.are.equal(conns[4], conns[6])
    assert.are_not.equal(conns[1], conns[4]); assert.are_not.equal(conns[4], conns[7])
    assert.are.equal(3, stats().connections_total - base.connections_total)
    -- the connections that reached the limit are closed, not left open
    assert.is_truthy(eventually(function() return stats().connections_open == 2 end, 3),
      "expected only the pooled connection and ours open: " .. cjson.encode(stats()))
    gw:assert_clean()
  end)

  it("keepalive_pool.idle_timeout closes idle pooled connections", function()
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local gw = start({ node(m) }, { proxy = { keepalive_pool = { idle_timeout = "200ms" } } })
    local base = stats()
    local d1 = echo_new(gw.port)
    assert.are.equal(2, stats().connections_open, "pooled connection + ours")
    local t0 = proc.now()
    assert.is_truthy(eventually(function() return stats().connections_open == 1 end, 3),
      "pooled connection not closed after idle_timeout: " .. cjson.encode(stats()))
    local took = proc.now() - t0
    assert.is_true(took >= 0.1 and took < 2, "closed after " .. took .. " s")
    -- the next request needs (and gets) a new connection
    local d2 = echo_new(gw.port)
    assert.are_not.equal(d1.conn, d2.conn)
    assert.are.equal(1, d2.conn_requests)
    assert.are.equal(2, stats().connections_total - base.connections_total)
    gw:assert_clean()
  end)

  it("an idle pooled connection closed by the upstream (--idle-close) is discarded: GET and POST succeed", function()
    local m = gateway.mock { id = "m", idle_close = 100 }
    local gw = start({ node(m) })
    local prev = echo_new(gw.port)
    local conn = assert(http.connect(gw.port))
    for i = 1, 3 do
      proc.sleep(0.3) -- the mock closed the pooled connection meanwhile
      local method = i == 2 and "POST" or "GET"
      local doc = echo(conn, { method = method, body = method == "POST" and "payload" or nil })
      assert.are.equal(method, doc.method)
      assert.are_not.equal(prev.conn, doc.conn, "a closed connection cannot have served this")
      assert.are.equal(1, doc.conn_requests)
      if method == "POST" then assert.are.equal("payload", doc.body) end
      prev = doc
    end
    conn:close()
    for _, l in ipairs(gw:access_log()) do
      assert.is_falsy(l:match('" 5%d%d '), "5xx logged: " .. l)
    end
    gw:assert_clean()
  end)

  it("a pooled connection closed by the upstream after /keepalive-close is discarded", function()
    local m = gateway.mock { id = "m" }
    local gw = start({ node(m) })
    local conn = assert(http.connect(gw.port))
    local d1 = echo(conn, { path = "/keepalive-close?after=20" })
    proc.sleep(0.2)
    local d2 = echo(conn)
    assert.are_not.equal(d1.conn, d2.conn)
    assert.are.equal(1, d2.conn_requests)
    -- and a POST (never retried) after another upstream close
    local d3 = echo(conn, { path = "/keepalive-close?after=20" })
    assert.are.equal(d2.conn, d3.conn)
    proc.sleep(0.2)
    local d4 = echo(conn, { method = "POST", body = "xyz" })
    assert.are_not.equal(d3.conn, d4.conn)
    assert.are.equal("xyz", d4.body)
    conn:close()
    for _, l in ipairs(gw:access_log()) do
      assert.is_falsy(l:match('" 5%d%d '), "5xx logged: " .. l)
    end
    gw:assert_clean()
  end)
end)

describe("round-robin", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  it("alternates between two nodes, each with its own pooled connection", function()
    local a = gateway.mock { id = "a" }
    local b = gateway.mock { id = "b" }
    local gw = start({ node(a), node(b) })
    local ids, conns = {}, { a = {}, b = {} }
    local conn = assert(http.connect(gw.port))
    for i = 1, 8 do
      local doc, resp = echo(conn)
      assert.are.equal(doc.id, resp.h["x-upstream-id"])
      ids[i] = doc.id
      conns[doc.id][#conns[doc.id] + 1] = doc
    end
    conn:close()
    for i = 2, 8 do
      assert.are_not.equal(ids[i - 1], ids[i], "not alternating: " .. table.concat(ids, ","))
    end
    assert.are.equal(4, #conns.a)
    assert.are.equal(4, #conns.b)
    for _, name in ipairs({ "a", "b" }) do
      for k, doc in ipairs(conns[name]) do
        assert.are.equal(conns[name][1].conn, doc.conn, name .. ": pooled connection not reused")
        assert.are.equal(k, doc.conn_requests)
      end
    end
    gw:assert_clean()
  end)

  it("a dead node fails its turn with 502, the live node keeps serving", function()
    local a = gateway.mock { id = "a" }
    local dead = gateway.free_port()
    local gw = start({ node(a), "127.0.0.1:" .. dead })
    local ok, bad = 0, 0
    for _ = 1, 4 do
      local resp = assert(http.get(gw.port, "/echo"))
      if resp.status == 200 then
        ok = ok + 1
        assert.are.equal("a", cjson.decode(resp.body).id)
      else
        bad = bad + 1
        assert_error_response(resp, 502, "Bad Gateway")
      end
    end
    assert.are.equal(2, ok)
    assert.are.equal(2, bad)
    error_line(gw, "127.0.0.1:" .. dead)
    gw:assert_clean({ "127%.0%.0%.1:" .. dead })
  end)
end)

describe("retry on a reused connection", function()
  local m, stats, gw

  before_each(function()
    m = gateway.mock { id = "m" }
    stats = stats_reader(m)
    gw = start({ node(m) })
  end)

  after_each(function()
    gateway.cleanup_all()
  end)

  -- Warm the pool, then send req (to /close) on a client connection.
  -- Returns the response, how many requests and connections the mock saw.
  local function close_after_warm(req)
    local conn = assert(http.connect(gw.port))
    echo(conn)
    local before = stats()
    req.path = req.path or "/close"
    assert(conn:request(req))
    local resp = conn:read_response()
    local after = stats()
    return resp, after.requests_total - before.requests_total - 1,
      after.connections_total - before.connections_total, conn
  end

  for _, method in ipairs({ "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE" }) do
    it(method .. " without a body is retried once on a new connection, then 502", function()
      local resp, seen, newconns, conn = close_after_warm({ method = method })
      assert.is_truthy(resp, "no response")
      assert.are.equal(502, resp.status)
      if method ~= "HEAD" then assert_error_response(resp, 502, "Bad Gateway") end
      assert.are.equal(2, seen, "the mock should see the request twice")
      assert.are.equal(1, newconns, "the retry goes on one new connection")
      error_line(gw, node(m))
      assert_still_serving(gw, conn, resp)
      gw:assert_clean({ esc(node(m)) })
    end)
  end

  it("POST is not retried: seen once, 502", function()
    local resp, seen, newconns, conn = close_after_warm({ method = "POST", body = "data" })
    local doc = assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(1, seen, "POST must not be retried")
    assert.are.equal(0, newconns)
    local line = error_line(gw, node(m))
    assert.is_truthy(line:find(doc.request_id, 1, true), "the [error] line names the request: " .. line)
    assert_still_serving(gw, conn, resp)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("POST without a body is not retried either", function()
    local resp, seen = close_after_warm({ method = "POST", headers = { { "Content-Length", "0" } } })
    assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(1, seen)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("PATCH is not retried", function()
    local resp, seen = close_after_warm({ method = "PATCH" })
    assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(1, seen)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("a GET with a Content-Length body is not retried", function()
    local resp, seen, newconns, conn = close_after_warm({ method = "GET", body = "hello" })
    assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(1, seen, "a request with a body must not be retried")
    assert.are.equal(0, newconns)
    assert_still_serving(gw, conn, resp)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("a GET with a chunked body is not retried", function()
    local resp, seen = close_after_warm({ method = "GET", chunked = { "hel", "lo" } })
    assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(1, seen)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("the access log has one 502 line for a retried request", function()
    local resp = close_after_warm({ method = "GET" })
    local doc = assert_error_response(resp, 502, "Bad Gateway")
    local e = access_entry(gw, doc.request_id)
    assert.are.equal(1, access_count(gw, doc.request_id))
    assert.are.equal(502, e.status)
    assert.are.equal("GET /close HTTP/1.1", e.request)
    assert.are.equal(node(m), e.upstream)
    assert.are.equal("all", e.route)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("GET /reset on a reused connection: retried once, then 502", function()
    local resp, seen, newconns = close_after_warm({ method = "GET", path = "/reset" })
    assert_error_response(resp, 502, "Bad Gateway")
    assert.are.equal(2, seen)
    assert.are.equal(1, newconns)
    gw:assert_clean({ esc(node(m)) })
  end)
end)

describe("502 Bad Gateway", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  -- One request on a fresh gateway (empty pool), on a kept client connection.
  local function fail_case(path, setup)
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local addr = node(m)
    if setup == "refused" then addr = "127.0.0.1:" .. gateway.free_port() end
    local gw = start({ addr })
    local base = stats()
    local mark = gw:log_mark()
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = path })
    local resp, err = conn:read_response()
    assert.is_truthy(resp, "no response: " .. tostring(err))
    local doc = assert_error_response(resp, 502, "Bad Gateway")
    local line = error_line(gw, addr, mark)
    local e = access_entry(gw, doc.request_id)
    assert.are.equal(502, e.status)
    assert.are.equal("GET " .. path .. " HTTP/1.1", e.request)
    assert.are.equal(addr, e.upstream)
    assert.are.equal("all", e.route)
    assert.are.equal(#resp.raw_head + #resp.body, e.bytes)
    return { gw = gw, m = m, conn = conn, resp = resp, doc = doc, line = line, addr = addr,
      stats = stats, base = base }
  end

  local function finish(c)
    -- the failed path was tried once (fresh connection: no retry)
    if c.m and c.addr == node(c.m) then
      local s = c.stats()
      -- requests: the failing one + the stats call (+ none else yet)
      assert.are.equal(2, s.requests_total - c.base.requests_total, cjson.encode(s))
    end
    assert_still_serving(c.gw, c.addr == node(c.m) and c.conn or nil, c.resp)
    if c.addr ~= node(c.m) then c.conn:close() end
    c.gw:assert_clean({ esc(c.addr) })
  end

  it("connection refused (a node nobody listens on)", function()
    local c = fail_case("/echo", "refused")
    assert.is_truthy(c.line:lower():find("refused"), c.line)
    -- the same client connection: still answered (502 again, or closed if it said so)
    if not (c.resp.h["connection"] or ""):lower():find("close") then
      assert(c.conn:request { path = "/echo" })
      assert_error_response(assert(c.conn:read_response()), 502, "Bad Gateway")
    end
    c.conn:close()
    c.gw:assert_clean({ esc(c.addr) })
  end)

  it("/reset on a fresh upstream connection", function()
    local c = fail_case("/reset")
    assert.is_truthy(c.line:lower():find("reset"), c.line)
    finish(c)
  end)

  it("/close on a fresh upstream connection (seen once: no retry)", function()
    local c = fail_case("/close")
    assert.is_truthy(c.line:lower():find("clos"), c.line)
    finish(c)
  end)

  it("/garbage: not an HTTP response", function()
    local c = fail_case("/garbage")
    assert.is_truthy(c.line:lower():find("invalid"), c.line)
    finish(c)
  end)

  it("/dup-cl: two Content-Length headers", function()
    local c = fail_case("/dup-cl")
    assert.is_truthy(c.line:find("Content%-Length"), c.line)
    finish(c)
  end)

  it("/cl-te: Content-Length with Transfer-Encoding", function()
    local c = fail_case("/cl-te")
    assert.is_truthy(c.line:find("Transfer%-Encoding"), c.line)
    finish(c)
  end)
end)

describe("504 Gateway Timeout", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  it("read timeout: route timeout.read 200ms, /delay/1000", function()
    local m = gateway.mock { id = "m" }
    local stats = stats_reader(m)
    local gw = start({ node(m) }, nil, { timeout = { read = "200ms" } })
    local base = stats()
    local conn = assert(http.connect(gw.port))
    local t0 = proc.now()
    assert(conn:request { path = "/delay/1000" })
    local resp = conn:read_response { timeout = 3 }
    local took = proc.now() - t0
    local doc = assert_error_response(resp, 504, "Gateway Timeout")
    assert.is_true(took >= 0.18 and took < 0.9, "504 after " .. took .. " s")
    local line = error_line(gw, node(m), 0, ".*timed out")
    assert.is_truthy(line:find("timed out", 1, true))
    local e = access_entry(gw, doc.request_id)
    assert.are.equal(504, e.status)
    assert.are.equal("GET /delay/1000 HTTP/1.1", e.request)
    assert.are.equal(node(m), e.upstream)
    -- a timeout is not retried
    assert.are.equal(1 + 1, stats().requests_total - base.requests_total)
    assert_still_serving(gw, conn, resp)
    -- fast requests on the same route are fine
    local doc2 = echo_new(gw.port, { path = "/delay/10" })
    assert.are.equal("/delay/10", doc2.target)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("send timeout: route timeout.send 200ms, a big upload to /slowread?rate=1", function()
    local m = gateway.mock { id = "m" }
    local gw = start({ node(m) }, { client = { max_body_size = "64m", body_timeout = "10s" } },
      { timeout = { send = "200ms", read = "10s" } })
    local conn = assert(http.connect(gw.port))
    local total = 32 * 1024 * 1024
    assert(conn:send("POST /slowread?rate=1 HTTP/1.1\r\nHost: x\r\nContent-Length: " .. total .. "\r\n\r\n"))
    local piece = string.rep("u", 256 * 1024)
    local sent, t0 = 0, proc.now()
    -- push until the upload stalls or torii gives up (and, maybe, discards
    -- the rest of the body before closing)
    while sent < total and proc.now() - t0 < 5 do
      local ok = conn:send(piece, 0.5)
      if not ok then break end
      sent = sent + #piece
    end
    local resp = conn:read_response { timeout = 3 }
    local took = proc.now() - t0
    assert.is_true(took >= 0.18 and took < 3, "504 after " .. took .. " s")
    local doc = assert_error_response(resp, 504, "Gateway Timeout")
    assert.are.equal("close", (resp.h["connection"] or ""):lower(), "the unread body forces a close")
    assert.is_true(conn:closed(2))
    conn:close()
    error_line(gw, node(m), 0, ".*timed out")
    local e = access_entry(gw, doc.request_id)
    assert.are.equal(504, e.status)
    assert.are.equal(node(m), e.upstream)
    assert_still_serving(gw, nil, resp)
    gw:assert_clean({ esc(node(m)) })
  end)
end)

describe("an upstream failing mid-response", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  it("/truncate: the client gets the response cut short and the connection closed", function()
    local m = gateway.mock { id = "m" }
    local gw = start({ node(m) })
    local conn = assert(http.connect(gw.port))
    local size, send = 1000000, 200000
    assert(conn:request { path = "/truncate?size=" .. size .. "&send=" .. send })
    local resp, err = conn:read_response { timeout = 5 }
    assert.is_truthy(resp, "no response head: " .. tostring(err))
    assert.are.equal(200, resp.status)
    assert.are.equal(tostring(size), resp.h["content-length"])
    assert.is_true(resp.incomplete, "the response must not look complete")
    assert.is_true(#resp.body <= send, "got " .. #resp.body .. " body bytes")
    assert.is_true(conn:closed(2))
    -- what arrived is the upstream's bytes, unchanged
    local pat = string.rep("abcdefghijklmnopqrstuvwxyz", math.ceil(#resp.body / 26))
    assert.is_true(resp.body == pat:sub(1, #resp.body), "body bytes altered")
    conn:close()
    local line = error_line(gw, node(m))
    assert.is_truthy(line:find("truncate", 1, true) or line:find("clos"), line)
    local al = eventually(function()
      for _, l in ipairs(gw:access_log()) do
        if l:find("GET /truncate", 1, true) then return l end
      end
    end, 3)
    assert.is_truthy(al, "no access log line for /truncate")
    assert.is_truthy(al:find(" upstream=" .. node(m) .. " ", 1, true), al)
    assert.is_truthy(al:match("request_id=%x+$"), al)
    assert_still_serving(gw, nil, resp)
    -- and the pool is still good
    local d1 = echo_new(gw.port)
    local d2 = echo_new(gw.port)
    assert.are.equal(d1.conn, d2.conn)
    gw:assert_clean({ esc(node(m)) })
  end)

  it("a close-delimited response (/noframe) is complete, not an error", function()
    local m = gateway.mock { id = "m" }
    local gw = start({ node(m) })
    local conn = assert(http.connect(gw.port))
    assert(conn:request { path = "/noframe?size=100000" })
    local resp = assert(conn:read_response())
    assert.are.equal(200, resp.status)
    assert.is_falsy(resp.incomplete)
    assert.are.equal(100000, #resp.body)
    -- the client connection stays usable (re-framed as chunked for 1.1)
    local doc = echo(conn)
    assert.are.equal("/echo", doc.target)
    conn:close()
    gw:assert_clean()
  end)
end)
