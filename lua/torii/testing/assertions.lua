-- torii.testing.assertions: busted assertions for torii's responses, for
-- in-process specs (torii.test) and integration specs
-- (torii.testing.gateway) alike. Loading this module registers them:
--
--   assert.status(200, res)                      -- with the body and the logged errors when it fails
--   assert.header("X-Stamp", "blue", res)        -- a response header's value (repeats joined with ", ")
--   assert.has_header("X-Stamp", res)            -- present; assert.has_no_header(...): absent
--   assert.upstream_header("X-User", "ann", res) -- what the upstream got: res.upstream (in-process)
--                                                -- or the mock upstream's echo in res.body
--   assert.has_no_upstream_header("apikey", res)
--   assert.clean_log(x)                          -- no [error], [crit], [alert] or [emerg] line
--   assert.clean_log(x, { "expected error" })    -- ... except lines matching these patterns
--   assert.logged("pattern", x)                  -- a log line matches; assert.is_not.logged(...)
--
-- `res` is a response of torii.test (gw:request) or of torii.testing.http;
-- `x` for the logs is such an in-process response (its res.logs), an
-- in-process gateway (every line since it was made), or a running
-- gateway of torii.testing.gateway (its error log and stderr, where a
-- sanitizer report also counts as an error).
local assert = require "luassert"
local say = require "say"

local M = {}

local BAD = { error = true, crit = true, alert = true, emerg = true }
local SANITIZER = { "AddressSanitizer", "LeakSanitizer", "runtime error:" }

local function header_of(res, name)
  if type(res) ~= "table" then return nil end
  if type(res.header) == "function" then return res:header(name) end
  if type(res.headers) == "table" then return res.headers[name] end
  return nil
end

-- Entries {level =, message =} of an error log's text (continuation lines,
-- such as a traceback's, belong to the entry before them).
function M.parse_log(text)
  local entries = {}
  for line in tostring(text):gmatch("[^\n]+") do
    local level, msg = line:match("^%d+/%d+/%d+ %d+:%d+:%d+ %[(%a+)%] %d+#%d+: (.*)$")
    if level then
      entries[#entries + 1] = { level = level, message = msg, line = line }
    elseif #entries > 0 then
      local e = entries[#entries]
      e.message, e.line = e.message .. "\n" .. line, e.line .. "\n" .. line
    else
      entries[#entries + 1] = { level = "stderr", message = line, line = line }
    end
  end
  return entries
end

-- The log entries of an in-process response or gateway, or of a running
-- gateway (its stderr too).
local function entries_of(x)
  if type(x) ~= "table" then error("expected a response or a gateway, got " .. type(x), 3) end
  if type(x.logs) == "table" then return x.logs end
  if type(x.logs) == "function" then return x:logs() end
  if type(x.error_log) == "function" then
    local list = M.parse_log(x:error_log())
    local stderr = type(x.stderr) == "function" and x:stderr() or ""
    for _, e in ipairs(M.parse_log(stderr)) do
      list[#list + 1] = e
      for _, mark in ipairs(SANITIZER) do
        if e.line:find(mark, 1, true) then e.level = "error" end
      end
    end
    return list
  end
  error("expected a response (res.logs) or a gateway", 3)
end

local function bad_lines(x, allowed)
  if type(allowed) == "string" then allowed = { allowed } end
  local bad = {}
  for _, e in ipairs(entries_of(x)) do
    if BAD[e.level] then
      local ok = false
      for _, pat in ipairs(allowed or {}) do ok = ok or e.line:find(pat) ~= nil end
      if not ok then bad[#bad + 1] = e.line end
    end
  end
  return bad
end

-- What a failed status or header assertion shows besides the values.
local function describe(res)
  local parts = {}
  if type(res.body) == "string" and res.body ~= "" then
    parts[#parts + 1] = "body: " .. (#res.body > 600 and res.body:sub(1, 600) .. "..." or res.body)
  end
  if type(res.logs) == "table" then
    local bad = bad_lines(res)
    if #bad > 0 then parts[#parts + 1] = "logged:\n" .. table.concat(bad, "\n") end
  end
  return #parts > 0 and table.concat(parts, "\n") or nil
end

local function status(state, args)
  local expected, res = args[1], args[2]
  if type(res) ~= "table" then error("assert.status(code, res): res is " .. type(res), 3) end
  args[2], args.n = res.status, 2
  state.failure_message = describe(res)
  return res.status == expected
end

-- (name, value, res) compares the value; (name, res) checks presence.
local function header_check(get)
  return function(state, args)
    local name, value, res = args[1], args[2], args[3]
    if args.n == 2 then value, res = nil, args[2] end
    local got = get(res, name)
    if args.n == 2 then
      args[2], args.n = got, 2
      return got ~= nil
    end
    args[3], args.n = got, 3
    if type(res) == "table" then state.failure_message = describe(res) end
    return got == value
  end
end

--- A header of the request the upstream got (repeats joined with ", "),
--- or nil: from res.upstream (torii.test) or from the echo of the mock
--- upstream (build/mock-upstream) in res.body.
function M.upstream_header(res, name)
  if type(res) ~= "table" then return nil end
  if type(res.upstream) == "table" then return header_of(res.upstream, name) end
  local ok, doc = pcall(require("cjson").decode, res.body or "")
  if not ok or type(doc) ~= "table" or type(doc.headers) ~= "table" then return nil end
  local values = {}
  for _, hv in ipairs(doc.headers) do
    if type(hv) == "table" and tostring(hv[1]):lower() == name:lower() then values[#values + 1] = hv[2] end
  end
  return #values > 0 and table.concat(values, ", ") or nil
end

local function clean_log(state, args)
  local bad = bad_lines(args[1], args[2])
  state.failure_message = #bad > 0 and ("logged:\n" .. table.concat(bad, "\n")) or nil
  args[1], args.n = #bad .. " line(s)", 1
  return #bad == 0
end

local function logged(state, args)
  local pattern, x = args[1], args[2]
  for _, e in ipairs(entries_of(x)) do
    if e.line:find(pattern) then return true end
  end
  local lines = {}
  for _, e in ipairs(entries_of(x)) do lines[#lines + 1] = e.line end
  state.failure_message = #lines > 0 and ("the log:\n" .. table.concat(lines, "\n")) or "the log is empty"
  args[2], args.n = nil, 1
  return false
end

local messages = {
  status = { "Expected status %s, got %s", "Expected a status other than %s" },
  header = { "Expected header %s to be %s, got %s", "Expected no header %s, got %s" },
  upstream_header = { "Expected the upstream's header %s to be %s, got %s", "Expected no header %s upstream, got %s" },
  clean_log = { "Expected no error in the log, got %s", "Expected an error in the log" },
  logged = { "Expected a log line matching %s", "Expected no log line matching %s" },
}

local function register(name, fn)
  local pos, neg = "assertion.torii_" .. name .. ".positive", "assertion.torii_" .. name .. ".negative"
  say:set(pos, messages[name][1])
  say:set(neg, messages[name][2])
  assert:register("assertion", name, fn, pos, neg)
end

register("status", status)
register("header", header_check(header_of))
register("upstream_header", header_check(M.upstream_header))
register("clean_log", clean_log)
register("logged", logged)

return M
