-- torii.http: an HTTP/1.1 client for plugins, over torii.socket: the
-- calling coroutine waits, the worker does not.
--
--   local res, err = torii.http.request{
--     method = "POST", url = "http://127.0.0.1:8080/check?x=1",
--     headers = { ["Content-Type"] = "application/json" }, body = "{}",
--     timeout = { connect = 1000, send = 1000, read = 5000 }, -- ms (or one number)
--   }
--   if not res then return torii.response.exit(502, { message = err }) end
--   res.status, res.headers["content-type"], res.body
--
-- Connections are kept alive in the worker's pool for their address
-- (keepalive = false closes them; pool_size and keepalive_timeout tune
-- it) when the response allows it. With stream = true the call returns
-- once the head has arrived: res:read_body_chunk() then gives the body
-- piece by piece (nil at its end), res:read_body() the rest at once, and
-- res:close() drops the connection instead. Errors: nil and a reason
-- ("connection refused", "timeout", "closed", "invalid response: ...");
-- bad arguments raise an error. Plain http only: no TLS yet.
--
-- This file needs no C: the socket comes from M.tcp (torii.socket by
-- default), so that its logic is testable with a fake socket.
local type, tostring, tonumber, pairs, ipairs, error, setmetatable, rawget =
  type, tostring, tonumber, pairs, ipairs, error, setmetatable, rawget
local concat, min, floor = table.concat, math.min, math.floor

local M = {}

--- The socket constructor (replaced by tests).
function M.tcp()
  return require("torii.socket").tcp()
end

local DEFAULT_TIMEOUT = 60000 -- ms
local MAX_HEAD = 65536 -- response head bytes
local MAX_HEADERS = 100
local PIECE = 65536 -- streamed body pieces are at most this big
local DEFAULT_MAX_BODY = 16 * 1048576

-- Methods a request may be sent again for when a pooled connection turns
-- out to be closed before any answer (RFC 9110 9.2.2).
local IDEMPOTENT = { GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true }
local OWN_HEADERS = { ["content-length"] = true, ["transfer-encoding"] = true, connection = true }

-- Headers: any case in, lower case stored; lookups fold case too.
local headers_mt = {
  __index = function(t, k)
    if type(k) == "string" then return rawget(t, k:lower()) end
  end,
}

--- "http://host[:port]/path?query" as host, port, target (path and query),
--- and the Host header's value; or nil and why.
function M.parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then return nil, "not an absolute URL" end
  scheme = scheme:lower()
  if scheme == "https" then return nil, "https is not supported (torii.http has no TLS yet)" end
  if scheme ~= "http" then return nil, "unsupported scheme " .. scheme end
  local authority, target = rest:match("^([^/?#]*)([^#]*)")
  if authority:find("@", 1, true) then return nil, "user information in URLs is not supported" end
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  else
    host, port = authority:match("^([^:]*)(.*)$")
  end
  if not host or host == "" then return nil, "no host in the URL" end
  if port == "" then
    port = 80
  else
    port = tonumber(port:match("^:(%d+)$"))
    if not port or port < 1 or port > 65535 then return nil, "bad port in the URL" end
  end
  if target == "" then
    target = "/"
  elseif target:sub(1, 1) == "?" then
    target = "/" .. target
  end
  return host, port, target, port == 80 and host or (host .. ":" .. port)
end

local function escape(v)
  return (tostring(v):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- A query string from a table (keys sorted, so the result is stable).
function M.encode_query(args)
  local keys, parts = {}, {}
  for k in pairs(args) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = args[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = escape(k) .. "=" .. escape(x) end
    else
      parts[#parts + 1] = escape(k) .. "=" .. escape(v)
    end
  end
  return concat(parts, "&")
end

-- One header line; names must be tokens and values free of CR, LF and NUL
-- (anything else would let a value start a header or a request of its own).
-- nil and why for a bad one.
local function put_header(out, name, value)
  name = tostring(name)
  if not name:match("^[!#$%%&'*+%-.^_`|~%w]+$") then return nil, "bad header name " .. ("%q"):format(name) end
  value = tostring(value)
  if value:find("[\r\n%z]") then return nil, "CR, LF or NUL in the value of " .. name end
  out[#out + 1] = name .. ": " .. value .. "\r\n"
  return true
end

-- Where to connect and what to send, from the options; nil and why when
-- they are wrong.
local function plan(opts)
  if type(opts) ~= "table" then return nil, "options must be a table" end
  local host, port, target, host_header
  if opts.url ~= nil then
    host, port, target, host_header = M.parse_url(tostring(opts.url))
    if not host then return nil, port end
  else
    host, port, target = opts.host, tonumber(opts.port or 80), opts.path or "/"
    if type(host) ~= "string" or host == "" then return nil, "url or host is needed" end
    if not port or port < 1 or port > 65535 or port ~= floor(port) then return nil, "port must be 1 to 65535" end
    local h = host:find(":", 1, true) and host:sub(1, 1) ~= "[" and ("[" .. host .. "]") or host
    host_header = port == 80 and h or (h .. ":" .. port)
  end
  if type(target) ~= "string" or target:sub(1, 1) ~= "/" or target:find("[%c ]") then
    return nil, "the path must start with / and hold no space or control character"
  end
  local q = opts.query
  if type(q) == "table" then q = M.encode_query(q) end
  if q ~= nil and q ~= "" then
    q = tostring(q)
    if q:find("[%c ]") then return nil, "the query must hold no space or control character" end
    target = target .. (target:find("?", 1, true) and "&" or "?") .. q
  end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not method:match("^[A-Z][A-Z_-]*$") then return nil, "bad method" end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then return nil, "body must be a string" end
  if opts.headers ~= nil and type(opts.headers) ~= "table" then return nil, "headers must be a table" end
  local t = opts.timeout or DEFAULT_TIMEOUT
  if type(t) ~= "table" then t = { connect = t, send = t, read = t } end
  return {
    host = host:match("^%[(.*)%]$") or host, port = port, target = target, host_header = host_header,
    method = method, body = body, headers = opts.headers,
    timeouts = { t.connect or t[1] or DEFAULT_TIMEOUT, t.send or t[2] or DEFAULT_TIMEOUT,
      t.read or t[3] or DEFAULT_TIMEOUT },
    keepalive = opts.keepalive ~= false,
    pool_size = opts.pool_size, idle = opts.keepalive_timeout,
    max_body = opts.max_body_size or DEFAULT_MAX_BODY, stream = opts.stream == true,
  }
end

local function request_bytes(pl)
  local out = { pl.method, " ", pl.target, " HTTP/1.1\r\n" }
  local has = {}
  for name, value in pairs(pl.headers or {}) do
    local lname = tostring(name):lower()
    if OWN_HEADERS[lname] then return nil, name .. " is set by torii.http (from body and keepalive)" end
    has[lname] = true
    for _, v in ipairs(type(value) == "table" and value or { value }) do
      local ok, why = put_header(out, name, v)
      if not ok then return nil, why end
    end
  end
  if not has.host then out[#out + 1] = "Host: " .. pl.host_header .. "\r\n" end
  if not has["user-agent"] then out[#out + 1] = "User-Agent: torii\r\n" end
  local body = pl.body
  if body or pl.method == "POST" or pl.method == "PUT" or pl.method == "PATCH" then
    out[#out + 1] = "Content-Length: " .. #(body or "") .. "\r\n"
  end
  if not pl.keepalive then out[#out + 1] = "Connection: close\r\n" end
  out[#out + 1] = "\r\n"
  if body then out[#out + 1] = body end
  return concat(out)
end

-- Does a comma-separated header value hold this token (any case)?
local function has_token(value, tok)
  if not value then return false end
  for part in value:gmatch("[^,]+") do
    if part:match("^%s*(.-)%s*$"):lower() == tok then return true end
  end
  return false
end

-- Read one response head: status, version, reason, headers, header list;
-- or nil, error, and whether nothing at all had arrived (a stale pooled
-- connection, then).
local function read_head(sock)
  local line, err, partial = sock:receive("*l")
  if not line then return nil, err, partial == nil or partial == "" end
  local minor, status, reason = line:match("^HTTP/1%.([01]) (%d%d%d) ?(.*)$")
  if not minor then return nil, "invalid response: bad status line" end
  local headers, list, size = setmetatable({}, headers_mt), {}, #line
  while true do
    line, err = sock:receive("*l")
    if not line then return nil, err end
    if line == "" then break end
    size = size + #line + 2
    if size > MAX_HEAD or #list >= MAX_HEADERS then return nil, "invalid response: head too large" end
    local name, value = line:match("^([!#$%%&'*+%-.^_`|~%w]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, "invalid response: bad header line" end
    list[#list + 1] = { name, value }
    local key = name:lower()
    local prev = rawget(headers, key)
    headers[key] = prev and (prev .. ", " .. value) or value
  end
  return { status = tonumber(status), version = "1." .. minor, reason = reason, headers = headers,
    header_list = list }
end

-- How the body comes (RFC 9112 6.3): "none", "chunked", "length" or
-- "close"; and the length. nil and an error for framing one cannot trust.
local function framing(res, method)
  local st = res.status
  if method == "HEAD" or st < 200 or st == 204 or st == 304 then return "none" end
  local te = res.headers["transfer-encoding"]
  if te then
    -- with Content-Length as well, the length is not to be trusted: the
    -- connection is not reused (see keep())
    local last = te:match("([^,%s][^,]*)%s*$")
    if last and last:lower() == "chunked" then return "chunked" end
    return "close"
  end
  local cl = res.headers["content-length"]
  if cl then
    local first
    for v in cl:gmatch("[^,]+") do
      v = v:match("^%s*(%d+)%s*$")
      if not v or (first and v ~= first) then return nil, "invalid response: bad Content-Length" end
      first = v
    end
    local len = tonumber(first)
    if not len or len > 2 ^ 53 then return nil, "invalid response: bad Content-Length" end
    return "length", len
  end
  return "close"
end

local Response = {}
Response.__index = Response

-- May the connection serve another request once this body is read?
local function keep(res, pl)
  if not pl.keepalive or res.framing == "close" or res.status == 101 then return false end
  local h = res.headers
  if h["transfer-encoding"] and h["content-length"] then return false end
  if res.version == "1.0" then return has_token(h.connection, "keep-alive") end
  return not has_token(h.connection, "close")
end

-- The body is over: the connection goes back to the pool or is closed.
local function release(res, reusable)
  local sock = res._sock
  if not sock then return end
  res._sock = nil
  if reusable and res._keep then
    sock:setkeepalive(res._plan.idle, res._plan.pool_size)
  else
    sock:close()
  end
end

local function fail(res, err)
  release(res, false)
  res._err = err
  return nil, err
end

-- The rest of the current chunk or length-framed body (res._left bytes):
-- whatever arrives, up to `max`, or (nil) all of it.
local function take_left(res, max)
  local data, err
  if max then
    data, err = res._sock:receiveany(min(res._left, max))
  else
    data, err = res._sock:receive(res._left)
  end
  if not data then return nil, err end
  res._left = res._left - #data
  return data
end

-- The next piece of a chunked body: at most `max` bytes (nil: the whole
-- chunk at once). "" at the body's end.
local function chunked_piece(res, max)
  local sock = res._sock
  if res._left == 0 then
    if res._chunks > 0 then -- the CRLF that ends the previous chunk's data
      local crlf, err = sock:receive("*l")
      if crlf ~= "" then return nil, crlf and "invalid response: bad chunk end" or err end
    end
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local hex, ext = line:match("^(%x+)[ \t]*(.*)$")
    if not hex or #hex > 13 or (ext ~= "" and ext:sub(1, 1) ~= ";") then
      return nil, "invalid response: bad chunk size"
    end
    res._left = tonumber(hex, 16)
    res._chunks = res._chunks + 1
    if res._left == 0 then -- the last chunk: trailers (dropped) up to an empty line
      repeat
        line, err = sock:receive("*l")
        if not line then return nil, err end
      until line == ""
      return ""
    end
    if not max and res._left > res._plan.max_body then return nil, "body too large" end
  end
  return take_left(res, max)
end

-- The next piece of any body; "" at its end.
local function next_piece(res, max)
  local kind, sock = res.framing, res._sock
  if kind == "chunked" then return chunked_piece(res, max) end
  if kind == "length" then
    if res._left == 0 then return "" end
    if not max and res._left > res._plan.max_body then return nil, "body too large" end
    return take_left(res, max)
  end
  -- close-delimited: the peer's close ends it
  local data, err = sock:receiveany(max or PIECE)
  if data then return data end
  if err == "closed" then return "" end
  return nil, err
end

--- The next piece of a streamed body, nil at its end, or nil and an error.
function Response:read_body_chunk(max)
  if self._done then return nil end
  if self._err then return nil, self._err end
  max = tonumber(max) or PIECE
  local piece, err = next_piece(self, max)
  if not piece then return fail(self, err) end
  if piece == "" then
    self._done = true
    release(self, true)
    return nil
  end
  return piece
end

--- The rest of the body at once (at most max_body_size bytes).
function Response:read_body()
  if self._err then return nil, self._err end
  local parts, size = {}, 0
  while not self._done do
    local piece, err = next_piece(self, self.framing == "close" and PIECE or nil)
    if not piece then return fail(self, err) end
    if piece == "" then
      self._done = true
      release(self, true)
    else
      size = size + #piece
      if size > self._plan.max_body then return fail(self, "body too large") end
      parts[#parts + 1] = piece
    end
  end
  return concat(parts)
end

--- Stop reading: the connection is closed (it holds unread bytes).
function Response:close()
  self._done = true
  release(self, false)
  return 1
end

-- One exchange on one connection. On failure also says whether it may be
-- tried again on another connection (a pooled one the peer had closed).
local function exchange(pl, bytes)
  local sock = M.tcp()
  sock:settimeouts(pl.timeouts[1], pl.timeouts[2], pl.timeouts[3])
  local ok, err = sock:connect(pl.host, pl.port)
  if not ok then return nil, err end
  local reused = (sock:getreusedtimes() or 0) > 0
  local retry = reused and IDEMPOTENT[pl.method]
  ok, err = sock:send(bytes)
  if not ok then
    sock:close()
    return nil, err, retry
  end
  local res, nothing
  repeat -- interim (1xx) heads are skipped
    res, err, nothing = read_head(sock)
    if not res then
      sock:close()
      return nil, err, retry and nothing and (err == "closed" or err == "connection reset by peer")
    end
    retry = false -- an answer came: never send again
  until res.status >= 200 or res.status == 101
  local kind, len = framing(res, pl.method)
  if not kind then
    sock:close()
    return nil, len
  end
  res.framing, res._left, res._chunks = kind, len or 0, 0
  res._sock, res._plan = sock, pl
  res._keep = keep(res, pl)
  res.reused = reused
  setmetatable(res, Response)
  if kind == "none" or (kind == "length" and len == 0) then
    res._done = true
    release(res, true)
  end
  return res
end

--- Send a request and read its response. See the top of this file for
--- the options. res = {status, reason, version, headers, header_list, body}
--- or nil and an error.
function M.request(opts)
  local pl, why = plan(opts)
  local bytes
  if pl then bytes, why = request_bytes(pl) end
  if not bytes then error("torii.http.request: " .. why, 2) end
  local res, err, again
  -- A pooled connection may have been closed by the peer just now: then
  -- the request goes again, on the next one or a new one.
  for _ = 1, 4 do
    res, err, again = exchange(pl, bytes)
    if res or not again then break end
  end
  if not res then return nil, err end
  if pl.stream then return res end
  local body
  body, err = res:read_body()
  if not body then return nil, err end
  res.body = body
  return res
end

return M
