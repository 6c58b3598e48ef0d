-- torii.schema.kw_generic: type, enum, const, the number keywords, the
-- string keywords and format.
--
-- Each entry: keys (any of them present runs compile), order (checks run in
-- increasing order), compile(node, schema) -> check(value, st, kind) | nil.

local util = require "torii.schema.util"
local re = require "torii.re"

local type, ipairs = type, ipairs
local format, concat = string.format, table.concat
local abs, floor, fmod, huge = math.abs, math.floor, math.fmod, math.huge

local report, equal, show, num, utf8_len = util.report, util.equal, util.show, util.num, util.utf8_len
local is_integer, null = util.is_integer, util.null

local TYPES = { null = true, boolean = true, integer = true, number = true, string = true,
  array = true, object = true }
local function type_phrase(list)
  local words = {}
  for i, t in ipairs(list) do words[i] = i == 1 and util.article(t) or t end
  if #words == 1 then return words[1] end
  return concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
end

local function compile_type(node)
  local t = node:want("type", "string", "array")
  local list = type(t) == "string" and { t } or t
  local set = {}
  for _, name in ipairs(list) do
    if not TYPES[name] then node:fail(format('unknown type %s in "type"', show(name))) end
    set[name] = true
  end
  local integer_only = set.integer and not set.number
  local phrase = type_phrase(list)
  return function(v, st, kind)
    if set[kind] then return true end
    if integer_only and kind == "number" and is_integer(v) then return true end
    return report(st, "must be " .. phrase .. ", got " .. kind)
  end
end

-- A matcher for a list of JSON values: scalars by table lookup (1 and 1.0
-- are the same key), tables by deep equality.
local function value_matcher(list)
  local scalars, tables = {}, {}
  for _, e in ipairs(list) do
    if type(e) == "table" and e ~= null then
      tables[#tables + 1] = e
    else
      scalars[e] = true
    end
  end
  local nt = #tables
  return function(v)
    if type(v) ~= "table" or v == null then return scalars[v] == true end
    for i = 1, nt do
      if equal(v, tables[i]) then return true end
    end
    return false
  end
end

local function compile_enum(node)
  local list = node:want("enum", "array")
  local matches = value_matcher(list)
  local shown = show(list, 80)
  return function(v, st)
    if matches(v) then return true end
    return report(st, "must be one of " .. shown .. ", got " .. show(v))
  end
end

local function compile_const(_, s)
  local c = s.const
  local matches = value_matcher({ c })
  local shown = show(c, 80)
  return function(v, st)
    if matches(v) then return true end
    return report(st, "must be equal to " .. shown .. ", got " .. show(v))
  end
end

-- multipleOf without float surprises: an exact fmod first (1e308 is a
-- multiple of 0.5), then a quotient within a relative tolerance of an
-- integer (0.0075 is a multiple of 0.0001 although neither is exact in
-- binary).
local function is_multiple(v, m)
  if fmod(v, m) == 0 then return true end
  local q = v / m
  if q ~= q or q == huge or q == -huge then return false end
  local r = floor(q + 0.5)
  return abs(q - r) <= 1e-9 * (abs(q) > 1 and abs(q) or 1)
end

local function compile_numbers(node, s)
  local checks = {}
  local function bound(key, op, test)
    if s[key] == nil then return end
    local limit = node:want(key, "number")
    local text = "must be " .. op .. " " .. num(limit) .. ", got "
    checks[#checks + 1] = function(v, st)
      if test(v, limit) then return true end
      return report(st, text .. num(v))
    end
  end
  if s.multipleOf ~= nil then
    local m = node:want("multipleOf", "number")
    if m <= 0 then node:fail('"multipleOf" must be greater than 0') end
    local text = "must be a multiple of " .. num(m) .. ", got "
    checks[#checks + 1] = function(v, st)
      if is_multiple(v, m) then return true end
      return report(st, text .. num(v))
    end
  end
  bound("maximum", "<=", function(v, l) return v <= l end)
  bound("exclusiveMaximum", "<", function(v, l) return v < l end)
  bound("minimum", ">=", function(v, l) return v >= l end)
  bound("exclusiveMinimum", ">", function(v, l) return v > l end)
  local n = #checks
  return function(v, st, kind)
    if kind ~= "number" then return true end
    local ok = true
    for i = 1, n do
      if not checks[i](v, st) then
        if not st.errs then return false end
        ok = false
      end
    end
    return ok
  end
end

local function compile_strings(node, s)
  local max = s.maxLength ~= nil and node:want_count("maxLength") or nil
  local min = s.minLength ~= nil and node:want_count("minLength") or nil
  local rx, pattern
  if s.pattern ~= nil then
    pattern = node:want("pattern", "string")
    local err
    rx, err = re.cached(pattern, "u")
    if not rx then node:fail(format('"pattern" %s is not a valid regex: %s', show(pattern), err)) end
  end
  return function(v, st, kind)
    if kind ~= "string" then return true end
    local ok = true
    if max or min then
      local len = utf8_len(v)
      if max and len > max then
        ok = report(st, format("must be at most %d characters long, got %d", max, len))
        if not st.errs then return false end
      end
      if min and len < min then
        ok = report(st, format("must be at least %d characters long, got %d", min, len))
        if not st.errs then return false end
      end
    end
    if rx and not rx:find(v) then
      ok = report(st, 'must match pattern "' .. pattern .. '"')
    end
    return ok
  end
end

local function compile_format(node)
  local formats = node.ctx.formats
  if not formats then return nil end
  local name = node:want("format", "string")
  local test = type(formats) == "table" and formats[name] or nil
  if test == nil then test = require("torii.schema.formats")[name] end
  if not test then return nil end -- unknown formats are annotations
  local text = "must be a valid " .. name .. ", got "
  return function(v, st, kind)
    if kind ~= "string" or test(v) then return true end
    return report(st, text .. show(v))
  end
end

return {
  { keys = { "type" }, order = 10, compile = compile_type },
  { keys = { "enum" }, order = 20, compile = compile_enum },
  { keys = { "const" }, order = 21, compile = compile_const },
  { keys = { "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum" },
    order = 30, compile = compile_numbers },
  { keys = { "maxLength", "minLength", "pattern" }, order = 40, compile = compile_strings },
  { keys = { "format" }, order = 50, compile = compile_format },
}
