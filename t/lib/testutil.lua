-- Small helpers the specs share: polling with a deadline, files, patterns.
local proc = require "proc"

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

return M
