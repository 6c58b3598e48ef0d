-- Small helpers the specs share: polling with a deadline, files, patterns.
local proc = require "proc"
local http = require "http"
local cjson = require "cjson"
local assert = require "luassert" -- busted's assertions, outside a spec file too

local M = {}

--- Call fn until it returns a true value (returned) or timeout seconds
--- (default 5) pass (nil). Polls every step seconds (default 0.02).
function M.eventually(fn, timeout, step)
  local deadline = proc.now() + (timeout or 5)
  while true do
    local v = fn()
    if v then return v end
    if proc.now() >= deadline then return nil end
    proc.sleep(step or 0.02)
  end
end

function M.file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

--- The whole file, or nil.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Write text to path, making its directory first.
function M.write_file(path, text)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then proc.mkdir_p(dir) end
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- s as a Lua pattern that matches it literally.
function M.escape(s)
  return (s:gsub("%p", "%%%0"))
end

--- One request on a fresh connection to the gateway; the response must be
--- complete. opts: as http.request (headers, host for ::1, port instead of
--- gw.port).
function M.request(gw, path, opts)
  local req = {}
  for k, v in pairs(opts or {}) do req[k] = v end
  req.path = path
  local resp, err = http.request(req.port or gw.port, req)
  assert.is_table(resp, "no response to " .. path .. ": " .. tostring(err))
  assert.is_nil(resp.incomplete, "response cut short: " .. tostring(err))
  return resp
end

--- The next response on conn (complete).
function M.read(conn)
  local resp, err = conn:read_response({ timeout = 5 })
  assert.is_table(resp, "no response: " .. tostring(err))
  assert.is_nil(resp.incomplete, "response cut short: " .. tostring(err))
  return resp
end

--- Every value of header `name` the mock upstream got (its echo document),
--- in order.
function M.upstream_values(doc, name)
  local out = {}
  for _, hv in ipairs(doc.headers) do
    if hv[1]:lower() == name:lower() then out[#out + 1] = hv[2] end
  end
  return out
end

--- The single value of `name` the upstream got (nil when absent).
function M.upstream_value(doc, name)
  local v = M.upstream_values(doc, name)
  assert.is_true(#v <= 1, name .. " sent " .. #v .. " times: " .. cjson.encode(v))
  return v[1]
end

--- Requests the mock has answered so far (this /__stats request included).
function M.upstream_requests(mock)
  local resp, err = http.get(mock.port, "/__stats", { timeout = 2 })
  assert(resp and resp.status == 200, "mock /__stats failed: " .. tostring(err))
  return cjson.decode(resp.body).requests_total
end

--- `torii -t` on "listen: 127.0.0.1:1" plus yaml must fail: its stderr.
function M.config_error(yaml)
  local gateway = require "gateway"
  local code, _, err, _, dir = gateway.check_config("listen: 127.0.0.1:1\n" .. yaml)
  gateway.rmdir(dir)
  assert.are.equal(1, code, "the configuration was accepted:\n" .. yaml)
  return err
end

return M
