-- stamp: marks the requests that pass the gateway, and their responses.
-- An example of a complete plugin, with its specs in spec/ (README.md,
-- "Writing and testing a plugin").
--
--   plugin_dirs: [examples/stamp]
--   routes:
--     - id: orders
--       uri: /orders/*
--       upstream: {nodes: ["127.0.0.1:9000"]}
--       plugins: {stamp: {tag: edge-1}}     # header: X-Stamp, refuse_forged: true
--
-- The upstream gets `X-Stamp: edge-1; id=<request id>`, the client gets
-- `X-Stamp: edge-1` on the upstream's response. A request that arrives
-- with the header set was stamped by someone else: with refuse_forged it
-- gets 400 and never reaches the upstream; without, its stamp is replaced.
local torii = require "torii"

local plugin = {
  name = "stamp",
  version = "1.0",
  priority = 1500,
  schema = {
    type = "object",
    properties = {
      tag = { type = "string", pattern = "^[A-Za-z0-9._-]+$", description = "What the stamp says." },
      header = { type = "string", minLength = 1, default = "X-Stamp", description = "The header that carries it." },
      refuse_forged = { type = "boolean", default = true,
        description = "Answer 400 to a request that arrives with the header." },
    },
    required = { "tag" },
    additionalProperties = false,
  },
}

function plugin.access(conf, ctx)
  if torii.request.get_header(conf.header) and conf.refuse_forged then
    return torii.response.exit(400, { message = "the request already carries " .. conf.header })
  end
  ctx.stamp = conf.tag .. "; id=" .. torii.request.get_id()
  torii.upstream.set_header(conf.header, ctx.stamp)
end

function plugin.header_filter(conf)
  torii.response.set_header(conf.header, conf.tag)
end

function plugin.log(_, ctx)
  if ctx.stamp then torii.log.info("stamp:", ctx.stamp, "status", torii.response.get_status()) end
end

return plugin
