-- proxy-rewrite: change what goes upstream, as APISIX's plugin does.
--
--   plugins:
--     proxy-rewrite:
--       regex_uri: ["^/external-service/(.+)", "/$1"]   # or uri: /new/path
--       host: backend.internal
--       method: POST
--       headers: {set: {X-Api-Version: "2"}, add: {X-Tag: a}, remove: [X-Debug]}
--
-- `uri` replaces the path (the query stays) and may use the route's
-- parameters as $name ($id for /users/:id); `regex_uri` rewrites the path
-- with a PCRE2 pattern and $0..$9 in the replacement, leaving it alone when
-- the pattern does not match. `uri` wins over `regex_uri`.
local torii = require "torii"
local re = require "torii.re"

local plugin = {
  name = "proxy-rewrite",
  version = "1.0",
  priority = 1008,
  schema = {
    type = "object",
    properties = {
      uri = { type = "string", pattern = "^/", description = "The new path; $name stands for a route parameter." },
      regex_uri = { type = "array", minItems = 2, maxItems = 2, items = { type = "string" },
        description = "[pattern, replacement]: rewrite the path with a regex." },
      host = { type = "string", minLength = 1, description = "The Host header sent upstream." },
      method = { type = "string", enum = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE" },
        description = "The method sent upstream." },
      headers = {
        type = "object",
        properties = {
          set = { type = "object", additionalProperties = { type = "string" } },
          add = { type = "object", additionalProperties = { type = "string" } },
          remove = { type = "array", items = { type = "string" } },
        },
        additionalProperties = false,
      },
    },
    additionalProperties = false,
  },
}

function plugin.check(conf)
  if conf.regex_uri then
    local ok, err = re.compile(conf.regex_uri[1])
    if not ok then return nil, "regex_uri: " .. tostring(err) end
  end
  return true
end

-- A decoded parameter back into a path: everything but unreserved
-- characters, sub-delims, ':' and '@' escaped. '%' stays: the router keeps
-- %2F and %25 escaped in parameters, so a '%' there is already an escape.
local function path_escape(v)
  return (v:gsub("[^%w%-%._~!$&'()*+,;=:@%%]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- "$name" in a uri template: a route parameter (unknown names stay as written).
local function expand(template)
  return (template:gsub("%$([%a_][%w_]*)", function(name)
    local v = torii.request.get_uri_param(name)
    return v and path_escape(v)
  end))
end

function plugin.rewrite(conf)
  local path = torii.upstream.get_uri():match("^[^?]*")
  if conf.uri then
    torii.upstream.set_path(expand(conf.uri))
  elseif conf.regex_uri then
    local new, count = re.gsub(path, conf.regex_uri[1], conf.regex_uri[2])
    if new and count > 0 then torii.upstream.set_path(new) end
  end
  if conf.host then torii.upstream.set_host(conf.host) end
  if conf.method then torii.upstream.set_method(conf.method) end
  local h = conf.headers
  if h then
    for _, name in ipairs(h.remove or {}) do torii.upstream.clear_header(name) end
    for name, value in pairs(h.set or {}) do torii.upstream.set_header(name, value) end
    for name, value in pairs(h.add or {}) do torii.upstream.add_header(name, value) end
  end
end

return plugin
