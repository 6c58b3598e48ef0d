-- torii.schema.formats: checks for the "format" keyword, used only when a
-- schema is compiled with formats = true. Each is function(string) -> bool.
--
--   date-time, date, time   RFC 3339 (time needs an offset; a leap second
--                           must fall on 23:59:60 UTC)
--   email                   RFC 5321 mailbox: dot-atom or quoted local part,
--                           hostname or [IPv4] / [IPv6:...] literal domain
--   hostname                RFC 1123: labels of letters, digits and inner
--                           hyphens, 1-63 bytes, at most 253 in all
--   ipv4, ipv6              RFC 2673 dotted quad without leading zeros,
--                           RFC 4291 text forms (no zone index)
--   uri, uri-reference      RFC 3986 syntax
--   regex                   compiles with PCRE2 (UTF mode)
--   json-pointer, relative-json-pointer   RFC 6901 and its relative draft
-- Internationalized forms (idn-email, idn-hostname, iri, iri-reference) and
-- uri-template are not checked.

local re = require "torii.re"

local find, match, sub, lower = string.find, string.match, string.sub, string.lower
local gsub, byte = string.gsub, string.byte
local floor, insert = math.floor, table.insert
local tonumber, ipairs = tonumber, ipairs

local formats = {}

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local function date(s)
  local y, m, d = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 then return false end
  local max = (m == 2 and leap(y)) and 29 or DAYS[m]
  return d <= max
end
formats.date = date

local function time(s)
  local h, mi, sec, rest = match(s, "^(%d%d):(%d%d):(%d%d)(.*)$")
  if not h then return false end
  h, mi, sec = tonumber(h), tonumber(mi), tonumber(sec)
  local frac_end = match(rest, "^%.%d+()")
  if frac_end then rest = sub(rest, frac_end) end
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = match(rest, "^([%+%-])(%d%d):(%d%d)$")
    if not sign then return false end
    oh, om = tonumber(oh), tonumber(om)
    if oh > 23 or om > 59 then return false end
    offset = (oh * 60 + om) * (sign == "+" and 1 or -1)
  end
  if h > 23 or mi > 59 or sec > 60 then return false end
  if sec == 60 then
    -- a leap second exists only at 23:59:60 UTC
    local utc = (h * 60 + mi - offset) % 1440
    if utc ~= 23 * 60 + 59 then return false end
  end
  return true
end
formats.time = time

formats["date-time"] = function(s)
  local d, t = match(s, "^(%d%d%d%d%-%d%d%-%d%d)[Tt](.*)$")
  return d ~= nil and date(d) and time(t)
end

local function ipv4(s)
  if not find(s, "^%d+%.%d+%.%d+%.%d+$") then return false end
  for part in s:gmatch("%d+") do
    if #part > 1 and sub(part, 1, 1) == "0" then return false end
    if #part > 3 or tonumber(part) > 255 then return false end
  end
  return true
end
formats.ipv4 = ipv4

local function ipv6(s)
  if find(s, "[^%x:%.]") then return false end
  local head, tail = s, nil
  local dc = find(s, "::", 1, true)
  if dc then
    if find(s, "::", dc + 1, true) then return false end
    head, tail = sub(s, 1, dc - 1), sub(s, dc + 2)
  end
  local groups = 0
  local function count(part, last)
    if part == "" then return true end
    local fields = {}
    for f in (part .. ":"):gmatch("([^:]*):") do fields[#fields + 1] = f end
    for i, f in ipairs(fields) do
      if last and i == #fields and find(f, ".", 1, true) then
        if not ipv4(f) then return false end
        groups = groups + 2
      elseif not find(f, "^%x%x?%x?%x?$") then
        return false
      else
        groups = groups + 1
      end
    end
    return true
  end
  if not count(head, tail == nil) then return false end
  if tail and not count(tail, true) then return false end
  if dc then return groups <= 7 end
  return groups == 8
end
formats.ipv6 = ipv6

-- Punycode (RFC 3492) decoding of the part of an A-label after "xn--":
-- the list of code points, or nil when it is not valid Punycode.
local PUNY_BASE, PUNY_TMIN, PUNY_TMAX = 36, 1, 26

local function puny_adapt(delta, points, first)
  delta = first and floor(delta / 700) or floor(delta / 2)
  delta = delta + floor(delta / points)
  local k = 0
  while delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2 do
    delta = floor(delta / (PUNY_BASE - PUNY_TMIN))
    k = k + PUNY_BASE
  end
  return k + floor(((PUNY_BASE - PUNY_TMIN + 1) * delta) / (delta + 38))
end

local function puny_digit(c)
  if c >= 97 and c <= 122 then return c - 97 end
  if c >= 65 and c <= 90 then return c - 65 end
  if c >= 48 and c <= 57 then return c - 22 end
  return nil
end

local function punycode_decode(s)
  local out = {}
  local last = match(s, "^.*()%-")
  local pos = 1
  if last then
    for i = 1, last - 1 do out[i] = byte(s, i) end
    pos = last + 1
  end
  local n, i, bias = 128, 0, 72
  while pos <= #s do
    local old, w, k = i, 1, PUNY_BASE
    while true do
      local d = pos <= #s and puny_digit(byte(s, pos))
      if not d then return nil end
      pos = pos + 1
      i = i + d * w
      local t = k <= bias and PUNY_TMIN or (k >= bias + PUNY_TMAX and PUNY_TMAX or k - bias)
      if d < t then break end
      w = w * (PUNY_BASE - t)
      k = k + PUNY_BASE
      if i > 0x7fffffff then return nil end
    end
    bias = puny_adapt(i - old, #out + 1, old == 0)
    n = n + floor(i / (#out + 1))
    i = i % (#out + 1)
    if n > 0x10FFFF or (n >= 0xD800 and n <= 0xDFFF) then return nil end
    insert(out, i + 1, n)
    i = i + 1
  end
  return out
end
formats.punycode_decode = punycode_decode

local function hostname(s)
  if s == "" or #s > 253 then return false end
  for label in (s .. "."):gmatch("([^.]*)%.") do
    if #label < 1 or #label > 63 then return false end
    if not find(label, "^%w[%w%-]*$") or find(label, "%-$") then return false end
    if sub(label, 3, 4) == "--" then
      -- reserved for A-labels ("xn--"), whose decoded form must be valid
      -- Punycode without "--" in its own 3rd and 4th places (RFC 5891)
      if lower(sub(label, 1, 2)) ~= "xn" then return false end
      local u = punycode_decode(sub(label, 5))
      if not u or #u == 0 or (u[3] == 45 and u[4] == 45) then return false end
    end
  end
  return true
end
formats.hostname = hostname

local function dot_atom(s)
  if s == "" or find(s, "^%.") or find(s, "%.$") or find(s, "..", 1, true) then return false end
  return not find(s, "[^%w!#%$%%&'%*%+%-/=%?%^_`{|}~%.]")
end

formats.email = function(s)
  local at = match(s, "^.*()@")
  if not at then return false end
  local loc, domain = sub(s, 1, at - 1), sub(s, at + 1)
  if #loc > 64 then return false end
  if find(loc, '^"') then
    -- quoted string: any byte but " and \, or a backslash pair
    local inner = match(loc, '^"(.*)"$')
    if not inner or find(gsub(inner, "\\.", ""), '["\\]') then return false end
  elseif not dot_atom(loc) then
    return false
  end
  local lit = match(domain, "^%[(.*)%]$")
  if lit then
    local v6 = match(lit, "^IPv6:(.*)$")
    if v6 then return ipv6(v6) end
    return ipv4(lit)
  end
  return hostname(domain)
end

-- RFC 3986 character classes, percent-encoding checked separately.
local URI_CHARS = "[^%w%-%._~:/%?#%[%]@!%$&'%(%)%*%+,;=%%]"

local function uri_chars_ok(s)
  if find(s, URI_CHARS) then return false end
  -- every % starts a %XX escape
  for pos in s:gmatch("()%%") do
    if not find(s, "^%%%x%x", pos) then return false end
  end
  return true
end

-- Checks the authority part (user@host:port) when present.
local function authority_ok(s)
  local auth = match(s, "^[^:/?#]*:?//([^/?#]*)") or match(s, "^//([^/?#]*)")
  if not auth then return true end
  local userinfo, hostport = match(auth, "^(.*)@(.*)$")
  if not userinfo then hostport = auth end
  if userinfo and find(userinfo, "[%[%]@]") then return false end
  local host, port
  if sub(hostport, 1, 1) == "[" then
    local inside, after = match(hostport, "^%[(.-)%](.*)$")
    if not inside then return false end
    if not ipv6(inside) and not find(inside, "^[vV]%x+%.[%w%-%._~!%$&'%(%)%*%+,;=:]+$") then return false end
    port = match(after, "^:(.*)$")
    if after ~= "" and not port then return false end
  else
    host, port = match(hostport, "^([^:]*):(.*)$")
    if not host then host = hostport end
    if find(host, "[%[%]]") then return false end
  end
  if port and not find(port, "^%d*$") then return false end
  return true
end

local function uri_reference(s)
  if not uri_chars_ok(s) then return false end
  -- [ and ] only inside the host (IPv6 literal)
  local before_path = match(s, "^[^/?#]*:?//[^/?#]*") or match(s, "^//[^/?#]*") or ""
  if find(sub(s, #before_path + 1), "[%[%]]") then return false end
  if find(s, "#.*#") then return false end
  return authority_ok(s)
end
formats["uri-reference"] = uri_reference

formats.uri = function(s)
  local scheme = match(s, "^(%a[%w%+%-%.]*):")
  if not scheme then return false end
  return uri_reference(s)
end

formats.regex = function(s)
  return re.compile(s, "u") ~= nil
end

local function json_pointer(s)
  if s == "" then return true end
  if sub(s, 1, 1) ~= "/" then return false end
  return not find(gsub(s, "~[01]", ""), "~")
end
formats["json-pointer"] = json_pointer

formats["relative-json-pointer"] = function(s)
  local n, rest = match(s, "^(%d+)(.*)$")
  if not n or (#n > 1 and sub(n, 1, 1) == "0") then return false end
  return rest == "#" or json_pointer(rest)
end

return formats
