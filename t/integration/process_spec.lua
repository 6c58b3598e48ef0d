-- Integration specs: torii's processes (master, workers, signals, pid file,
-- listening sockets). Every wait is bounded; everything started is stopped.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local socket = require "socket"
local testutil = require "testutil"

local function route(mock_port, extra)
  local r = { id = "echo", uri = "/*", upstream = { nodes = { "127.0.0.1:" .. mock_port } } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- Poll fn() until it returns a truthy value or timeout (s) passes.
local eventually = testutil.eventually

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local file_exists = testutil.file_exists

local write_file = testutil.write_file

-- Lines of a file (empty list when missing).
local function lines_of(path)
  local out = {}
  for line in (proc.read_file(path) or ""):gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function get_ok(port, path, opts)
  local resp, err = http.get(port, path or "/echo", opts)
  assert.is_not_nil(resp, "request failed: " .. tostring(err))
  assert.are.equal(200, resp.status)
  return resp
end

-- A TCP connect to host:port that is refused (or fails) within timeout.
local function connect_refused(port, host)
  local conn, err = http.connect(port, { host = host or "127.0.0.1", timeout = 1 })
  if conn then
    conn:close()
    return false, "connected"
  end
  return true, err
end

local function ipv6_loopback_available()
  local s = socket.tcp6 and socket.tcp6()
  if not s then return false end
  local ok = s:bind("::1", 0)
  s:close()
  return ok == 1 or ok == true
end

describe("torii processes", function()
  local mock

  before_each(function()
    mock = gateway.mock { id = "m1" }
  end)

  after_each(function()
    gateway.cleanup_all()
  end)

  it("starts `workers: 2` worker processes, children of the master, that serve requests", function()
    local gw = gateway.start { config = { workers = 2, routes = { route(mock.port) } } }
    local workers = eventually(function()
      local w = gw:workers()
      return #w == 2 and w
    end, 5)
    assert.is_truthy(workers, "expected 2 workers, got " .. #gw:workers())
    for _, pid in ipairs(workers) do
      local _, ppid = proc.stat(pid)
      assert.are.equal(gw.pid, ppid)
    end
    assert.is_truthy(gw:wait_log("%[info%] %d+#1: worker 1 started", 5))
    assert.is_truthy(gw:wait_log("%[info%] %d+#2: worker 2 started", 5))
    -- the master's notice line: `YYYY/MM/DD HH:MM:SS [notice] PID#0: ...`
    local started = gw:wait_log("%[notice%] " .. gw.pid .. "#0: torii .* started", 5)
    assert.is_truthy(started, gw:error_log())
    assert.is_truthy(started:match("^%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d %[notice%] " .. gw.pid .. "#0: "),
      started)

    for i = 1, 20 do
      local resp = get_ok(gw.port, "/echo?n=" .. i)
      assert.are.equal("m1", resp.h["x-upstream-id"])
      assert.are.equal("/echo?n=" .. i, cjson.decode(resp.body).target)
    end
    -- still exactly two workers, the same ones
    assert.are.same(workers, gw:workers())
    gw:assert_clean()
  end)

  it("restarts a worker killed with SIGKILL, logs it, and keeps serving", function()
    local gw = gateway.start { config = { workers = 2, routes = { route(mock.port) } } }
    local before = eventually(function()
      local w = gw:workers()
      return #w == 2 and w
    end, 5)
    assert.is_truthy(before)
    get_ok(gw.port)
    local victim = before[1]
    assert.is_true(proc.kill(victim, "KILL"))

    local after = eventually(function()
      local w = gw:workers()
      if #w ~= 2 then return nil end
      local s = set_of(w)
      if s[victim] then return nil end
      return w
    end, 5)
    assert.is_truthy(after, "no replacement worker within 5 s; workers: "
      .. table.concat(gw:workers(), ","))
    local s = set_of(after)
    assert.is_true(s[before[2]] == true, "the other worker should be untouched")

    local pat = "%[error%] " .. gw.pid .. "#0: worker %d %(pid " .. victim
      .. "%) was killed by signal 9 %(Killed%); restarting it"
    assert.is_truthy(gw:wait_log(pat, 5), gw:error_log())

    for i = 1, 10 do
      local resp = get_ok(gw.port, "/echo?after=" .. i)
      assert.are.equal("m1", resp.h["x-upstream-id"])
    end
    gw:assert_clean({ "was killed by signal 9" })
  end)

  it("`-s quit` drains: in-flight request completes with Connection: close, idle keep-alive closed, "
    .. "new connections refused, exit 0, pid file removed", function()
    local gw = gateway.start { config = { workers = 1, routes = { route(mock.port) } } }
    local pidfile = gw.prefix .. "/logs/torii.pid"
    assert.is_truthy(eventually(function() return file_exists(pidfile) end, 5), "no pid file")
    assert.are.equal(tostring(gw.pid), (proc.read_file(pidfile) or ""):match("%d+"))

    -- an idle keep-alive connection
    local idle = assert(http.connect(gw.port))
    assert(idle:request { path = "/echo" })
    local r0 = assert(idle:read_response())
    assert.are.equal(200, r0.status)
    assert.is_nil(r0.h["connection"])

    -- a slow request in flight
    local slow = assert(http.connect(gw.port))
    assert(slow:request { path = "/delay/1000" })
    proc.sleep(0.2) -- it reached the upstream, which is sleeping

    local t0 = proc.now()
    local code, out, err = gw:cli({ "-s", "quit" })
    assert.are.equal(0, code, "torii -s quit: " .. out .. err)

    -- the idle keep-alive connection is closed by torii, well before the slow one ends
    assert.is_true(idle:closed(0.7), "idle keep-alive connection not closed after quit")
    idle:close()

    -- new connections are refused while the slow request drains
    local refused = eventually(function() return (connect_refused(gw.port)) end, 0.5, 0.05)
    assert.is_truthy(refused, "new connections still accepted after -s quit")
    assert.is_true(proc.alive(gw.pid), "master should still be draining")

    local resp, rerr = slow:read_response { timeout = 5 }
    assert.is_not_nil(resp, "in-flight request failed: " .. tostring(rerr))
    assert.are.equal(200, resp.status)
    assert.are.equal("close", (resp.h["connection"] or ""):lower())
    assert.are.equal("/delay/1000", cjson.decode(resp.body).target)
    assert.is_true(slow:closed(2))
    slow:close()

    local exited, info = proc.wait(gw.pid, 5)
    assert.is_true(exited, "master still running 5 s after the drain")
    assert.are.equal(0, info.code, proc.describe(info))
    assert.is_true(proc.now() - t0 < 4)
    assert.is_false(file_exists(pidfile), "pid file not removed")
    gw:assert_clean()
  end)

  it("`-s stop` exits promptly even with a slow request in flight", function()
    local gw = gateway.start { config = { workers = 2, routes = { route(mock.port) } } }
    local workers = eventually(function()
      local w = gw:workers()
      return #w == 2 and w
    end, 5)
    assert.is_truthy(workers)
    local slow = assert(http.connect(gw.port))
    assert(slow:request { path = "/delay/3000" })
    proc.sleep(0.2)
    local t0 = proc.now()
    local code, out, err = gw:cli({ "-s", "stop" })
    assert.are.equal(0, code, out .. err)
    local exited, info = proc.wait(gw.pid, 2)
    assert.is_true(exited, "master still running 2 s after -s stop")
    assert.is_true(proc.now() - t0 < 2)
    assert.are.equal(0, info.code, proc.describe(info))
    for _, pid in ipairs(workers) do
      assert.is_truthy(eventually(function() return not proc.alive(pid) end, 1), "worker survived")
    end
    -- the in-flight request was not answered with a 200
    local resp = slow:read_response { timeout = 1 }
    assert.is_true(resp == nil or resp.status ~= 200)
    slow:close()
    assert.is_true(connect_refused(gw.port))
    gw:assert_clean()
  end)

  it("a second torii with the same prefix and config refuses to start (already running)", function()
    local gw = gateway.start { config = { workers = 1, routes = { route(mock.port) } } }
    local code, out, err = gw:cli({}, { timeout = 10 })
    assert.are.equal(1, code, out .. err)
    assert.is_truthy(err:find("already running", 1, true), "stderr: " .. err)
    assert.is_truthy(err:find(tostring(gw.pid), 1, true), "stderr should name the running pid: " .. err)
    -- the running one is untouched
    assert.is_true(proc.alive(gw.pid))
    get_ok(gw.port)
    assert.are.equal(tostring(gw.pid), (proc.read_file(gw.prefix .. "/logs/torii.pid") or ""):match("%d+"))
    -- the refusal may be logged, but nothing else went wrong
    gw:assert_clean({ "torii is already running with pid " .. gw.pid })
  end)

  it("a second torii with the same prefix on another port refuses to start (already running)", function()
    local gw = gateway.start { config = { workers = 1, routes = { route(mock.port) } } }
    local other = gateway.free_port()
    local conf2 = gw.prefix .. "/conf/second.yaml"
    write_file(conf2, "listen: 127.0.0.1:" .. other .. "\nworkers: 1\n")
    local code, out, err = gateway.run_cli({ "-p", gw.prefix, "-c", conf2 }, { timeout = 10 })
    assert.are.equal(1, code, out .. err)
    assert.is_truthy(err:find("already running", 1, true), "stderr: " .. err)
    assert.is_false(gateway.port_open(other))
    assert.is_true(proc.alive(gw.pid))
    get_ok(gw.port)
    assert.are.equal(tostring(gw.pid), (proc.read_file(gw.prefix .. "/logs/torii.pid") or ""):match("%d+"))
    gw:assert_clean({ "torii is already running with pid " .. gw.pid })
  end)

  it("exits 1 with a clear message when the port is already in use", function()
    local port = gateway.free_port()
    local holder = assert(socket.tcp())
    assert(holder:bind("127.0.0.1", port))
    assert(holder:listen(8))
    local dir = gateway.tmpdir()
    proc.mkdir_p(dir .. "/conf")
    write_file(dir .. "/conf/torii.yaml", "listen: 127.0.0.1:" .. port .. "\nworkers: 1\n")
    local ok, e = pcall(function()
      local code, out, err = gateway.run_cli({ "-p", dir }, { timeout = 10 })
      assert.are.equal(1, code, "stdout: " .. out .. "\nstderr: " .. err)
      assert.is_truthy(err:find("127.0.0.1:" .. port, 1, true), "stderr: " .. err)
      assert.is_truthy(err:find("Address already in use", 1, true), "stderr: " .. err)
      assert.is_false(file_exists(dir .. "/logs/torii.pid"), "pid file left behind")
    end)
    holder:close()
    gateway.rmdir(dir)
    if not ok then error(e, 0) end
  end)

  it("listens on several addresses at once, including [::1]", function()
    local p1, p2 = gateway.free_port(), gateway.free_port()
    local v6 = ipv6_loopback_available()
    local p3 = v6 and gateway.free_port() or nil
    local listen = { "127.0.0.1:" .. p1, "127.0.0.1:" .. p2 }
    if v6 then listen[#listen + 1] = "[::1]:" .. p3 end
    local gw = gateway.start { config = { workers = 1, listen = listen, routes = { route(mock.port) } } }
    assert.are.equal("/on1", cjson.decode(get_ok(p1, "/on1").body).target)
    assert.are.equal("/on2", cjson.decode(get_ok(p2, "/on2").body).target)
    if v6 then
      local resp = get_ok(p3, "/on3", { host = "::1" })
      assert.are.equal("/on3", cjson.decode(resp.body).target)
      -- the access log shows the IPv6 peer
      local line = eventually(function()
        for _, l in ipairs(gw:access_log()) do
          if l:find('"GET /on3 ', 1, true) then return l end
        end
      end, 3)
      assert.is_truthy(line, "no access log line for /on3")
      assert.is_truthy(line:match("^::1 "), line)
      -- IPv4 loopback is not served on the IPv6-only port
      assert.is_true(connect_refused(p3))
    else
      print("(IPv6 loopback ::1 unavailable: IPv6 part skipped)")
    end
    gw:assert_clean()
  end)

  it("workers exit when the master is killed with SIGKILL", function()
    local gw = gateway.start { config = { workers = 2, routes = { route(mock.port) } } }
    local workers = eventually(function()
      local w = gw:workers()
      return #w == 2 and w
    end, 5)
    assert.is_truthy(workers)
    get_ok(gw.port)
    assert.is_true(proc.kill(gw.pid, "KILL"))
    assert.is_true((proc.wait(gw.pid, 2)))
    local gone = eventually(function()
      for _, pid in ipairs(workers) do
        if proc.alive(pid) then return false end
      end
      return true
    end, 3)
    -- never leave orphans behind, whatever happened
    for _, pid in ipairs(workers) do
      if proc.alive(pid) then proc.kill(pid, "KILL") end
    end
    assert.is_truthy(gone, "workers still alive 3 s after the master died")
    assert.is_true(connect_refused(gw.port))
    gw:assert_clean()
  end)

  it("SIGUSR1 reopens the logs: after a rename, new lines go to a new file", function()
    local gw = gateway.start { config = { workers = 2, routes = { route(mock.port) } } }
    local access = gw.prefix .. "/logs/access.log"
    get_ok(gw.port, "/before-rotate")
    assert.is_truthy(eventually(function() return #lines_of(access) == 1 end, 3), "no access line")
    assert.is_true(os.rename(access, access .. ".1"))
    assert.is_true(os.rename(gw.error_log_path, gw.error_log_path .. ".1"))
    assert.is_true(gw:signal("USR1"))
    -- the reopen is asynchronous: wait until the new file exists
    assert.is_truthy(eventually(function() return file_exists(access) end, 3),
      "access.log not recreated after USR1")
    assert.is_truthy(eventually(function() return file_exists(gw.error_log_path) end, 3),
      "error.log not recreated after USR1")
    proc.sleep(0.1) -- both workers have handled the signal
    for i = 1, 4 do get_ok(gw.port, "/after-rotate-" .. i) end
    local new = eventually(function()
      local l = lines_of(access)
      return #l == 4 and l
    end, 3)
    assert.is_truthy(new, "expected 4 lines in the new access.log, got " .. #lines_of(access))
    for i = 1, 4 do
      local found = false
      for _, l in ipairs(new) do found = found or l:find('"GET /after-rotate-' .. i .. " ", 1, true) ~= nil end
      assert.is_true(found, "missing /after-rotate-" .. i)
    end
    local old = lines_of(access .. ".1")
    assert.are.equal(1, #old)
    assert.is_truthy(old[1]:find('"GET /before-rotate ', 1, true))
    -- the error log also goes to the new file: stop writes its lines there
    assert.is_true((gw:stop(5)))
    local elog = proc.read_file(gw.error_log_path) or ""
    assert.is_truthy(elog:find("torii stopped", 1, true), elog)
    local old_elog = proc.read_file(gw.error_log_path .. ".1") or ""
    assert.is_nil(old_elog:find("torii stopped", 1, true))
    gw:assert_clean()
    assert.are.same({}, gateway.sanitizer_report(old_elog))
  end)
end)
