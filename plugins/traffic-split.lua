-- traffic-split: send a share of a route's requests to other upstreams, for
-- staged migrations and canaries. As in APISIX:
--
--   plugins:
--     traffic-split:
--       rules:
--         - match: [{vars: [["http_x_canary", "==", "1"]]}]   # forces the canary
--           weighted_upstreams: [{upstream_id: new-api, weight: 1}]
--         - weighted_upstreams:
--             - {upstream_id: new-api, weight: 20, uri: /v2/orders}  # 20%, path rewritten
--             - {weight: 80}                                        # 80%: the route's own upstream
--         - weighted_upstreams:                                     # or an upstream written inline:
--             - {upstream: {nodes: ["10.0.0.9:8080"], retry: {count: 1}}, weight: 5}
--
-- The first rule whose match holds (a rule without match always holds)
-- picks an upstream by smooth weighted round robin: the split is exact in
-- every window of the total weight (100 requests for 80/20), per worker,
-- not merely on average. `match` is a list of alternatives, each with
-- `vars` in the router's language (all of a `vars` must hold).
local torii = require "torii"

local plugin = {
  name = "traffic-split",
  version = "1.0",
  priority = 966,
  schema = {
    type = "object",
    properties = {
      rules = {
        type = "array",
        minItems = 1,
        description = "Tried in order; the first whose match holds chooses the upstream.",
        items = {
          type = "object",
          properties = {
            match = {
              type = "array",
              description = "Alternatives, each {vars: [[var, op, value], ...]}; absent: always.",
              items = {
                type = "object",
                properties = { vars = { type = "array", minItems = 1, items = { type = "array" } } },
                required = { "vars" },
                additionalProperties = false,
              },
            },
            weighted_upstreams = {
              type = "array",
              minItems = 1,
              description = "Upstreams with weights; one with neither upstream_id nor upstream is the route's own.",
              items = {
                type = "object",
                properties = {
                  upstream_id = { type = "string", minLength = 1,
                    description = "An upstream declared in upstreams:." },
                  -- No type here: the loader has already checked and compiled
                  -- it (an upstream's own keys, file:line errors), so the
                  -- plugin receives it as an opaque value.
                  upstream = {
                    description = "An upstream written inline, shaped like an entry of upstreams: without id "
                      .. "(type, nodes, retry, checks...). Not together with upstream_id." },
                  weight = { type = "integer", minimum = 0, default = 1,
                    description = "Its share, relative to the others' weights." },
                  uri = { type = "string", pattern = "^/",
                    description = "Rewrite the upstream request's path when this one is chosen." },
                },
                additionalProperties = false,
              },
            },
          },
          required = { "weighted_upstreams" },
          additionalProperties = false,
        },
      },
    },
    required = { "rules" },
    additionalProperties = false,
  },
}

local ops = {}
local function num(v) return tonumber(v) end
ops["=="] = function(a, b) return a == tostring(b) end
ops["~="] = function(a, b) return a ~= tostring(b) end
ops[">"] = function(a, b) return num(a) ~= nil and num(a) > num(b) end
ops[">="] = function(a, b) return num(a) ~= nil and num(a) >= num(b) end
ops["<"] = function(a, b) return num(a) ~= nil and num(a) < num(b) end
ops["<="] = function(a, b) return num(a) ~= nil and num(a) <= num(b) end
ops["in"] = function(a, b)
  for _, x in ipairs(b) do if a == tostring(x) then return true end end
  return false
end

-- A variable of the router's language, read from the request.
local function var(name)
  local r = torii.request
  if name == "uri" then return r.get_path() end
  if name == "remote_addr" then return r.get_remote_addr() end
  if name == "request_method" then return r.get_method() end
  if name == "host" then return (r.get_header("host") or ""):lower():gsub(":%d+$", "") end
  local h = name:match("^http_(.+)$")
  if h then return r.get_header((h:gsub("_", "-"))) end
  local a = name:match("^arg_(.+)$")
  if a then return r.get_query_arg(a) end
  local c = name:match("^cookie_(.+)$")
  if c then
    local cookies = r.get_header("cookie") or ""
    for k, v in cookies:gmatch("([^=;%s]+)=([^;]*)") do
      if k == c then return v end
    end
  end
  return nil
end

local re
local function regex(a, pattern, caseless)
  re = re or require "torii.re"
  return a ~= nil and re.find(a, pattern, caseless and "i" or "") ~= nil
end

local function holds(cond)
  local name, op, value = cond[1], cond[2], cond[3]
  local negate = false
  if op == "!" then negate, op, value = true, cond[3], cond[4] end
  local a = var(name)
  local ok
  if op == "~~" or op == "~*" then
    ok = regex(a, value, op == "~*")
  elseif ops[op] then
    ok = a ~= nil and ops[op](a, value)
  else
    error("traffic-split: unknown operator " .. tostring(op))
  end
  if negate then return not ok end
  return ok
end

local function matches(rule)
  if not rule.match then return true end
  for _, alt in ipairs(rule.match) do
    local all = true
    for _, cond in ipairs(alt.vars) do
      if not holds(cond) then all = false break end
    end
    if all then return true end
  end
  return false
end

-- Smooth weighted round robin per rule (state per worker, per generation):
-- exact counts in every cycle of the total weight.
local state = setmetatable({}, { __mode = "k" })

local function choose(rule)
  local st = state[rule]
  if not st then
    st = { current = {}, total = 0 }
    for i, w in ipairs(rule.weighted_upstreams) do
      st.current[i] = 0
      st.total = st.total + (w.weight or 1)
    end
    state[rule] = st
  end
  local best
  for i, w in ipairs(rule.weighted_upstreams) do
    st.current[i] = st.current[i] + (w.weight or 1)
    if (w.weight or 1) > 0 and (not best or st.current[i] > st.current[best]) then best = i end
  end
  if not best then return nil end
  st.current[best] = st.current[best] - st.total
  return rule.weighted_upstreams[best]
end

function plugin.check(conf)
  for i, rule in ipairs(conf.rules) do
    local total = 0
    for _, w in ipairs(rule.weighted_upstreams) do total = total + (w.weight or 1) end
    if total == 0 then return nil, ("rules[%d]: every weight is 0"):format(i - 1) end
    for k, alt in ipairs(rule.match or {}) do
      for j, cond in ipairs(alt.vars) do
        local op = cond[2] == "!" and cond[3] or cond[2]
        if type(cond[1]) ~= "string" or not (ops[op] or op == "~~" or op == "~*") then
          return nil, ("rules[%d].match[%d].vars[%d]: expected [var, op, value] with op ==, ~=, >, >=, <, <=, in, ~~ "
            .. "or ~*"):format(i - 1, k - 1, j - 1)
        end
      end
    end
  end
  return true
end

function plugin.access(conf)
  for _, rule in ipairs(conf.rules) do
    if matches(rule) then
      local w = choose(rule)
      local target = w and (w.upstream_id or w.upstream)
      if target then
        local ok, err = torii.upstream.set_upstream(target)
        if not ok then error("traffic-split: " .. tostring(err)) end
      end
      if w and w.uri then torii.upstream.set_path(w.uri) end
      return
    end
  end
end

return plugin
