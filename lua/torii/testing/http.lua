-- torii.testing.http: a byte-exact HTTP/1.1 client for testing the gateway.
--
-- Built on luasocket with non-blocking sockets and socket.select, so that
-- every wait is bounded by a deadline (default 5 s) and a read returns as
-- soon as some bytes arrive. Only loopback addresses are allowed.
--
-- Responses keep the wire view: headers as an ordered list with their case,
-- the raw head, how the body was framed, 1xx interim responses, trailers.

local socket = require "socket"

local concat, insert, remove = table.concat, table.insert, table.remove
local pairs, ipairs, tostring, tonumber = pairs, ipairs, tostring, tonumber
local setmetatable, next = setmetatable, next
local string_format, math_min = string.format, math.min

local http = {}

local DEFAULT_TIMEOUT = 5
local MAX_HEAD = 1024 * 1024
local MAX_INTERIM = 64
local RECV_SIZE = 65536

local now = socket.gettime -- wall clock, but only differences are used

---------------------------------------------------------------------------
-- Response objects

local Response = {}
Response.__index = Response

--- Value of a header (case-insensitive), repeats joined with ", "; or nil.
function Response:header(name)
  return self.h[name:lower()]
end

--- How many times a header appears.
function Response:count(name)
  local n, lname = 0, name:lower()
  for _, hv in ipairs(self.headers) do
    if hv[1]:lower() == lname then n = n + 1 end
  end
  return n
end

--- Every value of a header, in order.
function Response:values(name)
  local out, lname = {}, name:lower()
  for _, hv in ipairs(self.headers) do
    if hv[1]:lower() == lname then out[#out + 1] = hv[2] end
  end
  return out
end

--- Value of a trailer field (case-insensitive), repeats joined; or nil.
function Response:trailer(name)
  local vals, lname = {}, name:lower()
  for _, hv in ipairs(self.trailers or {}) do
    if hv[1]:lower() == lname then vals[#vals + 1] = hv[2] end
  end
  return vals[1] and concat(vals, ", ") or nil
end

local function header_map(list)
  local h = {}
  for _, hv in ipairs(list) do
    local k = hv[1]:lower()
    h[k] = h[k] and (h[k] .. ", " .. hv[2]) or hv[2]
  end
  return h
end

-- "Name: value" lines (without CRLF) into a list of {name, value}.
local function parse_fields(lines, first, last)
  local list = {}
  for i = first, last do
    local line = lines[i]
    if line:find("^[ \t]") then return nil, "parse error: obsolete line folding: " .. line end
    local name, value = line:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, "parse error: bad header line: " .. line end
    list[#list + 1] = { name, value }
  end
  return list
end

local function parse_head(raw)
  local body = raw:sub(1, -5) -- drop the final CRLFCRLF
  if body:find("\n", 1, true) and body:gsub("\r\n", ""):find("\n", 1, true) then
    return nil, "parse error: bare LF in head"
  end
  local lines = {}
  for line in (body .. "\r\n"):gmatch("(.-)\r\n") do lines[#lines + 1] = line end
  local major, minor, status, rest = lines[1]:match("^HTTP/(%d)%.(%d) (%d%d%d)(.*)$")
  if not major or (rest ~= "" and rest:sub(1, 1) ~= " ") then
    return nil, "parse error: bad status line: " .. lines[1]
  end
  local headers, err = parse_fields(lines, 2, #lines)
  if not headers then return nil, err end
  return setmetatable({
    status = tonumber(status),
    reason = rest:sub(2),
    version = major .. "." .. minor,
    headers = headers,
    h = header_map(headers),
    raw_head = raw,
  }, Response)
end

---------------------------------------------------------------------------
-- Connections

local Conn = {}
Conn.__index = Conn

--- Connect to 127.0.0.1 (or ::1) at port. opts: host, timeout (default 5 s).
-- Returns a connection, or nil and an error.
function http.connect(port, opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  if host ~= "127.0.0.1" and host ~= "::1" then
    return nil, "only 127.0.0.1 and ::1 are allowed, not " .. tostring(host)
  end
  local sock, err = (host == "::1" and socket.tcp6 or socket.tcp)()
  if not sock then return nil, err end
  local timeout = opts.timeout or DEFAULT_TIMEOUT
  sock:settimeout(timeout)
  local ok, cerr = sock:connect(host, tonumber(port))
  if not ok then
    sock:close()
    return nil, cerr
  end
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  return setmetatable({
    sock = sock, port = tonumber(port), host = host, timeout = timeout,
    buf = "", eof = false, methods = {},
  }, Conn)
end

-- One receive, waiting until the deadline for readability. true when bytes
-- were appended to self.buf; nil, "closed" | "timeout" | err otherwise.
function Conn:_fill(deadline)
  while true do
    if self.eof then return nil, "closed" end
    local data, err, partial = self.sock:receive(RECV_SIZE)
    local chunk = data or partial
    if err and err ~= "timeout" then
      self.eof = true
      self.close_reason = err == "closed" and "eof" or err
    end
    if chunk and #chunk > 0 then
      self.buf = self.buf .. chunk
      return true
    end
    if self.eof then return nil, "closed" end
    local left = deadline - now()
    if left <= 0 then return nil, "timeout" end
    socket.select({ self.sock }, nil, math_min(left, 1))
  end
end

-- Exactly n bytes, or nil, err and what was read.
function Conn:_read_exact(n, deadline)
  local parts, have = {}, 0
  while have < n do
    if #self.buf == 0 then
      local ok, err = self:_fill(deadline)
      if not ok then return nil, err, concat(parts) end
    end
    local take = self.buf:sub(1, n - have)
    self.buf = self.buf:sub(#take + 1)
    parts[#parts + 1] = take
    have = have + #take
  end
  return concat(parts)
end

-- A CRLF-terminated line (without the CRLF), or nil, err.
function Conn:_read_line(deadline, limit)
  local from = 1
  while true do
    local e = self.buf:find("\r\n", from, true)
    if e then
      local line = self.buf:sub(1, e - 1)
      self.buf = self.buf:sub(e + 2)
      return line
    end
    if #self.buf > (limit or 65536) then return nil, "parse error: line too long" end
    from = math.max(#self.buf - 1, 1)
    local ok, err = self:_fill(deadline)
    if not ok then return nil, err end
  end
end

-- Everything until EOF: data, and nil or the error that ended it early.
function Conn:_read_to_eof(deadline)
  local parts = { self.buf }
  self.buf = ""
  while true do
    local ok, err = self:_fill(deadline)
    parts[#parts + 1] = self.buf
    self.buf = ""
    if not ok then
      return concat(parts), err ~= "closed" and err or nil
    end
  end
end

--- Send raw bytes. true, or nil and an error.
function Conn:send(data, timeout)
  local deadline = now() + (timeout or self.timeout)
  local i = 1
  while i <= #data do
    local last, err, partial = self.sock:send(data, i)
    if last then
      i = last + 1
    else
      if partial and partial >= i then i = partial + 1 end
      if err ~= "timeout" then return nil, err end
      local left = deadline - now()
      if left <= 0 then return nil, "timeout" end
      socket.select(nil, { self.sock }, math_min(left, 1))
    end
  end
  return true
end

local function header_list(headers)
  if headers == nil then return {} end
  if headers[1] ~= nil or next(headers) == nil then return headers end
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do out[#out + 1] = { k, headers[k] } end
  return out
end

--- The bytes of a request. See Conn:request.
function http.build_request(req)
  local version = req.version or "1.1"
  local lines = { string_format("%s %s HTTP/%s", req.method or "GET", req.path or "/", version) }
  local given = {}
  local headers = header_list(req.headers)
  for _, hv in ipairs(headers) do given[tostring(hv[1]):lower()] = true end
  if version == "1.1" and not given.host and req.host ~= false then
    lines[#lines + 1] = "Host: " .. (req.host or "127.0.0.1")
  end
  for _, hv in ipairs(headers) do lines[#lines + 1] = hv[1] .. ": " .. tostring(hv[2]) end
  local framed = given["content-length"] or given["transfer-encoding"]
  local body = req.body
  if req.chunked then
    if not given["transfer-encoding"] then lines[#lines + 1] = "Transfer-Encoding: chunked" end
    local parts = {}
    for _, part in ipairs(req.chunked) do
      if #part > 0 then parts[#parts + 1] = string_format("%x\r\n%s\r\n", #part, part) end
    end
    parts[#parts + 1] = "0\r\n"
    for _, hv in ipairs(header_list(req.trailers)) do
      parts[#parts + 1] = hv[1] .. ": " .. tostring(hv[2]) .. "\r\n"
    end
    parts[#parts + 1] = "\r\n"
    body = concat(parts)
  elseif body ~= nil and not framed then
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  return concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

--- Send a request. req: method ("GET"), path ("/"), version ("1.1"|"1.0"),
-- headers ({{"Name", "value"}, ...} kept in order, or {Name = "value"} sent
-- sorted), body, chunked ({"part", ...}: sent chunked, body ignored),
-- trailers (with chunked), host (Host value, or false to send none).
-- Adds Host: 127.0.0.1 for 1.1, and Content-Length for a body unless
-- chunked or the headers already frame it. true, or nil and an error.
function Conn:request(req)
  req = req or {}
  local ok, err = self:send(http.build_request(req))
  if ok then insert(self.methods, (req.method or "GET"):upper()) end
  return ok, err
end

-- Reads the head of one response: a Response, or nil, err, raw bytes.
function Conn:_read_head(deadline)
  local from = 1
  while true do
    local e = self.buf:find("\r\n\r\n", from, true)
    if e then
      local raw = self.buf:sub(1, e + 3)
      self.buf = self.buf:sub(e + 4)
      local resp, err = parse_head(raw)
      if not resp then return nil, err, raw end
      return resp
    end
    if #self.buf > MAX_HEAD then return nil, "parse error: head too large", self.buf end
    from = math.max(#self.buf - 3, 1)
    local ok, err = self:_fill(deadline)
    if not ok then
      local raw = self.buf
      return nil, err, raw ~= "" and raw or nil
    end
  end
end

-- Chunked body into resp (body, chunks, trailers); nil, err on failure.
function Conn:_read_chunked(resp, deadline)
  local parts, raw = {}, {}
  resp.chunks, resp.trailers = {}, {}
  local function fail(err)
    resp.body, resp.raw_body = concat(parts), concat(raw)
    return nil, err
  end
  while true do
    local line, err = self:_read_line(deadline)
    if not line then return fail(err) end
    raw[#raw + 1] = line .. "\r\n"
    local hex, ext = line:match("^(%x+)[ \t]*(.*)$")
    if not hex or #hex > 15 or (ext ~= "" and ext:sub(1, 1) ~= ";") then
      return fail("parse error: bad chunk size line: " .. line)
    end
    if ext ~= "" then
      resp.chunk_exts = resp.chunk_exts or {}
      resp.chunk_exts[#resp.chunk_exts + 1] = ext
    end
    local size = tonumber(hex, 16)
    if size == 0 then break end
    local data, derr, partial = self:_read_exact(size, deadline)
    if not data then
      parts[#parts + 1], raw[#raw + 1] = partial, partial
      return fail(derr)
    end
    parts[#parts + 1], raw[#raw + 1] = data, data
    resp.chunks[#resp.chunks + 1] = size
    local crlf, cerr = self:_read_exact(2, deadline)
    if not crlf then return fail(cerr) end
    raw[#raw + 1] = crlf
    if crlf ~= "\r\n" then return fail("parse error: chunk data not followed by CRLF") end
  end
  local tlines = {}
  while true do
    local line, err = self:_read_line(deadline)
    if not line then return fail(err) end
    raw[#raw + 1] = line .. "\r\n"
    if line == "" then break end
    tlines[#tlines + 1] = line
  end
  local trailers, terr = parse_fields(tlines, 1, #tlines)
  if not trailers then return fail(terr) end
  resp.trailers = trailers
  resp.body, resp.raw_body = concat(parts), concat(raw)
  return true
end

-- Content-Length value: number, nil when absent, or false when invalid.
local function content_length(resp)
  local vals = resp:values("Content-Length")
  if #vals == 0 then return nil end
  local n
  for _, v in ipairs(vals) do
    for item in (v .. ","):gmatch("[ \t]*([^,]-)[ \t]*,") do
      if not item:match("^%d+$") or #item > 15 then return false end
      local m = tonumber(item)
      if n and m ~= n then return false end
      n = m
    end
  end
  return n or false
end

local function body_framing(resp, head_request)
  local s = resp.status
  if head_request or s < 200 or s == 204 or s == 304 then return "none" end
  local te = resp:header("Transfer-Encoding")
  if te then
    local last = te:lower():match("([^,%s]+)[%s,]*$")
    return last == "chunked" and "chunked" or "close"
  end
  local cl = content_length(resp)
  if cl == false then return nil, "parse error: invalid Content-Length" end
  if cl then return "content-length", cl end
  return "close"
end

-- Reads the body into resp. true, or nil, err (resp.incomplete set).
function Conn:_read_body(resp, head_request, deadline)
  local framing, arg = body_framing(resp, head_request)
  if not framing then return nil, arg end
  resp.framing = framing
  local ok, err = true, nil
  if framing == "none" then
    resp.body = ""
  elseif framing == "content-length" then
    local data, derr, partial = self:_read_exact(arg, deadline)
    resp.body = data or partial
    ok, err = data ~= nil, derr
  elseif framing == "chunked" then
    ok, err = self:_read_chunked(resp, deadline)
  else
    resp.body, err = self:_read_to_eof(deadline)
    ok = err == nil
  end
  resp.raw_body = resp.raw_body or resp.body
  if not ok then
    resp.incomplete, resp.error = true, err
    return nil, err
  end
  return true
end

--- Read one response. opts: head (true for a response to HEAD; otherwise
-- guessed from the request sent with conn:request), timeout.
-- Collects 1xx responses (but 101) into resp.interim. Returns the response,
-- or nil and "closed" | "timeout" | "parse error: ..." (and raw bytes read).
-- A body cut short returns the response with incomplete = true, error = err,
-- and err as the second value.
function Conn:read_response(opts)
  opts = opts or {}
  local deadline = now() + (opts.timeout or self.timeout)
  local method = remove(self.methods, 1)
  local head_request = opts.head
  if head_request == nil then head_request = method == "HEAD" end
  local interim = {}
  for _ = 1, MAX_INTERIM do
    local resp, err, raw = self:_read_head(deadline)
    if not resp then return nil, err, raw end
    if resp.status >= 200 or resp.status == 101 then
      resp.interim = interim
      local ok, berr = self:_read_body(resp, head_request, deadline)
      if ok == nil and not resp.incomplete then return nil, berr, resp.raw_head end
      return resp, berr
    end
    interim[#interim + 1] = resp
  end
  return nil, "parse error: too many 1xx responses"
end

--- Raw bytes: exactly n (nil, err, partial when cut short), or with n nil
-- whatever arrives first within the timeout plus what is already there.
function Conn:read_raw(n, timeout)
  local deadline = now() + (timeout or self.timeout)
  if n then return self:_read_exact(n, deadline) end
  if #self.buf == 0 then
    local ok, err = self:_fill(deadline)
    if not ok then return nil, err end
  end
  for _ = 1, 64 do -- drain what is already readable, without waiting
    if not self:_fill(0) then break end
  end
  local data = self.buf
  self.buf = ""
  return data
end

--- Everything until the peer closes: data, and nil or "timeout".
function Conn:read_all(timeout)
  return self:_read_to_eof(now() + (timeout or self.timeout))
end

--- true if the peer closes (EOF or reset) within timeout; data that arrives
-- meanwhile is kept for later reads.
function Conn:closed(timeout)
  local deadline = now() + (timeout or self.timeout)
  while not self.eof do
    local ok, err = self:_fill(deadline)
    if not ok and err == "timeout" then return false end
  end
  return true
end

function Conn:close()
  if not self.sock_closed then
    self.sock_closed = true
    self.sock:close()
  end
  return true
end

--- Half-close: send FIN, keep reading.
function Conn:shutdown_write()
  return self.sock:shutdown("send")
end

--- Close with SO_LINGER 0, so the peer gets a RST.
function Conn:reset()
  if self.sock_closed then return true end
  self.sock:setoption("linger", { on = true, timeout = 0 })
  return self:close()
end

---------------------------------------------------------------------------
-- One-shot helpers

--- connect + request + read_response + close. opts: the request fields
-- (method, path, headers, body, chunked, trailers, version) plus host,
-- timeout. Returns the response (and an error if cut short), or nil, err.
function http.request(port, opts)
  opts = opts or {}
  local conn, err = http.connect(port, opts)
  if not conn then return nil, err end
  local ok, serr = conn:request(opts)
  if not ok then
    conn:close()
    return nil, serr
  end
  local resp, rerr = conn:read_response({ timeout = opts.timeout })
  conn:close()
  return resp, rerr
end

--- GET path on port; opts as http.request.
function http.get(port, path, opts)
  local req = {}
  for k, v in pairs(opts or {}) do req[k] = v end
  req.method, req.path = req.method or "GET", path or "/"
  return http.request(port, req)
end

http.Response = Response
http.Conn = Conn
http.parse_head = parse_head

return http
