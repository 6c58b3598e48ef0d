-- torii.runtime: what the C core calls. init() loads the plugins a
-- configuration uses, checks their configurations and builds each route's
-- chain once; request() is the body of a request's coroutine, which C
-- resumes once per phase and which runs the chain for that phase.
local tffi = require "torii.ffi"
local torii = require "torii"
local new_tab = require "table.new"

local M = {}

local tjson = require "torii.json"
M.array_mt = tjson.array_mt

-- Phase numbers (core/lua/ffi.h) -> names; 6 is a timer callback's.
local PHASES = { "rewrite", "access", "header_filter", "log", "body_filter", nil, "balancer" }
local PLUGIN_PHASES = { 1, 2, 7, 3, 5, 4 } -- in request order
local OK, EXIT, ERROR = 0, 1, 2

local bit = require "bit"
local chains = {} -- route index -> list of {name, plugin, conf}
local route_sets = {} -- route index -> name -> chain entry
local merged = {} -- route index -> consumer index -> chain (built on first use)
local plugins = {} -- name -> plugin module, loaded once per VM

-- Shared dicts the loaded plugins want (name -> bytes); the master creates
-- those the configuration does not declare.
M.needed_dicts = {}

local function parse_size(v)
  if type(v) == "number" then return v end
  local n, unit = tostring(v):lower():match("^(%d+)([kmg]?)$")
  if not n then return nil end
  return tonumber(n) * ({ [""] = 1, k = 1024, m = 1048576, g = 1073741824 })[unit]
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- A plugin by name: NAME.lua or NAME/init.lua in the first plugin directory
-- that has it (the built-in plugins/ first). Loaded with loadfile, not
-- require, so that a new VM always reads the files afresh.
local function load_plugin(name, dirs)
  if plugins[name] then return plugins[name] end
  if not name:match("^[%w_-]+$") then
    return nil, ("unknown plugin %q"):format(name)
  end
  for _, dir in ipairs(dirs) do
    for _, path in ipairs({ dir .. "/" .. name .. ".lua", dir .. "/" .. name .. "/init.lua" }) do
      if file_exists(path) then
        local chunk, err = loadfile(path)
        if not chunk then return nil, ("plugin %q: %s"):format(name, err) end
        local ok, p = pcall(chunk)
        if not ok then return nil, ("plugin %q failed to load: %s"):format(name, tostring(p)) end
        if type(p) ~= "table" then return nil, ("plugin %q: %s must return a table"):format(name, path) end
        if p.name ~= name then
          return nil, ("plugin %q: %s says its name is %q"):format(name, path, tostring(p.name))
        end
        if type(p.priority) ~= "number" then return nil, ("plugin %q: priority must be a number"):format(name) end
        if p.schema ~= nil and type(p.schema) ~= "table" then
          return nil, ("plugin %q: schema must be a table"):format(name)
        end
        for _, pn in ipairs(PLUGIN_PHASES) do
          local phase = PHASES[pn]
          if p[phase] ~= nil and type(p[phase]) ~= "function" then
            return nil, ("plugin %q: %s must be a function"):format(name, phase)
          end
        end
        if p.init then
          local iok, ierr = pcall(p.init)
          if not iok then return nil, ("plugin %q: init failed: %s"):format(name, tostring(ierr)) end
        end
        for dict, size in pairs(p.shared_dicts or {}) do
          local bytes = parse_size(size)
          if type(dict) ~= "string" or not bytes then
            return nil, ("plugin %q: shared_dicts must map names to sizes such as \"10m\""):format(name)
          end
          M.needed_dicts[dict] = math.max(M.needed_dicts[dict] or 0, bytes)
        end
        plugins[name] = p
        return p
      end
    end
  end
  return nil, ("unknown plugin %q (looked in %s)"):format(name, table.concat(dirs, ", "))
end

local schema = require "torii.schema"

-- Check one plugin's configuration: `_meta` (torii's own keys), then the
-- plugin's schema (with defaults filled in), then its own check().
local function check_conf(p, conf, path)
  if type(conf) ~= "table" or getmetatable(conf) == M.array_mt then
    return nil, path .. ": must be an object"
  end
  local meta = conf._meta
  if meta ~= nil then
    if type(meta) ~= "table" then return nil, path .. "._meta: must be an object" end
    for k, v in pairs(meta) do
      if k == "priority" then
        if type(v) ~= "number" or v ~= math.floor(v) then return nil, path .. "._meta.priority: must be an integer" end
      elseif k == "disable" then
        if type(v) ~= "boolean" then return nil, path .. "._meta.disable: must be true or false" end
      elseif k == "filter" then
        -- compiled and checked by the configuration loader (core/config)
        if type(v) ~= "userdata" then return nil, path .. "._meta.filter: must be a list of conditions" end
      else
        return nil, ("%s._meta: unknown key %q (priority, disable, filter)"):format(path, tostring(k))
      end
    end
    conf._meta = nil
  end
  if p.schema then
    local ok, errs = schema.validate(p.schema, conf, { path = path, defaults = true })
    if not ok then return nil, errs[1] end
  end
  if p.check then
    local ok, err = p.check(conf)
    if not ok then return nil, path .. ": " .. tostring(err) end
  end
  return meta or {}
end

local function where(origin)
  return origin and (origin.file .. ":" .. origin.line .. ": ") or ""
end

-- name -> {plugin, conf, meta} for a `plugins:` map; origins: name -> where
-- its key is written.
local function prepare(map, path, origins, dirs, out)
  for name, conf in pairs(map or {}) do
    local origin = origins and origins[name]
    local p, err = load_plugin(name, dirs)
    if not p then return nil, where(origin) .. path .. "." .. name .. ": " .. err end
    local meta, cerr = check_conf(p, conf, path .. "." .. name)
    if not meta then return nil, where(origin) .. cerr end
    out[name] = { name = name, plugin = p, conf = conf, meta = meta }
  end
  return out
end

local function build_chain(set)
  local chain = {}
  for _, e in pairs(set) do
    if not e.meta.disable then
      e.priority = e.meta.priority or e.plugin.priority
      chain[#chain + 1] = e
    end
  end
  table.sort(chain, function(a, b)
    if a.priority ~= b.priority then return a.priority > b.priority end
    return a.name < b.name
  end)
  return chain
end

-- Consumers. A plugin with a consumer_schema (an authentication plugin)
-- holds the consumer's credentials, checked against that schema; a plugin
-- may name a field that must be unique across consumers (consumer_unique,
-- e.g. key-auth's key). Any other plugin is an instance for the consumer's
-- requests (its schema, _meta and all), which wins over the route's.
local consumer_sets = {} -- consumer index -> name -> chain entry
local function init_consumers(conf, dirs)
  local by_plugin = {}
  local seen = {} -- plugin -> unique value -> consumer index
  for i, c in ipairs(conf.consumers or {}) do
    local origins = conf.consumers_origins and conf.consumers_origins[i]
    local set = {}
    for name, pconf in pairs(c.plugins or {}) do
      local path = ("consumers[%d].plugins.%s"):format(i - 1, name)
      local origin = origins and origins[name]
      local p, err = load_plugin(name, dirs)
      if not p then return nil, where(origin) .. path .. ": " .. err end
      if type(pconf) ~= "table" or getmetatable(pconf) == M.array_mt then
        return nil, where(origin) .. path .. ": must be an object"
      end
      if p.consumer_schema then
        local ok, errs = schema.validate(p.consumer_schema, pconf, { path = path, defaults = true })
        if not ok then return nil, where(origin) .. errs[1] end
        local field = p.consumer_unique
        if field and pconf[field] ~= nil then
          seen[name] = seen[name] or {}
          local first = seen[name][pconf[field]]
          if first then
            return nil, ("%s%s.%s: the same %s as consumers[%d]"):format(where(origin), path, field, field, first - 1)
          end
          seen[name][pconf[field]] = i
        end
        by_plugin[name] = by_plugin[name] or {}
        table.insert(by_plugin[name], { username = c.username, conf = pconf, _index = i })
      else
        local meta, cerr = check_conf(p, pconf, path)
        if not meta then return nil, where(origin) .. cerr end
        set[name] = { name = name, plugin = p, conf = pconf, meta = meta, from_consumer = true }
      end
    end
    if next(set) then consumer_sets[i] = set end
  end
  torii.consumer._by_plugin = by_plugin
  return true
end

--- Called once per VM with the configuration (see core/lua/vm.c). Returns
--- true and, per route index, whether it runs any plugin and whether any
--- has a body_filter; or nil, error.
-- Bit p set for each phase p the plugin has a function for.
local function phase_mask(plugin)
  local mask = 0
  for _, p in ipairs(PLUGIN_PHASES) do
    if plugin[PHASES[p]] then mask = bit.bor(mask, bit.lshift(1, p)) end
  end
  return mask
end

function M.init(conf)
  local dirs = conf.plugin_dirs
  local cok, cerr = init_consumers(conf, dirs)
  if not cok then return nil, cerr end
  local global = {}
  for i, rule in ipairs(conf.global_rules or {}) do
    local _, err = prepare(rule.plugins, ("global_rules[%d].plugins"):format(i - 1),
      conf.global_rules_origins and conf.global_rules_origins[i], dirs, global)
    if err then return nil, err end
  end
  -- Each service's plugins, checked once.
  local services = {}
  for i, svc in ipairs(conf.services or {}) do
    local set = {}
    local _, err = prepare(svc.plugins, ("services[%d].plugins"):format(i - 1), svc.origins, dirs, set)
    if err then return nil, err end
    services[i] = set
  end
  -- Phases the consumers' plugins have: a route with an authentication
  -- plugin may meet them once a consumer is known.
  local consumer_mask = 0
  for _, set in pairs(consumer_sets) do
    for _, e in pairs(set) do consumer_mask = bit.bor(consumer_mask, phase_mask(e.plugin)) end
  end
  local has, filters = {}, {}
  local empty_chain, empty_set = {}, {}
  local no_globals = next(global) == nil
  for i, route in ipairs(conf.routes) do
    if no_globals and not route.plugins and not route.service then
      -- a route without plugins (most of a large table): nothing to build
      chains[i], route_sets[i], has[i], filters[i] = empty_chain, empty_set, 0, false
      goto continue
    end
    -- The most specific instance wins: route over service over global.
    local set = {}
    for name, e in pairs(global) do set[name] = e end
    for name, e in pairs(route.service and services[route.service] or {}) do set[name] = e end
    local _, err = prepare(route.plugins, ("routes[%d].plugins"):format(i - 1), route.origins, dirs, set)
    if err then return nil, err end
    chains[i] = build_chain(set)
    route_sets[i] = set
    -- bit p: some plugin of the chain has phase p (C resumes only those)
    local mask, auth = 0, false
    for _, e in ipairs(chains[i]) do
      auth = auth or e.plugin.consumer_schema ~= nil
      mask = bit.bor(mask, phase_mask(e.plugin))
    end
    if auth then mask = bit.bor(mask, consumer_mask) end
    has[i] = mask
    filters[i] = bit.band(mask, 32) ~= 0 -- body_filter is phase 5
    ::continue::
  end
  return true, has, filters
end

--- In each worker, once: every loaded plugin's init_worker (start timers
--- here).
function M.init_worker()
  local names = {}
  for name in pairs(plugins) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local p = plugins[name]
    if p.init_worker then
      local ok, err = xpcall(p.init_worker, debug.traceback)
      if not ok then
        local msg = ("plugin %s failed in init_worker: %s"):format(name, tostring(err))
        tffi.C.torii_ffi_log(4, msg, #msg)
      end
    end
  end
end

-- Timer callbacks run as tasks: each run in a coroutine of its own, so
-- that it may wait (a socket, torii.sleep) like a request's phase. A task
-- that waits is parked here until C resumes it (core/lua/wait.c).
local parked = {} -- task id -> coroutine
local next_task = 0

local function log_err(msg)
  tffi.C.torii_ffi_log(4, msg, #msg)
end

local function run_timer(id, t, premature)
  local ok, err = xpcall(t.fn, debug.traceback, premature, unpack(t.args, 1, t.args.n))
  if not ok then log_err(("timer %d failed: %s"):format(id, tostring(err))) end
end

-- Resume a task's coroutine once; park it if it waits, else end it.
local function step(task, co, ...)
  tffi.C.torii_ffi_task_enter(task)
  local ok, tok, status = coroutine.resume(co, ...)
  tffi.C.torii_ffi_task_leave()
  if ok and coroutine.status(co) == "suspended" then
    if tok == tffi.token and status == tffi.WAIT then
      parked[task] = co
      return
    end
    -- Never resumed again: a callback's own yield has no one to answer it.
    log_err("a timer callback called coroutine.yield(), which only torii's own waiting calls may do")
  elseif not ok then
    log_err("timer task failed: " .. tostring(tok))
  end
  parked[task] = nil
  tffi.C.torii_ffi_task_end(task)
end

--- A timer fired (see torii.timer in init.lua).
function M.fire_timer(id, premature)
  local t = torii._timers[id]
  if not t then return end
  if not t.every or premature then torii._timers[id] = nil end
  next_task = next_task % 2147483647 + 1 -- C sees an int
  step(next_task, coroutine.create(run_timer), id, t, premature)
end

--- A waiting task is due (its wait is over or its operation is done).
function M.resume_task(task)
  local co = parked[task]
  if co then step(task, co) end
end

local function on_error(e)
  if e == torii.EXIT then return e end
  return debug.traceback(tostring(e), 2)
end

-- The chain of a route for a consumer with plugins of its own: the
-- consumer's instances win over the route's (and the service's, and the
-- global rules'); built once per route and consumer.
local function chain_for(state, consumer)
  local route, ci = state.route, consumer._index
  local by_route = merged[route]
  if not by_route then
    by_route = {}
    merged[route] = by_route
  end
  local chain = by_route[ci]
  if not chain then
    local set = {}
    for name, e in pairs(route_sets[route]) do set[name] = e end
    for name, e in pairs(consumer_sets[ci]) do set[name] = e end
    chain = build_chain(set)
    by_route[ci] = chain
  end
  return chain
end

local function call(e, fn, pname, ctx)
  torii._plugin = e.name
  local ok, err = xpcall(fn, on_error, e.conf, ctx)
  torii._plugin = nil
  if not ok then
    if err == torii.EXIT then return EXIT end
    local msg = ("plugin %s failed in %s: %s"):format(e.name, pname, tostring(err))
    tffi.C.torii_ffi_log(4, msg, #msg)
    return ERROR
  end
  return OK
end

local function wanted(e, fn, r)
  local filter = e.meta.filter
  if fn and filter then
    -- _meta.filter: run this plugin only for the requests it describes
    if tffi.C.torii_ffi_req_filter(r or tffi.C.torii_ffi_request(), filter) == 0 then return nil end
  end
  return fn
end

-- A consumer with plugins of its own was attached by the plugin
-- `current`: switch to the merged chain, at that plugin's place. When this
-- happens after the rewrite phase, the consumer's own plugins first run
-- their rewrite (they were not in the chain when it ran), and those that
-- sort before the attaching plugin run the current phase: every consumer
-- plugin runs each phase once, in priority order otherwise.
local function switch_chain(state, consumer, current, phase, ctx, done)
  local ran = {} -- what already ran this phase: the old chain up to `current`
  for k = 1, done do ran[state.chain[k].name] = true end
  local chain = chain_for(state, consumer)
  state.chain, state.consumer = chain, consumer
  if phase > 1 then
    for _, e in ipairs(chain) do
      local fn = e.from_consumer and wanted(e, e.plugin.rewrite)
      if fn then
        local rc = call(e, fn, "rewrite", ctx)
        if rc ~= OK then return nil, rc end
      end
    end
  end
  local at = #chain
  for k, e in ipairs(chain) do
    if e.name == current.name then at = k break end
    -- the attaching plugin was replaced by the consumer's instance: go on
    -- after every plugin of higher priority
    if e.priority < current.priority then at = k - 1 break end
  end
  -- the consumer's plugins placed before it missed this phase: run them now
  if phase > 1 then
    local pname = PHASES[phase]
    for k = 1, at do
      local e = chain[k]
      local fn = e.from_consumer and not ran[e.name] and wanted(e, e.plugin[pname])
      if fn then
        local rc = call(e, fn, pname, ctx)
        if rc ~= OK then return nil, rc end
      end
    end
  end
  return at
end

local function run(state, phase, ctx)
  local pname = PHASES[phase]
  local chain = state.chain
  local r
  local i = 1
  while i <= #chain do
    local e = chain[i]
    local fn = e.plugin[pname]
    if fn and e.meta.filter then
      r = r or tffi.C.torii_ffi_request()
      fn = wanted(e, fn, r)
    end
    if fn then
      local rc = call(e, fn, pname, ctx)
      if rc ~= OK then return rc end
      local consumer = ctx.consumer
      if consumer and consumer ~= state.consumer and consumer._index and consumer_sets[consumer._index] then
        local k, err = switch_chain(state, consumer, e, phase, ctx, i)
        if not k then return err end
        chain, i = state.chain, k
      end
    end
    i = i + 1
  end
  return OK
end

-- What the loop (and torii's waiting calls) yield first, so that C can tell
-- them from a plugin calling coroutine.yield() itself (an error).
M.token = torii._token

--- A request's coroutine: one chain run per resume. A parked coroutine is
--- reused for the next request; `fresh` marks a request's first phase.
function M.request(phase, route, fresh)
  local ctx
  local state = {}
  local token = M.token
  while true do
    if fresh or not ctx then
      -- Room for the usual fields (consumer, consumer_name and a plugin's
      -- own): no resize, so one allocation less or two, per request.
      ctx = new_tab(0, 4)
      state.route, state.chain, state.consumer = route, chains[route], nil
    end
    phase, route, fresh = coroutine.yield(token, run(state, phase, ctx))
  end
end

return M
