-- Integration specs: torii's downstream HTTP semantics.
--
-- What the upstream receives (framing, header case/order, hop-by-hop
-- removal, absolute-form targets, X-Forwarded-*), keep-alive, pipelining,
-- HTTP/1.0, HEAD/204/304, 1xx handling, Expect: 100-continue, response
-- re-framing, body size limits, routing precedence and WebSocket tunnels.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local socket = require "socket"

local REASON = {
  [404] = "Not Found", [413] = "Content Too Large",
}

local pattern = gateway.mock_pattern -- n bytes of the mock's body pattern

-- Body comparison that does not print 100 KB on failure.
local function assert_body(expected, got, what)
  got = got or ""
  if got == expected then return end
  local i = 1
  while i <= #got and i <= #expected and got:byte(i) == expected:byte(i) do i = i + 1 end
  assert.is_true(false, ("%s: body differs: expected %d bytes, got %d, first difference at byte %d")
    :format(what or "response", #expected, #got, i))
end

local function doc_of(resp)
  local ok, doc = pcall(cjson.decode, resp.body)
  assert.is_true(ok, "not an echo document: " .. tostring(resp.body))
  return doc
end

-- The headers the upstream received, as {name, value} pairs.
local function header_pairs(doc)
  local out = {}
  for _, hv in ipairs(doc.headers) do out[#out + 1] = { hv[1], hv[2] } end
  return out
end

local function upstream_header_count(doc, name)
  local n = 0
  for _, hv in ipairs(doc.headers) do
    if hv[1]:lower() == name:lower() then n = n + 1 end
  end
  return n
end

local function upstream_header(doc, name)
  for _, hv in ipairs(doc.headers) do
    if hv[1]:lower() == name:lower() then return hv[2] end
  end
end

local function xfwd(host)
  return {
    { "X-Forwarded-For", "127.0.0.1" }, { "X-Real-IP", "127.0.0.1" },
    { "X-Forwarded-Proto", "http" }, { "X-Forwarded-Host", host },
  }
end

local function concat_lists(...)
  local out = {}
  for _, l in ipairs({ ... }) do
    for _, v in ipairs(l) do out[#out + 1] = v end
  end
  return out
end

local function stats(port)
  local resp, err = http.get(port, "/__stats", { timeout = 2 })
  assert(resp and resp.status == 200, "mock /__stats failed: " .. tostring(err))
  return cjson.decode(resp.body)
end

-- torii's JSON error response.
local function assert_json_error(resp, status)
  assert.is_table(resp, "no response")
  assert.equal(status, resp.status)
  assert.equal("application/json", resp:header("Content-Type"))
  assert.equal(#resp.body, tonumber(resp:header("Content-Length")))
  local doc = cjson.decode(resp.body)
  assert.equal(REASON[status], doc.error)
  assert.is_string(doc.message)
  assert.is_truthy(tostring(doc.request_id):match("^" .. ("%x"):rep(16) .. "$"))
  return doc
end

-- One request on a fresh connection; returns the response (conn closed).
local function roundtrip(port, raw, opts)
  local conn = assert(http.connect(port))
  assert(conn:send(raw))
  local resp, err = conn:read_response(opts or { timeout = 3 })
  conn:close()
  assert.is_table(resp, "no response: " .. tostring(err))
  return resp
end

local function node(m) return "127.0.0.1:" .. m.port end

-- A raw upstream on 127.0.0.1 that shows the exact bytes torii sends.
local function capture_server()
  local srv = assert(socket.tcp())
  srv:setoption("reuseaddr", true)
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(16))
  local _, port = srv:getsockname()
  return srv, tonumber(port)
end

-- Accepts one connection, reads until done(data) or 3 s, answers 200 "ok".
local function capture_one(srv, done)
  srv:settimeout(3)
  local c = srv:accept()
  if not c then return nil, "torii did not connect" end
  c:settimeout(0.05)
  local data, deadline = "", socket.gettime() + 3
  while not done(data) and socket.gettime() < deadline do
    local d, err, partial = c:receive(65536)
    data = data .. (d or partial or "")
    if err == "closed" then break end
  end
  c:settimeout(1)
  c:send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
  c:close()
  return data
end

describe("torii downstream HTTP", function()
  local main, wsmock, gw, capsrv, capport

  setup(function()
    main = gateway.mock({ id = "main" })
    wsmock = gateway.mock({ id = "ws" })
    capsrv, capport = capture_server()
    gw = gateway.start({
      config = {
        client = { max_body_size = "4k" },
        routes = {
          { id = "ws", uri = "/ws", upstream = { nodes = { node(wsmock) } } },
          { id = "small", uri = "/small/*", max_body_size = "100", upstream = { nodes = { node(main) } } },
          { id = "roomy", uri = "/roomy/*", max_body_size = "64k", upstream = { nodes = { node(main) } } },
          { id = "raw", uri = "/raw/*", timeout = { read = "3s" },
            upstream = { nodes = { "127.0.0.1:" .. capport } } },
          { id = "main", uri = "/*", upstream = { nodes = { node(main) } } },
        },
      },
    })
  end)

  teardown(function()
    if capsrv then capsrv:close() end
    gateway.cleanup_all()
  end)

  after_each(function()
    gw:assert_clean()
  end)

  describe("what the upstream receives", function()
    it("a lowercase content-length sent once arrives once, unchanged", function()
      local resp = roundtrip(gw.port, "POST /echo HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\nhello")
      assert.equal(200, resp.status)
      local doc = doc_of(resp)
      assert.same(concat_lists({ { "Host", "x" }, { "content-length", "5" } }, xfwd("x")), header_pairs(doc))
      assert.equal("content-length", doc.framing)
      assert.equal("hello", doc.body)
      assert.is_nil(doc.raw_head:lower():find("transfer-encoding", 1, true))
    end)

    it("keeps header names' case and order and adds nothing but X-Forwarded-* at the end", function()
      local raw = "GET /echo?q=1 HTTP/1.1\r\nhost: Example.COM:8080\r\nX-First: 1\r\nx-MiXeD-cAsE: two\r\n"
        .. "Accept: */*\r\nCookie: a=1\r\nX-Last: 3\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.equal("GET", doc.method)
      assert.equal("/echo?q=1", doc.target)
      assert.same(concat_lists({
        { "host", "Example.COM:8080" }, { "X-First", "1" }, { "x-MiXeD-cAsE", "two" }, { "Accept", "*/*" },
        { "Cookie", "a=1" }, { "X-Last", "3" },
      }, xfwd("Example.COM:8080")), header_pairs(doc))
      assert.equal("none", doc.framing)
    end)

    it("passes a repeated header as it came, each occurrence once, in order", function()
      local raw = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Other: o\r\nX-Dup: b\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.same(concat_lists({ { "Host", "x" }, { "X-Dup", "a" }, { "X-Other", "o" }, { "X-Dup", "b" } },
        xfwd("x")), header_pairs(doc))
    end)

    it("re-chunks a chunked body: one Transfer-Encoding: chunked, no Content-Length, same bytes", function()
      local raw = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\n"
        .. "5;ext=1\r\nhello\r\n6;a=b;c\r\n world\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.equal("chunked", doc.framing)
      assert.equal("hello world!", doc.body)
      assert.equal(12, doc.body_length)
      assert.equal(1, upstream_header_count(doc, "Transfer-Encoding"))
      assert.equal("chunked", upstream_header(doc, "Transfer-Encoding"))
      assert.equal(0, upstream_header_count(doc, "Content-Length"))
      assert.equal(0, upstream_header_count(doc, "X-Trailer"))
      assert.equal(1, upstream_header_count(doc, "X-After"))
    end)

    it("drops chunk extensions and trailers from a re-chunked body (raw upstream bytes)", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /raw/chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        .. "Trailer: X-Trailer\r\nConnection: close\r\n\r\n"
        .. "5;ext=1\r\nhello\r\n6;a=\"q\"\r\n world\r\n0;last\r\nX-Trailer: t\r\n\r\n"))
      local data, err = capture_one(capsrv, function(d)
        local hend = d:find("\r\n\r\n", 1, true)
        return hend and d:find("\r\n0\r\n", hend, true) and d:sub(-4) == "\r\n\r\n"
      end)
      assert.is_string(data, err)
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.equal("ok", resp.body)
      local hend = assert(data:find("\r\n\r\n", 1, true))
      local head, body = data:sub(1, hend + 3), data:sub(hend + 4)
      assert.truthy(head:match("^POST /raw/chunks HTTP/1%.1\r\n"))
      assert.is_nil(head:lower():find("\r\ntrailer:", 1, true), "Trailer header forwarded")
      assert.is_nil(head:lower():find("\r\nx%-trailer:"), "trailer field moved into the head")
      local _, nte = head:lower():gsub("\r\ntransfer%-encoding: chunked\r\n", "")
      assert.equal(1, nte)
      -- decode strictly: size lines are bare hex, no trailer section
      local pos, decoded = 1, {}
      while true do
        local line_end = assert(body:find("\r\n", pos, true), "unterminated chunk size line")
        local line = body:sub(pos, line_end - 1)
        assert.truthy(line:match("^%x+$"), "chunk size line with extension/garbage: " .. line)
        local size = tonumber(line, 16)
        pos = line_end + 2
        if size == 0 then break end
        decoded[#decoded + 1] = body:sub(pos, pos + size - 1)
        assert.equal("\r\n", body:sub(pos + size, pos + size + 1))
        pos = pos + size + 2
      end
      assert.equal("\r\n", body:sub(pos), "trailer section forwarded: " .. body:sub(pos))
      assert.equal("hello world", table.concat(decoded))
    end)

    it("re-chunks a chunked body that arrives split at awkward places across writes", function()
      local conn = assert(http.connect(gw.port))
      local parts = {
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "1", "0\r", "\nabcdefgh", "ijklmnop\r", "\n3;e", "xt=1\r\nqrs\r\n", "0\r\n", "\r\n",
      }
      for _, part in ipairs(parts) do
        assert(conn:send(part))
        proc.sleep(0.02)
      end
      local resp, err = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert.equal(200, resp.status)
      local doc = doc_of(resp)
      assert.equal("chunked", doc.framing)
      assert.equal("abcdefghijklmnopqrs", doc.body)
    end)

    it("forwards a large chunked upload intact", function()
      local chunks, all = {}, {}
      for i = 1, 30 do
        local part = pattern(1000 + i * 13):sub(i % 26 + 1)
        chunks[i], all[i] = part, part
      end
      local body = table.concat(all)
      local resp = roundtrip(gw.port, http.build_request({ method = "PUT", path = "/roomy/up", chunked = chunks }))
      assert.equal(200, resp.status)
      local doc = doc_of(resp)
      assert.equal("chunked", doc.framing)
      assert.equal(#body, doc.body_length)
      assert_body(body, doc.body, "upload")
    end)

    it("forwards a Content-Length body that arrives in pieces", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"))
      proc.sleep(0.05)
      assert(conn:send("defg"))
      proc.sleep(0.05)
      assert(conn:send("hij"))
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      local doc = doc_of(resp)
      assert.equal("content-length", doc.framing)
      assert.equal("abcdefghij", doc.body)
      assert.equal("10", upstream_header(doc, "Content-Length"))
    end)

    it("removes hop-by-hop headers and headers named in Connection", function()
      local raw = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Custom-Hop\r\n"
        .. "Keep-Alive: timeout=5\r\nX-Custom-Hop: secret\r\nX-Keep: yes\r\nProxy-Connection: keep-alive\r\n"
        .. "TE: trailers\r\nTrailer: X-Foo\r\nUpgrade: h2c\r\nconnection: x-other-hop\r\nX-Other-Hop: 2\r\n\r\n"
      local resp = roundtrip(gw.port, raw)
      assert.equal(200, resp.status)
      assert.same(concat_lists({ { "Host", "x" }, { "X-Keep", "yes" } }, xfwd("x")), header_pairs(doc_of(resp)))
    end)

    it("removes hop-by-hop headers from the response", function()
      local path = "/headers?name=Keep-Alive&value=timeout%3D9&name=X-Resp-Hop&value=1"
        .. "&name=Connection&value=X-Resp-Hop&name=Proxy-Connection&value=keep-alive&name=X-Kept&value=k"
        .. "&name=Trailer&value=X-T&name=TE&value=trailers&name=Upgrade&value=h2c"
      local resp = roundtrip(gw.port, "GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, resp.status)
      assert.equal("k", resp:header("X-Kept"))
      assert.equal(0, resp:count("Keep-Alive"))
      assert.equal(0, resp:count("X-Resp-Hop"))
      assert.equal(0, resp:count("Proxy-Connection"))
      assert.equal(0, resp:count("Trailer"))
      assert.equal(0, resp:count("TE"))
      assert.equal(0, resp:count("Upgrade"))
      assert.equal("content-length", resp.framing)
      assert.equal("main", doc_of(resp).id)
      assert.is_nil((resp:header("Connection") or ""):lower():find("x-resp-hop", 1, true))
    end)

    it("sends an absolute-form target as origin-form with the target's Host", function()
      local raw = "GET http://a.example/x/y?z=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.equal("/x/y?z=1", doc.target)
      assert.equal(1, upstream_header_count(doc, "Host"))
      assert.equal("a.example", upstream_header(doc, "Host"))
      assert.truthy(doc.raw_head:match("^GET /x/y%?z=1 HTTP/1%.1\r\n"))
    end)

    it("matches Connection-named headers case-insensitively", function()
      local raw = "GET /echo HTTP/1.1\r\nHost: x\r\nx-hop-a: 1\r\nConnection: X-HOP-A, x-Hop-B\r\n"
        .. "X-Hop-B: 2\r\nX-Stay: 3\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.same(concat_lists({ { "Host", "x" }, { "X-Stay", "3" } }, xfwd("x")), header_pairs(doc))
    end)

    it("absolute-form with a port keeps the port in Host", function()
      local doc = doc_of(roundtrip(gw.port, "GET http://a.example:8080/p HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"))
      assert.equal("/p", doc.target)
      assert.equal(1, upstream_header_count(doc, "Host"))
      assert.equal("a.example:8080", upstream_header(doc, "Host"))
    end)

    it("absolute-form without a path is sent as /", function()
      local doc = doc_of(roundtrip(gw.port, "GET http://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n"))
      assert.equal("/", doc.target)
      assert.equal("b.example", upstream_header(doc, "Host"))
    end)

    it("gives an HTTP/1.0 request without Host the node's host:port", function()
      local resp = roundtrip(gw.port, "GET /echo HTTP/1.0\r\nX-A: 1\r\n\r\n")
      assert.equal(200, resp.status)
      local doc = doc_of(resp)
      assert.equal(1, upstream_header_count(doc, "Host"))
      assert.equal(node(main), upstream_header(doc, "Host"))
      assert.equal("1", upstream_header(doc, "X-A"))
    end)

    it("replaces a client's X-Forwarded-*/X-Real-IP from an untrusted peer", function()
      local raw = "GET /echo HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 5.6.7.8\r\n"
        .. "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-B: b\r\n\r\n"
      local doc = doc_of(roundtrip(gw.port, raw))
      assert.same(concat_lists({ { "Host", "h.example" }, { "X-B", "b" } }, xfwd("h.example")), header_pairs(doc))
    end)
  end)

  describe("keep-alive and pipelining", function()
    it("keeps an HTTP/1.1 connection alive by default", function()
      local conn = assert(http.connect(gw.port))
      for i = 1, 3 do
        assert(conn:request({ path = "/echo?i=" .. i }))
        local resp = conn:read_response({ timeout = 3 })
        assert.is_table(resp)
        assert.equal(200, resp.status)
        assert.is_nil((resp:header("Connection") or ""):lower():find("close", 1, true))
        assert.equal("/echo?i=" .. i, doc_of(resp).target)
      end
      assert.is_false(conn:closed(0.2))
      conn:close()
    end)

    it("Connection: close gets Connection: close and a closed socket", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:request({ path = "/echo", headers = { { "Connection", "close" } } }))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.equal("close", resp:header("Connection"):lower())
      local rest, err = conn:read_all(2)
      assert.is_nil(err)
      assert.equal("", rest)
      conn:close()
    end)

    it("answers pipelined requests (one write) in order with correct bodies", function()
      local conn = assert(http.connect(gw.port))
      local reqs = {
        http.build_request({ path = "/echo?n=1" }),
        http.build_request({ method = "POST", path = "/echo?n=2", body = "abc" }),
        http.build_request({ path = "/big?size=3000" }),
        http.build_request({ path = "/stream?chunks=3&size=7&interval=10" }),
        http.build_request({ method = "POST", path = "/echo?n=5", chunked = { "xy", "z" } }),
        http.build_request({ path = "/noframe?size=500" }),
        http.build_request({ path = "/echo?n=7" }),
      }
      assert(conn:send(table.concat(reqs)))
      local r = {}
      for i = 1, #reqs do
        local resp, err = conn:read_response({ timeout = 3 })
        assert.is_table(resp, "response " .. i .. ": " .. tostring(err))
        assert.is_nil(resp.incomplete, "response " .. i .. " incomplete")
        assert.equal(200, resp.status)
        r[i] = resp
      end
      assert.equal("/echo?n=1", doc_of(r[1]).target)
      assert.equal("/echo?n=2", doc_of(r[2]).target)
      assert.equal("abc", doc_of(r[2]).body)
      assert_body(pattern(3000), r[3].body, "/big")
      assert_body(pattern(21), r[4].body, "/stream")
      assert.equal("/echo?n=5", doc_of(r[5]).target)
      assert.equal("xyz", doc_of(r[5]).body)
      assert.equal("chunked", r[6].framing)
      assert_body(pattern(500), r[6].body, "/noframe")
      assert.equal("/echo?n=7", doc_of(r[7]).target)
      assert.is_false(conn:closed(0.2))
      conn:close()
    end)

    it("answers 50 pipelined requests in one write, in order", function()
      local conn = assert(http.connect(gw.port))
      local raw = {}
      for i = 1, 50 do raw[i] = http.build_request({ path = "/echo?seq=" .. i }) end
      assert(conn:send(table.concat(raw)))
      for i = 1, 50 do
        local resp, err = conn:read_response({ timeout = 3 })
        assert.is_table(resp, "response " .. i .. ": " .. tostring(err))
        assert.equal("/echo?seq=" .. i, doc_of(resp).target)
      end
      assert.is_false(conn:closed(0.2))
      conn:close()
    end)

    it("answers pipelined requests with large responses in order", function()
      local conn = assert(http.connect(gw.port))
      local raw, sizes = {}, { 200000, 150001, 300000, 77777 }
      for i, n in ipairs(sizes) do
        raw[i] = http.build_request({ path = "/big?size=" .. n .. (i % 2 == 0 and "&chunked=1" or "") })
      end
      assert(conn:send(table.concat(raw)))
      for i, n in ipairs(sizes) do
        local resp, err = conn:read_response({ timeout = 5 })
        assert.is_table(resp, "response " .. i .. ": " .. tostring(err))
        assert.is_nil(resp.incomplete)
        assert_body(pattern(n), resp.body, "response " .. i)
      end
      conn:close()
    end)

    it("closes an HTTP/1.0 connection after the response by default", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:request({ version = "1.0", path = "/echo" }))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(200, resp.status)
      assert.is_nil((resp:header("Connection") or ""):lower():find("keep%-alive"))
      assert.is_true(conn:closed(2), "HTTP/1.0 connection left open")
      conn:close()
    end)

    it("keeps an HTTP/1.0 connection with Connection: keep-alive, confirming it", function()
      local conn = assert(http.connect(gw.port))
      for i = 1, 2 do
        assert(conn:request({ version = "1.0", path = "/echo?k=" .. i, headers = { { "Connection", "keep-alive" } } }))
        local resp = conn:read_response({ timeout = 3 })
        assert.is_table(resp, "request " .. i)
        assert.equal(200, resp.status)
        assert.equal("keep-alive", (resp:header("Connection") or ""):lower())
        assert.equal("content-length", resp.framing)
        assert.equal("/echo?k=" .. i, doc_of(resp).target)
      end
      assert.is_false(conn:closed(0.2))
      conn:close()
    end)
  end)

  describe("HTTP/1.0 keep-alive with an unframeable response", function()
    it("a chunked upstream response to a 1.0 keep-alive client is close-delimited and closes", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /big?size=20000&chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
      local resp, err = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert.is_nil(resp.incomplete)
      assert.equal(0, resp:count("Transfer-Encoding"))
      assert.is_nil((resp:header("Connection") or ""):lower():find("keep%-alive"))
      assert.equal("close", resp.framing)
      assert_body(pattern(20000), resp.body)
    end)
  end)

  describe("HEAD, 204, 304 and 1xx", function()
    it("HEAD gets the upstream's headers and no body (Content-Length response)", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("HEAD /big?size=1000 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /echo?after=head HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r1 = conn:read_response({ head = true, timeout = 3 })
      assert.is_table(r1)
      assert.equal(200, r1.status)
      assert.equal("1000", r1:header("Content-Length"))
      assert.equal("main", r1:header("X-Upstream-Id"))
      assert.equal("", r1.body)
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2, "the response after HEAD is broken (body bytes after a HEAD response?)")
      assert.equal(200, r2.status)
      assert.equal("/echo?after=head", doc_of(r2).target)
    end)

    it("HEAD of a chunked resource: no body, framing headers as the upstream sent", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("HEAD /big?size=1000&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /echo?after=head2 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r1 = conn:read_response({ head = true, timeout = 3 })
      assert.is_table(r1)
      assert.equal(200, r1.status)
      assert.equal("chunked", (r1:header("Transfer-Encoding") or ""):lower())
      assert.equal(0, r1:count("Content-Length"))
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2, "the response after HEAD is broken")
      assert.equal("/echo?after=head2", doc_of(r2).target)
    end)

    it("HEAD of a close-delimited resource: no body, answered at once, connection goes on", function()
      local conn = assert(http.connect(gw.port))
      local t0 = proc.now()
      assert(conn:send("HEAD /noframe?size=5000 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r1, err = conn:read_response({ head = true, timeout = 3 })
      assert.is_table(r1, tostring(err))
      assert.equal(200, r1.status)
      assert.equal("", r1.body)
      assert.is_true(proc.now() - t0 < 1, "HEAD response waited for a body")
      assert(conn:send("GET /echo?after=head3 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2, "connection unusable after HEAD of a close-delimited resource")
      assert.equal("/echo?after=head3", doc_of(r2).target)
    end)

    it("204 and 304 have no body and the connection goes on", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /echo?after=304 HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r1 = conn:read_response({ timeout = 3 })
      local r2 = conn:read_response({ timeout = 3 })
      local r3 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r1)
      assert.equal(204, r1.status)
      assert.equal("", r1.body)
      assert.equal(0, r1:count("Transfer-Encoding"))
      assert.is_table(r2)
      assert.equal(304, r2.status)
      assert.equal("", r2.body)
      assert.equal(0, r2:count("Transfer-Encoding"))
      assert.is_table(r3, "response after 204/304 broken")
      assert.equal("/echo?after=304", doc_of(r3).target)
    end)

    it("forwards a 103 to an HTTP/1.1 client as an interim response", function()
      local resp = roundtrip(gw.port, "GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, resp.status)
      assert.equal(1, #resp.interim)
      assert.equal(103, resp.interim[1].status)
      assert.equal("</style.css>; rel=preload", resp.interim[1]:header("Link"))
      assert.equal("/early-hints", doc_of(resp).target)
    end)

    it("does not send a 103 to an HTTP/1.0 client", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /early-hints HTTP/1.0\r\n\r\n"))
      local data = conn:read_all(3)
      conn:close()
      assert.truthy(data:match("^HTTP/1%.[01] 200 "), "first bytes: " .. data:sub(1, 40))
      assert.is_nil(data:find(" 103 ", 1, true))
    end)

    it("swallows the upstream's 100 Continue", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"))
      local first = conn:read_raw(12, 3)
      assert.equal("HTTP/1.1 200", first)
      conn.buf = first .. conn.buf
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      assert.equal(0, #resp.interim)
      assert.equal("body", doc_of(resp).body)
    end)
  end)

  describe("Expect: 100-continue", function()
    it("sends 100 Continue before the body, then the final response; Expect not forwarded", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"))
      local interim, err = conn:read_raw(#"HTTP/1.1 100 Continue\r\n", 2)
      assert.equal("HTTP/1.1 100 Continue\r\n", interim, tostring(err))
      conn.buf = interim .. conn.buf
      assert(conn:send("hello"))
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      assert.equal(1, #resp.interim)
      assert.equal(100, resp.interim[1].status)
      assert.equal(200, resp.status)
      local doc = doc_of(resp)
      assert.equal("hello", doc.body)
      assert.equal(0, upstream_header_count(doc, "Expect"))
      assert.same(concat_lists({ { "Host", "x" }, { "Content-Length", "5" } }, xfwd("x")), header_pairs(doc))
    end)

    it("sends exactly one 100 when the upstream sends its own 100 too", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"))
      local interim = conn:read_raw(#"HTTP/1.1 100 Continue\r\n", 2)
      assert.equal("HTTP/1.1 100 Continue\r\n", interim)
      conn.buf = interim .. conn.buf
      assert(conn:send("abc"))
      local resp = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp)
      assert.equal(1, #resp.interim)
      assert.equal(200, resp.status)
      assert.equal("abc", doc_of(resp).body)
    end)

    it("answers 413 at once, without 100, when Content-Length exceeds max_body_size", function()
      local before = stats(main.port).requests_total
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10000\r\n\r\n"))
      local resp, err = conn:read_response({ timeout = 2 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert.equal(0, #resp.interim)
      assert_json_error(resp, 413)
      proc.sleep(0.05)
      assert.equal(before + 1, stats(main.port).requests_total) -- only the /__stats request itself
    end)
  end)

  describe("response framing", function()
    it("upstream chunked -> chunked for HTTP/1.1, bytes identical", function()
      local resp = roundtrip(gw.port, "GET /big?size=100000&chunked=1 HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, resp.status)
      assert.equal("chunked", resp.framing)
      assert.equal(0, resp:count("Content-Length"))
      assert.equal(1, resp:count("Transfer-Encoding"))
      assert_body(pattern(100000), resp.body)
    end)

    it("upstream chunked -> close-delimited for HTTP/1.0, bytes identical", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /big?size=100000&chunked=1 HTTP/1.0\r\n\r\n"))
      local resp, err = conn:read_response({ timeout = 5 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert.is_nil(resp.incomplete)
      assert.equal(200, resp.status)
      assert.equal(0, resp:count("Transfer-Encoding"))
      assert.equal(0, resp:count("Content-Length"))
      assert.equal("close", resp.framing)
      assert_body(pattern(100000), resp.body)
    end)

    it("upstream close-delimited -> chunked for HTTP/1.1, connection kept alive", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:request({ path = "/noframe?size=50000" }))
      local resp, err = conn:read_response({ timeout = 5 })
      assert.is_table(resp, tostring(err))
      assert.equal(200, resp.status)
      assert.equal("chunked", resp.framing)
      assert.equal(0, resp:count("Content-Length"))
      assert_body(pattern(50000), resp.body)
      assert(conn:request({ path = "/echo?after=noframe" }))
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2, "connection not kept alive after a close-delimited upstream response")
      assert.equal("/echo?after=noframe", doc_of(r2).target)
    end)

    it("passes Content-Length through, bytes identical", function()
      local resp = roundtrip(gw.port, "GET /big?size=70000 HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, resp.status)
      assert.equal("content-length", resp.framing)
      assert.equal(1, resp:count("Content-Length"))
      assert.equal("70000", resp:header("Content-Length"))
      assert.equal(0, resp:count("Transfer-Encoding"))
      assert_body(pattern(70000), resp.body)
    end)

    it("streams a slow chunked response as chunked, bytes identical", function()
      local resp = roundtrip(gw.port, "GET /stream?chunks=4&size=9&interval=30 HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(200, resp.status)
      assert.equal("chunked", resp.framing)
      assert_body(pattern(36), resp.body)
    end)
  end)

  describe("request body size", function()
    it("413 for Content-Length > max_body_size, before the body is sent", function()
      local before = stats(main.port).requests_total
      local conn = assert(http.connect(gw.port))
      assert(conn:send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n"))
      local resp, err = conn:read_response({ timeout = 2 })
      conn:close()
      assert.is_table(resp, "no 413 before the body: " .. tostring(err))
      assert_json_error(resp, 413)
      proc.sleep(0.05)
      assert.equal(before + 1, stats(main.port).requests_total)
    end)

    for _, case in ipairs({
      { "Content-Length > client.max_body_size", "/echo", 5000 },
      { "Content-Length > a route's max_body_size", "/small/x", 300 },
    }) do
      it("413 for " .. case[1] .. ": the unread body is never parsed as a request", function()
        local smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        local body = smuggled .. ("x"):rep(case[3] - #smuggled)
        local before = stats(main.port).requests_total
        local conn = assert(http.connect(gw.port))
        assert(conn:send("POST " .. case[2] .. " HTTP/1.1\r\nHost: x\r\nContent-Length: " .. case[3]
          .. "\r\n\r\n" .. body))
        local resp, err = conn:read_response({ timeout = 3 })
        assert.is_table(resp, tostring(err))
        assert_json_error(resp, 413)
        local rest = conn:read_all(1) -- closed, or kept open with the body discarded
        conn:close()
        assert.is_nil(rest:find("HTTP/1.", 1, true), "a second response: " .. rest:sub(1, 60))
        proc.sleep(0.05)
        assert.equal(before + 1, stats(main.port).requests_total)
      end)
    end

    it("accepts a body of exactly max_body_size", function()
      local resp = roundtrip(gw.port, http.build_request({ method = "POST", path = "/echo", body = ("q"):rep(4096) }))
      assert.equal(200, resp.status)
      assert.equal(4096, doc_of(resp).body_length)
    end)

    it("413 for a chunked body that grows past max_body_size", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:request({
        method = "POST", path = "/echo", chunked = { ("a"):rep(2000), ("b"):rep(2000), ("c"):rep(200) },
      }))
      local resp, err = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(resp, tostring(err))
      assert_json_error(resp, 413)
    end)

    it("a route's smaller max_body_size overrides client.max_body_size", function()
      local ok = roundtrip(gw.port, http.build_request({ method = "POST", path = "/small/x", body = ("s"):rep(100) }))
      assert.equal(200, ok.status)
      assert.equal(100, doc_of(ok).body_length)
      local resp = roundtrip(gw.port, http.build_request({ method = "POST", path = "/small/x", body = ("s"):rep(200) }))
      assert_json_error(resp, 413)
    end)

    it("a route's larger max_body_size overrides client.max_body_size", function()
      local big = ("r"):rep(10000)
      local ok = roundtrip(gw.port, http.build_request({ method = "POST", path = "/roomy/x", body = big }))
      assert.equal(200, ok.status)
      assert.equal(10000, doc_of(ok).body_length)
      assert.equal(big, doc_of(ok).body)
      local resp = roundtrip(gw.port, http.build_request({ method = "POST", path = "/echo", body = big }))
      assert_json_error(resp, 413)
    end)
  end)

  describe("WebSocket upgrade", function()
    local UPGRADE = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

    local function open_tunnel(early)
      local conn = assert(http.connect(gw.port))
      assert(conn:send(UPGRADE .. (early or "")))
      local resp, err = conn:read_response({ timeout = 3 })
      assert.is_table(resp, tostring(err))
      assert.equal(101, resp.status)
      assert.equal("ws", resp:header("X-Upstream-Id"))
      assert.equal("websocket", (resp:header("Upgrade") or ""):lower())
      assert.equal("upgrade", (resp:header("Connection") or ""):lower())
      return conn
    end

    it("becomes a two-way byte tunnel (bytes sent with the head flow too)", function()
      local conn = open_tunnel("early-bytes")
      assert.equal("early-bytes", conn:read_raw(#"early-bytes", 3))
      assert(conn:send("hello"))
      assert.equal("hello", conn:read_raw(5, 3))
      local blob = pattern(200000)
      assert(conn:send(blob))
      local back, err = conn:read_raw(#blob, 5)
      assert.is_string(back, tostring(err))
      assert_body(blob, back, "tunnel echo")
      -- HTTP-looking bytes are just bytes now
      local req = "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
      assert(conn:send(req))
      assert.equal(req, conn:read_raw(#req, 3))
      conn:close()
    end)

    it("is not an upgrade without Connection: upgrade", function()
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp)
      assert.equal(426, resp.status) -- the mock's answer to a plain request
      assert.equal("websocket upgrade required\n", resp.body)
      assert(conn:send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"))
      local r2 = conn:read_response({ timeout = 3 })
      conn:close()
      assert.is_table(r2)
      assert.equal(200, r2.status)
    end)

    it("passes the client's half-close on and still delivers the upstream's bytes", function()
      local conn = open_tunnel()
      assert(conn:send("last words"))
      conn:shutdown_write()
      local data, err = conn:read_all(3)
      conn:close()
      assert.is_nil(err, "tunnel not closed after the upstream saw the half-close")
      assert.equal("last words", data)
    end)

    it("closes the upstream side when the client closes", function()
      local base = stats(wsmock.port).connections_open
      local conn = open_tunnel()
      assert(conn:send("x"))
      assert.equal("x", conn:read_raw(1, 3))
      assert.equal(base + 1, stats(wsmock.port).connections_open)
      conn:close()
      local deadline, open = proc.now() + 3
      repeat
        open = stats(wsmock.port).connections_open
        if open == base then break end
        proc.sleep(0.05)
      until proc.now() > deadline
      assert.equal(base, open)
    end)
  end)
end)

describe("torii X-Forwarded-* from a trusted proxy", function()
  local m, gw

  setup(function()
    m = gateway.mock({ id = "t" })
    gw = gateway.start({
      config = {
        trusted_proxies = { "127.0.0.0/8", "10.0.0.0/8" },
        routes = { { id = "all", uri = "/*", upstream = { nodes = { node(m) } } } },
      },
    })
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  it("appends the peer to X-Forwarded-For; X-Real-IP is the rightmost untrusted address", function()
    local raw = "GET /echo HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.2, 10.1.2.3\r\n"
      .. "X-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: orig.example\r\nX-C: c\r\n\r\n"
    local doc = doc_of(roundtrip(gw.port, raw))
    assert.same({
      { "Host", "h.example" }, { "X-C", "c" },
      { "X-Forwarded-For", "203.0.113.7, 198.51.100.2, 10.1.2.3, 127.0.0.1" },
      { "X-Real-IP", "198.51.100.2" },
      { "X-Forwarded-Proto", "https" }, { "X-Forwarded-Host", "orig.example" },
    }, header_pairs(doc))
  end)

  it("joins several X-Forwarded-For headers with ', '", function()
    local raw = "GET /echo HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 192.0.2.1\r\nX-D: d\r\n"
      .. "X-Forwarded-For: 192.0.2.2, 10.0.0.9\r\n\r\n"
    local doc = doc_of(roundtrip(gw.port, raw))
    assert.equal(1, upstream_header_count(doc, "X-Forwarded-For"))
    assert.equal("192.0.2.1, 192.0.2.2, 10.0.0.9, 127.0.0.1", upstream_header(doc, "X-Forwarded-For"))
    assert.equal(1, upstream_header_count(doc, "X-Real-IP"))
    assert.equal("192.0.2.2", upstream_header(doc, "X-Real-IP"))
    assert.equal("http", upstream_header(doc, "X-Forwarded-Proto"))
    assert.equal("h", upstream_header(doc, "X-Forwarded-Host"))
    assert.equal(1, upstream_header_count(doc, "X-Forwarded-Proto"))
    assert.equal(1, upstream_header_count(doc, "X-Forwarded-Host"))
  end)

  it("without client headers behaves like the untrusted case", function()
    local doc = doc_of(roundtrip(gw.port, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n"))
    assert.same(concat_lists({ { "Host", "h" } }, xfwd("h")), header_pairs(doc))
  end)
end)

describe("torii client keep-alive limits", function()
  local m, gw

  setup(function()
    m = gateway.mock({ id = "k" })
    gw = gateway.start({
      config = {
        client = { keepalive_requests = 3, keepalive_timeout = "300ms" },
        routes = { { id = "all", uri = "/*", upstream = { nodes = { node(m) } } } },
      },
    })
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  it("keepalive_requests: the last allowed response says Connection: close, then the socket closes", function()
    local conn = assert(http.connect(gw.port))
    for i = 1, 3 do
      assert(conn:request({ path = "/echo?r=" .. i }))
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp, "request " .. i)
      assert.equal(200, resp.status)
      assert.equal("/echo?r=" .. i, doc_of(resp).target)
      if i < 3 then
        assert.is_nil((resp:header("Connection") or ""):lower():find("close", 1, true), "closed early at " .. i)
      else
        assert.equal("close", (resp:header("Connection") or ""):lower())
      end
    end
    local rest, err = conn:read_all(2)
    conn:close()
    assert.is_nil(err)
    assert.equal("", rest)
  end)

  it("keepalive_requests applies to pipelined requests too", function()
    local conn = assert(http.connect(gw.port))
    local raw = {}
    for i = 1, 4 do raw[i] = http.build_request({ path = "/echo?p=" .. i }) end
    assert(conn:send(table.concat(raw)))
    for i = 1, 3 do
      local resp = conn:read_response({ timeout = 3 })
      assert.is_table(resp, "response " .. i)
      assert.equal("/echo?p=" .. i, doc_of(resp).target)
      if i == 3 then assert.equal("close", (resp:header("Connection") or ""):lower()) end
    end
    local rest, err = conn:read_all(2)
    conn:close()
    assert.is_nil(err)
    assert.equal("", rest, "a 4th response after the keepalive_requests limit")
  end)

  it("keepalive_timeout: an idle connection is closed after it, not before", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ path = "/echo?idle=1" }))
    assert.equal(200, conn:read_response({ timeout = 3 }).status)
    proc.sleep(0.15) -- activity before the timeout keeps it alive
    assert(conn:request({ path = "/echo?idle=2" }))
    local r2 = conn:read_response({ timeout = 3 })
    assert.is_table(r2, "connection closed before keepalive_timeout")
    assert.equal("/echo?idle=2", doc_of(r2).target)
    local t0 = proc.now()
    assert.is_true(conn:closed(2), "idle connection not closed")
    local idle = proc.now() - t0
    conn:close()
    assert.is_true(idle >= 0.2, "closed too early: " .. idle)
    assert.is_true(idle < 1.2, "closed too late: " .. idle)
  end)
end)

describe("torii routing", function()
  local mocks, gw = {}, nil

  setup(function()
    for _, id in ipairs({ "p-short", "p-long", "exact", "exact-root" }) do mocks[id] = gateway.mock({ id = id }) end
    gw = gateway.start({
      config = {
        routes = {
          { id = "p-short", uri = "/api/*", upstream = { nodes = { node(mocks["p-short"]) } } },
          { id = "p-long", uri = "/api/v1/*", upstream = { nodes = { node(mocks["p-long"]) } } },
          { id = "exact", uri = "/api/v1/users", upstream = { nodes = { node(mocks.exact) } } },
          { id = "exact-root", uris = { "/", "/api/v1/users/me" },
            upstream = { nodes = { node(mocks["exact-root"]) } } },
        },
      },
    })
  end)

  teardown(function() gateway.cleanup_all() end)
  after_each(function() gw:assert_clean() end)

  local function served_by(path)
    local resp = roundtrip(gw.port, "GET " .. path .. " HTTP/1.1\r\nHost: x\r\n\r\n")
    return resp.status, resp:header("X-Upstream-Id"), resp
  end

  it("an exact path wins over any prefix, even declared after it", function()
    local s, id = served_by("/api/v1/users")
    assert.equal(200, s)
    assert.equal("exact", id)
    for path, want in pairs({ ["/api/v1/users?page=2"] = "exact", ["/api/v1/users/me"] = "exact-root",
      ["/"] = "exact-root" }) do
      s, id = served_by(path)
      assert.equal(200, s)
      assert.equal(want, id, path)
    end
  end)

  it("the longest matching prefix wins", function()
    local _, id = served_by("/api/v1/users/1")
    assert.equal("p-long", id)
    _, id = served_by("/api/v1/usersX")
    assert.equal("p-long", id)
    _, id = served_by("/api/v1/")
    assert.equal("p-long", id)
    _, id = served_by("/api/v2/x")
    assert.equal("p-short", id)
    _, id = served_by("/api/x?y=/api/v1/z")
    assert.equal("p-short", id)
  end)

  it("passes the path unchanged to the chosen upstream", function()
    local _, id, resp = served_by("/api/v1/things?a=b")
    assert.equal("p-long", id)
    assert.equal("/api/v1/things?a=b", doc_of(resp).target)
  end)

  it("404 JSON when no route matches", function()
    local s, id, resp = served_by("/nothing/here")
    assert.equal(404, s)
    assert.is_nil(id)
    assert_json_error(resp, 404)
    local s2, _, resp2 = served_by("/apix")
    assert.equal(404, s2)
    assert_json_error(resp2, 404)
  end)

  it("404 for a request with a body: the body is never parsed as a request", function()
    local smuggled = "GET /api/v1/users HTTP/1.1\r\nHost: x\r\n\r\n"
    local before = stats(mocks.exact.port).requests_total
    local conn = assert(http.connect(gw.port))
    assert(conn:send("POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: " .. #smuggled .. "\r\n\r\n" .. smuggled))
    local resp = conn:read_response({ timeout = 3 })
    assert_json_error(resp, 404)
    local rest = conn:read_all(1)
    conn:close()
    assert.is_nil(rest:find("HTTP/1.", 1, true), "a second response: " .. rest:sub(1, 60))
    proc.sleep(0.05)
    assert.equal(before + 1, stats(mocks.exact.port).requests_total)
  end)

  it("a tie between equal prefixes goes to the route declared first", function()
    local a, b = gateway.mock({ id = "tie-a" }), gateway.mock({ id = "tie-b" })
    local gw2 = gateway.start({
      config = {
        routes = {
          { id = "tie-a", uri = "/tie/*", upstream = { nodes = { node(a) } } },
          { id = "tie-b", uri = "/tie/*", upstream = { nodes = { node(b) } } },
        },
      },
    })
    local resp = roundtrip(gw2.port, "GET /tie/x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.equal(200, resp.status)
    assert.equal("tie-a", resp:header("X-Upstream-Id"))
    gw2:assert_clean()
    gw2:cleanup()
    a.stop()
    b.stop()
  end)
end)
