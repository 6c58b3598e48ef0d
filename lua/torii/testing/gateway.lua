-- torii.testing.gateway: start and stop the real torii binary and mock
-- upstreams, for integration specs (the torii binary's own, and plugins').
--
--   local gateway = require "torii.testing.gateway"
--   local gw = gateway.start{ config = { routes = { ... } } }
--   ... speak HTTP to gw.port with torii.testing.http ...
--   gw:assert_clean()
--   gw:cleanup()                            -- or gateway.cleanup_all() in teardown
--
-- Binaries: TORII_BIN (default build/torii) and TORII_MOCK_BIN (default
-- build/mock-upstream), relative to the repository root found from this
-- file's location. TORII_KEEP_TMP=1 keeps the temporary prefixes.
-- Loading it also registers torii's assertions (torii.testing.assertions)
-- when busted's luassert is there.

local cjson = require "cjson"
local socket = require "socket"

local pairs, ipairs, type, tostring, tonumber = pairs, ipairs, type, tostring, tonumber
local setmetatable, getmetatable = setmetatable, getmetatable
local error, pcall, select, assert = error, pcall, select, assert
local concat = table.concat
local io_open, os_getenv, os_execute = io.open, os.getenv, os.execute

-- This file's directory, to find the repository root.
local HERE = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

local proc = require "torii.testing.proc"
local has_luassert, luassert = pcall(require, "luassert")
if has_luassert then require "torii.testing.assertions" end

local gateway = {}

local ROOT = (function()
  local dir = HERE
  if dir:sub(1, 1) ~= "/" then dir = (proc.getcwd() or ".") .. "/" .. dir end
  -- Resolve "." and ".." (HERE may be "t/spec/../lib"), so that the root
  -- reads the same however this file was found.
  local parts = {}
  for seg in dir:gmatch("[^/]+") do
    if seg == ".." then
      parts[#parts] = nil
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  dir = "/" .. table.concat(parts, "/")
  return dir:match("^(.*)/lua/torii/testing$") or (dir .. "/../../..")
end)()
gateway.root = ROOT

local SANITIZER_MARKS = { "AddressSanitizer", "LeakSanitizer", "runtime error:" }
local BAD_LEVELS = { error = true, crit = true, alert = true, emerg = true }

local started = {} -- gateways and mocks not cleaned up yet

-- A busted failure (not an error) reported at the caller of our caller.
local function fail(msg, level)
  level = level or 3
  if has_luassert then luassert(false, msg, luassert:level(level)) end
  error(msg, level)
end

local function keep_tmp()
  local v = os_getenv("TORII_KEEP_TMP")
  return v ~= nil and v ~= "" and v ~= "0"
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  return proc.read_file(path) or ""
end

local function write_file(path, content)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then proc.mkdir_p(dir) end
  local f = assert(io_open(path, "wb"))
  f:write(content)
  f:close()
end

local function tail(text, n)
  n = n or 4000
  if #text <= n then return text end
  return "...\n" .. text:sub(-n)
end

---------------------------------------------------------------------------
-- Ports and directories

local used_ports = {}

--- A free TCP port on 127.0.0.1, never the same twice in this process.
function gateway.free_port()
  for _ = 1, 200 do
    local s = assert(socket.tcp())
    local ok, err = s:bind("127.0.0.1", 0)
    if not ok then
      s:close()
      error("free_port: bind: " .. tostring(err), 2)
    end
    local _, port = s:getsockname()
    s:close()
    port = tonumber(port)
    if port and not used_ports[port] then
      used_ports[port] = true
      return port
    end
  end
  error("free_port: no unused port found", 2)
end

--- true if something accepts TCP connections on 127.0.0.1:port.
function gateway.port_open(port, timeout)
  local s = socket.tcp()
  s:settimeout(timeout or 0.25)
  local ok = s:connect("127.0.0.1", tonumber(port))
  s:close()
  return ok == 1 or ok == true
end

--- A fresh directory under /tmp.
function gateway.tmpdir()
  local dir, err = proc.mkdtemp("/tmp/torii-test-XXXXXX")
  if not dir then error("tmpdir: " .. tostring(err), 2) end
  return dir
end

--- rm -rf, only for directories under /tmp.
function gateway.rmdir(path)
  if type(path) ~= "string" or not path:match("^/tmp/[^/]") or path:find("/%.%.") then
    error("rmdir: refusing to remove " .. tostring(path), 2)
  end
  os_execute("rm -rf " .. shell_quote(path))
end

--- The absolute path of `rel` (default ".") taken from the directory of
--- the file that calls this: plugin_dirs = { gateway.here("..") } in a
--- plugin's spec/ names the plugin's directory.
function gateway.here(rel)
  local src = (debug.getinfo(2, "S") or {}).source or ""
  local dir = src:sub(1, 1) == "@" and (src:sub(2):match("^(.*)/[^/]*$") or ".") or "."
  if dir:sub(1, 1) ~= "/" then dir = (proc.getcwd() or ".") .. "/" .. dir end
  return rel and rel ~= "." and (dir .. "/" .. rel) or dir
end

function gateway.bin()
  return os_getenv("TORII_BIN") or (ROOT .. "/build/torii")
end

function gateway.mock_bin()
  return os_getenv("TORII_MOCK_BIN") or (ROOT .. "/build/mock-upstream")
end

-- Waits until port accepts or pid dies. true, or nil and a reason.
local function wait_port(pid, port, timeout)
  local deadline = proc.now() + timeout
  while true do
    if not proc.alive(pid) then
      local _, info = proc.wait(pid, 0)
      return nil, "process exited during startup (" .. proc.describe(info) .. ")"
    end
    if gateway.port_open(port) then return true end
    if proc.now() >= deadline then
      return nil, "port " .. port .. " not accepting after " .. timeout .. " s"
    end
    proc.sleep(0.02)
  end
end

--- Sanitizer report lines found in text (empty list when clean).
function gateway.sanitizer_report(text)
  local found = {}
  for _, mark in ipairs(SANITIZER_MARKS) do
    if text:find(mark, 1, true) then found[#found + 1] = mark end
  end
  return found
end

---------------------------------------------------------------------------
-- Config

--- Put this in a config table where an empty JSON array is meant
-- (cjson encodes an empty table as {}).
gateway.empty_array = setmetatable({}, { __tostring = function() return "[]" end })
local EMPTY_MARK = "__torii_empty_array_5d1c__"

local function deepcopy(v)
  if v == gateway.empty_array then return EMPTY_MARK end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return out
end

--- A config table as JSON text.
function gateway.encode(cfg)
  local text = cjson.encode(deepcopy(cfg))
  -- cjson escapes "/" as "\/", which YAML 1.1 parsers may refuse.
  text = text:gsub('"' .. EMPTY_MARK .. '"', "[]"):gsub("\\/", "/")
  return text
end

local function listen_port(listen)
  local first = type(listen) == "table" and listen[1] or listen
  if type(first) == "table" then first = first.listen or first.address or first.port end
  return tonumber(tostring(first):match("(%d+)$"))
end

local function substitute(text, vars)
  return (text:gsub("%${([%w_]+)}", function(name)
    local v = vars[name]
    return v ~= nil and tostring(v) or nil
  end))
end

-- Config file text, the port, and the error log path, from start()'s opts.
local function config_text(opts, prefix, port)
  if opts.config then
    local cfg = deepcopy(opts.config)
    if cfg.listen == nil then
      port = port or gateway.free_port()
      cfg.listen = { "127.0.0.1:" .. port }
    else
      port = port or listen_port(cfg.listen)
    end
    if cfg.workers == nil then cfg.workers = opts.workers or 1 end
    -- TORII_TEST_IO_URING=0: run a spec's gateways with plain socket calls.
    if cfg.io_uring == nil and os_getenv("TORII_TEST_IO_URING") == "0" then cfg.io_uring = false end
    if cfg.log == nil then cfg.log = {} end
    if type(cfg.log) ~= "table" then error("gateway.start: config.log must be a table", 0) end
    cfg.log.error = cfg.log.error or "logs/error.log"
    cfg.log.access = cfg.log.access or "logs/access.log"
    local elog = type(cfg.log.error) == "string" and cfg.log.error or "logs/error.log"
    elog = elog:sub(1, 1) == "/" and elog or (prefix .. "/" .. elog)
    return gateway.encode(cfg), port, elog
  elseif opts.config_text then
    if not port and opts.config_text:find("${PORT}", 1, true) then port = gateway.free_port() end
    local vars = { PORT = port, PREFIX = prefix }
    for k, v in pairs(opts.vars or {}) do vars[k] = v end
    local text = substitute(opts.config_text, vars)
    port = port or tonumber(text:match("127%.0%.0%.1:(%d+)"))
    return text, port, prefix .. "/logs/error.log", vars
  end
  error("gateway.start: opts.config or opts.config_text is required", 0)
end

---------------------------------------------------------------------------
-- Gateway objects

local GW = {}
GW.__index = GW

--- Start torii. opts: config (table, written as JSON) or config_text
-- (verbatim; ${PORT}, ${PREFIX} and opts.vars substituted), config_name
-- ("torii.yaml"), extra_files ({["conf.d/a.yaml"] = text}, relative to
-- PREFIX/conf), port, workers (1), args (extra CLI args), env, bin,
-- wait (default true: until the port accepts), wait_timeout (10 s).
function gateway.start(opts)
  opts = opts or {}
  local prefix = gateway.tmpdir()
  proc.mkdir_p(prefix .. "/conf")
  proc.mkdir_p(prefix .. "/logs")
  local ok, text, port, elog, vars = pcall(config_text, opts, prefix, opts.port)
  if not ok then
    gateway.rmdir(prefix)
    error(text, 2)
  end
  local gw = setmetatable({
    prefix = prefix, port = port, bin = opts.bin or gateway.bin(),
    conf_path = prefix .. "/conf/" .. (opts.config_name or "torii.yaml"),
    error_log_path = elog, workers_default = opts.workers or 1,
  }, GW)
  write_file(gw.conf_path, text)
  for rel, content in pairs(opts.extra_files or {}) do
    write_file(prefix .. "/conf/" .. rel, vars and substitute(content, vars) or content)
  end
  local argv = { gw.bin, "-p", prefix, "-c", gw.conf_path }
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  local pid, err = proc.spawn(argv, {
    stdout = prefix .. "/stdout.log", stderr = prefix .. "/stderr.log", env = opts.env,
  })
  if not pid then
    gateway.rmdir(prefix)
    error("gateway.start: " .. err .. " (TORII_BIN or build/torii)", 2)
  end
  gw.pid = pid
  started[gw] = true
  if opts.wait ~= false then
    local up, why = gw:wait_ready(opts.wait_timeout or 10)
    if not up then
      local msg = "gateway.start: " .. why .. "\n" .. gw:diagnostics()
      gw:cleanup()
      error(msg, 2)
    end
  end
  return gw
end

--- Wait until the port accepts and a worker runs (bounded): the master
-- opens the sockets before it forks. true, or nil and a reason.
function GW:wait_ready(timeout)
  if not self.port then return nil, "no port known: pass opts.port or wait = false" end
  local deadline = proc.now() + (timeout or 10)
  local ok, why = wait_port(self.pid, self.port, timeout or 10)
  if not ok then return nil, why end
  while #proc.children(self.pid) == 0 do
    if proc.now() >= deadline then return nil, "no worker process after " .. (timeout or 10) .. " s" end
    proc.sleep(0.01)
  end
  return true
end

--- stderr.log and error.log tails, for failure messages.
function GW:diagnostics()
  return "--- " .. self.prefix .. "/stderr.log ---\n" .. tail(self:stderr())
    .. "\n--- " .. self.error_log_path .. " ---\n" .. tail(self:error_log())
end

function GW:error_log() return read_file(self.error_log_path) end
function GW:stderr() return read_file(self.prefix .. "/stderr.log") end
function GW:stdout() return read_file(self.prefix .. "/stdout.log") end

--- Lines of PREFIX/logs/access.log.
function GW:access_log()
  local lines = {}
  for line in read_file(self.prefix .. "/logs/access.log"):gmatch("[^\n]+") do
    lines[#lines + 1] = line
  end
  return lines
end

--- Current size of the error log, to wait only for lines written after it.
function GW:log_mark()
  return #self:error_log()
end

--- Poll the error log for a Lua pattern (from byte offset `from`, default 0)
-- up to timeout (5 s). Returns the first matching line, or nil, "timeout".
function GW:wait_log(pattern, timeout, from)
  local deadline = proc.now() + (timeout or 5)
  while true do
    local text = self:error_log():sub((from or 0) + 1)
    for line in text:gmatch("[^\n]+") do
      if line:find(pattern) then return line end
    end
    if proc.now() >= deadline then return nil, "timeout" end
    proc.sleep(0.02)
  end
end

--- Child pids of the master.
function GW:workers()
  if self.stopped then return {} end
  return proc.children(self.pid)
end

--- Send a signal by name ("HUP", "USR1", ...) or number to the master.
function GW:signal(sig)
  return proc.kill(self.pid, sig)
end

-- True once none of pids runs, polling until the deadline.
local function all_gone(pids, deadline)
  while true do
    local any = false
    for _, pid in ipairs(pids) do any = any or proc.alive(pid) end
    if not any then return true end
    if proc.now() >= deadline then return false end
    proc.sleep(0.01)
  end
end

-- After the master is gone, its former descendants get 1 s to follow it,
-- then TERM (0.5 s), then KILL.
local function reap_tree(tree)
  if all_gone(tree, proc.now() + 1) then return end
  for _, sig in ipairs({ "TERM", "KILL" }) do
    for _, pid in ipairs(tree) do
      if proc.alive(pid) then proc.kill(pid, sig) end
    end
    if all_gone(tree, proc.now() + (sig == "TERM" and 0.5 or 1)) then return end
  end
end

local function finish(self, ok, info, tree)
  if ok then
    self.stopped, self.exit_info = true, info
    reap_tree(tree)
  end
  return ok, info
end

--- SIGTERM, wait up to timeout (10 s), then KILL. Idempotent.
-- Returns exited and {code=, signal=}.
function GW:stop(timeout)
  if self.stopped then return true, self.exit_info end
  local tree = proc.descendants(self.pid)
  local ok, info = proc.stop(self.pid, timeout or 10)
  return finish(self, ok, info, tree)
end

--- SIGQUIT (graceful), wait up to timeout (10 s). Does not KILL: returns
-- false if still running (stop() or cleanup() still work).
function GW:quit(timeout)
  if self.stopped then return true, self.exit_info end
  local tree = proc.descendants(self.pid)
  proc.kill(self.pid, "QUIT")
  local ok, info = proc.wait(self.pid, timeout or 10)
  return finish(self, ok, info, tree)
end

--- Run the CLI against this instance: torii -p PREFIX -c CONF args...
function GW:cli(args, opts)
  local argv = { "-p", self.prefix, "-c", self.conf_path }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  opts = opts or {}
  opts.bin = opts.bin or self.bin
  return gateway.run_cli(argv, opts)
end

--- Rewrite the config file (a table gets listen/workers/log as in start()).
function GW:write_config(config, extra_files)
  local opts = type(config) == "table" and { config = config, workers = self.workers_default }
    or { config_text = config }
  local text = config_text(opts, self.prefix, self.port)
  write_file(self.conf_path, text)
  for rel, content in pairs(extra_files or {}) do
    write_file(self.prefix .. "/conf/" .. rel, content)
  end
end

--- Assert (busted) that the error log (and stderr.log) has no [error],
-- [crit], [alert] or [emerg] line except those matching a pattern of
-- `allowed` (a list, or one pattern), and no sanitizer report.
function GW:assert_clean(allowed)
  if type(allowed) == "string" then allowed = { allowed } end
  allowed = allowed or {}
  local bad = {}
  for _, src in ipairs({ { "error.log", self:error_log() }, { "stderr.log", self:stderr() } }) do
    for line in src[2]:gmatch("[^\n]+") do
      local level = line:match("^[%d/: ]*%[(%a+)%]")
      if BAD_LEVELS[level] then
        local ok = false
        for _, pat in ipairs(allowed) do ok = ok or line:find(pat) ~= nil end
        if not ok then bad[#bad + 1] = src[1] .. ": " .. line end
      end
    end
  end
  local san = gateway.sanitizer_report(self:stderr() .. self:error_log())
  if #bad > 0 or #san > 0 then
    fail("gateway log not clean (" .. self.prefix .. "):\n" .. concat(bad, "\n")
      .. (#san > 0 and ("\nsanitizer report (" .. concat(san, ", ") .. "):\n" .. tail(self:stderr())) or ""))
  end
  return true
end

--- Stop and remove the prefix (kept when TORII_KEEP_TMP is set).
function GW:cleanup()
  self:stop()
  started[self] = nil
  if not keep_tmp() and not self.removed then
    self.removed = true
    gateway.rmdir(self.prefix)
  end
end

---------------------------------------------------------------------------
-- Mock upstreams

local function mock_stop(m, opts)
  opts = opts or {}
  if not m.stopped then
    m.stopped = true
    started[m] = nil
    m.exited, m.exit_info = proc.stop(m.pid, opts.timeout or 5)
    m.stderr_text = read_file(m.stderr_path)
    if not keep_tmp() then gateway.rmdir(m.dir) end
  end
  local san = gateway.sanitizer_report(m.stderr_text)
  if #san > 0 and opts.assert ~= false then
    fail("mock-upstream " .. m.port .. ": sanitizer report:\n" .. tail(m.stderr_text), 4)
  end
  return #san == 0, m.stderr_text
end

--- Start build/mock-upstream --listen 127.0.0.1:PORT [--id ID]
-- [--idle-close MS] [args...]. opts: port, id, idle_close, args, env, bin,
-- wait (default true), wait_timeout (10 s).
-- Returns {port=, pid=, dir=, stderr_path=, stop=, stderr=}; stop() (or
-- m:stop(), or m.stop{assert = false}) is idempotent, returns clean (no
-- sanitizer report) and the stderr text, and asserts clean by default.
function gateway.mock(opts)
  opts = opts or {}
  local port = opts.port or gateway.free_port()
  local dir = gateway.tmpdir()
  local argv = { opts.bin or gateway.mock_bin(), "--listen", "127.0.0.1:" .. port }
  if opts.id ~= nil then argv[#argv + 1] = "--id"; argv[#argv + 1] = tostring(opts.id) end
  if opts.idle_close ~= nil then
    argv[#argv + 1] = "--idle-close"; argv[#argv + 1] = tostring(opts.idle_close)
  end
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  local m = { port = port, dir = dir, stderr_path = dir .. "/stderr.log" }
  local pid, err = proc.spawn(argv, { stdout = dir .. "/stdout.log", stderr = m.stderr_path, env = opts.env })
  if not pid then
    gateway.rmdir(dir)
    error("gateway.mock: " .. err .. " (TORII_MOCK_BIN or build/mock-upstream)", 2)
  end
  m.pid = pid
  m.stop = function(...)
    local a = ...
    if a == m then a = select(2, ...) end
    return mock_stop(m, a)
  end
  m.stderr = function() return m.stderr_text or read_file(m.stderr_path) end
  started[m] = true
  if opts.wait ~= false then
    local up, why = wait_port(pid, port, opts.wait_timeout or 10)
    if not up then
      local msg = "gateway.mock: " .. why .. "\n" .. tail(m.stderr())
      mock_stop(m, { assert = false })
      error(msg, 2)
    end
  end
  return m
end

--- n bytes of the mock's body pattern (/big, /noframe, /truncate):
-- byte i is 'a' + i % 26, i from 0.
local ALPHABET = "abcdefghijklmnopqrstuvwxyz"
function gateway.mock_pattern(n)
  return (ALPHABET:rep(math.floor(n / 26) + 1)):sub(1, n)
end

---------------------------------------------------------------------------
-- CLI and cleanup

--- Run TORII_BIN with args (bounded by `timeout 20`). opts: bin, env
-- ({K = V}), timeout. Returns exit code, stdout, stderr.
function gateway.run_cli(args, opts)
  opts = opts or {}
  local dir = gateway.tmpdir()
  local parts = { "timeout", "-k", "5", tostring(opts.timeout or 20) }
  if opts.env then
    parts[#parts + 1] = "env"
    for k, v in pairs(opts.env) do parts[#parts + 1] = shell_quote(k .. "=" .. tostring(v)) end
  end
  parts[#parts + 1] = shell_quote(opts.bin or gateway.bin())
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  local cmd = concat(parts, " ") .. " </dev/null >" .. shell_quote(dir .. "/out")
    .. " 2>" .. shell_quote(dir .. "/err") .. "; echo $?"
  local p = assert(io.popen(cmd, "r"))
  local status = p:read("*a")
  p:close()
  local out, err = read_file(dir .. "/out"), read_file(dir .. "/err")
  gateway.rmdir(dir)
  return tonumber(status:match("(%d+)%s*$")) or -1, out, err
end

--- `torii -t` on a configuration: PREFIX/conf/torii.yaml holds text, and
--- files ({relative path under conf/ = content}) go beside it. Returns exit
--- code, stdout, stderr, the configuration's path and PREFIX (remove it
--- with gateway.rmdir).
function gateway.check_config(text, files)
  local dir = gateway.tmpdir()
  local conf = dir .. "/conf/torii.yaml"
  write_file(conf, text) -- makes the directories too
  for rel, content in pairs(files or {}) do write_file(dir .. "/conf/" .. rel, content) end
  local code, out, err = gateway.run_cli({ "-p", dir, "-c", conf, "-t" }, { timeout = 10 })
  return code, out, err, conf, dir
end

--- Stop and remove every gateway and mock not cleaned up yet (no asserts).
function gateway.cleanup_all()
  local list = {}
  for obj in pairs(started) do list[#list + 1] = obj end
  for _, obj in ipairs(list) do
    if getmetatable(obj) == GW then obj:cleanup() else mock_stop(obj, { assert = false }) end
  end
  return #list
end

gateway.GW = GW
gateway.proc = proc

return gateway
