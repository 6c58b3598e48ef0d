-- key-auth: API keys in a header or a query argument, checked against
-- the consumers'. As in APISIX:
--
--   consumers:
--     - username: partner
--       plugins: {key-auth: {key: "s3cret-key"}}
--   routes:
--     - id: api
--       uri: /api/*
--       plugins: {key-auth: {}}      # header: apikey, query: apikey, hide_credentials: false
--
-- A request without a key, or with one no consumer has, gets 401 with a
-- JSON body. A known key attaches the consumer to the request (ctx.consumer)
-- and sends its name upstream in X-Consumer-Username. With
-- hide_credentials, the key is removed from what goes upstream.
local torii = require "torii"

local plugin = {
  name = "key-auth",
  version = "1.0",
  priority = 2500,
  schema = {
    type = "object",
    properties = {
      header = { type = "string", minLength = 1, default = "apikey",
        description = "The request header that carries the key." },
      query = { type = "string", minLength = 1, default = "apikey",
        description = "The query argument that carries the key when the header is absent." },
      hide_credentials = { type = "boolean", default = false,
        description = "Remove the key from the request sent upstream." },
    },
    additionalProperties = false,
  },
  consumer_schema = {
    type = "object",
    properties = {
      key = { type = "string", minLength = 1, description = "The consumer's API key." },
    },
    required = { "key" },
    additionalProperties = false,
  },
  consumer_unique = "key", -- two consumers cannot share a key
}

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The raw query without the argument `name` (every occurrence); the
-- others stay exactly as sent, repeated and value-less ones included.
local function without_arg(q, name)
  local kept = {}
  for pair in q:gmatch("[^&]+") do
    if unescape(pair:match("^[^=]*")) ~= name then kept[#kept + 1] = pair end
  end
  return table.concat(kept, "&")
end

function plugin.access(conf, ctx)
  local header = conf.header or "apikey"
  local query = conf.query or "apikey"
  local key = torii.request.get_header(header)
  local from_query = false
  if not key then
    key = torii.request.get_query_arg(query)
    from_query = key ~= nil
  end
  if not key or key == "" then
    return torii.response.exit(401, { message = "Missing API key found in request" })
  end
  local consumer = torii.consumer.find("key-auth", "key", key)
  if not consumer then
    return torii.response.exit(401, { message = "Invalid API key in request" })
  end
  torii.consumer.attach(ctx, consumer)
  if conf.hide_credentials then
    if from_query then
      torii.upstream.set_query(without_arg(torii.request.get_query(), query))
    else
      torii.upstream.clear_header(header)
    end
  end
end

return plugin
