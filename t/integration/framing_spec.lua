-- Integration specs: torii's strict request framing and its request limits.
--
-- Every rejection is checked the same way: the exact status, a JSON error
-- body ({"error": reason phrase, "message": why, "request_id": 16 hex})
-- whose message names the problem, `Connection: close` and the socket closed
-- right after the one response, the upstream receiving no request at all
-- (the mock's /__stats requests_total), and a valid request still served on
-- a fresh connection afterwards.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"

local REASON = {
  [400] = "Bad Request", [405] = "Method Not Allowed", [408] = "Request Timeout",
  [414] = "URI Too Long", [417] = "Expectation Failed", [431] = "Request Header Fields Too Large",
  [501] = "Not Implemented", [505] = "HTTP Version Not Supported",
}

local MAX_HEADER_SIZE = 1024
local MAX_HEADERS = 10

local mock, gw

-- requests_total of the mock, asked directly (the /__stats request itself
-- is counted too, which upstream_delta() accounts for).
local function upstream_requests()
  local resp, err = http.get(mock.port, "/__stats", { timeout = 2 })
  assert(resp and resp.status == 200, "mock /__stats failed: " .. tostring(err))
  return cjson.decode(resp.body).requests_total
end

-- Requests the upstream received since `before` (a value of upstream_requests()).
local function upstream_delta(before)
  proc.sleep(0.05) -- anything torii forwarded has reached the mock by now
  return upstream_requests() - before - 1
end

-- The message must match every entry of `why`; an entry that is a list
-- matches when any of its patterns does. Matching is on the lowercased text.
local function message_names(message, why)
  local lower = message:lower()
  for _, entry in ipairs(why) do
    local alts = type(entry) == "table" and entry or { entry }
    local any = false
    for _, pat in ipairs(alts) do any = any or lower:find(pat) ~= nil end
    if not any then return false end
  end
  return true
end

-- torii's JSON error response: status, content type, length, body fields.
local function assert_error_response(resp, status, why)
  assert.is_table(resp, "no response")
  assert.equal(status, resp.status)
  assert.equal("application/json", resp:header("Content-Type"))
  assert.equal(1, resp:count("Content-Length"))
  assert.equal(#resp.body, tonumber(resp:header("Content-Length")))
  assert.equal("\n", resp.body:sub(-1))
  local ok, doc = pcall(cjson.decode, resp.body)
  assert.is_true(ok, "body is not JSON: " .. resp.body)
  assert.equal(REASON[status], doc.error)
  assert.is_string(doc.message)
  assert.is_true(#doc.message > 0, "empty message")
  assert.is_truthy(tostring(doc.request_id):match("^%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x$"),
    "request_id is not 16 hex digits: " .. tostring(doc.request_id))
  if why then
    assert.is_true(message_names(doc.message, why),
      ("message %q does not name the problem (%s)"):format(doc.message, cjson.encode(why)))
  end
  return doc
end

-- A valid request on a fresh connection is answered by the upstream.
local function assert_fresh_request_works()
  local conn = assert(http.connect(gw.port))
  assert(conn:send("GET /echo?fresh=1 HTTP/1.1\r\nHost: fresh.example\r\n\r\n"))
  local resp, err = conn:read_response({ timeout = 3 })
  conn:close()
  assert.is_table(resp, "fresh request failed: " .. tostring(err))
  assert.equal(200, resp.status)
  assert.equal("m", resp:header("X-Upstream-Id"))
  assert.equal("/echo?fresh=1", cjson.decode(resp.body).target)
end

-- Sends raw bytes in one write and checks a strict rejection: exactly one
-- response, Connection: close, then EOF, and nothing forwarded upstream.
local function check_rejection(raw, status, why)
  local before = upstream_requests()
  local conn = assert(http.connect(gw.port))
  assert(conn:send(raw))
  local resp, err, got = conn:read_response({ timeout = 3 })
  assert.is_table(resp, "no response: " .. tostring(err) .. " " .. tostring(got))
  assert_error_response(resp, status, why)
  assert.equal(1, resp:count("Connection"))
  assert.equal("close", resp:header("Connection"):lower())
  local rest, rerr = conn:read_all(2)
  assert.is_nil(rerr, "socket not closed after the rejection")
  assert.equal("", rest, "bytes after the rejection (a second response?)")
  assert.is_true(conn:closed(0.1))
  conn:close()
  assert.equal(0, upstream_delta(before), "the upstream received a request")
  assert_fresh_request_works()
  return resp
end

local function post(headers, body)
  return "POST /echo HTTP/1.1\r\nHost: x\r\n" .. headers .. "\r\n" .. (body or "")
end

local function get(headers)
  return "GET /echo HTTP/1.1\r\nHost: x\r\n" .. (headers or "") .. "\r\n"
end

-- name, raw request, status, message patterns
local CASES = {
  -- Content-Length and Transfer-Encoding
  { "Content-Length together with Transfer-Encoding",
    post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400,
    { "content%-length", "transfer%-encoding" } },
  { "Transfer-Encoding together with Content-Length (TE first)",
    post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), 400,
    { "content%-length", "transfer%-encoding" } },
  { "Transfer-Encoding: chunked, gzip", post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"), 400,
    { { "transfer", "coding", "chunked" } } },
  { "Transfer-Encoding: gzip", post("Transfer-Encoding: gzip\r\n", "abc"), 400,
    { { "transfer", "coding", "chunked" } } },
  { "Transfer-Encoding: identity", post("Transfer-Encoding: identity\r\n", "abc"), 400,
    { { "transfer", "coding", "chunked" } } },
  { "Transfer-Encoding: gzip, chunked (unsupported coding) is 501",
    post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), 501,
    { { "transfer", "coding", "gzip" } } },
  { "two Transfer-Encoding headers",
    post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), 400,
    { "transfer%-encoding" } },
  { "two equal Content-Length headers",
    post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"), 400, { "content%-length" } },
  { "Content-Length twice with different name case",
    post("Content-Length: 5\r\ncontent-length: 5\r\n", "hello"), 400, { "content%-length" } },
  { "lowercase transfer-encoding together with content-length",
    post("content-length: 5\r\ntransfer-encoding: chunked\r\n", "0\r\n\r\n"), 400,
    { "content%-length", "transfer%-encoding" } },
  { "empty Content-Length", post("Content-Length: \r\n", ""), 400, { "content%-length" } },
  { "two different Content-Length headers",
    post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"), 400, { "content%-length" } },
  { "Content-Length: abc", post("Content-Length: abc\r\n", "abc"), 400, { "content%-length" } },
  { "Content-Length: +5", post("Content-Length: +5\r\n", "hello"), 400, { "content%-length" } },
  { "Content-Length: -1", post("Content-Length: -1\r\n", "h"), 400, { "content%-length" } },
  { "Content-Length: 5, 5 (a list)", post("Content-Length: 5, 5\r\n", "hello"), 400, { "content%-length" } },
  { "Content-Length: 0x5", post("Content-Length: 0x5\r\n", "hello"), 400, { "content%-length" } },
  { "Content-Length overflowing 64 bits",
    post("Content-Length: 99999999999999999999999\r\n", "hello"), 400, { "content%-length" } },
  -- chunked bodies (the whole request in one write)
  { "chunk size line 'zz'", post("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"), 400,
    { "chunk" } },
  { "chunk size line '5 x'", post("Transfer-Encoding: chunked\r\n", "5 x\r\nhello\r\n0\r\n\r\n"), 400,
    { "chunk" } },
  { "chunk size overflowing 64 bits",
    post("Transfer-Encoding: chunked\r\n", "ffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400,
    { "chunk" } },
  { "chunk data not followed by CRLF",
    post("Transfer-Encoding: chunked\r\n", "5\r\nhelloXX\r\n0\r\n\r\n"), 400, { "chunk" } },
  { "bare LF after a chunk size", post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"), 400,
    { "chunk" } },
  -- header syntax
  { "whitespace between header name and colon", get("X-Foo : bar\r\n"), 400,
    { { "whitespace", "space", "colon" } } },
  { "obs-fold: continuation line starting with a space", get("X-Foo: a\r\n  b\r\n"), 400,
    { "fold" } },
  { "obs-fold: continuation line starting with a tab", get("X-Foo: a\r\n\tb\r\n"), 400, { "fold" } },
  { "bare CR inside a header value", get("X-Foo: a\rb\r\n"), 400, { { "%f[%a]cr%f[%A]", "carriage" } } },
  { "bare CR inside the request line", "GET /echo\r HTTP/1.1\r\nHost: x\r\n\r\n", 400,
    { { "%f[%a]cr%f[%A]", "carriage" } } },
  { "bare LF ending the request line", "GET /echo HTTP/1.1\nHost: x\r\n\r\n", 400,
    { { "%f[%a]lf%f[%A]", "line feed", "newline" } } },
  { "bare LF ending a header line", get("X-Foo: a\nX-Bar: b\r\n"), 400,
    { { "%f[%a]lf%f[%A]", "line feed", "newline" } } },
  { "NUL byte in a header value", get("X-Foo: a\0b\r\n"), 400, { "nul" } },
  { "header line without a colon", get("NoColonHere\r\n"), 400, { "colon" } },
  { "header line with an empty name", get(": value\r\n"), 400, { "name" } },
  { "non-token character in a header name", get("X@Foo: bar\r\n"), 400, { "name" } },
  { "control character (0x01) in a header value", get("X-Foo: a\1b\r\n"), 400, { "value" } },
  { "DEL (0x7f) in a header value", get("X-Foo: a\127b\r\n"), 400, { "value" } },
  -- Host
  { "HTTP/1.1 request without Host", "GET /echo HTTP/1.1\r\nX-Foo: bar\r\n\r\n", 400, { "host" } },
  { "two Host headers", get("Host: y\r\n"), 400, { "host" } },
  { "invalid Host 'a/b'", "GET /echo HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, { "host" } },
  { "invalid Host 'a@b'", "GET /echo HTTP/1.1\r\nHost: a@b\r\n\r\n", 400, { "host" } },
  { "invalid Host 'a b' (space)", "GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n", 400, { "host" } },
  -- HTTP/1.0 with Transfer-Encoding
  { "Transfer-Encoding in an HTTP/1.0 request",
    "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400,
    { "transfer" } },
  -- request line
  { "request line with two spaces after the method", "GET  /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400,
    { "request" } },
  { "request line without an HTTP version", "GET /echo\r\nHost: x\r\n\r\n", 400,
    { { "request", "version" } } },
  { "unknown method", "FOO /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400, { "method" } },
  { "unknown method 'get' (methods are case-sensitive)", "get /echo HTTP/1.1\r\nHost: x\r\n\r\n", 400,
    { "method" } },
  { "request line with a trailing space", "GET /echo HTTP/1.1 \r\nHost: x\r\n\r\n", 400,
    { { "request", "version" } } },
}

-- Requests followed, in the same write, by a second request that a parser
-- disagreeing about the framing would see: one response (400), then EOF.
local SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
local SMUGGLING = {
  { "CL.TE: body ends at the chunked terminator, smuggled request after it",
    post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" .. SMUGGLED) },
  { "TE.CL: Content-Length covering the smuggled request",
    post("Transfer-Encoding: chunked\r\nContent-Length: " .. (5 + #SMUGGLED) .. "\r\n", "0\r\n\r\n" .. SMUGGLED) },
  { "TE with whitespace before the colon plus Content-Length",
    post("Content-Length: 5\r\nTransfer-Encoding : chunked\r\n", "0\r\n\r\n" .. SMUGGLED) },
  { "obs-folded Transfer-Encoding plus Content-Length",
    post("Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n" .. SMUGGLED) },
  { "TE: xchunked plus Content-Length",
    post("Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n", "0\r\n\r\n" .. SMUGGLED) },
  { "two Content-Length headers, the second covering the smuggled request",
    post("Content-Length: 0\r\nContent-Length: " .. #SMUGGLED .. "\r\n", SMUGGLED) },
  { "HTTP/1.0 with Transfer-Encoding and Content-Length",
    "POST /echo HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" .. SMUGGLED },
  { "chunked body with a bare-LF chunk line hiding a request",
    post("Transfer-Encoding: chunked\r\n", "2\nxx\r\n0\r\n\r\n" .. SMUGGLED) },
}

describe("torii strict framing", function()
  setup(function()
    mock = gateway.mock({ id = "m" })
    gw = gateway.start({
      config = {
        client = {
          header_timeout = "300ms", max_header_size = MAX_HEADER_SIZE, max_headers = MAX_HEADERS,
          max_body_size = "1m",
        },
        routes = { { id = "all", uri = "/*", upstream = { nodes = { "127.0.0.1:" .. mock.port } } } },
      },
    })
  end)

  teardown(function()
    gateway.cleanup_all()
  end)

  after_each(function()
    gw:assert_clean()
  end)

  it("serves a valid request (sanity check of the setup)", function()
    assert_fresh_request_works()
  end)

  describe("rejects with a JSON error, closes, forwards nothing:", function()
    for _, case in ipairs(CASES) do
      local name, raw, status, why = case[1], case[2], case[3], case[4]
      it(name .. " -> " .. status, function()
        check_rejection(raw, status, why)
      end)
    end
  end)

  describe("smuggling: one response, no second request reaches anyone:", function()
    for _, case in ipairs(SMUGGLING) do
      local name, raw = case[1], case[2]
      it(name, function()
        local resp = check_rejection(raw, 400)
        assert.is_nil(resp.body:find("smuggled", 1, true))
      end)
    end
  end)

  describe("limits", function()
    it("414 for a request line longer than client.max_header_size", function()
      local raw = "GET /echo?" .. ("a"):rep(MAX_HEADER_SIZE + 200) .. " HTTP/1.1\r\nHost: x\r\n\r\n"
      check_rejection(raw, 414, { { "uri", "target", "request.line", "long" } })
    end)

    it("414 for a long request line that arrives in pieces before its CRLF", function()
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /echo?" .. ("b"):rep(600)))
      proc.sleep(0.05)
      conn:send(("b"):rep(600)) -- may fail if torii already answered and closed
      local resp, err = conn:read_response({ timeout = 3 })
      assert.is_table(resp, "no response: " .. tostring(err))
      assert_error_response(resp, 414, { { "uri", "target", "request.line", "long" } })
      assert.equal("close", (resp:header("Connection") or ""):lower())
      assert.is_true(conn:closed(2))
      conn:close()
      assert.equal(0, upstream_delta(before))
      assert_fresh_request_works()
    end)

    it("431 for a head larger than client.max_header_size (request line short)", function()
      check_rejection(get("X-Big: " .. ("v"):rep(MAX_HEADER_SIZE + 100) .. "\r\n"), 431, { "header" })
    end)

    it("431 for a head whose many small headers add up past client.max_header_size", function()
      local hs = {}
      for i = 1, 8 do hs[#hs + 1] = ("X-H%d: %s\r\n"):format(i, ("v"):rep(150)) end
      check_rejection(get(table.concat(hs)), 431, { "header" })
    end)

    it("431 for more than client.max_headers header fields", function()
      local hs = {}
      for i = 1, MAX_HEADERS do hs[#hs + 1] = ("X-H%d: %d\r\n"):format(i, i) end -- + Host = max + 1
      check_rejection(get(table.concat(hs)), 431, { "header" })
    end)

    it("accepts exactly client.max_headers header fields", function()
      local hs = {}
      for i = 1, MAX_HEADERS - 1 do hs[#hs + 1] = ("X-H%d: %d\r\n"):format(i, i) end -- + Host = max
      local conn = assert(http.connect(gw.port))
      assert(conn:send(get(table.concat(hs))))
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.equal("m", resp:header("X-Upstream-Id"))
    end)

    it("505 for HTTP/2.0", function()
      check_rejection("GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505, { "version" })
    end)

    it("505 for HTTP/3.0", function()
      check_rejection("GET /echo HTTP/3.0\r\nHost: x\r\n\r\n", 505, { "version" })
    end)
  end)

  describe("refused methods and expectations", function()
    -- These may keep the connection; if the response says close it must close,
    -- otherwise the same connection must serve the next request.
    local function check_refusal(raw, status, why)
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      assert(conn:send(raw))
      local resp, err = conn:read_response({ timeout = 3 })
      assert.is_table(resp, "no response: " .. tostring(err))
      assert_error_response(resp, status, why)
      assert.equal(0, upstream_delta(before), "the upstream received a request")
      if (resp:header("Connection") or ""):lower() == "close" then
        assert.is_true(conn:closed(2), "Connection: close but the socket stays open")
      else
        assert(conn:send("GET /echo?same=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
        local r2 = conn:read_response({ timeout = 3 })
        assert.is_table(r2, "connection unusable after a keep-alive refusal")
        assert.equal(200, r2.status)
        assert.equal("/echo?same=1", cjson.decode(r2.body).target)
      end
      conn:close()
      assert_fresh_request_works()
    end

    -- A refused request's body must never be parsed as the next request.
    local function check_refusal_with_body(head, status)
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      assert(conn:send(head .. "Content-Length: " .. #SMUGGLED .. "\r\n\r\n" .. SMUGGLED))
      local resp, err = conn:read_response({ timeout = 3 })
      assert.is_table(resp, tostring(err))
      assert_error_response(resp, status)
      local rest = conn:read_all(1)
      conn:close()
      assert.is_nil(rest:find("HTTP/1.", 1, true), "a second response: " .. rest:sub(1, 60))
      assert.equal(0, upstream_delta(before), "the body reached the upstream as a request")
    end

    it("405 for CONNECT with a body: the body is not parsed as a request", function()
      check_refusal_with_body("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n", 405)
    end)

    it("417 with a body: the body is not parsed as a request", function()
      check_refusal_with_body("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n", 417)
    end)

    it("405 for CONNECT", function()
      check_refusal("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 405, { "connect" })
    end)

    it("417 for an Expect other than 100-continue", function()
      check_refusal(get("Expect: something-else\r\n"), 417, { "expect" })
    end)
  end)

  describe("header timeout", function()
    it("408 and close when the head is not complete within client.header_timeout", function()
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      local t0 = proc.now()
      assert(conn:send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Partial: "))
      local resp, err = conn:read_response({ timeout = 3 })
      local elapsed = proc.now() - t0
      assert.is_table(resp, "no 408: " .. tostring(err))
      assert_error_response(resp, 408, { { "time" } })
      assert.equal("close", (resp:header("Connection") or ""):lower())
      assert.is_true(elapsed >= 0.25, "408 too early: " .. elapsed)
      assert.is_true(elapsed < 1.5, "408 too late: " .. elapsed)
      local rest, rerr = conn:read_all(2)
      assert.is_nil(rerr)
      assert.equal("", rest)
      conn:close()
      assert.equal(0, upstream_delta(before))
      assert_fresh_request_works()
    end)

    it("408 for the second request of a keep-alive connection whose head stalls", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /echo?ka=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r1 = conn:read_response({ timeout = 3 })
      assert.is_table(r1)
      assert.equal(200, r1.status)
      local t0 = proc.now()
      assert(conn:send("GET /echo?ka=2 HTTP/1.1\r\nHost:"))
      local resp, err = conn:read_response({ timeout = 3 })
      local elapsed = proc.now() - t0
      assert.is_table(resp, "no 408: " .. tostring(err))
      assert_error_response(resp, 408)
      assert.equal("close", (resp:header("Connection") or ""):lower())
      assert.is_true(elapsed >= 0.25 and elapsed < 1.5, "408 after " .. elapsed .. " s")
      assert.is_true(conn:closed(2))
      conn:close()
    end)

    it("408 also when the head trickles in byte by byte past the timeout", function()
      local conn = assert(http.connect(gw.port))
      local t0 = proc.now()
      local head = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnop"
      local sent_all = true
      for i = 1, #head do
        if not conn:send(head:sub(i, i)) then sent_all = false break end
        proc.sleep(0.04)
        if proc.now() - t0 > 1 then break end
      end
      local resp, err = conn:read_response({ timeout = 3 })
      assert.is_table(resp, "no 408: " .. tostring(err) .. " (sent all: " .. tostring(sent_all) .. ")")
      assert_error_response(resp, 408)
      assert.is_true(conn:closed(2))
      conn:close()
      assert_fresh_request_works()
    end)
  end)

  describe("pipelines and bodies", function()
    it("answers a valid request, then rejects the bad one pipelined after it, then closes", function()
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /echo?first=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" .. SMUGGLED)))
      local r1 = conn:read_response({ timeout = 3 })
      assert.is_table(r1)
      assert.equal(200, r1.status)
      assert.equal("/echo?first=1", cjson.decode(r1.body).target)
      local r2 = conn:read_response({ timeout = 3 })
      assert_error_response(r2, 400, { "content%-length", "transfer%-encoding" })
      assert.equal("close", (r2:header("Connection") or ""):lower())
      local rest, err = conn:read_all(2)
      conn:close()
      assert.is_nil(err)
      assert.equal("", rest)
      assert.equal(1, upstream_delta(before))
    end)

    it("a Content-Length body that looks like a request is only a body", function()
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      assert(conn:send(post("Content-Length: " .. #SMUGGLED .. "\r\n", SMUGGLED)))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.equal(SMUGGLED, cjson.decode(resp.body).body)
      assert.is_false(conn:closed(0.3), "connection closed after a valid request")
      assert.equal("", conn.buf, "a second response")
      conn:close()
      assert.equal(1, upstream_delta(before))
    end)

    it("a chunked body that looks like a request is only a body", function()
      local before = upstream_requests()
      local conn = assert(http.connect(gw.port))
      local body = ("%x\r\n%s\r\n0\r\n\r\n"):format(#SMUGGLED, SMUGGLED)
      assert(conn:send(post("Transfer-Encoding: chunked\r\n", body)))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.equal(SMUGGLED, cjson.decode(resp.body).body)
      assert.is_false(conn:closed(0.3))
      assert.equal("", conn.buf, "a second response")
      conn:close()
      assert.equal(1, upstream_delta(before))
    end)
  end)

  describe("leading empty lines", function()
    it("ignores CRLFs before the request line", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("\r\n\r\n\r\nGET /echo?lead=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(200, resp.status)
      local doc = cjson.decode(resp.body)
      assert.equal("GET", doc.method)
      assert.equal("/echo?lead=1", doc.target)
      -- and the connection stays usable
      assert(conn:send("GET /echo?lead=2 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2)
      assert.equal("/echo?lead=2", cjson.decode(r2.body).target)
    end)

    it("ignores a CRLF between keep-alive requests", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r\n"))
      local r1 = conn:read_response({ timeout = 3 })
      assert.is_table(r1)
      assert.equal(200, r1.status)
      assert.equal("hi", cjson.decode(r1.body).body)
      assert(conn:send("GET /echo?after=crlf HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r2, err = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2, tostring(err))
      assert.equal(200, r2.status)
      assert.equal("/echo?after=crlf", cjson.decode(r2.body).target)
    end)

    it("ignores CRLFs sent in a separate write before the request line", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("\r\n"))
      proc.sleep(0.05)
      assert(conn:send("\r\nGET /echo?lead=3 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local resp, err = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert.equal(200, resp.status)
      assert.equal("/echo?lead=3", cjson.decode(resp.body).target)
    end)
  end)
end)
