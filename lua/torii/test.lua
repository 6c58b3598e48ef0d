-- torii.test: run requests through a plugin chain in this process, on the
-- real runtime, from busted specs run by `torii test`:
--
--   local tt = require "torii.test"
--   local gw = tt.new{ plugins = { ["key-auth"] = {} },             -- one route, /*
--                      consumers = { { username = "ann", plugins = { ["key-auth"] = { key = "k1" } } } } }
--   local res = gw:request{ method = "POST", path = "/x?a=1", headers = { apikey = "k1" }, body = "hi",
--                           upstream = { status = 201, headers = { ["X-Up"] = "1" }, body = "done" } }
--   assert.status(201, res)
--   assert.upstream_header("X-Consumer-Username", "ann", res)
--
-- A gateway is what a worker builds from a configuration: the
-- configuration loaded and checked by the real loader, the plugins loaded
-- into a VM of their own, the router. gw:request walks a request through
-- it on the worker's paths: head parsing, routing, rewrite and access (a
-- plugin that waits, with torii.sleep say, is resumed by the event loop),
-- the upstream request built with the plugins' edits, the upstream's
-- answer through header_filter and body_filter, then the log phase.
--
-- tt.new(opts): opts.config is a whole configuration (YAML or JSON text,
-- or a Lua table); `listen` and, for tables, a route's `upstream` may be
-- left out. Or the short form: opts.plugins (one route "test" on
-- opts.uri, default "/*"), with consumers, global_rules, services,
-- shared_dicts and plugin_dirs beside it. Relative paths (plugin_dirs,
-- include) start from the spec file's directory. Also: log_level,
-- upstream (the default answer), remote_addr (default client address),
-- timeout (seconds a request may wait, default 60). A bad configuration
-- raises the loader's message; tt.check(opts) returns nil, message.
--
-- gw:request(req): req.method ("GET"), req.path ("/", with the query),
-- req.query (string or table, appended), req.headers (map or list of
-- {name, value}), req.host (Host, default "localhost"), req.body (a table
-- is sent as JSON), req.http ("1.1" or "1.0"), req.remote_addr, and
-- req.upstream: the upstream's answer {status, headers, body} (body a
-- string, or a list of pieces that reach body_filter one by one; default
-- 200 with an empty body), or "host:port" of a real server to send the
-- request to.
--
-- The result: res.status, res.reason, res.headers (in order as
-- {name, value}, and by name in any case: res.headers["x-a"]),
-- res:header(name), res.body (what the client gets, after body_filter),
-- res.upstream (the request as sent upstream: method, target, path, query,
-- headers, body, head; nil when torii or a plugin answered; and
-- res.upstream.balancer = {upstream = id, node = "host:port" or as named}
-- when a balancer phase chose: torii test makes one try and does not send
-- it to another upstream), res.answered
-- ("upstream", "plugin" or "torii"), res.cut (a body_filter failed
-- mid-body), res.ctx (a copy of the request's ctx after the log phase),
-- res.logs (the error log lines of this request: {level, message, line}).
--
-- tt.sleep(seconds) runs the event loop (timers fire); gw:logs() is every
-- log entry since the gateway was made; gw:close() ends it (its timers run
-- once more with premature = true), as garbage collection would.
local ok_tm, tm = pcall(require, "torii.testmode")
if not ok_tm then
  error("torii.test runs inside torii: `torii test [spec paths]` (build/torii test ...)", 2)
end
local json = require "torii.json"
local http = require "torii.testing.http"
local proc = require "torii.testing.proc"
local assertions = require "torii.testing.assertions"

local M = { array = json.array }

local PLACEHOLDER = "127.0.0.1:1" -- a node never connected to: answers come from the spec
local LOG_PATH = tm.dir .. "/error.log"

---------------------------------------------------------------------------
-- Headers: a list of {name, value} that also answers by name, any case.

local Headers = {}
Headers.__index = function(t, k)
  if type(k) ~= "string" then return nil end
  local lk, vals = k:lower(), {}
  for i = 1, #t do
    if t[i][1]:lower() == lk then vals[#vals + 1] = t[i][2] end
  end
  return #vals > 0 and table.concat(vals, ", ") or nil
end

local function header_list(headers)
  local list = setmetatable({}, Headers)
  if headers == nil then return list end
  if #headers > 0 or next(headers) == nil then
    for _, hv in ipairs(headers) do list[#list + 1] = { tostring(hv[1]), tostring(hv[2]) } end
    return list
  end
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names) -- a map has no order: make it stable
  for _, k in ipairs(names) do
    local v = headers[k]
    if type(v) == "table" then
      for _, x in ipairs(v) do list[#list + 1] = { k, tostring(x) } end
    else
      list[#list + 1] = { k, tostring(v) }
    end
  end
  return list
end

-- "Name: value" lines of a head, after its first line.
local function parse_fields(head)
  local first, rest = head:match("^([^\r\n]*)\r\n(.*)$")
  local list = setmetatable({}, Headers)
  for line in (rest or ""):gmatch("([^\r\n]+)\r\n") do
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then list[#list + 1] = { name, value } end
  end
  return first or head, list
end

local function header_method(self, name) return self.headers[name] end

---------------------------------------------------------------------------
-- Configuration

local function deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end

local SHORT_KEYS = { "consumers", "global_rules", "services", "shared_dicts", "plugin_dirs", "client", "proxy",
  "trusted_proxies" }

local function config_table(opts)
  local cfg = deepcopy(opts.config)
  if cfg == nil then
    cfg = { routes = { { id = opts.route_id or "test", uri = opts.uri or "/*", plugins = deepcopy(opts.plugins) } } }
    for _, k in ipairs(SHORT_KEYS) do cfg[k] = deepcopy(opts[k]) end
  end
  if cfg.listen == nil then cfg.listen = PLACEHOLDER end
  for _, r in ipairs(cfg.routes or {}) do
    if type(r) == "table" and r.upstream == nil and r.service_id == nil then
      r.upstream = { nodes = json.array({ PLACEHOLDER }) }
    end
  end
  for _, s in ipairs(cfg.services or {}) do
    if type(s) == "table" and s.upstream == nil then s.upstream = { nodes = json.array({ PLACEHOLDER }) } end
  end
  if opts.log_level then
    cfg.log = cfg.log or {}
    cfg.log.level = opts.log_level
  end
  local text, err = json.encode(cfg, { sort_keys = true })
  if not text then error("tt.new: the configuration cannot be written as JSON: " .. err, 3) end
  return text
end

-- Text as written; `listen` added at its end when missing, so that line
-- numbers in messages stay the file's.
local function config_text(text, opts)
  if opts.log_level then error("tt.new: log_level goes into a text configuration's log: {level: ...}", 3) end
  if text:match("^%s*{") then
    if not text:find('"listen"%s*:') then text = text:gsub("^(%s*{)", '%1"listen": "' .. PLACEHOLDER .. '", ', 1) end
  elseif not text:find("\nlisten%s*:") and not text:find("^listen%s*:") then
    text = text .. "\nlisten: " .. PLACEHOLDER .. "\n"
  end
  return text
end

-- The directory of the spec file that called us (level: its stack level).
local function caller_dir(level)
  local src = (debug.getinfo(level, "S") or {}).source or ""
  local dir = src:sub(1, 1) == "@" and (src:sub(2):match("^(.*)/[^/]*$") or ".") or "."
  if dir:sub(1, 1) ~= "/" then dir = (proc.getcwd() or ".") .. "/" .. dir end
  return dir
end

local function log_size()
  local f = io.open(LOG_PATH, "rb")
  if not f then return 0 end
  local size = f:seek("end")
  f:close()
  return size
end

local function log_since(mark)
  local f = io.open(LOG_PATH, "rb")
  if not f then return {} end
  f:seek("set", mark)
  local text = f:read("*a")
  f:close()
  return assertions.parse_log(text)
end

local GW = {}
GW.__index = GW

local function build(opts, level)
  if type(opts) ~= "table" then error("tt.new: a table of options is needed", level) end
  local text = type(opts.config) == "string" and config_text(opts.config, opts) or config_table(opts)
  local mark = log_size()
  local gw, err = tm.gateway(text, caller_dir(level + 1) .. "/torii.yaml", tm.dir)
  if not gw then return nil, err end
  return setmetatable({ _gw = gw, _mark = mark, upstream = opts.upstream, remote_addr = opts.remote_addr,
    timeout = opts.timeout }, GW)
end

function M.new(opts)
  local gw, err = build(opts, 3)
  if not gw then error(err, 2) end
  return gw
end

--- true, or nil and the loader's message: for specs of a plugin's schema.
function M.check(opts)
  local gw, err = build(opts, 3)
  if not gw then return nil, err end
  gw:close()
  return true
end

--- Run the event loop for `seconds`: timers fire meanwhile.
function M.sleep(seconds)
  tm.wait(tonumber(seconds) or 0)
end

function GW:close()
  if self._gw then self._gw:close() end
  self._gw = nil
end

--- Every log entry since the gateway was made.
function GW:logs()
  return log_since(self._mark)
end

---------------------------------------------------------------------------
-- Requests

local REASONS = { [200] = "OK", [201] = "Created", [204] = "No Content", [301] = "Moved Permanently",
  [302] = "Found", [304] = "Not Modified", [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
  [404] = "Not Found", [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout" }

local function has(list, name)
  return list[name] ~= nil
end

local function encode_query(q)
  if type(q) ~= "table" then return tostring(q) end
  local keys, parts = {}, {}
  for k in pairs(q) do keys[#keys + 1] = k end
  table.sort(keys)
  local function esc(s)
    return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
  end
  for _, k in ipairs(keys) do parts[#parts + 1] = esc(k) .. "=" .. esc(q[k]) end
  return table.concat(parts, "&")
end

-- The client's head and body.
local function client_request(req)
  local method = req.method or "GET"
  local target = req.path or "/"
  if req.query then target = target .. (target:find("?", 1, true) and "&" or "?") .. encode_query(req.query) end
  local headers = header_list(req.headers)
  local body = req.body
  if type(body) == "table" then
    body = json.encode(body)
    if not has(headers, "Content-Type") then headers[#headers + 1] = { "Content-Type", "application/json" } end
  end
  body = body and tostring(body) or ""
  if not has(headers, "Host") and req.http ~= "1.0" then
    table.insert(headers, 1, { "Host", req.host or "localhost" })
  end
  if body ~= "" and not has(headers, "Content-Length") and not has(headers, "Transfer-Encoding") then
    headers[#headers + 1] = { "Content-Length", tostring(#body) }
  end
  local lines = { ("%s %s HTTP/%s"):format(method, target, req.http or "1.1") }
  for _, hv in ipairs(headers) do lines[#lines + 1] = hv[1] .. ": " .. hv[2] end
  return table.concat(lines, "\r\n") .. "\r\n\r\n", body, method
end

-- The upstream request as torii would send it.
local function upstream_view(head, body)
  local line, headers = parse_fields(head)
  local method, target = line:match("^(%S+) (%S+) HTTP/")
  return {
    method = method, target = target, uri = target,
    path = target and target:match("^[^?]*"), query = target and (target:match("%?(.*)$") or ""),
    headers = headers, body = body, head = head, header = header_method,
  }
end

-- A canned answer as the bytes an upstream would send, and its body pieces.
local function canned(answer, method)
  answer = answer or {}
  local status = tonumber(answer.status) or 200
  local headers = header_list(answer.headers)
  local pieces = answer.body
  if type(pieces) ~= "table" then pieces = { pieces and tostring(pieces) or "" } end
  local bodyless = method == "HEAD" or status == 204 or status == 304
  if not has(headers, "Content-Length") and not has(headers, "Transfer-Encoding") and status ~= 204 then
    if #pieces > 1 then
      headers[#headers + 1] = { "Transfer-Encoding", "chunked" }
    else
      headers[#headers + 1] = { "Content-Length", tostring(#(pieces[1] or "")) }
    end
  end
  if bodyless then pieces = {} end
  local lines = { ("HTTP/1.1 %d %s"):format(status, answer.reason or REASONS[status] or "Unknown") }
  for _, hv in ipairs(headers) do lines[#lines + 1] = hv[1] .. ": " .. hv[2] end
  return table.concat(lines, "\r\n") .. "\r\n\r\n", pieces
end

-- Send the upstream request to a real server and read its answer.
local function real(addr, head, body, method, timeout)
  local host, port = tostring(addr):match("^%[?([^%]]*)%]?:(%d+)$")
  if not host then error("upstream: \"host:port\" expected, got " .. tostring(addr), 4) end
  local conn, err = http.connect(tonumber(port), { host = host, timeout = timeout or 10 })
  if not conn then error("upstream " .. addr .. ": " .. tostring(err), 4) end
  local ok, serr = conn:send(head .. body)
  if not ok then
    conn:close()
    error("upstream " .. addr .. ": " .. tostring(serr), 4)
  end
  local resp, rerr = conn:read_response({ head = method == "HEAD" })
  conn:close()
  if not resp then error("upstream " .. addr .. ": " .. tostring(rerr), 4) end
  local pieces = (resp.chunks and #resp.chunks > 0) and resp.chunks or { resp.body or "" }
  return resp.raw_head, pieces
end

-- A whole response torii sent itself.
local function parse_answer(text, res)
  local head, body = text:match("^(.-\r\n)\r\n(.*)$")
  local line, headers = parse_fields(head or text)
  res.status = tonumber(line:match("^HTTP/%d%.%d (%d+)"))
  res.reason = line:match("^HTTP/%d%.%d %d+ (.*)$")
  res.headers = headers
  res.body = body or ""
end

local function parse_client_head(head, res)
  local line, headers = parse_fields(head:sub(1, -3))
  res.status = tonumber(line:match("^HTTP/%d%.%d (%d+)"))
  res.reason = line:match("^HTTP/%d%.%d %d+ (.*)$")
  res.headers = headers
end

--- Walk a request through the gateway; see the top of this file.
function GW:request(req)
  req = req or {}
  if not self._gw then error("gw:request: the gateway is closed", 2) end
  local head, body, method = client_request(req)
  local mark = log_size()
  local timeout = req.timeout or self.timeout
  local x, outcome = self._gw:begin(head, req.remote_addr or self.remote_addr or "127.0.0.1", timeout)
  local res = { header = header_method, body = "" }
  if outcome ~= "upstream" then
    parse_answer(x:answer(), res)
    res.answered = outcome == "exit" and "plugin" or "torii"
  else
    local up_head = x:upstream_head()
    res.upstream = upstream_view(up_head, body)
    local bal_up, bal_node = x:balancer()
    if bal_up or bal_node then res.upstream.balancer = { upstream = bal_up, node = bal_node } end
    local answer = req.upstream
    if answer == nil then answer = self.upstream end
    local resp_head, pieces
    if type(answer) == "string" then
      resp_head, pieces = real(answer, up_head, body, method, timeout)
    else
      resp_head, pieces = canned(answer, method)
    end
    local kind, client_head, filtered = x:respond(resp_head)
    if kind ~= "head" then
      parse_answer(x:answer(), res)
      res.answered = "torii"
    else
      res.answered = "upstream"
      parse_client_head(client_head, res)
      local out = {}
      for i = 1, #pieces + (filtered and 1 or 0) do
        local piece = x:body(pieces[i] or "", i > #pieces)
        if piece == nil then
          res.cut = true
          break
        end
        out[#out + 1] = piece
      end
      res.body = table.concat(out)
    end
  end
  res.ctx = x:finish(res.status) or {}
  res.logs = log_since(mark)
  return res
end

return M
