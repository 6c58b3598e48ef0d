-- Specs for the test helpers in lua/torii/testing (proc, http, gateway), without the
-- real gateway: responses come from a listening socket inside this process
-- (the bytes are written before the client reads them) or from a small
-- luajit server spawned with proc.spawn; the "gateway" is a fake script.

local proc = require "torii.testing.proc"
local http = require "torii.testing.http"
local gateway = require "torii.testing.gateway"
local socket = require "socket"
local cjson = require "cjson"

-- A client connection and the server side of it.
local function pair()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  srv:settimeout(2)
  local conn = assert(http.connect(tonumber(port), { timeout = 2 }))
  local peer = assert(srv:accept())
  srv:close()
  peer:settimeout(2)
  return conn, peer
end

local function elapsed(fn)
  local t0 = proc.now()
  local a, b, c = fn()
  return proc.now() - t0, a, b, c
end

describe("http response reader", function()
  local conn, peer
  before_each(function() conn, peer = pair() end)
  after_each(function()
    conn:close()
    peer:close()
  end)

  it("reads Content-Length bodies, keeping header order and case", function()
    local head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    peer:send(head .. "hello" .. "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
    local r, err = conn:read_response()
    assert.is_nil(err)
    assert.same({ 200, "OK", "1.1", "hello", "content-length" },
      { r.status, r.reason, r.version, r.body, r.framing })
    assert.same({ { "Content-Length", "5" }, { "X-A", "1" }, { "x-a", "2" } }, r.headers)
    assert.equal("1, 2", r:header("x-A"))
    assert.equal("1, 2", r.h["x-a"])
    assert.equal(2, r:count("X-a"))
    assert.equal(0, r:count("nope"))
    assert.equal(head, r.raw_head)
    assert.same({}, r.interim)
    local r2 = assert(conn:read_response())
    assert.equal(404, r2.status)
    assert.equal("", r2.body)
  end)

  it("decodes chunked bodies with extensions and trailers", function()
    peer:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\nX-Sum: def\r\n\r\n")
    local r = assert(conn:read_response())
    assert.equal("chunked", r.framing)
    assert.equal("hello world", r.body)
    assert.same({ 5, 6 }, r.chunks)
    assert.same({ ";ext=1" }, r.chunk_exts)
    assert.same({ { "X-Sum", "abc" }, { "X-Sum", "def" } }, r.trailers)
    assert.equal("abc, def", r:trailer("x-sum"))
    assert.equal("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\nX-Sum: def\r\n\r\n", r.raw_body)
  end)

  it("reads close-delimited bodies to EOF", function()
    peer:send("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nsome body")
    peer:close()
    local r, err = conn:read_response()
    assert.is_nil(err)
    assert.equal("close", r.framing)
    assert.equal("1.0", r.version)
    assert.equal("some body", r.body)
    assert.is_true(conn:closed(0.1))
  end)

  it("reads no body for HEAD, 204 and 304", function()
    assert(conn:request { method = "HEAD", path = "/" })
    assert(conn:request { path = "/2" })
    assert(conn:request { path = "/3" })
    peer:send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
      .. "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"
      .. "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
      .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    for _, status in ipairs({ 200, 204, 304 }) do
      local r = assert(conn:read_response())
      assert.equal(status, r.status)
      assert.equal("none", r.framing)
      assert.equal("", r.body)
    end
    local last = assert(conn:read_response())
    assert.equal("ok", last.body)
  end)

  it("collects 1xx interim responses, and returns 101", function()
    peer:send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      .. "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
      .. "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nRAW")
    local r = assert(conn:read_response())
    assert.equal(200, r.status)
    assert.equal(2, #r.interim)
    assert.equal(100, r.interim[1].status)
    assert.equal(103, r.interim[2].status)
    assert.equal("</a>", r.interim[2]:header("link"))
    local up = assert(conn:read_response())
    assert.equal(101, up.status)
    assert.equal("", up.body)
    assert.equal("RAW", conn:read_raw(nil, 1))
  end)

  it("flags bodies cut short by close", function()
    peer:send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    peer:close()
    local r, err = conn:read_response()
    assert.equal("closed", err)
    assert.is_true(r.incomplete)
    assert.equal("closed", r.error)
    assert.equal("abc", r.body)
  end)

  it("flags chunked bodies cut short", function()
    peer:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
    peer:close()
    local r, err = conn:read_response()
    assert.equal("closed", err)
    assert.is_true(r.incomplete)
    assert.equal("hel", r.body)
  end)

  it("bounds waits: timeouts before and in the body", function()
    local t, r, err = elapsed(function() return conn:read_response { timeout = 0.1 } end)
    assert.is_nil(r)
    assert.equal("timeout", err)
    assert.is_true(t < 1)
    peer:send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
    r, err = conn:read_response { timeout = 0.1 }
    assert.equal("timeout", err)
    assert.is_true(r.incomplete)
    assert.equal("ab", r.body)
  end)

  it("returns closed when nothing was sent", function()
    peer:close()
    local r, err = conn:read_response()
    assert.is_nil(r)
    assert.equal("closed", err)
  end)

  it("reports parse errors", function()
    peer:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx")
    local r, err = conn:read_response()
    assert.is_nil(r)
    assert.matches("^parse error", err)
    local c2, p2 = pair()
    p2:send("HTTX/1.1 200 OK\r\n\r\n")
    r, err = c2:read_response()
    assert.is_nil(r)
    assert.matches("^parse error: bad status line", err)
    c2:close()
    p2:close()
  end)

  it("reads raw bytes, exact or available", function()
    peer:send("abcdef")
    assert.equal("abc", conn:read_raw(3))
    assert.equal("def", conn:read_raw())
    local data, err = conn:read_raw(nil, 0.05)
    assert.is_nil(data)
    assert.equal("timeout", err)
    assert.is_false(conn:closed(0.05))
  end)
end)

describe("http request writer", function()
  local conn, peer
  before_each(function() conn, peer = pair() end)
  after_each(function()
    conn:close()
    peer:close()
  end)

  it("sends Host and Content-Length, headers in order", function()
    assert(conn:request { method = "POST", path = "/p?q=1",
      headers = { { "X-B", "1" }, { "x-b", "2" } }, body = "abc" })
    local want = "POST /p?q=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-B: 1\r\nx-b: 2\r\n"
      .. "Content-Length: 3\r\n\r\nabc"
    assert.equal(want, peer:receive(#want))
  end)

  it("sends chunked bodies with trailers, map headers sorted, no Host for 1.0", function()
    assert(conn:request { path = "/c", headers = { B = "2", A = "1" },
      chunked = { "hello", "", "world!" }, trailers = { { "T", "v" } } })
    local want = "GET /c HTTP/1.1\r\nHost: 127.0.0.1\r\nA: 1\r\nB: 2\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\nT: v\r\n\r\n"
    assert.equal(want, peer:receive(#want))
    assert(conn:request { version = "1.0", headers = { { "Content-Length", "2" } }, body = "xy" })
    want = "GET / HTTP/1.0\r\nContent-Length: 2\r\n\r\nxy"
    assert.equal(want, peer:receive(#want))
  end)

  it("half-closes, and resets", function()
    assert(conn:shutdown_write())
    local _, err = peer:receive("*a")
    assert.equal("closed", err)
    peer:send("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")
    assert.equal("z", assert(conn:read_response()).body)
    local c2, p2 = pair()
    c2:reset()
    local data, err2 = p2:receive(1)
    assert.is_nil(data)
    assert.not_equal("timeout", err2)
    p2:close()
  end)

  it("refuses hosts other than loopback", function()
    local c, err = http.connect(80, { host = "192.0.2.1" })
    assert.is_nil(c)
    assert.matches("only", err)
  end)
end)

-- A server in a second process, sending its response a few bytes at a time.
local SERVER = [[
local socket = require "socket"
local port, out = tonumber(arg[1]), arg[2]
local srv = assert(socket.bind("127.0.0.1", port))
srv:settimeout(5)
local f = io.open(out, "w"); f:write("ready\n"); f:close()
local c = srv:accept()
if not c then os.exit(1) end
c:settimeout(2)
repeat local line = c:receive("*l") until not line or line == ""
local resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Env: " .. os.getenv("SRV_ENV")
  .. "\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\nTr: 1\r\n\r\n"
for i = 1, #resp, 3 do c:send(resp:sub(i, i + 2)); socket.sleep(0.002) end
c:close()
]]

describe("http against a spawned server", function()
  it("parses a response that arrives in small pieces", function()
    local dir = gateway.tmpdir()
    local port = gateway.free_port()
    local pid = assert(proc.spawn({ "luajit", "-e", SERVER, "-", tostring(port), dir .. "/out" },
      { stdout = dir .. "/out", stderr = dir .. "/err", env = { SRV_ENV = "yes" } }))
    finally(function()
      proc.stop(pid, 1)
      gateway.rmdir(dir)
    end)
    local deadline = proc.now() + 5
    while not (proc.read_file(dir .. "/out") or ""):find("ready") and proc.now() < deadline do
      proc.sleep(0.01)
    end
    local r, err = http.get(port, "/x")
    assert.is_nil(err, (proc.read_file(dir .. "/err")))
    assert.equal("abcdefg", r.body)
    assert.equal("yes", r:header("X-Env"))
    assert.equal("1", r:trailer("tr"))
    local ok, info = proc.wait(pid, 2)
    assert.is_true(ok)
    assert.equal(0, info.code)
  end)
end)

describe("proc", function()
  it("spawns, inspects and kills sleep 30", function()
    local pid = assert(proc.spawn({ "sleep", "30" }))
    finally(function() if proc.alive(pid) then proc.kill(pid, "KILL"); proc.wait(pid, 1) end end)
    assert.is_true(proc.alive(pid))
    assert.truthy(proc.rss_kb(pid) > 0)
    local found = false
    for _, c in ipairs(proc.children(proc.own_pid)) do found = found or c == pid end
    assert.is_true(found)
    assert.is_false((proc.wait(pid, 0.05)))
    assert.is_true(proc.kill(pid, "TERM"))
    local ok, info = proc.wait(pid, 2)
    assert.is_true(ok)
    assert.equal(15, info.signal)
    assert.is_false(proc.alive(pid))
    local _, err = proc.kill(pid, 0)
    assert.equal("no such process", err)
  end)

  it("stops with TERM, and reports exit codes, output and env", function()
    local pid = assert(proc.spawn({ "sleep", "30" }))
    local ok, info = proc.stop(pid, 2)
    assert.is_true(ok)
    assert.equal(15, info.signal)
    local dir = gateway.tmpdir()
    finally(function() gateway.rmdir(dir) end)
    local out = dir .. "/out"
    pid = assert(proc.spawn({ "sh", "-c", "echo $FOO; echo err >&2; exit 3" },
      { stdout = out, stderr = out, env = { FOO = "bar" } }))
    ok, info = proc.wait(pid, 5)
    assert.is_true(ok)
    assert.equal(3, info.code)
    assert.equal("bar\nerr\n", proc.read_file(out))
    local nope, err = proc.spawn({ "/nonexistent/binary" })
    assert.is_nil(nope)
    assert.matches("No such file", err)
  end)

  it("finds grandchildren", function()
    local pid = assert(proc.spawn({ "sh", "-c", "sleep 30 & wait" }))
    local kids = {}
    local deadline = proc.now() + 3
    while #kids == 0 and proc.now() < deadline do
      kids = proc.children(pid)
      proc.sleep(0.01)
    end
    finally(function()
      for _, k in ipairs(kids) do proc.kill(k, "KILL") end
      proc.stop(pid, 1)
    end)
    assert.equal(1, #kids)
    assert.same(kids, proc.descendants(pid))
    assert.is_true(proc.alive(kids[1]))
    assert.is_true(proc.kill(kids[1], 9))
    local ok = proc.wait(kids[1], 2)
    assert.is_true(ok)
  end)

  it("refuses dangerous pids and unknown signals", function()
    assert.has_error(function() proc.kill(0, "TERM") end)
    assert.has_error(function() proc.kill(-1, "TERM") end)
    assert.has_error(function() proc.kill(proc.own_pid, "TERM") end)
    assert.has_error(function() proc.signum("NOPE") end)
    assert.equal(3, proc.signum("SIGQUIT"))
  end)

  it("sleeps and measures time", function()
    local t = elapsed(function() proc.sleep(0.02) end)
    assert.is_true(t >= 0.019 and t < 0.5)
  end)
end)

-- A stand-in for torii and mock-upstream: serves "fake" on its port, logs,
-- starts one worker (sleep), and writes what FAKE_* variables ask for.
local FAKE = [[
package.path = os.getenv("FAKE_LIB") .. "/?.lua;" .. package.path
local socket, cjson, proc = require "socket", require "cjson", require "torii.testing.proc"
local a, prefix, conf, listen = arg, nil, nil, nil
for i = 1, #a do
  if a[i] == "-p" then prefix = a[i + 1] elseif a[i] == "-c" then conf = a[i + 1]
  elseif a[i] == "--listen" then listen = a[i + 1] end
end
if os.getenv("FAKE_FAIL") then io.stderr:write("boom\n") os.exit(1) end
if os.getenv("FAKE_SAN") then io.stderr:write("==1==ERROR: AddressSanitizer: x\n") end
if conf then
  local f = io.open(conf) local cfg = cjson.decode(f:read("*a")) f:close()
  listen = cfg.listen[1]
  local log = io.open(prefix .. "/" .. cfg.log.error, "a")
  log:write("2026/11/22 08:53:24 [notice] 1#0: started\n")
  if cfg.fake_error then log:write("2026/11/22 08:53:24 [error] 1#1: " .. cfg.fake_error .. "\n") end
  log:close()
  proc.spawn({ "sleep", "30" })
end
local srv = assert(socket.bind("127.0.0.1", tonumber(listen:match("(%d+)$"))))
srv:settimeout(0.2)
local t0 = socket.gettime()
while socket.gettime() - t0 < 20 do
  local c = srv:accept()
  if c then
    c:settimeout(1)
    local line = c:receive("*l")
    if line then
      repeat line = c:receive("*l") until not line or line == ""
      c:send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfake")
    end
    c:close()
  end
end
]]

describe("gateway helpers", function()
  local dir, bin
  setup(function()
    dir = gateway.tmpdir()
    local f = assert(io.open(dir .. "/fake.lua", "w"))
    f:write(FAKE)
    f:close()
    bin = dir .. "/fake"
    f = assert(io.open(bin, "w"))
    f:write("#!/bin/sh\nexec luajit " .. dir .. "/fake.lua \"$@\"\n")
    f:close()
    os.execute("chmod +x " .. bin)
  end)
  teardown(function()
    gateway.cleanup_all()
    gateway.rmdir(dir)
  end)

  local function env(extra)
    local e = { FAKE_LIB = gateway.root .. "/lua" }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("hands out distinct free ports", function()
    local seen = {}
    for _ = 1, 50 do
      local p = gateway.free_port()
      assert.is_nil(seen[p])
      seen[p] = true
      local s = assert(socket.bind("127.0.0.1", p))
      s:close()
    end
  end)

  it("makes and removes temporary directories", function()
    local a, b = gateway.tmpdir(), gateway.tmpdir()
    assert.not_equal(a, b)
    assert.matches("^/tmp/torii%-test%-", a)
    local f = assert(io.open(a .. "/x", "w"))
    f:close()
    gateway.rmdir(a)
    gateway.rmdir(b)
    assert.is_nil(io.open(a .. "/x"))
    assert.has_error(function() gateway.rmdir("/etc") end)
  end)

  it("starts, inspects, checks and stops a gateway", function()
    local gw = gateway.start { bin = bin, env = env(), config = { routes = gateway.empty_array },
      extra_files = { ["conf.d/a.yaml"] = "routes: []\n" } }
    local cfg = cjson.decode(proc.read_file(gw.conf_path))
    assert.same({ "127.0.0.1:" .. gw.port }, cfg.listen)
    assert.equal(1, cfg.workers)
    assert.equal("[]", proc.read_file(gw.conf_path):match('"routes":(%[%])'))
    assert.equal("routes: []\n", proc.read_file(gw.prefix .. "/conf/conf.d/a.yaml"))
    assert.equal("fake", assert(http.get(gw.port, "/")).body)
    assert.truthy(gw:wait_log("%[notice%].*started", 2))
    assert.is_nil((gw:wait_log("never", 0.05)))
    local workers = gw:workers()
    assert.equal(1, #workers)
    assert.is_true(gw:assert_clean())
    assert.same({}, gw:access_log())
    local ok, info = gw:stop(2)
    assert.is_true(ok)
    assert.equal(15, info.signal)
    assert.is_true(gw:stop())
    assert.is_false(proc.alive(workers[1]))
    gw:cleanup()
    assert.is_nil(io.open(gw.conf_path))
  end)

  it("fails assert_clean on error lines and sanitizer reports", function()
    local gw = gateway.start { bin = bin, env = env { FAKE_SAN = "1" },
      config = { fake_error = "upstream exploded" } }
    finally(function() gw:cleanup() end)
    local ok, err = pcall(gw.assert_clean, gw, { "upstream exploded" })
    assert.is_false(ok)
    assert.matches("AddressSanitizer", tostring(err))
    ok, err = pcall(gw.assert_clean, gw)
    assert.is_false(ok)
    assert.matches("upstream exploded", tostring(err))
  end)

  it("reports a gateway that dies at startup", function()
    local ok, err = pcall(gateway.start, { bin = bin, env = env { FAKE_FAIL = "1" }, config = {} })
    assert.is_false(ok)
    assert.matches("exit code 1", err)
    assert.matches("boom", err)
  end)

  it("runs mocks and checks their stderr", function()
    local m = gateway.mock { bin = bin, env = env(), id = "a" }
    assert.equal("fake", assert(http.get(m.port, "/")).body)
    local clean, text = m:stop()
    assert.is_true(clean)
    assert.equal("", text)
    m = gateway.mock { bin = bin, env = env { FAKE_SAN = "1" } }
    clean = m.stop { assert = false }
    assert.is_false(clean)
    assert.has_error(function() m.stop() end)
  end)

  it("runs the CLI with a bound", function()
    local code, out, err = gateway.run_cli({ "-c", "echo out; echo err >&2; exit 7" }, { bin = "sh" })
    assert.equal(7, code)
    assert.equal("out\n", out)
    assert.equal("err\n", err)
  end)

  it("leaves no process behind", function()
    gateway.cleanup_all()
    for _, pid in ipairs(proc.spawned()) do
      assert.is_false(proc.alive(pid), "still running: " .. pid)
    end
  end)
end)
