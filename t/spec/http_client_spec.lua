-- torii.http without the gateway: its URL handling, the bytes it sends,
-- and how it reads responses, over a fake socket that plays back a
-- scripted answer. (t/integration/cosocket_spec.lua runs it for real.)

local http = require "torii.http"

-- A socket that answers with `reply` (bytes) and then reports `after`
-- ("closed" by default). opts: reused (getreusedtimes), connect_err.
local function fake(reply, opts)
  opts = opts or {}
  local s = { buf = reply or "", sent = {}, after = opts.after or "closed" }
  function s.settimeouts(self, c, w, r) self.timeouts = { c, w, r } end
  function s.connect(self, host, port)
    self.host, self.port = host, port
    if opts.connect_err then return nil, opts.connect_err end
    return 1
  end
  function s.getreusedtimes() return opts.reused or 0 end
  function s.send(self, data)
    self.sent[#self.sent + 1] = data
    return #data
  end
  local function take(self, n)
    local data = self.buf:sub(1, n)
    self.buf = self.buf:sub(n + 1)
    return data
  end
  function s.receive(self, pat)
    if pat == "*l" then
      local i = self.buf:find("\n", 1, true)
      if not i then return nil, self.after, take(self, #self.buf) end
      return (take(self, i):gsub("\r?\n$", ""))
    end
    if #self.buf < pat then return nil, self.after, take(self, #self.buf) end
    return take(self, pat)
  end
  function s.receiveany(self, max)
    if self.buf == "" then return nil, self.after, "" end
    return take(self, math.min(max, 7)) -- small pieces, as a network would give
  end
  function s.setkeepalive(self)
    self.kept = true
    return 1
  end
  function s.close(self)
    self.closed = true
    return 1
  end
  return s
end

describe("torii.http", function()
  local sockets, made, saved

  before_each(function()
    sockets, made, saved = {}, {}, http.tcp
    http.tcp = function()
      local s = assert(table.remove(sockets, 1), "no more fake sockets")
      made[#made + 1] = s
      return s
    end
  end)

  after_each(function() http.tcp = saved end)

  local function answer(reply, opts)
    sockets[#sockets + 1] = fake(reply, opts)
  end

  local function head_sent(i)
    local sent = table.concat(made[i or 1].sent)
    return sent:match("^(.-\r\n\r\n)"), sent:match("\r\n\r\n(.*)$")
  end

  describe("parse_url", function()
    it("splits host, port, target and the Host value", function()
      assert.are.same({ "127.0.0.1", 8080, "/a/b?c=1", "127.0.0.1:8080" },
        { http.parse_url("http://127.0.0.1:8080/a/b?c=1#frag") })
      assert.are.same({ "[::1]", 80, "/x", "[::1]" }, { http.parse_url("http://[::1]/x") })
      assert.are.same({ "[::1]", 81, "/", "[::1]:81" }, { http.parse_url("HTTP://[::1]:81") })
      assert.are.same({ "h", 80, "/?q=1", "h" }, { http.parse_url("http://h?q=1") })
    end)

    it("refuses what it cannot serve", function()
      assert.matches("https is not supported", select(2, http.parse_url("https://h/")), 1, true)
      assert.is_nil((http.parse_url("ftp://h/")))
      assert.is_nil((http.parse_url("http://user:pw@h/")))
      assert.is_nil((http.parse_url("http://h:0/")))
      assert.is_nil((http.parse_url("http://h:99999/")))
      assert.is_nil((http.parse_url("http:///path")))
      assert.is_nil((http.parse_url("/relative")))
    end)
  end)

  it("encodes query tables sorted and escaped", function()
    assert.are.equal("a=1&b=x%20y&c=1&c=2", http.encode_query({ b = "x y", a = 1, c = { 1, 2 } }))
  end)

  describe("the request", function()
    it("has the line, Host, the caller's headers and the body's length", function()
      answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
      local res = assert(http.request {
        method = "POST", url = "http://10.0.0.1:8080/p?x=1", query = { y = "a b" },
        headers = { ["X-One"] = "1", ["X-Many"] = { "a", "b" } }, body = "hello",
        timeout = { connect = 100, send = 200, read = 300 },
      })
      assert.are.equal(200, res.status)
      local head, body = head_sent()
      assert.matches("^POST /p%?x=1&y=a%%20b HTTP/1%.1\r\n", head)
      assert.matches("\r\nHost: 10%.0%.0%.1:8080\r\n", head)
      assert.matches("\r\nX%-One: 1\r\n", head)
      assert.matches("\r\nX%-Many: a\r\nX%-Many: b\r\n", head)
      assert.matches("\r\nContent%-Length: 5\r\n", head)
      assert.is_nil(head:find("Connection:", 1, true))
      assert.are.equal("hello", body)
      assert.are.equal("10.0.0.1", made[1].host)
      assert.are.same({ 100, 200, 300 }, made[1].timeouts)
    end)

    it("says Connection: close when keepalive is off, and connects to a bracketless IPv6 host", function()
      answer("HTTP/1.1 204 No Content\r\n\r\n")
      assert(http.request { url = "http://[::1]:9000/", keepalive = false })
      assert.matches("\r\nConnection: close\r\n", head_sent())
      assert.are.equal("::1", made[1].host)
      assert.is_true(made[1].closed)
    end)

    it("raises an error for what would corrupt the request", function()
      assert.has_error(function() http.request { url = "http://h/", headers = { ["X-A"] = "v\r\nX-B: w" } } end)
      assert.has_error(function() http.request { url = "http://h/", headers = { ["Bad Name"] = "v" } } end)
      assert.has_error(function() http.request { url = "http://h/", headers = { ["Content-Length"] = "1" } } end)
      assert.has_error(function() http.request { url = "http://h/a b" } end)
      assert.has_error(function() http.request { url = "https://h/" } end)
      assert.has_error(function() http.request { url = "http://h/", method = "get" } end)
      assert.has_error(function() http.request { url = "http://h/", body = 12 } end)
      assert.has_error(function() http.request { port = 80 } end)
    end)
  end)

  describe("the response", function()
    it("Content-Length: body, headers in any case, the connection kept", function()
      answer("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 11\r\n\r\n"
        .. "hello world")
      local res = assert(http.request { url = "http://h/" })
      assert.are.equal(201, res.status)
      assert.are.equal("Created", res.reason)
      assert.are.equal("hello world", res.body)
      assert.are.equal("text/plain", res.headers["Content-Type"])
      assert.are.equal("text/plain", res.headers["content-type"])
      assert.are.equal("1, 2", res.headers["x-a"])
      assert.are.same({ "X-A", "2" }, res.header_list[3])
      assert.is_true(made[1].kept)
    end)

    it("chunked, with extensions and trailers", function()
      answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
      local res = assert(http.request { url = "http://h/" })
      assert.are.equal("hello world", res.body)
      assert.is_true(made[1].kept)
    end)

    it("until the close when unframed: never kept", function()
      answer("HTTP/1.1 200 OK\r\n\r\nall of it, until the end")
      local res = assert(http.request { url = "http://h/" })
      assert.are.equal("all of it, until the end", res.body)
      assert.is_true(made[1].closed)
      assert.is_nil(made[1].kept)
    end)

    it("no body after HEAD, 204 and 304", function()
      answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
      assert.are.equal("", assert(http.request { url = "http://h/", method = "HEAD" }).body)
      answer("HTTP/1.1 204 No Content\r\n\r\n")
      assert.are.equal("", assert(http.request { url = "http://h/" }).body)
      answer("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")
      assert.are.equal("", assert(http.request { url = "http://h/" }).body)
      for i = 1, 3 do assert.is_true(made[i].kept) end
    end)

    it("skips interim responses", function()
      answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
        .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      local res = assert(http.request { url = "http://h/", method = "PUT", body = "x" })
      assert.are.equal(200, res.status)
      assert.are.equal("ok", res.body)
    end)

    it("keeps the connection only when the response allows it", function()
      local cases = {
        { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false },
        { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false },
        { "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true },
        { "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n", false },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", false },
      }
      for i, case in ipairs(cases) do
        answer(case[1])
        assert(http.request { url = "http://h/" })
        assert.are.equal(case[2], made[i].kept == true, case[1])
      end
    end)

    it("fails on a response it cannot trust, closing the connection", function()
      local cases = {
        { "HTTP/1.1 2OO OK\r\n\r\n", "invalid response: bad status line" },
        { "ICY 200 OK\r\n\r\n", "invalid response: bad status line" },
        { "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "invalid response: bad header line" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
          "invalid response: bad Content-Length" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid response: bad chunk size" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", "invalid response: bad chunk end" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed" },
      }
      for i, case in ipairs(cases) do
        answer(case[1])
        local res, err = http.request { url = "http://h/" }
        assert.is_nil(res)
        assert.are.equal(case[2], err)
        assert.is_true(made[i].closed, case[1])
      end
    end)

    it("refuses a body over max_body_size", function()
      answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. string.rep("x", 100))
      assert.are.same({ nil, "body too large" }, { http.request { url = "http://h/", max_body_size = 99 } })
      answer("HTTP/1.1 200 OK\r\n\r\n" .. string.rep("x", 100))
      assert.are.same({ nil, "body too large" }, { http.request { url = "http://h/", max_body_size = 99 } })
    end)

    it("streams the body piece by piece, then keeps the connection", function()
      answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n" .. string.rep("z", 20) .. "\r\n0\r\n\r\n")
      local res = assert(http.request { url = "http://h/", stream = true })
      assert.is_nil(res.body)
      assert.is_nil(made[1].kept)
      local parts = {}
      for _ = 1, 100 do
        local piece, err = res:read_body_chunk()
        assert.is_nil(err)
        if not piece then break end
        parts[#parts + 1] = piece
      end
      assert.is_true(#parts > 1)
      assert.are.equal(string.rep("z", 20), table.concat(parts))
      assert.is_true(made[1].kept)
      assert.is_nil(res:read_body_chunk())
    end)

    it("drops a streamed body on close()", function()
      answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. string.rep("x", 100))
      local res = assert(http.request { url = "http://h/", stream = true })
      assert.are.equal(7, #res:read_body_chunk())
      res:close()
      assert.is_true(made[1].closed)
      assert.is_nil(res:read_body_chunk())
    end)
  end)

  describe("errors and retries", function()
    it("returns the socket's error", function()
      answer("", { connect_err = "connection refused" })
      assert.are.same({ nil, "connection refused" }, { http.request { url = "http://h/" } })
      answer("", { after = "timeout" })
      assert.are.same({ nil, "timeout" }, { http.request { url = "http://h/" } })
    end)

    it("sends an idempotent request again when a pooled connection was closed before answering", function()
      answer("", { reused = 3 })
      answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", { reused = 0 })
      local res = assert(http.request { url = "http://h/" })
      assert.are.equal("ok", res.body)
      assert.are.equal(2, #made)
    end)

    it("never sends a POST twice, nor on a new connection", function()
      answer("", { reused = 3 })
      assert.are.same({ nil, "closed" }, { http.request { url = "http://h/", method = "POST", body = "x" } })
      answer("", { reused = 0 })
      assert.are.same({ nil, "closed" }, { http.request { url = "http://h/" } })
      assert.are.equal(2, #made)
    end)
  end)
end)
