-- torii: the plugin author's API.
--
--   local torii = require "torii"
--   torii.request.get_header("apikey")        -- rewrite, access
--   torii.upstream.set_header("X-User", name) -- rewrite, access
--   torii.response.exit(401, {message = "no key"})
--
-- Every function says in which phases it may be called; elsewhere it
-- raises an error naming the phase. Strings returned are copies.
local ffi = require "ffi"
local tffi = require "torii.ffi"
local json = require "cjson.safe"

local C = tffi.C
local p, n, p2, n2 = tffi.p, tffi.n, tffi.p2, tffi.n2
local ffi_string = ffi.string

local torii = { request = {}, upstream = {}, response = {}, log = {} }

local function current(fname)
  local r = C.torii_ffi_request()
  if r == nil then
    error("torii." .. fname .. ": not inside a request's phase", 3)
  end
  return r
end

local function check(rc, fname)
  if rc ~= 0 then
    error("torii." .. fname .. ": " .. tffi.errmsg(), 3)
  end
end

-- A string-valued request getter.
local function getter(cfn, fname)
  return function()
    local r = current(fname)
    check(cfn(r, p, n), fname)
    return ffi_string(p[0], n[0])
  end
end

local request = torii.request
request.get_method = getter(C.torii_ffi_req_method, "request.get_method")
request.get_path = getter(C.torii_ffi_req_path, "request.get_path")
request.get_target = getter(C.torii_ffi_req_target, "request.get_target")
request.get_query = getter(C.torii_ffi_req_query, "request.get_query")
request.get_remote_addr = getter(C.torii_ffi_req_client, "request.get_remote_addr")
request.get_id = getter(C.torii_ffi_req_id, "request.get_id")
request.get_route_id = getter(C.torii_ffi_req_route, "request.get_route_id")

--- The first value of a request header (any case), or nil.
function request.get_header(name)
  local r = current("request.get_header")
  local rc = C.torii_ffi_req_header(r, name, #name, p, n)
  if rc == tffi.NOT_FOUND then return nil end
  check(rc, "request.get_header")
  return ffi_string(p[0], n[0])
end

--- Every header as a list of {name, value}, in the order received.
function request.get_headers()
  local r = current("request.get_headers")
  local out = {}
  for i = 0, C.torii_ffi_req_header_count(r) - 1 do
    check(C.torii_ffi_req_header_at(r, i, p, n, p2, n2), "request.get_headers")
    out[#out + 1] = { ffi_string(p[0], n[0]), ffi_string(p2[0], n2[0]) }
  end
  return out
end

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Query arguments as a table name -> value (the first of repeated ones).
function request.get_query_args()
  local args = {}
  for pair in request.get_query():gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape(k)
    if args[k] == nil then args[k] = unescape(v) end
  end
  return args
end

function request.get_query_arg(name)
  return request.get_query_args()[name]
end

--- A route parameter (":id") or named capture ("*path"), or nil.
function request.get_uri_param(name)
  local r = current("request.get_uri_param")
  local rc = C.torii_ffi_req_param(r, name, #name, p, n)
  if rc == tffi.NOT_FOUND then return nil end
  check(rc, "request.get_uri_param")
  return ffi_string(p[0], n[0])
end

local upstream = torii.upstream

-- true, or nil and C's message when what was named does not exist; any
-- other failure raises. Called as a tail call, so that errors blame the
-- plugin.
local function found(rc, fname)
  if rc == tffi.NOT_FOUND then return nil, tffi.errmsg() end
  check(rc, fname)
  return true
end

-- Header values: a number is handed to C as a number, which writes it as
-- tostring would. A counter in a header (X-RateLimit-Remaining) then makes
-- no Lua string per request, each of which would be hashed, interned and
-- later swept. Called as a tail call, so that errors blame the plugin.
local function edit_header(cfn, cfn_num, fname, op, name, value)
  local r = current(fname)
  local rc
  if type(value) == "number" then
    rc = cfn_num(r, op, name, #name, value)
  else
    value = tostring(value)
    rc = cfn(r, op, name, #name, value, #value)
  end
  check(rc, fname)
end

--- Replace (set), add to or clear a header of the upstream request
--- (rewrite, access). Framing, hop-by-hop, Host and X-Forwarded-* headers
--- are torii's own.
function upstream.set_header(name, value)
  return edit_header(C.torii_ffi_up_header, C.torii_ffi_up_header_num, "upstream.set_header", 0, name, value)
end

function upstream.add_header(name, value)
  return edit_header(C.torii_ffi_up_header, C.torii_ffi_up_header_num, "upstream.add_header", 1, name, value)
end

function upstream.clear_header(name)
  check(C.torii_ffi_up_header(current("upstream.clear_header"), 2, name, #name, nil, 0), "upstream.clear_header")
end

local function upstream_set(cfn, fname, value)
  value = tostring(value)
  check(cfn(current(fname), value, #value), fname)
end

--- The upstream request's target (path and query), as it will be sent.
function upstream.get_uri()
  check(C.torii_ffi_up_get_target(current("upstream.get_uri"), p, n), "upstream.get_uri")
  return ffi_string(p[0], n[0])
end

--- Replace the whole target: "/path?query" (rewrite, access).
function upstream.set_uri(uri)
  upstream_set(C.torii_ffi_up_target, "upstream.set_uri", uri)
end

--- Replace the path, keeping the query (rewrite, access). The path is
--- sent as given: escape what needs escaping.
function upstream.set_path(path)
  local q = upstream.get_uri():match("%?.*$") or ""
  upstream_set(C.torii_ffi_up_target, "upstream.set_path", path .. q)
end

local function escape_arg(v)
  return (tostring(v):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Replace the query: a string (without '?') or a table of arguments
--- (rewrite, access).
function upstream.set_query(q)
  if type(q) == "table" then
    local keys, parts = {}, {}
    for k in pairs(q) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = escape_arg(k) .. "=" .. escape_arg(q[k]) end
    q = table.concat(parts, "&")
  end
  local path = upstream.get_uri():match("^[^?]*")
  upstream_set(C.torii_ffi_up_target, "upstream.set_query", q ~= "" and (path .. "?" .. q) or path)
end

function upstream.set_method(method)
  upstream_set(C.torii_ffi_up_method, "upstream.set_method", method)
end

--- Send the request to another upstream (an id of `upstreams:`, or an
--- upstream written inline in the plugin's configuration, which reaches the
--- plugin already compiled) instead of its route's (rewrite, access). true,
--- or nil and why (no such upstream).
function upstream.set_upstream(id)
  local r = current("upstream.set_upstream")
  if type(id) == "userdata" then
    return found(C.torii_ffi_up_upstream_inline(r, id), "upstream.set_upstream")
  end
  id = tostring(id)
  return found(C.torii_ffi_up_upstream(r, id, #id), "upstream.set_upstream")
end

--- The Host header sent upstream (rewrite, access).
function upstream.set_host(host)
  upstream_set(C.torii_ffi_up_host, "upstream.set_host", host)
end

local response = torii.response

-- Raised by exit to unwind the plugin; the chain catches it.
torii.EXIT = setmetatable({}, { __tostring = function() return "torii.response.exit" end })

--- Answer the request now, without the upstream (rewrite, access). A table
--- body is sent as JSON. Ends the plugin chain.
function response.exit(status, body, headers)
  local r = current("response.exit")
  local ctype
  if type(body) == "table" then
    body = json.encode(body) .. "\n"
    ctype = "application/json"
  end
  body = body and tostring(body) or ""
  local has_ctype = false
  for k, v in pairs(headers or {}) do
    if k:lower() == "content-type" then has_ctype = true end
    check(C.torii_ffi_resp_header(r, 1, k, #k, tostring(v), #tostring(v)), "response.exit")
  end
  if ctype and not has_ctype then
    check(C.torii_ffi_resp_header(r, 0, "Content-Type", 12, ctype, #ctype), "response.exit")
  end
  check(C.torii_ffi_resp_exit(r, status, body, #body), "response.exit")
  error(torii.EXIT, 0)
end

--- Set (replace), add or clear a header of the response the client gets,
--- proxied or from exit (rewrite, access, header_filter).
function response.set_header(name, value)
  return edit_header(C.torii_ffi_resp_header, C.torii_ffi_resp_header_num, "response.set_header", 0, name, value)
end

function response.add_header(name, value)
  return edit_header(C.torii_ffi_resp_header, C.torii_ffi_resp_header_num, "response.add_header", 1, name, value)
end

function response.clear_header(name)
  check(C.torii_ffi_resp_header(current("response.clear_header"), 2, name, #name, nil, 0), "response.clear_header")
end

local eof_cell = ffi.new("int[1]")

--- body_filter: the piece of the response body passing now, and whether it
--- is the last call (then the piece is empty: append what is left to say).
function response.get_body_chunk()
  check(C.torii_ffi_resp_body_chunk(current("response.get_body_chunk"), p, n, eof_cell), "response.get_body_chunk")
  return ffi_string(p[0], n[0]), eof_cell[0] ~= 0
end

--- body_filter: send this instead of the piece passing now ("" drops it).
function response.set_body_chunk(s)
  s = tostring(s)
  check(C.torii_ffi_resp_set_body_chunk(current("response.set_body_chunk"), s, #s), "response.set_body_chunk")
end

--- The upstream's status (header_filter) or the one the client got (log).
function response.get_status()
  local st = C.torii_ffi_resp_status(current("response.get_status"))
  if st < 0 then check(st, "response.get_status") end
  return st
end

-- Log levels as in core/base/log.h.
local levels = { debug = 0, info = 1, notice = 2, warn = 3, err = 4, error = 4, crit = 5, alert = 6, emerg = 7 }

for name, level in pairs(levels) do
  torii.log[name] = function(...)
    local parts = { ... }
    for i = 1, select("#", ...) do parts[i] = tostring(parts[i]) end
    local msg = table.concat(parts, " ")
    local plugin = torii._plugin
    if plugin then msg = msg .. ", plugin: " .. plugin end
    C.torii_ffi_log(level, msg, #msg)
  end
end

--- Seconds since the epoch, with milliseconds, as the worker's event loop
--- last saw them (cheap; constant within one pass of the loop).
function torii.now()
  return C.torii_ffi_now()
end

--- The current phase's name ("rewrite", "access", ...), or nil.
function torii.get_phase()
  return tffi.phase_names[C.torii_ffi_phase()]
end

torii.json = json

--- Shared dicts: torii.shared.NAME (declared as shared_dicts: {NAME: 10m}),
--- one memory for all workers; each call is atomic. nil for an unknown name.
local Dict = {}
Dict.__index = Dict

local dtype, dnum, dstr, dlen = ffi.new("int[1]"), ffi.new("double[1]"), ffi.new("const char *[1]"),
  ffi.new("size_t[1]")
local forcible = ffi.new("int[1]")

local function dict_result(rc)
  if rc == tffi.OK then return true end
  if rc == tffi.NOT_FOUND then return nil, "not found" end
  if rc == tffi.DECLINED then return nil, "exists" end
  return nil, tffi.errmsg()
end

--- The value (string, number or boolean), or nil.
function Dict:get(key)
  key = tostring(key)
  local rc = C.torii_ffi_shdict_get(self.d, key, #key, dtype, dnum, dstr, dlen)
  if rc ~= tffi.OK then
    if rc == tffi.NOT_FOUND then return nil end
    return nil, tffi.errmsg()
  end
  local t = dtype[0]
  if t == 1 then return ffi_string(dstr[0], dlen[0]) end
  if t == 2 then return tonumber(dnum[0]) end
  return dnum[0] ~= 0
end

local function store(self, op, key, value, ttl)
  key = tostring(key)
  local vt, num, str = 0, 0, nil
  local tv = type(value)
  if tv == "string" then
    vt, str = 1, value
  elseif tv == "number" then
    vt, num = 2, value
  elseif tv == "boolean" then
    vt, num = 3, value and 1 or 0
  elseif value == nil and op == 0 then
    return self:delete(key) or true
  else
    error("torii.shared: values are strings, numbers or booleans, not " .. tv, 3)
  end
  local rc = C.torii_ffi_shdict_store(self.d, op, key, #key, vt, num, str, str and #str or 0, ttl or 0, forcible)
  local ok, err = dict_result(rc)
  return ok, err, forcible[0] ~= 0
end

--- ok, err, forcible. ttl in seconds (0 or nil: never expires).
function Dict:set(key, value, ttl) return store(self, 0, key, value, ttl) end
function Dict:add(key, value, ttl) return store(self, 1, key, value, ttl) end
function Dict:replace(key, value, ttl) return store(self, 2, key, value, ttl) end
function Dict:safe_set(key, value, ttl) return store(self, 3, key, value, ttl) end
function Dict:safe_add(key, value, ttl) return store(self, 4, key, value, ttl) end

--- Add delta to a number; when absent and init is given, start from init
--- (expiring after init_ttl seconds) in the same atomic step. The new value,
--- or nil and an error.
function Dict:incr(key, delta, init, init_ttl)
  key = tostring(key)
  local rc = C.torii_ffi_shdict_incr(self.d, key, #key, delta or 1, init or 0, init and 1 or 0, init_ttl or 0, dnum)
  if rc ~= tffi.OK then return dict_result(rc) end
  return tonumber(dnum[0])
end

function Dict:delete(key)
  key = tostring(key)
  return dict_result(C.torii_ffi_shdict_delete(self.d, key, #key))
end

function Dict:expire(key, ttl)
  key = tostring(key)
  return dict_result(C.torii_ffi_shdict_expire(self.d, key, #key, ttl or 0))
end

--- Seconds left (0: never expires), or nil, "not found".
function Dict:ttl(key)
  key = tostring(key)
  local rc = C.torii_ffi_shdict_ttl(self.d, key, #key, dnum)
  if rc ~= tffi.OK then return dict_result(rc) end
  return tonumber(dnum[0])
end

function Dict:flush_all()
  return dict_result(C.torii_ffi_shdict_flush_all(self.d))
end

torii.shared = setmetatable({}, {
  __index = function(t, name)
    local d = C.torii_ffi_shdict(name, #name)
    if d == nil then return nil end
    local dict = setmetatable({ d = d, name = name }, Dict)
    rawset(t, name, dict)
    return dict
  end,
})

--- Timers, in workers: torii.timer.at(delay, fn, ...) runs fn(premature,
--- ...) once after delay seconds; every(interval, fn, ...) runs it every
--- interval seconds. Both return an id for cancel(id), or nil and an error
--- ("too many timers", or outside a worker: start timers in init_worker).
--- When the worker stops, pending timers run once more with premature =
--- true. Callbacks run outside any request.
torii.timer = {}
local timers, next_timer = {}, 0
torii._timers = timers

local function start_timer(delay, interval, fn, ...)
  if type(fn) ~= "function" then error("torii.timer: a function is needed", 3) end
  next_timer = next_timer + 1
  local id = next_timer
  local rc = C.torii_ffi_timer_start(id, tonumber(delay) or -1, interval)
  if rc ~= tffi.OK then return nil, tffi.errmsg() end
  timers[id] = { fn = fn, args = { n = select("#", ...), ... }, every = interval > 0 }
  return id
end

function torii.timer.at(delay, fn, ...) return start_timer(delay, 0, fn, ...) end

function torii.timer.every(interval, fn, ...)
  interval = tonumber(interval) or 0
  if interval <= 0 then return nil, "torii.timer.every: the interval must be > 0" end
  return start_timer(interval, interval, fn, ...)
end

function torii.timer.cancel(id)
  if timers[id] == nil then return nil, "no such timer" end
  timers[id] = nil
  C.torii_ffi_timer_stop(id)
  return true
end

--- How many timers wait.
function torii.timer.pending()
  local count = 0
  for _ in pairs(timers) do count = count + 1 end
  return count
end

-- Yielded ahead of a status, so that C knows the yield is torii's.
torii._token = tffi.token
local WAIT = tffi.WAIT

--- Wait without blocking the worker: other requests go on meanwhile
--- (rewrite, access, timer callbacks).
function torii.sleep(seconds)
  local r = C.torii_ffi_request() -- NULL in a timer callback
  check(C.torii_ffi_sleep(r, (tonumber(seconds) or -1) * 1000), "sleep")
  coroutine.yield(torii._token, WAIT)
end

--- The balancer phase: a plugin's `balancer(conf, ctx)` runs before each
--- try (the first and every retry) and may choose where that try goes;
--- what it does not choose, the upstream's balancer and retry settings do.
--- It may not wait. These functions work in that phase only.
torii.balancer = {}
local bal_try, bal_last, bal_status = ffi.new("int[1]"), ffi.new("int[1]"), ffi.new("int[1]")
local bal_weight, bal_down = ffi.new("int[1]"), ffi.new("int[1]")
local failures = { "connect_error", "timeout", "status" }

--- Send this try to a node of its upstream, named by its id or its
--- "host:port" as configured (tried even if health checks have it down).
--- true, or nil and why.
function torii.balancer.set_node(name)
  name = tostring(name)
  return found(C.torii_ffi_bal_set_node(current("balancer.set_node"), name, #name), "balancer.set_node")
end

--- Send this try to another upstream (an id of `upstreams:`); its balancer
--- picks the node unless set_node is called after. true, or nil and why.
function torii.balancer.set_upstream(id)
  id = tostring(id)
  return found(C.torii_ffi_bal_set_upstream(current("balancer.set_upstream"), id, #id), "balancer.set_upstream")
end

--- This try's number (1 for the first), and for a retry how the last try
--- failed ("connect_error", "timeout" or "status") and its status.
function torii.balancer.get_try()
  check(C.torii_ffi_bal_try(current("balancer.get_try"), bal_try, bal_last, bal_status), "balancer.get_try")
  local last = failures[bal_last[0]]
  return bal_try[0], last, last and bal_status[0] ~= 0 and bal_status[0] or nil
end

--- The nodes of the upstream this try goes to (as chosen so far):
--- { {id = ..., address = "host:port", weight = n, down = bool}, ... }.
function torii.balancer.get_nodes()
  local r = current("balancer.get_nodes")
  local out = {}
  for i = 0, 65535 do
    local rc = C.torii_ffi_bal_node(r, i, p, n, p2, n2, bal_weight, bal_down)
    if rc == tffi.NOT_FOUND then break end
    check(rc, "balancer.get_nodes")
    out[i + 1] = { id = n[0] > 0 and ffi_string(p[0], n[0]) or nil, address = ffi_string(p2[0], n2[0]),
                   weight = bal_weight[0], down = bal_down[0] ~= 0 }
  end
  return out
end

--- Consumers (`consumers:` in the configuration): find one by a field of
--- its configuration for a plugin, then attach it to the request.
torii.consumer = {}

-- plugin name -> list of {username = ..., conf = ...}; set by the runtime.
torii.consumer._by_plugin = {}
local indexes = {}

--- The consumer whose `plugin` configuration has `field` == value, or nil.
function torii.consumer.find(plugin, field, value)
  local by_field = indexes[plugin] -- two levels: no key string made per request
  local index = by_field and by_field[field]
  if not index then
    index = {}
    for _, c in ipairs(torii.consumer._by_plugin[plugin] or {}) do
      local v = c.conf[field]
      if v ~= nil then index[v] = c end
    end
    by_field = by_field or {}
    by_field[field] = index
    indexes[plugin] = by_field
  end
  return index[value]
end

--- Mark the request as the consumer's: ctx.consumer, and its name for the
--- upstream in X-Consumer-Username.
function torii.consumer.attach(ctx, consumer)
  ctx.consumer = consumer
  ctx.consumer_name = consumer.username
  local name = tostring(consumer.username)
  C.torii_ffi_req_set_consumer(C.torii_ffi_request(), name, #name) -- for upstreams hashing on it
  upstream.set_header("X-Consumer-Username", consumer.username)
end

--- Non-blocking TCP (torii.socket.tcp()) and an HTTP client over it
--- (torii.http.request{...}); see those modules.
torii.socket = require "torii.socket"
torii.http = require "torii.http"

return torii
