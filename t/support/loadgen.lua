-- loadgen.lua — one keep-alive HTTP client that sends requests back to
-- back and writes one line per request, for specs that need load while
-- they act on the gateway (reloads):
--
--   luajit t/support/loadgen.lua PORT PATH OUT STOPFILE MAX_SECONDS HEADER
--
-- Each line of OUT: "<wall-clock send time> <status or ERR> <HEADER value
-- or -> <error or ->". It stops when STOPFILE exists or after MAX_SECONDS.
-- Only 127.0.0.1 is ever contacted.
local dir = arg[0]:match("^(.*)/t/support/") or "."
package.path = dir .. "/t/lib/?.lua;" .. dir .. "/lua/?.lua;" .. package.path
local http = require "http"
local socket = require "socket"

local port, path, out, stopfile = tonumber(arg[1]), arg[2], arg[3], arg[4]
local max_s, header = tonumber(arg[5]) or 60, arg[6] or "X-Stamp"
local f = assert(io.open(out, "w"))
local t_end = socket.gettime() + max_s
local conn
local function stopped()
  local s = io.open(stopfile, "r")
  if s then s:close() return true end
  return socket.gettime() > t_end
end

local n = 0
while not stopped() and n < 1000000 do
  n = n + 1
  if not conn then conn = http.connect(port, { timeout = 10 }) end
  local t = socket.gettime()
  local resp, err
  if conn then
    local ok, serr = conn:request({ method = "GET", path = path, headers = { Host = "load" } })
    if ok then resp, err = conn:read_response({ timeout = 10 }) else err = serr end
  else
    err = "connect failed"
  end
  if resp and not resp.incomplete then
    f:write(("%.6f %d %s -\n"):format(t, resp.status, resp:header(header) or "-"))
    if (resp:header("Connection") or ""):lower() == "close" then conn:close() conn = nil end
  else
    f:write(("%.6f ERR - %s\n"):format(t, tostring(err):gsub("%s", "_")))
    if conn then conn:close() end
    conn = nil
  end
end
if conn then conn:close() end
f:close()
