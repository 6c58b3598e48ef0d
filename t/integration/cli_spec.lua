-- Integration specs: torii's command line (-h/--help, -v, -t, -s, -p, -c).

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local write_file = testutil.write_file

local file_exists = testutil.file_exists

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local eventually = testutil.eventually

local tmpdirs, spawned = {}, {}

-- The binary as an absolute path (TORII_BIN may be relative to the repository root).
local function bin()
  local b = gateway.bin()
  if b:sub(1, 1) ~= "/" then b = (proc.getcwd() or gateway.root) .. "/" .. b end
  return b
end

local function tmpdir()
  local d = gateway.tmpdir()
  tmpdirs[#tmpdirs + 1] = d
  return d
end

-- Run torii with args from directory cwd (bounded): code, stdout, stderr.
local function run_in(cwd, args, timeout)
  local out = tmpdir()
  local parts = { "cd", q(cwd), "&&", "timeout", "-k", "5", tostring(timeout or 10), q(bin()) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " </dev/null >" .. q(out .. "/o") .. " 2>" .. q(out .. "/e") .. "; echo $?"
  local p = assert(io.popen(cmd, "r"))
  local status = p:read("*a")
  p:close()
  return tonumber(status:match("(%d+)%s*$")), proc.read_file(out .. "/o") or "", proc.read_file(out .. "/e") or ""
end

-- Start torii in the foreground from cwd with args; waits for port.
local function start_in(cwd, args, port)
  local logdir = tmpdir()
  local cmd = { "cd " .. q(cwd) .. " && exec " .. q(bin()) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  local pid = assert(proc.spawn({ "/bin/sh", "-c", table.concat(cmd, " ") },
    { stdout = logdir .. "/stdout", stderr = logdir .. "/stderr" }))
  spawned[#spawned + 1] = pid
  local up = eventually(function()
    return gateway.port_open(port) or not proc.alive(pid)
  end, 10)
  assert.is_truthy(up and proc.alive(pid),
    "torii did not start: " .. (proc.read_file(logdir .. "/stderr") or ""))
  return pid, logdir
end

local function stop_all()
  for _, pid in ipairs(spawned) do
    local tree = proc.descendants(pid)
    proc.stop(pid, 5)
    for _, c in ipairs(tree) do
      if proc.alive(c) then proc.kill(c, "KILL") end
    end
  end
  spawned = {}
end

-- A minimal config text.
local function conf_text(port, extra)
  return "listen: 127.0.0.1:" .. port .. "\nworkers: 1\n" .. (extra or "")
end

-- After a spawned torii exited: no sanitizer report in its stderr.
local function assert_no_sanitizer(logdir)
  local text = proc.read_file(logdir .. "/stderr") or ""
  assert.are.same({}, gateway.sanitizer_report(text), text)
end

local function has_error_lines(text)
  for line in text:gmatch("[^\n]+") do
    local level = line:match("^[%d/: ]*%[(%a+)%]")
    if level == "error" or level == "crit" or level == "alert" or level == "emerg" then return line end
  end
  return nil
end

describe("torii command line", function()
  after_each(function()
    stop_all()
    gateway.cleanup_all()
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
    tmpdirs = {}
  end)

  it("--help prints the usage on stdout and exits 0", function()
    local code, out, err = gateway.run_cli({ "--help" })
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.is_truthy(out:find("^Usage: torii "), out)
    for _, opt in ipairs({ "-c FILE", "-p PREFIX", "-t", "-s", "quit", "stop", "reload", "-v", "--help" }) do
      assert.is_truthy(out:find(opt, 1, true), "usage should mention " .. opt .. ":\n" .. out)
    end
  end)

  it("-h is the same as --help", function()
    local code, out, err = gateway.run_cli({ "-h" })
    local _, out2 = gateway.run_cli({ "--help" })
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.are.equal(out2, out)
  end)

  it("-v prints the version and exits 0", function()
    local code, out, err = gateway.run_cli({ "-v" })
    assert.are.equal(0, code)
    assert.are.equal("", err)
    assert.is_truthy(out:match("^torii %d+%.%d+%.%d+[%w%.%-+]*\n$"), out)
  end)

  it("an unknown option exits 2 with the usage on stderr", function()
    for _, opt in ipairs({ "--bogus", "-x" }) do
      local code, out, err = gateway.run_cli({ opt })
      assert.are.equal(2, code, opt)
      assert.are.equal("", out)
      assert.is_truthy(err:find(opt:gsub("^%-+", ""), 1, true), "stderr should name " .. opt .. ": " .. err)
      assert.is_truthy(err:find("Usage: torii", 1, true), err)
    end
  end)

  it("-t reports success (exit 0) without starting anything", function()
    local dir = tmpdir()
    local port = gateway.free_port()
    write_file(dir .. "/conf/torii.yaml", conf_text(port))
    local code, out, err = gateway.run_cli({ "-p", dir, "-t" })
    assert.are.equal(0, code, err)
    assert.are.equal("torii: configuration file " .. dir .. "/conf/torii.yaml test is successful\n", out)
    assert.are.equal("", err)
    assert.is_false(gateway.port_open(port))
    assert.is_false(file_exists(dir .. "/logs/torii.pid"))
  end)

  it("-t reports failure (exit 1) with the error and the 'test failed' line", function()
    local dir = tmpdir()
    write_file(dir .. "/conf/torii.yaml", conf_text(1, "nonsense: 1\n"))
    local code, out, err = gateway.run_cli({ "-p", dir, "-t" })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    local conf = dir .. "/conf/torii.yaml"
    assert.are.equal("torii: " .. conf .. ":3: nonsense: unknown key\n"
      .. "torii: configuration file " .. conf .. " test failed\n", err)

    -- a missing file is a failure too
    code, out, err = gateway.run_cli({ "-c", dir .. "/conf/missing.yaml", "-t" })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.is_truthy(err:find(dir .. "/conf/missing.yaml", 1, true), err)
    assert.is_truthy(err:find("test failed", 1, true), err)
  end)

  it("-s with no running torii: clear error naming the pid file, exit 1", function()
    local dir = tmpdir()
    write_file(dir .. "/conf/torii.yaml", conf_text(gateway.free_port()))
    for _, sig in ipairs({ "quit", "stop" }) do
      local code, out, err = gateway.run_cli({ "-p", dir, "-s", sig })
      assert.are.equal(1, code, sig)
      assert.are.equal("", out)
      assert.is_truthy(err:find(dir .. "/logs/torii.pid", 1, true), "should name the pid file: " .. err)
      assert.is_truthy(err:find("running", 1, true), err)
    end
  end)

  it("-s with a stale pid file (process gone): clear error, exit 1", function()
    local dir = tmpdir()
    write_file(dir .. "/conf/torii.yaml", conf_text(gateway.free_port()))
    -- a pid that certainly ended: a child we started and reaped
    local pid = assert(proc.spawn({ "true" }))
    assert.is_true((proc.wait(pid, 5)))
    write_file(dir .. "/logs/torii.pid", pid .. "\n")
    local code, out, err = gateway.run_cli({ "-p", dir, "-s", "stop" })
    assert.are.equal(1, code)
    assert.are.equal("", out)
    assert.is_truthy(err:find(tostring(pid), 1, true), err)
  end)

  it("-s reload: exit 1 when no torii runs; with one running, 0 once the new generation serves, same workers",
    function()
      local code, out, err = gateway.run_cli({ "-s", "reload" })
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.is_truthy(err:find("torii.pid", 1, true), err)

      local mock = gateway.mock { id = "m" }
      local gw = gateway.start { config = { routes = { { id = "r", uri = "/*",
        upstream = { nodes = { "127.0.0.1:" .. mock.port } } } } } }
      local workers = gw:workers()
      code, out, err = gw:cli({ "-s", "reload" })
      assert.are.equal(0, code, err)
      assert.matches("^torii: reload: generation 2 is current in every worker %([%d.]+ ms%)\n$", out)
      assert.is_true(proc.alive(gw.pid))
      -- a reload keeps the worker processes: generations change inside them
      assert.are.same(workers, gw:workers())
      assert.are.equal(200, assert(http.get(gw.port, "/echo")).status)
      gw:assert_clean()
    end)

  it("-s bogus exits 2", function()
    local code, out, err = gateway.run_cli({ "-s", "bogus" })
    assert.are.equal(2, code)
    assert.are.equal("", out)
    assert.is_truthy(err:find("bogus", 1, true), err)
  end)

  it("-p PREFIX: default config PREFIX/conf/torii.yaml; logs and pid file created under the prefix", function()
    local mock = gateway.mock { id = "m" }
    local dir = tmpdir()
    local port = gateway.free_port()
    -- no logs/ directory yet: torii creates it
    write_file(dir .. "/conf/torii.yaml", conf_text(port,
      "routes:\n  - id: r\n    uri: /*\n    upstream: {nodes: [\"127.0.0.1:" .. mock.port .. "\"]}\n"))
    local elsewhere = tmpdir()
    local pid, logdir = start_in(elsewhere, { "-p", dir }, port)
    local resp = assert(http.get(port, "/via-prefix"))
    assert.are.equal(200, resp.status)
    assert.is_truthy(eventually(function()
      return (proc.read_file(dir .. "/logs/access.log") or ""):find('"GET /via-prefix ', 1, true)
    end, 3), "no access log under the prefix")
    assert.are.equal(tostring(pid), (proc.read_file(dir .. "/logs/torii.pid") or ""):match("%d+"))
    local elog = proc.read_file(dir .. "/logs/error.log") or ""
    assert.is_truthy(elog:find("started", 1, true), elog)
    -- nothing was written in the working directory
    local p = io.popen("ls -A " .. q(elsewhere))
    local listing = p:read("*a")
    p:close()
    assert.are.equal("", listing)

    -- -s quit with the same prefix finds the master
    local code, out, err = gateway.run_cli({ "-p", dir, "-s", "quit" })
    assert.are.equal(0, code, out .. err)
    local exited, info = proc.wait(pid, 5)
    assert.is_true(exited)
    assert.are.equal(0, info.code, proc.describe(info))
    assert.is_false(file_exists(dir .. "/logs/torii.pid"))
    assert.is_nil(has_error_lines(proc.read_file(dir .. "/logs/error.log") or ""))
    assert_no_sanitizer(logdir)
  end)

  it("-p with a relative path is relative to the working directory", function()
    local parent = tmpdir()
    local port = gateway.free_port()
    write_file(parent .. "/pfx/conf/torii.yaml", conf_text(port))
    local code, out, err = run_in(parent, { "-p", "pfx", "-t" })
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("/pfx/conf/torii.yaml test is successful", 1, true), out)
    local pid, logdir = start_in(parent, { "-p", "pfx" }, port)
    assert.is_truthy(eventually(function() return file_exists(parent .. "/pfx/logs/torii.pid") end, 3))
    assert.is_true(file_exists(parent .. "/pfx/logs/error.log"))
    code, out, err = run_in(parent, { "-p", "pfx", "-s", "stop" })
    assert.are.equal(0, code, out .. err)
    assert.is_true((proc.wait(pid, 5)))
    assert.is_nil(has_error_lines(proc.read_file(parent .. "/pfx/logs/error.log") or ""))
    assert_no_sanitizer(logdir)
  end)

  it("-c with a relative path (relative to the working directory; includes relative to the file)", function()
    local mock = gateway.mock { id = "m" }
    local cwd, prefix = tmpdir(), tmpdir()
    local port = gateway.free_port()
    write_file(cwd .. "/sub/my.yaml", conf_text(port, 'include: ["conf.d/*.yaml"]\n'))
    write_file(cwd .. "/sub/conf.d/r.yaml",
      "routes:\n  - id: inc\n    uri: /inc/*\n    upstream: {nodes: [\"127.0.0.1:" .. mock.port .. "\"]}\n")
    local code, out, err = run_in(cwd, { "-p", prefix, "-c", "sub/my.yaml", "-t" })
    assert.are.equal(0, code, err)
    assert.is_truthy(out:find("sub/my.yaml test is successful", 1, true), out)

    local pid, logdir = start_in(cwd, { "-p", prefix, "-c", "sub/my.yaml" }, port)
    local resp = assert(http.get(port, "/inc/1"))
    assert.are.equal(200, resp.status)
    assert.are.equal("/inc/1", cjson.decode(resp.body).target)
    -- logs under the prefix, not next to the config or in the cwd
    assert.is_truthy(eventually(function() return file_exists(prefix .. "/logs/torii.pid") end, 3))
    assert.is_false(file_exists(cwd .. "/logs/torii.pid"))
    assert.is_false(file_exists(cwd .. "/sub/logs/torii.pid"))

    code, out, err = run_in(cwd, { "-p", prefix, "-c", "sub/my.yaml", "-s", "quit" })
    assert.are.equal(0, code, out .. err)
    local exited, info = proc.wait(pid, 5)
    assert.is_true(exited)
    assert.are.equal(0, info.code)
    assert.is_nil(has_error_lines(proc.read_file(prefix .. "/logs/error.log") or ""))
    assert_no_sanitizer(logdir)
  end)
end)
