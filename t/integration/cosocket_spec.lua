-- torii.socket and torii.http: plugins talk to other servers without
-- blocking their worker. Fixtures: t/integration/fixtures/cosocket (the
-- plugins, and a line-echo server this spec starts with luajit).

local gateway = require "gateway"
local http = require "http"
local cjson = require "cjson"
local proc = require "proc"
local testutil = require "testutil"

local FIXTURES = gateway.root .. "/t/integration/fixtures/cosocket"

local function escape(s)
  return (s:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- A name /etc/hosts gives 127.0.0.1 (other than localhost, which torii
-- takes as 127.0.0.1 without a lookup), or nil.
local function loopback_name()
  for line in (testutil.read_file("/etc/hosts") or ""):gmatch("[^\n]+") do
    local addr, names = line:match("^%s*(%S+)%s+([^#]+)")
    if addr == "127.0.0.1" then
      for name in names:gmatch("%S+") do
        if name:lower() ~= "localhost" and name:match("^[%w.-]+$") then return name end
      end
    end
  end
end

-- Descriptors a process has open.
local function open_fds(pid)
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null"))
  local count = 0
  for _ in p:lines() do count = count + 1 end
  p:close()
  return count
end

local function stats(mock)
  local resp = assert(http.get(mock.port, "/__stats", { timeout = 2 }))
  return cjson.decode(resp.body)
end

describe("plugin sockets", function()
  local gw, m, ka, echo_pid, echo_port

  setup(function()
    m = gateway.mock { id = "cs" }
    ka = gateway.mock { id = "ka" }
    echo_port = gateway.free_port()
    echo_pid = assert(proc.spawn({ "luajit", FIXTURES .. "/line_echo.lua", tostring(echo_port), "300" }))
    assert(testutil.eventually(function() return gateway.port_open(echo_port) end, 10), "line-echo server not up")
    local nowhere = { nodes = { "127.0.0.1:1" } }
    gw = gateway.start {
      config = {
        workers = 1,
        plugin_dirs = { FIXTURES },
        routes = {
          { id = "http", uri = "/http", upstream = nowhere, plugins = { httpcall = {} } },
          { id = "raw", uri = "/raw", upstream = nowhere, plugins = { rawtcp = {} } },
          { id = "timer", uri = "/timer", upstream = nowhere, plugins = { timerhttp = {} } },
          { id = "phases", uri = "/echo", upstream = { nodes = { "127.0.0.1:" .. m.port } },
            plugins = { waitphases = {} } },
          { id = "fast", uri = "/fast", upstream = { nodes = { "127.0.0.1:" .. m.port } } },
          { id = "ka", uri = "/ka/*", upstream = { nodes = { "127.0.0.1:" .. ka.port } },
            plugins = { ["proxy-rewrite"] = { regex_uri = { "^/ka(/.*)", "$1" } } } },
        },
      },
    }
  end)

  teardown(function()
    if echo_pid then proc.stop(echo_pid, 5) end
    gateway.cleanup_all()
  end)

  -- GET /http?... and the list of calls the plugin made.
  local function calls(query)
    local resp = testutil.request(gw, "/http?" .. query, { timeout = 10 })
    assert.are.equal(200, resp.status, resp.body)
    local doc = cjson.decode(resp.body)
    return doc.calls, doc
  end

  local function doc_of(call)
    assert.is_string(call.body, cjson.encode(call))
    return cjson.decode(call.body)
  end

  describe("torii.http", function()
    it("calls the upstream from access and returns its answer", function()
      local c, doc = calls("port=" .. m.port .. "&path=" .. escape("/echo?a=1&b=two"))
      assert.are.equal("access", doc.phase)
      assert.are.equal(200, c[1].status)
      assert.are.equal("cs", c[1].upstream_id)
      local echo = doc_of(c[1])
      assert.are.equal("GET", echo.method)
      assert.are.equal("/echo?a=1&b=two", echo.target)
      assert.are.equal("127.0.0.1:" .. m.port, testutil.upstream_value(echo, "Host"))
    end)

    it("sends a body with its length", function()
      local c = calls("port=" .. m.port .. "&method=POST&body=hello%20there")
      local echo = doc_of(c[1])
      assert.are.equal("POST", echo.method)
      assert.are.equal("hello there", echo.body)
      assert.are.equal("11", testutil.upstream_value(echo, "Content-Length"))
    end)

    it("sends a large body to a slow reader, waiting for the socket", function()
      local c = calls("port=" .. m.port .. "&method=POST&bodysize=4194304&read=10000&send=10000&path="
        .. escape("/slowread?rate=16000000"))
      assert.are.equal(200, c[1].status, cjson.encode(c))
      assert.are.equal(4194304, doc_of(c[1]).body_length)
    end)

    it("reports a send timeout", function()
      local c = calls("port=" .. m.port .. "&method=POST&bodysize=8388608&send=300&path="
        .. escape("/slowread?rate=1000"))
      assert.are.equal("timeout", c[1].err, cjson.encode(c))
    end)

    it("reads chunked and Content-Length bodies, small and large", function()
      local c = calls("port=" .. m.port .. "&path=" .. escape("/stream?chunks=3&size=5&interval=10"))
      assert.are.equal(200, c[1].status)
      assert.are.equal("abcdefghijklmno", c[1].body) -- the mock's pattern
      c = calls("port=" .. m.port .. "&path=" .. escape("/big?size=300000&chunked=1"))
      assert.are.equal(300000, c[1].length)
      c = calls("port=" .. m.port .. "&path=" .. escape("/big?size=300000"))
      assert.are.equal(300000, c[1].length)
    end)

    it("streams a large body piece by piece", function()
      local c = calls("port=" .. m.port .. "&stream=1&path=" .. escape("/big?size=1000000&chunked=1"))
      assert.is_false(c[1].err or false)
      assert.are.equal(1000000, c[1].length)
      assert.is_true(c[1].pieces > 1, "one piece for a megabyte")
    end)

    it("expects no body after HEAD, 204 and 304, and keeps the connection", function()
      local cases = { { "HEAD", "/echo", 200 }, { "GET", "/status/204", 204 }, { "GET", "/status/304", 304 } }
      for _, case in ipairs(cases) do
        local c = calls("n=2&port=" .. m.port .. "&method=" .. case[1] .. "&path=" .. escape(case[2]))
        for i = 1, 2 do
          assert.are.equal(case[3], c[i].status, cjson.encode(c))
          assert.are.equal(0, c[i].length)
        end
        assert.is_true(c[2].reused, case[1] .. " " .. case[2] .. ": the connection was not reused")
      end
    end)

    it("reports a refused connection", function()
      local c = calls("port=" .. gateway.free_port())
      assert.are.equal("connection refused", c[1].err)
    end)

    it("reports a read timeout", function()
      local c = calls("port=" .. m.port .. "&read=200&path=/delay/3000")
      assert.are.equal("timeout", c[1].err)
    end)

    it("looks host names up without blocking: one from /etc/hosts", function()
      local name = loopback_name()
      if not name then
        pending("no name other than localhost for 127.0.0.1 in /etc/hosts")
        return
      end
      local c = calls("port=" .. m.port .. "&host=" .. name)
      assert.are.equal(200, c[1].status, cjson.encode(c))
      assert.are.equal(name .. ":" .. m.port, testutil.upstream_value(doc_of(c[1]), "Host"))
    end)

    it("looks host names up without blocking: one that does not exist", function()
      local c = calls("port=" .. m.port .. "&connect=3000&host=no-such-host.invalid")
      -- "host not found", or what a machine without DNS says
      assert.is_truthy(({ ["host not found"] = true, ["temporary failure in name resolution"] = true,
        timeout = true })[c[1].err], cjson.encode(c))
    end)

    it("takes localhost and IP literals as they are", function()
      for _, host in ipairs({ "localhost", "LocalHost", "127.0.0.1" }) do
        local c = calls("port=" .. m.port .. "&host=" .. host)
        assert.are.equal(200, c[1].status, host .. ": " .. cjson.encode(c))
      end
    end)

    it("does not block the worker while it waits", function()
      local slow = assert(http.connect(gw.port))
      assert(slow:request { path = "/http?port=" .. m.port .. "&read=5000&path=/delay/1500" })
      local fast = testutil.request(gw, "/fast", { timeout = 5 })
      assert.are.equal(200, fast.status)
      -- another plugin's call goes through meanwhile too
      local other = calls("port=" .. m.port)
      assert.are.equal(200, other[1].status)
      -- the slow one still waits on its upstream: nothing has come back yet
      assert.is_nil(slow:read_response { timeout = 0.2 }, "the waiting request was answered before the fast one")
      local resp = testutil.read(slow)
      slow:close()
      assert.are.equal(200, resp.status)
      assert.are.equal(200, cjson.decode(resp.body).calls[1].status)
    end)
  end)

  describe("keep-alive", function()
    local function conn_of(call) return doc_of(call).conn end

    it("reuses one connection for two calls", function()
      local before = stats(ka).connections_total
      local c = calls("n=2&port=" .. ka.port)
      assert.is_true(c[2].reused)
      assert.are.equal(conn_of(c[1]), conn_of(c[2]))
      -- at most one new connection from the plugin, and the one for this question
      assert.is_true(stats(ka).connections_total - before <= 2)
    end)

    it("shares the proxy's pool: the connection the proxy left is the plugin's next", function()
      local c = calls("n=1&keepalive=0&port=" .. ka.port) -- drain what earlier tests left
      assert.are.equal(200, c[1].status)
      local proxied = testutil.request(gw, "/ka/echo")
      assert.are.equal(200, proxied.status)
      c = calls("n=1&port=" .. ka.port)
      assert.is_true(c[1].reused, "the plugin did not get the proxy's idle connection")
      assert.are.equal(cjson.decode(proxied.body).conn, conn_of(c[1]))
    end)

    it("honours keepalive = false and a response's Connection: close", function()
      local c = calls("n=2&keepalive=0&port=" .. ka.port)
      assert.is_false(c[2].reused)
      assert.are_not.equal(conn_of(c[1]), conn_of(c[2]))
      assert.are.equal("close", testutil.upstream_value(doc_of(c[1]), "Connection"))
      c = calls("n=2&port=" .. ka.port .. "&path=" .. escape("/headers?name=Connection&value=close"))
      assert.are.equal("close", c[1].connection)
      assert.is_false(c[2].reused)
      assert.are_not.equal(conn_of(c[1]), conn_of(c[2]))
    end)

    it("goes on when a pooled connection was closed by the upstream meanwhile", function()
      local c = calls("n=1&port=" .. ka.port .. "&path=" .. escape("/keepalive-close?after=50"))
      assert.are.equal(200, c[1].status)
      proc.sleep(0.3) -- the mock has closed the idle connection by now
      c = calls("n=1&port=" .. ka.port)
      assert.are.equal(200, c[1].status, cjson.encode(c))
    end)
  end)

  describe("torii.socket", function()
    local function steps(mode)
      local resp = testutil.request(gw, "/raw?port=" .. echo_port .. "&mode=" .. mode, { timeout = 10 })
      assert.are.equal(200, resp.status, resp.body)
      local by = {}
      for _, s in ipairs(cjson.decode(resp.body)) do
        by[s[1]] = by[s[1]] or {}
        table.insert(by[s[1]], { s[2], s[3], s[4] })
      end
      return by
    end

    it("receives lines, byte counts, delimited pieces and all until the close", function()
      local by = steps("script")
      assert.are.same({ 1, false, false }, by.connect[1])
      assert.are.same({ 6, false, false }, by.send[1])
      assert.are.same({ "hello", false, false }, by.line[1])
      assert.are.same({ "abcd", false, false }, by.count4[1])
      assert.are.same({ "efg", false, false }, by.count3[1])
      assert.are.same({ "hij", false, false }, by.rest[1])
      assert.are.same({ "x", false, false }, by.until1[1])
      assert.are.same({ "y", false, false }, by.until2[1])
      assert.are.same({ "z\n", false, false }, by.any[1])
      assert.are.same({ "bye\n", false, false }, by.all[1])
      assert.are.same({ false, "closed", "" }, by.after[1])
      assert.are.same({ 1, false, false }, by.close[1])
      assert.are.same({ false, "closed", false }, by.closed[1])
    end)

    it("times a read out and stays usable", function()
      local by = steps("hold")
      assert.are.same({ false, "timeout", "" }, by.read[1])
      assert.are.same({ "again", false, false }, by.line[1])
    end)

    it("refuses a socket kept past the request that opened it (and closed it then)", function()
      assert.are.same({ 1, false, false }, steps("stash").connect[1])
      local by = steps("stale")
      local closed = "closed (a socket ends with the request or timer callback that opened it)"
      assert.are.same({ false, closed, false }, by.send[1])
      assert.are.same({ false, closed, "" }, by.line[1])
      assert.are.same({ false, closed, false }, by.close[1])
    end)

    it("puts a connection back with setkeepalive and gets it again", function()
      local by = steps("reuse")
      assert.are.same({ 0, false, false }, by.reused[1])
      assert.are.same({ 1, false, false }, by.keepalive[1])
      assert.are.same({ 1, false, false }, by.reused[2])
      -- the server accepted no connection for the second connect
      assert.are.equal(by.line[1][1], "one")
      assert.are.same({ 1, false, false }, by.close[1])
    end)
  end)

  it("works from a torii.timer callback, waiting more than once", function()
    local resp = testutil.request(gw, "/timer?start=1&port=" .. m.port)
    assert.is_true(cjson.decode(resp.body).started)
    local done = testutil.eventually(function()
      local doc = cjson.decode(testutil.request(gw, "/timer").body)
      return doc.second and doc
    end, 5, 0.05)
    assert.is_table(done, "the timer callback did not finish")
    assert.are.equal("timer", done.phase)
    assert.are.equal("200 /echo?from=timer", done.first)
    assert.are.equal("200 /echo?from=timer", done.second)
  end)

  it("refuses to wait in header_filter, body_filter and log, naming the phase", function()
    local mark = gw:log_mark()
    local resp = testutil.request(gw, "/echo?port=" .. m.port)
    assert.are.equal(200, resp.status)
    for _, h in ipairs({ "X-Http-Err", "X-Sock-Err", "X-Sleep-Err" }) do
      assert.matches("cannot wait in header_filter", resp:header(h) or "", 1, true)
    end
    assert.is_truthy(gw:wait_log("waitphases body_filter: .*cannot wait in body_filter", 3, mark))
    assert.is_truthy(gw:wait_log("waitphases log: .*cannot wait in log", 3, mark))
  end)

  it("closes a waiting socket when the client leaves, and goes on", function()
    local m3 = gateway.mock { id = "gone" } -- nothing pooled for it: the plugin opens a new connection
    local worker = gw:workers()[1]
    local base = open_fds(worker)
    local c = assert(http.connect(gw.port))
    assert(c:request { path = "/http?port=" .. m3.port .. "&read=10000&path=/delay/8000" })
    -- the client's connection and the plugin's socket
    assert.is_truthy(testutil.eventually(function() return open_fds(worker) >= base + 2 end, 5),
      "the plugin did not connect")
    c:close()
    -- the socket is closed with its request, long before the upstream answers
    assert.is_truthy(testutil.eventually(function() return open_fds(worker) <= base end, 4),
      "the worker holds more descriptors after its client left")
    local resp = testutil.request(gw, "/fast")
    assert.are.equal(200, resp.status)
    m3.stop()
  end)

  it("leaves no error, leak or sanitizer report behind, even with a timer callback still waiting", function()
    local resp = testutil.request(gw, "/timer?start=1&port=" .. m.port .. "&path=/delay/8000")
    assert.is_true(cjson.decode(resp.body).started)
    assert.is_truthy(testutil.eventually(function()
      return cjson.decode(testutil.request(gw, "/timer").body).phase
    end, 3), "the timer callback did not start")
    assert.is_true(gw:stop())
    gw:assert_clean()
  end)
end)
