-- limit-count: at most `count` requests per `time_window` seconds for each
-- key, counted in a fixed window shared by every worker (one atomic
-- increment in a shared dict per request, so the limit is exact across
-- workers). As in APISIX:
--
--   plugins:
--     limit-count: {count: 100, time_window: 60, key: remote_addr,
--                   rejected_code: 429, rejected_msg: "slow down"}
--
-- key: remote_addr (default), consumer (the consumer's name, after an auth
-- plugin), route, or "header:NAME" (requests without the header share one
-- bucket). Every response carries X-RateLimit-Limit, X-RateLimit-Remaining
-- and X-RateLimit-Reset (seconds until the window ends). Counters live in
-- the shared dict "limit-count" (10m unless shared_dicts declares it).
local torii = require "torii"

local plugin = {
  name = "limit-count",
  version = "1.0",
  priority = 1002,
  shared_dicts = { ["limit-count"] = "10m" },
  schema = {
    type = "object",
    properties = {
      count = { type = "integer", minimum = 1, description = "Requests allowed per window." },
      time_window = { type = "integer", minimum = 1, description = "The window, in seconds." },
      key = { type = "string", default = "remote_addr", pattern = "^(remote_addr|consumer|route|header:.+)$",
        description = "What is counted: remote_addr, consumer, route or header:NAME." },
      rejected_code = { type = "integer", minimum = 200, maximum = 599, default = 429,
        description = "The status of a rejected request." },
      rejected_msg = { type = "string", minLength = 1, description = "A message for the rejected request's body." },
    },
    required = { "count", "time_window" },
    additionalProperties = false,
  },
}

-- A counter per configuration: changing a route's limit starts afresh,
-- unrelated changes do not. Worked out once per configuration table (they
-- live as long as the VM), not per request.
local per_conf = setmetatable({}, { __mode = "k" })

local function prepared(conf)
  local c = per_conf[conf]
  if not c then
    c = { id = ("%d/%d/%s"):format(conf.count, conf.time_window, conf.key), limit = tostring(conf.count) }
    per_conf[conf] = c
  end
  return c
end

local function key_of(conf, ctx)
  local k = conf.key or "remote_addr"
  if k == "remote_addr" then return torii.request.get_remote_addr() end
  if k == "consumer" then return ctx.consumer_name or "" end
  if k == "route" then return "" end
  return torii.request.get_header(k:sub(8)) or ""
end

function plugin.access(conf, ctx)
  local dict = torii.shared["limit-count"]
  local window = conf.time_window
  local now = math.floor(torii.now())
  local start = now - now % window
  local c = prepared(conf)
  local key = torii.request.get_route_id() .. "|" .. c.id .. "|" .. key_of(conf, ctx) .. "|" .. start
  local used, err = dict:incr(key, 1, 0, window)
  local reset = start + window - now
  torii.response.set_header("X-RateLimit-Limit", c.limit)
  torii.response.set_header("X-RateLimit-Reset", reset)
  if not used then
    -- The dict failed (out of memory): let the request through, say so once per request.
    torii.log.err("limit-count: cannot count: ", err)
    return
  end
  local remaining = conf.count - used
  torii.response.set_header("X-RateLimit-Remaining", remaining < 0 and 0 or remaining)
  if used > conf.count then
    return torii.response.exit(conf.rejected_code or 429,
      conf.rejected_msg and { error_msg = conf.rejected_msg } or nil)
  end
end

return plugin
