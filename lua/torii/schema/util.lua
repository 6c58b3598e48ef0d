-- torii.schema.util: the value model the validator sees, and small helpers.
--
-- Values are what torii.json produces: json.null, booleans, numbers,
-- strings, arrays (tables with json.array_mt) and objects (other tables).
-- A plain table without a metatable whose keys are exactly 1..n (n >= 1)
-- also counts as an array, so schemas and values written in Lua work; an
-- empty table without json.array_mt is an object.

local json = require "torii.json"

local type, pairs, getmetatable, setmetatable = type, pairs, getmetatable, setmetatable
local floor, huge = math.floor, math.huge
local find, gsub, format, sub = string.find, string.gsub, string.format, string.sub
local tostring = tostring
local concat = table.concat

local null, array_mt = json.null, json.array_mt

local util = {}

-- "null", "boolean", "number", "string", "array", "object", or the Lua
-- type of anything else ("function", "userdata", ...).
local function kind_of(v)
  local t = type(v)
  if t == "table" then
    if v == null then return "null" end
    local mt = getmetatable(v)
    if mt == array_mt then return "array" end
    if mt == nil and v[1] ~= nil then
      local n, count = #v, 0
      for k in pairs(v) do
        if type(k) ~= "number" then return "object" end
        count = count + 1
      end
      if count == n then return "array" end
    end
    return "object"
  end
  if v == null then return "null" end
  if t == "nil" then return "null" end
  return t
end
util.kind_of = kind_of

local function is_integer(n)
  return n == floor(n) and n ~= huge and n ~= -huge
end
util.is_integer = is_integer

-- Number of code points in a UTF-8 string (bytes that are not continuation
-- bytes).
function util.utf8_len(s)
  if not find(s, "[\128-\255]") then return #s end
  local _, cont = gsub(s, "[\128-\191]", "")
  return #s - cont
end

-- Deep equality in the JSON sense: 1 == 1.0, [] ~= {}, key order ignored.
local function equal(a, b)
  if a == b then return true end
  local ka, kb = kind_of(a), kind_of(b)
  if ka ~= kb then return false end
  if ka == "array" then
    local n = #a
    if n ~= #b then return false end
    for i = 1, n do
      if not equal(a[i], b[i]) then return false end
    end
    return true
  elseif ka == "object" then
    for k, v in pairs(a) do
      local w = b[k]
      if w == nil or not equal(v, w) then return false end
    end
    for k in pairs(b) do
      if a[k] == nil then return false end
    end
    return true
  end
  return false
end
util.equal = equal

-- Deep copy that keeps array markers (and json.null as is).
local function copy(v)
  if type(v) ~= "table" or v == null then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  local mt = getmetatable(v)
  if mt == array_mt then setmetatable(out, array_mt) end
  return out
end
util.copy = copy

-- A number as JSON would print it: 1 not 1.0, shortest round-trip digits.
local function num(n)
  if n ~= n then return "NaN" end
  if n == huge then return "Infinity" end
  if n == -huge then return "-Infinity" end
  return json.number_text(n)
end
util.num = num

local ARTICLE = { integer = "an integer", array = "an array", object = "an object", null = "null" }

-- "a string", "an object", "null": a JSON type name in a sentence.
function util.article(kind)
  return ARTICLE[kind] or ("a " .. kind)
end

-- "1 item", "2 items"; "1 property", "2 properties".
function util.count(n, noun, plural)
  if n == 1 then return "1 " .. noun end
  return format("%d %s", n, plural or noun .. "s")
end

-- A short JSON-ish rendering of a value for error messages.
function util.show(v, limit)
  limit = limit or 60
  local t = type(v)
  if t == "number" then return num(v) end
  local text
  if t == "string" or t == "boolean" or v == null or t == "table" then
    text = json.encode(v)
  end
  text = text or tostring(v)
  if #text > limit then
    text = sub(text, 1, limit - 3)
    -- do not cut a UTF-8 sequence in half
    text = gsub(text, "[\192-\255][\128-\191]*$", "") .. "..."
  end
  return text
end

-- Path segment text: .name for identifier-like keys, ["key"] otherwise,
-- [i] for array indexes, 0-based like every configuration path torii
-- prints (routes[0].vars[1]), though Lua counts from 1.
function util.path_segment(key, first)
  if type(key) == "number" then return format("[%d]", key - 1) end
  if find(key, "^[%a_][%w_%-]*$") then
    if first then return key end
    return "." .. key
  end
  return "[" .. json.quote(key) .. "]"
end


---------------------------------------------------------------------------
-- validation state
--
-- A check is `check(value, st, kind) -> ok`. `st` carries the path from the
-- root to the value being checked as a stack of keys (st.path[1..st.n]), so
-- nothing is concatenated unless an error is reported; st.errs is the list
-- errors go to, or nil when the caller only wants a yes or no (then checks
-- may stop at the first failure); st.defaults says whether to fill defaults;
-- st.root is the caller's path prefix; st.depth counts $ref nesting.
---------------------------------------------------------------------------

local path_segment = util.path_segment

function util.new_state(root, defaults, errs)
  return { path = {}, n = 0, errs = errs, defaults = defaults or false, root = root or "", depth = 0 }
end

local function path_string(st)
  local root = st.root
  local n = st.n
  if n == 0 then return root end
  local parts, path = { root }, st.path
  for i = 1, n do
    parts[i + 1] = path_segment(path[i], i == 1 and root == "")
  end
  return concat(parts)
end
util.path_string = path_string

-- Adds "PATH: msg" (or just msg at an empty path) to st.errs; returns false.
function util.report(st, msg)
  local errs = st.errs
  if errs then
    local p = path_string(st)
    errs[#errs + 1] = p == "" and msg or (p .. ": " .. msg)
  end
  return false
end

-- Runs fn on v one level down, under `key`.
function util.descend(st, key, fn, v)
  local n = st.n + 1
  st.n = n
  st.path[n] = key
  local ok = fn(v, st)
  st.n = n - 1
  return ok
end

-- Runs fn on v for a yes or no: no errors, no defaults.
function util.probe(st, fn, v)
  local errs, defaults = st.errs, st.defaults
  st.errs, st.defaults = nil, false
  local ok = fn(v, st)
  st.errs, st.defaults = errs, defaults
  return ok
end

-- Runs fn on v, collecting its errors in a list of their own (no defaults).
function util.collect(st, fn, v)
  local errs, defaults = st.errs, st.defaults
  local list = {}
  st.errs, st.defaults = list, false
  local ok = fn(v, st)
  st.errs, st.defaults = errs, defaults
  return ok, list
end

-- An error message made relative to the current path: with the current
-- path "a.b", "a.b.c: msg" becomes "c: msg" and "a.b: msg" becomes "msg".
function util.relative(st, msg)
  local p = path_string(st)
  if p == "" then return msg end
  if sub(msg, 1, #p + 2) == p .. ": " then return sub(msg, #p + 3) end
  local rest = sub(msg, #p + 1)
  if sub(msg, 1, #p) == p then
    local c = sub(rest, 1, 1)
    if c == "." then return sub(rest, 2) end
    if c == "[" then return rest end
  end
  return msg
end

util.null = null
util.array_mt = array_mt

return util
