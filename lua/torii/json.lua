-- torii.json: JSON that keeps what plain lua-cjson 2.1.0 loses.
--
--   json.decode(text)        -> value | nil, "line L column C: why"
--   json.encode(value, opts) -> text  | nil, "why"
--   json.null                   the value that stands for JSON null
--   json.array_mt               metatable carried by every decoded array
--   json.array(t)            -> t, marked as an array (t defaults to {})
--   json.is_array(t)         -> true when t carries json.array_mt
--
-- Decoded values:
--   * arrays are Lua sequences with json.array_mt, so `[]` and `{}` differ
--     (the empty object is a plain table without a metatable);
--   * JSON null is json.null, in arrays and objects alike, so arrays have no
--     holes and an object key whose value is null is still present. json.null
--     is cjson.null (a NULL light userdata, the same value as ngx.null and
--     cjson.null, so values move between the libraries unchanged) when
--     lua-cjson is installed, else a unique table whose tostring is "null";
--   * numbers are Lua numbers (doubles): `1` and `1.0` decode to the same
--     value, which is what JSON Schema draft-07 wants (1.0 is an integer);
--     integers beyond 2^53 lose precision;
--   * strings are UTF-8; `\u` escapes, surrogate pairs included, become UTF-8.
--
-- Decoding is strict RFC 8259: no comments, no trailing commas, no leading
-- zeros, no control characters or invalid escapes in strings, no lone
-- surrogates, valid UTF-8 only, nothing but whitespace after the value,
-- nesting at most 1000 deep. It scans with string.find and slices with
-- string.sub: a string without escapes is one sub() call.
--
-- Encoding writes a table as an array when it carries json.array_mt (its
-- length is its largest integer key; missing slots become null) or when it is
-- a non-empty sequence (keys exactly 1..n), and as an object otherwise (so an
-- empty plain table is `{}`). Object keys must be strings or numbers.
-- Options: sort_keys = true for stable output, indent = "  " for
-- pretty-printing. NaN, infinities, functions, reference cycles and other
-- keys are errors.

local cjson_ok, cjson = pcall(require, "cjson")

local byte, sub, find, char = string.byte, string.sub, string.find, string.char
local format, gsub, rep = string.format, string.gsub, string.rep
local concat, sort = table.concat, table.sort
local floor, huge = math.floor, math.huge
local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local getmetatable, setmetatable, error, pcall = getmetatable, setmetatable, error, pcall

local json = {}

local null
if cjson_ok and cjson.null ~= nil then
  null = cjson.null
else
  null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })
end
json.null = null

-- A newer lua-cjson has its own array_mt: share it so cjson.encode keeps
-- our arrays as arrays too.
local array_mt = (cjson_ok and type(cjson.array_mt) == "table" and cjson.array_mt)
  or { __name = "json.array" }
json.array_mt = array_mt

function json.array(t)
  return setmetatable(t or {}, array_mt)
end

function json.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end

---------------------------------------------------------------------------
-- decoding
---------------------------------------------------------------------------

local MAX_DEPTH = 1000

-- Errors travel as a table through error() to decode()'s pcall.
local function fail(pos, msg)
  error({ pos = pos, msg = msg }, 0)
end

local function describe_at(s, pos)
  local c = byte(s, pos)
  if not c then return "end of input" end
  if c < 32 or c >= 127 then return format("byte 0x%02x", c) end
  return "'" .. char(c) .. "'"
end

local function expected(s, pos, what)
  fail(pos, "expected " .. what .. ", got " .. describe_at(s, pos))
end

local function skip_ws(s, pos)
  local c = byte(s, pos)
  if c and c > 32 then return pos end
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  elseif cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end
json.utf8_char = utf8_char

local ESCAPES = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b",
  [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}

local SPECIAL = '[%z\1-\31"\\]'

-- Reads the \uXXXX escape at `e` (the backslash); returns text, next pos.
local function read_unicode_escape(s, e)
  local hex = sub(s, e + 2, e + 5)
  if not find(hex, "^%x%x%x%x$") then fail(e, "invalid \\u escape") end
  local cp = tonumber(hex, 16)
  if cp >= 0xDC00 and cp <= 0xDFFF then
    fail(e, "lone low surrogate \\u" .. hex)
  elseif cp >= 0xD800 and cp <= 0xDBFF then
    local lo_hex = sub(s, e + 8, e + 11)
    if sub(s, e + 6, e + 7) ~= "\\u" or not find(lo_hex, "^%x%x%x%x$") then
      fail(e, "high surrogate \\u" .. hex .. " not followed by a low surrogate")
    end
    local lo = tonumber(lo_hex, 16)
    if lo < 0xDC00 or lo > 0xDFFF then
      fail(e, "high surrogate \\u" .. hex .. " not followed by a low surrogate")
    end
    return utf8_char(0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)), e + 12
  end
  return utf8_char(cp), e + 6
end

-- `pos` is at the opening quote; returns the string and the position after
-- the closing quote.
local function decode_string(s, pos)
  local i = pos + 1
  local e = find(s, SPECIAL, i)
  if not e then fail(pos, "unterminated string") end
  if byte(s, e) == 34 then return sub(s, i, e - 1), e + 1 end
  local buf, n = {}, 0
  while true do
    if e > i then n = n + 1; buf[n] = sub(s, i, e - 1) end
    local c = byte(s, e)
    if c == 34 then return concat(buf, "", 1, n), e + 1 end
    if c ~= 92 then fail(e, format("control character 0x%02x in string", c)) end
    local x = byte(s, e + 1)
    local text
    if x == 117 then
      text, i = read_unicode_escape(s, e)
    else
      text = x and ESCAPES[x]
      if not text then
        if not x then fail(pos, "unterminated string") end
        fail(e, "invalid escape '\\" .. (x >= 32 and x < 127 and char(x) or "?") .. "'")
      end
      i = e + 2
    end
    n = n + 1; buf[n] = text
    e = find(s, SPECIAL, i)
    if not e then fail(pos, "unterminated string") end
  end
end

local function decode_number(s, pos)
  local _, e = find(s, "^-?%d+", pos)
  if not e then fail(pos, "invalid number") end
  local first = byte(s, pos) == 45 and pos + 1 or pos
  if byte(s, first) == 48 and e > first then fail(pos, "leading zero in number") end
  local c = byte(s, e + 1)
  if c == 46 then
    local _, f = find(s, "^%d+", e + 2)
    if not f then fail(e + 2, "digit expected after '.'") end
    e = f
    c = byte(s, e + 1)
  end
  if c == 101 or c == 69 then
    local _, x = find(s, "^[-+]?%d+", e + 2)
    if not x then fail(e + 2, "digit expected in exponent") end
    e = x
  end
  return tonumber(sub(s, pos, e)), e + 1
end

local decode_value

local function decode_array(s, pos, depth)
  local arr, n = setmetatable({}, array_mt), 0
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 93 then return arr, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1
    arr[n] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 93 then return arr, pos + 1 end
    if c ~= 44 then expected(s, pos, "',' or ']'") end
    pos = skip_ws(s, pos + 1)
    if byte(s, pos) == 93 then fail(pos, "trailing comma in array") end
  end
end

local function decode_object(s, pos, depth)
  local obj = {}
  pos = skip_ws(s, pos + 1)
  if byte(s, pos) == 125 then return obj, pos + 1 end
  while true do
    local c = byte(s, pos)
    if c ~= 34 then
      if c == 125 then fail(pos, "trailing comma in object") end
      expected(s, pos, "a string key")
    end
    local key
    key, pos = decode_string(s, pos)
    pos = skip_ws(s, pos)
    if byte(s, pos) ~= 58 then expected(s, pos, "':'") end
    local v
    v, pos = decode_value(s, skip_ws(s, pos + 1), depth)
    obj[key] = v
    pos = skip_ws(s, pos)
    c = byte(s, pos)
    if c == 125 then return obj, pos + 1 end
    if c ~= 44 then expected(s, pos, "',' or '}'") end
    pos = skip_ws(s, pos + 1)
  end
end

local LITERALS = { [116] = { "true", true }, [102] = { "false", false }, [110] = { "null", null } }

decode_value = function(s, pos, depth)
  local c = byte(s, pos)
  if c == 34 then return decode_string(s, pos) end
  if c == 123 or c == 91 then
    depth = depth + 1
    if depth > MAX_DEPTH then fail(pos, "nesting deeper than " .. MAX_DEPTH) end
    if c == 123 then return decode_object(s, pos, depth) end
    return decode_array(s, pos, depth)
  end
  if c == 45 or (c and c >= 48 and c <= 57) then return decode_number(s, pos) end
  local lit = c and LITERALS[c]
  if lit and sub(s, pos, pos + #lit[1] - 1) == lit[1] then
    return lit[2], pos + #lit[1]
  end
  if not c then fail(pos, "unexpected end of input") end
  expected(s, pos, "a value")
end

-- Position of the first byte that is not part of valid UTF-8, or nil.
-- Rejects overlong forms, surrogates and code points above U+10FFFF.
local function utf8_invalid_at(s)
  local i = find(s, "[\128-\255]")
  while i do
    local c = byte(s, i)
    local n
    local lo, hi = 0x80, 0xBF
    if c >= 0xC2 and c <= 0xDF then n = 1
    elseif c >= 0xE0 and c <= 0xEF then
      n = 2
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      n = 3
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else
      return i
    end
    local c2 = byte(s, i + 1)
    if not c2 or c2 < lo or c2 > hi then return i end
    for k = 2, n do
      local ck = byte(s, i + k)
      if not ck or ck < 0x80 or ck > 0xBF then return i end
    end
    i = find(s, "[\128-\255]", i + n + 1)
  end
  return nil
end
json.utf8_invalid_at = utf8_invalid_at

local function line_col(s, pos)
  local line, line_start = 1, 1
  local i = find(s, "\n", 1, true)
  while i and i < pos do
    line = line + 1
    line_start = i + 1
    i = find(s, "\n", i + 1, true)
  end
  -- columns count characters (code points), not bytes
  local prefix = sub(s, line_start, pos - 1)
  local _, cont = gsub(prefix, "[\128-\191]", "")
  return line, #prefix - cont + 1
end

local function decode_text(s)
  local bad = utf8_invalid_at(s)
  if bad then fail(bad, "invalid UTF-8") end
  local v, pos = decode_value(s, skip_ws(s, 1), 0)
  pos = skip_ws(s, pos)
  if pos <= #s then expected(s, pos, "end of input") end
  return v
end

function json.decode(text)
  if type(text) ~= "string" then
    return nil, "line 1 column 1: expected a string to decode, got " .. type(text)
  end
  local ok, v = pcall(decode_text, text)
  if ok then return v end
  if type(v) ~= "table" then error(v, 0) end
  local line, col = line_col(text, v.pos)
  return nil, format("line %d column %d: %s", line, col, v.msg)
end

---------------------------------------------------------------------------
-- encoding
---------------------------------------------------------------------------

local ESCAPE_OUT = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for c = 0, 31 do
  local ch = char(c)
  if not ESCAPE_OUT[ch] then ESCAPE_OUT[ch] = format("\\u%04x", c) end
end
ESCAPE_OUT["\127"] = "\\u007f"

local function quote(s)
  if find(s, '[%z\1-\31"\\\127]') then
    s = gsub(s, '[%z\1-\31"\\\127]', ESCAPE_OUT)
  end
  return '"' .. s .. '"'
end
json.quote = quote

local function number_text(v)
  if v ~= v then error("cannot encode NaN", 0) end
  if v == huge or v == -huge then error("cannot encode an infinite number", 0) end
  if v == floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  -- the shortest of 15, 16 or 17 significant digits that reads back exactly
  local s = format("%.15g", v)
  if tonumber(s) == v then return s end
  s = format("%.16g", v)
  if tonumber(s) == v then return s end
  return format("%.17g", v)
end
json.number_text = number_text

-- "array", n for arrays, "object" otherwise.
local function table_kind(t)
  local is_arr = getmetatable(t) == array_mt
  local n, count = 0, 0
  for k in pairs(t) do
    if type(k) == "number" and k >= 1 and k == floor(k) then
      if k > n then n = k end
      count = count + 1
    elseif is_arr then
      error("cannot encode an array with key " .. tostring(k), 0)
    else
      return "object"
    end
  end
  if is_arr or (count > 0 and count == n) then return "array", n end
  return "object"
end

local encode_value

local function key_text(k)
  local tk = type(k)
  if tk == "string" then return k end
  if tk == "number" then return number_text(k) end
  error("cannot encode an object key of type " .. tk, 0)
end

local function newline(st, depth)
  if st.indent then
    local b = st.buf
    b[#b + 1] = "\n" .. rep(st.indent, depth)
  end
end

local function encode_table(t, st, depth)
  if st.seen[t] then error("cannot encode a reference cycle", 0) end
  st.seen[t] = true
  local buf = st.buf
  local kind, n = table_kind(t)
  if kind == "array" then
    if n == 0 then
      buf[#buf + 1] = "[]"
    else
      buf[#buf + 1] = "["
      for i = 1, n do
        if i > 1 then buf[#buf + 1] = "," end
        newline(st, depth + 1)
        encode_value(t[i], st, depth + 1)
      end
      newline(st, depth)
      buf[#buf + 1] = "]"
    end
  else
    local keys, raw, m = {}, {}, 0
    for k, v in pairs(t) do
      local text = key_text(k)
      m = m + 1
      keys[m] = text
      raw[text] = v
    end
    if st.sort_keys then sort(keys) end
    if m == 0 then
      buf[#buf + 1] = "{}"
    else
      buf[#buf + 1] = "{"
      for i = 1, m do
        if i > 1 then buf[#buf + 1] = "," end
        newline(st, depth + 1)
        buf[#buf + 1] = quote(keys[i])
        buf[#buf + 1] = st.indent and ": " or ":"
        encode_value(raw[keys[i]], st, depth + 1)
      end
      newline(st, depth)
      buf[#buf + 1] = "}"
    end
  end
  st.seen[t] = nil
end

encode_value = function(v, st, depth)
  local tv = type(v)
  local buf = st.buf
  if v == nil or v == null then
    buf[#buf + 1] = "null"
  elseif tv == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif tv == "number" then
    buf[#buf + 1] = number_text(v)
  elseif tv == "string" then
    buf[#buf + 1] = quote(v)
  elseif tv == "table" then
    encode_table(v, st, depth)
  else
    error("cannot encode a value of type " .. tv, 0)
  end
end

local function encode_all(value, st)
  encode_value(value, st, 0)
  return concat(st.buf)
end

function json.encode(value, opts)
  local indent = opts and opts.indent
  if indent == true then indent = "  " end
  local st = {
    buf = {},
    seen = {},
    sort_keys = opts and opts.sort_keys or false,
    indent = indent or nil,
  }
  local ok, res = pcall(encode_all, value, st)
  if ok then return res end
  return nil, tostring(res)
end

return json
