-- torii.schema.uri: just enough RFC 3986 for JSON Schema identifiers.
--
--   uri.resolve(base, ref) -> absolute reference (RFC 3986 section 5.2)
--   uri.split(u)           -> u without its fragment, fragment (nil if none)
--   uri.normalize(u)       -> u without an empty trailing "#"
--   uri.pointer_segments(fragment) -> list of unescaped JSON pointer tokens
--                             | nil, err (percent-decoding applied first)

local find, sub, gsub, char, match = string.find, string.sub, string.gsub, string.char, string.match
local tonumber, concat = tonumber, table.concat

local uri = {}

-- scheme, authority, path, query, fragment (nil when absent)
local function parse(u)
  local scheme, rest = match(u, "^([%a][%w%+%-%.]*):(.*)$")
  if not scheme then rest = u end
  local fragment
  local h = find(rest, "#", 1, true)
  if h then fragment = sub(rest, h + 1); rest = sub(rest, 1, h - 1) end
  local query
  local q = find(rest, "?", 1, true)
  if q then query = sub(rest, q + 1); rest = sub(rest, 1, q - 1) end
  local authority
  if sub(rest, 1, 2) == "//" then
    local slash = find(rest, "/", 3, true)
    if slash then
      authority = sub(rest, 3, slash - 1)
      rest = sub(rest, slash)
    else
      authority = sub(rest, 3)
      rest = ""
    end
  end
  return scheme, authority, rest, query, fragment
end
uri.parse = parse

local function remove_dot_segments(path)
  local out, n = {}, 0
  local input = path
  while input ~= "" do
    if sub(input, 1, 3) == "../" then
      input = sub(input, 4)
    elseif sub(input, 1, 2) == "./" then
      input = sub(input, 3)
    elseif sub(input, 1, 3) == "/./" then
      input = sub(input, 3)
    elseif input == "/." then
      input = "/"
    elseif sub(input, 1, 4) == "/../" or input == "/.." then
      input = input == "/.." and "/" or sub(input, 4)
      if n > 0 then out[n] = nil; n = n - 1 end
    elseif input == "." or input == ".." then
      input = ""
    else
      local s, e = find(input, "^/?[^/]*")
      n = n + 1
      out[n] = sub(input, s, e)
      input = sub(input, e + 1)
    end
  end
  return concat(out)
end

local function merge(base_authority, base_path, ref_path)
  if base_authority and base_path == "" then return "/" .. ref_path end
  local last = match(base_path, "^(.*/)[^/]*$")
  return (last or "") .. ref_path
end

local function compose(scheme, authority, path, query, fragment)
  local out = {}
  if scheme then out[#out + 1] = scheme .. ":" end
  if authority then out[#out + 1] = "//" .. authority end
  out[#out + 1] = path
  if query then out[#out + 1] = "?" .. query end
  if fragment then out[#out + 1] = "#" .. fragment end
  return concat(out)
end

function uri.resolve(base, ref)
  if not base or base == "" then return ref end
  local rs, ra, rp, rq, rf = parse(ref)
  local bs, ba, bp, bq = parse(base)
  local s, a, p, q
  if rs then
    s, a, p, q = rs, ra, remove_dot_segments(rp), rq
  elseif ra then
    s, a, p, q = bs, ra, remove_dot_segments(rp), rq
  elseif rp == "" then
    s, a, p, q = bs, ba, bp, rq or bq
  else
    if sub(rp, 1, 1) == "/" then
      p = remove_dot_segments(rp)
    elseif not ba and not find(bp, "/", 1, true) then
      -- a base without hierarchy (urn:x:y): nothing to merge with
      p = rp
    else
      p = remove_dot_segments(merge(ba, bp, rp))
    end
    s, a, q = bs, ba, rq
  end
  return compose(s, a, p, q, rf)
end

function uri.split(u)
  local h = find(u, "#", 1, true)
  if not h then return u, nil end
  return sub(u, 1, h - 1), sub(u, h + 1)
end

function uri.normalize(u)
  if sub(u, -1) == "#" then return sub(u, 1, -2) end
  return u
end

local function percent_decode(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end
uri.percent_decode = percent_decode

function uri.pointer_segments(fragment)
  local p = percent_decode(fragment)
  if p == "" then return {} end
  if sub(p, 1, 1) ~= "/" then return nil, "not a JSON pointer: " .. p end
  local segs = {}
  for token in (sub(p, 2) .. "/"):gmatch("([^/]*)/") do
    if find(token, "~[^01]") or sub(token, -1) == "~" then
      return nil, "bad escape in JSON pointer: " .. p
    end
    segs[#segs + 1] = gsub(gsub(token, "~1", "/"), "~0", "~")
  end
  return segs
end

return uri
