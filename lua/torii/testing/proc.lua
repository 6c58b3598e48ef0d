-- torii.testing.proc: process control for tests, through LuaJIT's FFI to libc.
--
-- Spawns children with posix_spawnp (so they are children of the busted
-- process and waitpid works), signals, waits and inspects them through /proc.
-- Every wait is bounded in time. Linux/glibc only (x86_64, aarch64).
--
-- Functions are reached through casts to this file's own prototypes, so a
-- different declaration of the same libc function made by another module in
-- the same LuaJIT state cannot break the calls here.

local ffi = require "ffi"

local C = ffi.C
local bit = require "bit"
local band, rshift, bor = bit.band, bit.rshift, bit.bor
local pairs, ipairs, tonumber, tostring, type = pairs, ipairs, tonumber, tostring, type
local io_open, string_format = io.open, string.format
local table_sort = table.sort
local error, pcall, getmetatable = error, pcall, getmetatable
local newproxy = newproxy

local proc = {}

-- Structs get unique names: a struct cannot be defined twice in one state,
-- and this file may be loaded twice (under two module names).
pcall(ffi.cdef, [[
struct torii_t_timespec { long tv_sec; long tv_nsec; };
struct torii_t_dirent64 {
  uint64_t d_ino; int64_t d_off; unsigned short d_reclen;
  unsigned char d_type; char d_name[256];
};
]])
pcall(ffi.cdef, "extern char **environ;")

-- name = {return type, argument list}
local PROTOS = {
  posix_spawnp = { "int", "int *, const char *, const void *, const void *, char **, char **" },
  posix_spawn_file_actions_init = { "int", "void *" },
  posix_spawn_file_actions_destroy = { "int", "void *" },
  posix_spawn_file_actions_addopen = { "int", "void *, int, const char *, int, unsigned int" },
  posix_spawn_file_actions_adddup2 = { "int", "void *, int, int" },
  posix_spawn_file_actions_addclose = { "int", "void *, int" },
  posix_spawnattr_init = { "int", "void *" },
  posix_spawnattr_destroy = { "int", "void *" },
  posix_spawnattr_setflags = { "int", "void *, short" },
  posix_spawnattr_setsigmask = { "int", "void *, const void *" },
  posix_spawnattr_setsigdefault = { "int", "void *, const void *" },
  posix_spawnattr_setpgroup = { "int", "void *, int" },
  sigemptyset = { "int", "void *" },
  sigfillset = { "int", "void *" },
  waitpid = { "int", "int, int *, int" },
  kill = { "int", "int, int" },
  getpid = { "int", "void" },
  nanosleep = { "int", "const void *, void *" },
  clock_gettime = { "int", "int, void *" },
  strerror = { "char *", "int" },
  mkdtemp = { "char *", "char *" },
  mkdir = { "int", "const char *, unsigned int" },
  getcwd = { "char *", "char *, size_t" },
  opendir = { "void *", "const char *" },
  readdir64 = { "void *", "void *" },
  closedir = { "int", "void *" },
}

local F = {}
for name, p in pairs(PROTOS) do
  pcall(ffi.cdef, string_format("%s %s(%s);", p[1], name, p[2]))
  F[name] = ffi.cast(string_format("%s (*)(%s)", p[1], p[2]), C[name])
end

-- glibc >= 2.34; optional.
do
  local decl = "int posix_spawn_file_actions_addclosefrom_np(void *, int);"
  pcall(ffi.cdef, decl)
  local ok, fn = pcall(function() return C.posix_spawn_file_actions_addclosefrom_np end)
  if ok then
    F.addclosefrom = ffi.cast("int (*)(void *, int)", fn)
  end
end

local O_RDONLY, O_WRONLY, O_CREAT, O_APPEND = 0, 1, 0x40, 0x400
local WNOHANG = 1
local EINTR, ECHILD, ESRCH, EPERM = 4, 10, 3, 1
local CLOCK_MONOTONIC = 1
local SPAWN_SETPGROUP, SPAWN_SETSIGDEF, SPAWN_SETSIGMASK = 0x02, 0x04, 0x08

-- Linux numbering (x86_64 and the asm-generic architectures agree on these).
local SIGNALS = {
  HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 7, FPE = 8,
  KILL = 9, USR1 = 10, SEGV = 11, USR2 = 12, PIPE = 13, ALRM = 14, TERM = 15,
  CHLD = 17, CONT = 18, STOP = 19, TSTP = 20, WINCH = 28,
}
proc.SIGNALS = SIGNALS

local own_pid = F.getpid()
local live = {}    -- pid -> true for children spawned here and not yet reaped
local reaped = {}  -- pid -> status info of children reaped here

local function strerror(errno)
  return ffi.string(F.strerror(errno))
end

--- Monotonic clock, in seconds (float).
function proc.now()
  local ts = ffi.new("struct torii_t_timespec")
  F.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local now = proc.now

--- Sleep for `seconds` (float); resumes after signals until the time is up.
function proc.sleep(seconds)
  if not seconds or seconds <= 0 then return end
  local req = ffi.new("struct torii_t_timespec")
  local rem = ffi.new("struct torii_t_timespec")
  local sec = math.floor(seconds)
  req.tv_sec = sec
  req.tv_nsec = math.floor((seconds - sec) * 1e9)
  for _ = 1, 1000 do
    if F.nanosleep(req, rem) == 0 or ffi.errno() ~= EINTR then return end
    req.tv_sec, req.tv_nsec = rem.tv_sec, rem.tv_nsec
  end
end
local sleep = proc.sleep

--- Whole content of a file, or nil.
function proc.read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end
local read_file = proc.read_file

--- Signal number from a name ("TERM", "SIGTERM") or a number.
function proc.signum(sig)
  if sig == nil then return SIGNALS.TERM end
  if type(sig) == "number" then return sig end
  local name = tostring(sig):upper():gsub("^SIG", "")
  local n = SIGNALS[name]
  if not n then error("unknown signal: " .. tostring(sig), 2) end
  return n
end

local function check_pid(pid)
  pid = tonumber(pid)
  -- kill(0) / kill(-1) would hit the test runner's group or every process.
  if not pid or pid <= 1 or pid ~= math.floor(pid) or pid == own_pid then
    error("refusing to act on pid " .. tostring(pid), 3)
  end
  return pid
end

local function decode_status(st)
  local low = band(st, 0x7f)
  if low == 0 then
    return { code = band(rshift(st, 8), 0xff), raw = st }
  elseif low ~= 0x7f then
    return { signal = low, core = band(st, 0x80) ~= 0, raw = st }
  end
  return { stopped = true, raw = st }
end

-- waitpid(WNOHANG) once: "running", "exited" (status recorded) or "unknown"
-- (not our child, e.g. spawned by someone else or already reaped).
local function try_reap(pid)
  if reaped[pid] then return "exited" end
  local st = ffi.new("int[1]")
  local r = F.waitpid(pid, st, WNOHANG)
  if r == pid then
    local info = decode_status(st[0])
    if info.stopped then return "running" end
    reaped[pid], live[pid] = info, nil
    return "exited"
  elseif r == 0 then
    return "running"
  end
  if ffi.errno() == ECHILD then live[pid] = nil end
  return "unknown"
end

--- State letter from /proc/PID/stat ("R", "S", "Z", ...) and the parent pid.
function proc.stat(pid)
  local data = read_file("/proc/" .. tostring(pid) .. "/stat")
  if not data then return nil end
  -- comm may hold spaces and parentheses: fields resume after the last ')'.
  local rest = data:match("^.*%)(.*)$")
  if not rest then return nil end
  local state, ppid = rest:match("^%s+(%S)%s+(%-?%d+)")
  return state, tonumber(ppid)
end

--- true while pid runs and is not a zombie (reaps it when it is our child).
function proc.alive(pid)
  pid = tonumber(pid)
  if not pid or pid <= 0 then return false end
  local r = try_reap(pid)
  if r ~= "unknown" then return r == "running" end
  if F.kill(pid, 0) ~= 0 and ffi.errno() ~= EPERM then return false end
  local state = proc.stat(pid)
  return state ~= nil and state ~= "Z" and state ~= "X"
end
local alive = proc.alive

--- Send a signal (name or number; default TERM). true, or nil and an error.
function proc.kill(pid, sig)
  pid = check_pid(pid)
  if F.kill(pid, proc.signum(sig)) ~= 0 then
    local e = ffi.errno()
    return nil, e == ESRCH and "no such process" or strerror(e)
  end
  return true
end

--- Wait up to timeout_s (default 5) for pid to end.
-- Returns true and {code=, signal=, core=} (code/signal nil and unknown=true
-- when pid was not our child), or false on timeout.
function proc.wait(pid, timeout_s)
  pid = tonumber(pid)
  local deadline = now() + (timeout_s or 5)
  local delay = 0.001
  while true do
    if not alive(pid) then
      return true, reaped[pid] or { unknown = true }
    end
    local left = deadline - now()
    if left <= 0 then return false end
    sleep(math.min(delay, left))
    delay = math.min(delay * 2, 0.025)
  end
end

--- TERM, wait up to timeout_s (default 5), then KILL and wait again.
-- Returns exited (bool) and the status info, as proc.wait.
function proc.stop(pid, timeout_s)
  pid = check_pid(pid)
  if not alive(pid) then return true, reaped[pid] or { unknown = true } end
  proc.kill(pid, "TERM")
  local ok, info = proc.wait(pid, timeout_s or 5)
  if ok then return ok, info end
  proc.kill(pid, "KILL")
  return proc.wait(pid, 5)
end

--- Pids (sorted) whose parent is pid, from /proc/*/stat.
function proc.children(pid)
  pid = tonumber(pid)
  local out = {}
  local dir = F.opendir("/proc")
  if dir == nil then return out end
  while true do
    local ent = F.readdir64(dir)
    if ent == nil then break end
    local name = ffi.string(ffi.cast("struct torii_t_dirent64 *", ent).d_name)
    local child = tonumber(name:match("^%d+$"))
    if child then
      local _, ppid = proc.stat(child)
      if ppid == pid then out[#out + 1] = child end
    end
  end
  F.closedir(dir)
  table_sort(out)
  return out
end

--- All descendants of pid (children first, depth-first).
function proc.descendants(pid)
  local out = {}
  local function walk(p, depth)
    if depth > 16 then return end
    for _, c in ipairs(proc.children(p)) do
      out[#out + 1] = c
      walk(c, depth + 1)
    end
  end
  walk(pid, 0)
  return out
end

--- Resident set size of pid in KiB (VmRSS), or nil.
function proc.rss_kb(pid)
  local data = read_file("/proc/" .. tostring(pid) .. "/status")
  return data and tonumber(data:match("VmRSS:%s*(%d+)")) or nil
end

--- A fresh directory from a mkdtemp template ending in XXXXXX.
function proc.mkdtemp(template)
  template = template or "/tmp/torii-test-XXXXXX"
  local buf = ffi.new("char[?]", #template + 1)
  ffi.copy(buf, template)
  if F.mkdtemp(buf) == nil then
    return nil, strerror(ffi.errno())
  end
  return ffi.string(buf)
end

--- mkdir -p (mode 0755).
function proc.mkdir_p(path)
  local acc = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    acc = acc .. "/" .. part
    F.mkdir(acc, 493)
  end
  return true
end

--- Current working directory.
function proc.getcwd()
  local buf = ffi.new("char[4096]")
  if F.getcwd(buf, 4096) == nil then return nil end
  return ffi.string(buf)
end

-- envp for the child: the current environment with `env` applied
-- (a string value sets, false removes).
local function build_env(env, anchor)
  local entries, order = {}, {}
  local environ = C.environ
  local i = 0
  while environ ~= nil and environ[i] ~= nil do
    local kv = ffi.string(environ[i])
    local k = kv:match("^([^=]*)=") or kv
    if entries[k] == nil then order[#order + 1] = k end
    entries[k] = kv
    i = i + 1
  end
  for k, v in pairs(env) do
    if entries[k] == nil then order[#order + 1] = k end
    entries[k] = v ~= false and (k .. "=" .. tostring(v)) or false
  end
  local list = {}
  for _, k in ipairs(order) do
    if entries[k] then list[#list + 1] = entries[k] end
  end
  local envp = ffi.new("char *[?]", #list + 1)
  for j, s in ipairs(list) do
    anchor[#anchor + 1] = s
    envp[j - 1] = ffi.cast("char *", s)
  end
  return envp
end

local function file_actions(fa, opts)
  local function chk(rc, what)
    if rc ~= 0 then error(what .. ": " .. strerror(rc), 4) end
  end
  chk(F.posix_spawn_file_actions_init(fa), "file_actions_init")
  local out, err = opts.stdout or "/dev/null", opts.stderr or "/dev/null"
  local wflags = bor(O_WRONLY, O_CREAT, O_APPEND)
  chk(F.posix_spawn_file_actions_addopen(fa, 0, opts.stdin or "/dev/null", O_RDONLY, 0), "addopen")
  chk(F.posix_spawn_file_actions_addopen(fa, 1, out, wflags, 420), "addopen")
  if err == out then
    chk(F.posix_spawn_file_actions_adddup2(fa, 1, 2), "adddup2")
  else
    chk(F.posix_spawn_file_actions_addopen(fa, 2, err, wflags, 420), "addopen")
  end
  -- Inherited sockets would keep test connections open after close().
  if F.addclosefrom then
    chk(F.addclosefrom(fa, 3), "addclosefrom")
  else
    for fd = 3, 1023 do F.posix_spawn_file_actions_addclose(fa, fd) end
  end
end

local function spawn_attr(attr, opts)
  local rc = F.posix_spawnattr_init(attr)
  if rc ~= 0 then error("spawnattr_init: " .. strerror(rc), 3) end
  -- Reset dispositions (luasocket ignores SIGPIPE, and ignored signals are
  -- inherited across exec) and unblock everything.
  local sigs = ffi.new("uint64_t[32]")
  F.sigfillset(sigs)
  F.posix_spawnattr_setsigdefault(attr, sigs)
  local empty = ffi.new("uint64_t[32]")
  F.sigemptyset(empty)
  F.posix_spawnattr_setsigmask(attr, empty)
  local flags = bor(SPAWN_SETSIGDEF, SPAWN_SETSIGMASK)
  if opts.pgroup then
    flags = bor(flags, SPAWN_SETPGROUP)
    F.posix_spawnattr_setpgroup(attr, 0)
  end
  F.posix_spawnattr_setflags(attr, flags)
end

--- Start argv (argv[1] searched in PATH) as a child of this process.
-- opts: stdout, stderr (paths, created/appended; default /dev/null; may be
-- the same file), stdin (default /dev/null), env ({K = V} added to the current
-- environment, V = false removes K), pgroup (true: own process group).
-- Returns the pid, or nil and an error.
function proc.spawn(argv, opts)
  opts = opts or {}
  if type(argv) ~= "table" or #argv == 0 then error("spawn: argv must be a non-empty list", 2) end
  local anchor = {}
  local cargv = ffi.new("char *[?]", #argv + 1)
  for i, a in ipairs(argv) do
    a = tostring(a)
    anchor[#anchor + 1] = a
    cargv[i - 1] = ffi.cast("char *", a)
  end
  local envp = opts.env and build_env(opts.env, anchor) or C.environ
  -- Opaque glibc types (80 and 336 bytes on x86_64): generous, 8-aligned.
  local fa = ffi.new("uint64_t[128]")
  local attr = ffi.new("uint64_t[128]")
  file_actions(fa, opts)
  spawn_attr(attr, opts)
  local pidp = ffi.new("int[1]")
  local rc = F.posix_spawnp(pidp, cargv[0], fa, attr, cargv, envp)
  F.posix_spawn_file_actions_destroy(fa)
  F.posix_spawnattr_destroy(attr)
  if rc ~= 0 then
    return nil, "spawn " .. tostring(argv[1]) .. ": " .. strerror(rc)
  end
  local pid = pidp[0]
  live[pid] = true
  return pid
end

--- Pids spawned here that have not been reaped yet.
function proc.spawned()
  local out = {}
  for pid in pairs(live) do out[#out + 1] = pid end
  table_sort(out)
  return out
end

--- Stop every child spawned here that still runs, and its descendants.
function proc.kill_all(timeout_s)
  local pids = proc.spawned()
  local tree = {}
  for _, pid in ipairs(pids) do
    for _, d in ipairs(proc.descendants(pid)) do tree[#tree + 1] = d end
    if alive(pid) then proc.kill(pid, "TERM") end
  end
  local deadline = now() + (timeout_s or 2)
  for _, pid in ipairs(pids) do
    proc.wait(pid, math.max(deadline - now(), 0))
    if alive(pid) then proc.kill(pid, "KILL"); proc.wait(pid, 1) end
  end
  for _, pid in ipairs(tree) do
    if alive(pid) then proc.kill(pid, "KILL") end
  end
  return #pids
end

--- Text description of a wait status, for messages.
function proc.describe(info)
  if not info then return "still running" end
  if info.code then return "exit code " .. info.code end
  if info.signal then return "signal " .. info.signal .. (info.core and " (core dumped)" or "") end
  return "exited (status unknown)"
end

-- When the state closes (busted ends with os.exit(code, true)), nothing we
-- spawned may outlive the run.
local sentinel = newproxy(true)
getmetatable(sentinel).__gc = function()
  pcall(proc.kill_all, 2)
end
proc._sentinel = sentinel

proc.strerror = strerror
proc.own_pid = own_pid

return proc
