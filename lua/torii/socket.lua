-- torii.socket: non-blocking TCP for plugins.
--
--   local sock = torii.socket.tcp()
--   sock:settimeouts(1000, 1000, 5000)              -- connect, send, read (ms)
--   local ok, err = sock:connect("127.0.0.1", 6379)  -- an address or a name
--   local bytes, err = sock:send("PING\r\n")
--   local line, err, partial = sock:receive("*l")    -- "*l", "*a" or a byte count
--   sock:setkeepalive(60000, 32)                     -- back to the pool, or sock:close()
--
-- connect, send and the receives wait without blocking the worker: the
-- calling coroutine is suspended and resumed once the socket is ready. They
-- may be called in rewrite, access and timer callbacks; elsewhere they
-- raise an error naming the phase. I/O failures come back as nil and a
-- short reason ("timeout", "closed", "connection refused", ...), never as
-- an error. A socket belongs to the request or timer callback that
-- connected it, and is closed when that ends if the plugin has not closed
-- it (or put it back into the pool) by then.
local ffi = require "ffi"
local tffi = require "torii.ffi"

local C = tffi.C
local ffi_string = ffi.string
local yield = coroutine.yield
local type, tonumber, tostring, error, setmetatable = type, tonumber, tostring, error, setmetatable
local floor, concat = math.floor, table.concat
local token, WAIT = tffi.token, tffi.WAIT
local OK, AGAIN, BAD_PHASE = tffi.OK, tffi.AGAIN, tffi.BAD_PHASE

local DEFAULT_TIMEOUT = 60000 -- ms
local MAX_TIMEOUT = 86400000
local LINE, ALL, COUNT, ANY, UNTIL = 1, 2, 3, 4, 5 -- receive modes (core/lua/ffi.h)

-- Out-parameter cells, allocated once: nothing yields between the call
-- that fills them and the read.
local id_cell, gen_cell = ffi.new("int[1]"), ffi.new("unsigned[1]")
local p, n = ffi.new("const char *[1]"), ffi.new("size_t[1]")

local M = {}

local Sock = {}
Sock.__index = Sock

--- A new socket (not connected yet); any phase may make one.
function M.tcp()
  return setmetatable({ timeouts = { DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT } }, Sock)
end

local function check_timeout(v, fname)
  v = tonumber(v)
  if not v or v <= 0 or v > MAX_TIMEOUT then
    error("torii.socket." .. fname .. ": timeouts are milliseconds, > 0 and at most " .. MAX_TIMEOUT, 3)
  end
  return v
end

--- Timeouts in milliseconds for connect, send and each receive; nil keeps
--- the current one (60 s at first).
function Sock:settimeouts(connect, send, read)
  local t = self.timeouts
  if connect ~= nil then t[1] = check_timeout(connect, "settimeouts") end
  if send ~= nil then t[2] = check_timeout(send, "settimeouts") end
  if read ~= nil then t[3] = check_timeout(read, "settimeouts") end
end

--- The same timeout (ms) for all three.
function Sock:settimeout(ms)
  ms = check_timeout(ms, "settimeout")
  self.timeouts = { ms, ms, ms }
end

-- A call that may have to wait: on AGAIN, yield until C resumes this
-- coroutine, then fetch the outcome.
local function settle(self, rc)
  if rc == AGAIN then
    yield(token, WAIT)
    rc = C.torii_ffi_sock_result(self.id, self.gen, p, n)
  end
  return rc
end

--- Connect to host and port. host is an IPv4 or IPv6 address, localhost
--- (always 127.0.0.1), or a name, looked up on other threads (getaddrinfo_a:
--- /etc/hosts, then DNS) while the coroutine waits; the connect timeout
--- covers the lookup too. A pooled idle connection to the same address is
--- reused when there is one. opts: timeout (ms, this connect only). 1, or
--- nil and an error ("host not found", "connection refused", "timeout", ...).
function Sock:connect(host, port, opts)
  if type(host) ~= "string" then error("torii.socket.connect: host must be a string", 2) end
  port = tonumber(port)
  if not port or port < 1 or port > 65535 or port ~= floor(port) then
    error("torii.socket.connect: port must be 1 to 65535", 2)
  end
  local timeout = self.timeouts[1]
  if opts and opts.timeout ~= nil then timeout = check_timeout(opts.timeout, "connect") end
  if self.id then self:close() end
  local rc = C.torii_ffi_sock_connect(host, #host, port, timeout, id_cell, gen_cell)
  if rc == BAD_PHASE then error("torii.socket.connect: " .. tffi.errmsg(), 2) end
  if rc ~= OK and rc ~= AGAIN then return nil, tffi.errmsg() end
  self.id, self.gen = id_cell[0], gen_cell[0]
  rc = settle(self, rc)
  if rc ~= OK then
    local err = tffi.errmsg()
    C.torii_ffi_sock_close(self.id, self.gen)
    self.id = nil
    return nil, err
  end
  return 1
end

--- Send a string (or a list of strings, sent as one). The number of bytes
--- sent, or nil and an error.
function Sock:send(data)
  if type(data) == "table" then
    data = concat(data)
  elseif type(data) ~= "string" then
    if type(data) ~= "number" then error("torii.socket.send: data must be a string", 2) end
    data = tostring(data)
  end
  if not self.id then return nil, "closed" end
  local rc = C.torii_ffi_sock_send(self.id, self.gen, data, #data, self.timeouts[2])
  if rc == BAD_PHASE then error("torii.socket.send: " .. tffi.errmsg(), 2) end
  if settle(self, rc) ~= OK then return nil, tffi.errmsg() end
  return #data
end

local function recv(self, mode, size, delim, fname)
  if not self.id then return nil, "closed", "" end
  local rc = C.torii_ffi_sock_recv(self.id, self.gen, mode, size, delim, self.timeouts[3], p, n)
  if rc == BAD_PHASE then error("torii.socket." .. fname .. ": " .. tffi.errmsg(), 3) end
  rc = settle(self, rc)
  local data = ffi_string(p[0], n[0])
  if rc ~= OK then return nil, tffi.errmsg(), data end
  return data
end

--- Receive by pattern: "*l" (default) a line without its CR LF, "*a"
--- everything until the peer closes, or a number: exactly that many
--- bytes. The data, or nil, an error and what arrived before it.
function Sock:receive(pattern)
  if pattern == nil or pattern == "*l" or pattern == "l" then
    return recv(self, LINE, 0, nil, "receive")
  elseif pattern == "*a" or pattern == "a" then
    return recv(self, ALL, 0, nil, "receive")
  elseif type(pattern) == "number" and pattern >= 0 and pattern == floor(pattern) then
    return recv(self, COUNT, pattern, nil, "receive")
  end
  error('torii.socket.receive: the pattern is "*l", "*a" or a byte count', 2)
end

--- What has arrived, 1 to max bytes (waiting for at least one).
function Sock:receiveany(max)
  max = tonumber(max)
  if not max or max < 1 or max ~= floor(max) then error("torii.socket.receiveany: max must be >= 1", 2) end
  return recv(self, ANY, max, nil, "receiveany")
end

--- A reader: each call returns the data up to the next `delim` (which is
--- consumed, not returned), or nil, an error and what arrived.
function Sock:receiveuntil(delim)
  if type(delim) ~= "string" or delim == "" then error("torii.socket.receiveuntil: delim must be a string", 2) end
  return function() return recv(self, UNTIL, #delim, delim, "receiveuntil") end
end

--- Put the connection into the worker's keep-alive pool for its address
--- (the proxy's pool: the proxy and other plugins may reuse it too) for
--- idle_ms (default: the proxy's pool_idle_timeout), unless pool_size idle
--- connections wait there already. Only a connection with nothing unread
--- may go back. The socket is done either way. 1, or nil and an error.
function Sock:setkeepalive(idle_ms, pool_size)
  if not self.id then return nil, "closed" end
  local id, gen = self.id, self.gen
  self.id = nil
  if C.torii_ffi_sock_keepalive(id, gen, tonumber(idle_ms) or 0, tonumber(pool_size) or 0) ~= OK then
    return nil, tffi.errmsg()
  end
  return 1
end

function Sock:close()
  if not self.id then return nil, "closed" end
  local id, gen = self.id, self.gen
  self.id = nil
  if C.torii_ffi_sock_close(id, gen) ~= OK then return nil, tffi.errmsg() end
  return 1
end

--- How many times the connection served before it came from the pool (0:
--- a new connection), or nil and an error.
function Sock:getreusedtimes()
  if not self.id then return nil, "closed" end
  local count = C.torii_ffi_sock_reused(self.id, self.gen)
  if count < 0 then return nil, tffi.errmsg() end
  return count
end

return M
