-- torii.schema: JSON Schema draft-07 validation.
--
--   local schema = require "torii.schema"
--   local v, err = schema.compile(s, opts)      -- err: "invalid schema at #/...: why"
--   local ok, errors = v(value, { path = "routes[3].plugins.limit-count", defaults = true })
--   local ok, errors = schema.validate(s, value, opts)  -- opts: both kinds below
--   local ok, errors = schema.check(s)          -- s against the draft-07 meta-schema
--
-- compile opts:
--   loader(uri)  -> decoded schema | nil, err: fetches remote documents for
--                   $ref (uri has no fragment); never called for the draft-07
--                   meta-schema, which is built in. Without a loader a remote
--                   $ref is a compile error. Nothing here touches the network.
--   base_uri     the URI of the schema document (for relative $ref and $id)
--   formats      true to check the "format"s torii.schema.formats knows
--                (date-time, date, time, email, hostname, ipv4, ipv6, uri,
--                uri-reference, regex, json-pointer, relative-json-pointer),
--                or a table name -> function(string) -> bool whose entries
--                are checked first. Unknown formats are annotations, and by
--                default (formats = nil) every format is.
--
-- validate opts:
--   path         prefix for error paths (default "": errors at the root are
--                just the message)
--   defaults     true to fill "default"s of missing properties (the value is
--                modified in place; see torii.schema.kw_object)
--
-- The result is true, or false and a list of error strings "PATH: message",
-- PATH built from the prefix with .name for properties (["odd key"] when the
-- name is not identifier-like) and [i] for array items, 0-based like the
-- rest of the configuration's paths:
--   routes[3].plugins.limit-count.count: must be >= 1, got 0
--   routes[3].plugins.limit-count: missing required property "key"
--   routes[3].plugins.limit-count: unknown property "foo"
-- A failing value is validated twice: quickly (stop at the first failure,
-- no messages), then again to gather every message.
--
-- Compiled validators are cached by schema table identity (weak keys) and
-- the compile options: compiling the same table again returns the same
-- function. A schema table must not be changed after it was compiled.
--
-- Values are as torii.json decodes them (see torii.schema.util): numbers
-- are doubles, so 1.0 is an integer and equals 1; [] and {} differ.

local compiler = require "torii.schema.compiler"
local util = require "torii.schema.util"

local type, pcall, error, tostring, setmetatable = type, pcall, error, tostring, setmetatable

local schema = {}

-- schema table -> loader (or false) -> option key -> validator. Weak keys
-- at both levels; a validator holds subtables of its schema, never the
-- root table itself, so an unreferenced schema is collected with its entry.
local cache = setmetatable({}, { __mode = "k" })

local function options_key(opts)
  local f = opts.formats
  local fk = f == nil and "-" or (f == true and "f" or tostring(f))
  return fk .. "|" .. tostring(opts.base_uri or "")
end

local function make_validator(root_fn)
  -- One state reused while not in use (the common case): no allocation on
  -- the success path.
  local spare = util.new_state("", false, nil)
  return function(value, vopts)
    local root = vopts and vopts.path or ""
    local defaults = vopts and vopts.defaults or false
    local st = spare
    if st then spare = nil else st = util.new_state() end
    st.root, st.defaults, st.errs, st.n, st.depth = root, defaults, nil, 0, 0
    local ok = root_fn(value, st)
    if not ok then
      st.errs, st.n, st.depth = {}, 0, 0
      root_fn(value, st)
    end
    local errs = st.errs
    st.errs = nil
    spare = st
    if ok then return true end
    if errs[1] == nil then errs[1] = root == "" and "invalid value" or root .. ": invalid value" end
    return false, errs
  end
end

function schema.compile(s, opts)
  opts = opts or {}
  local k = util.kind_of(s)
  if k ~= "object" and k ~= "boolean" then
    return nil, "invalid schema at #: a schema must be an object or a boolean, got " .. k
  end
  local by_loader, okey
  if type(s) == "table" then
    by_loader = cache[s]
    if not by_loader then
      by_loader = setmetatable({}, { __mode = "k" })
      cache[s] = by_loader
    end
    local lkey = opts.loader or false
    local entry = by_loader[lkey]
    if not entry then
      entry = {}
      by_loader[lkey] = entry
    end
    okey = options_key(opts)
    if entry[okey] then return entry[okey] end
    by_loader = entry
  end
  local ok, root_fn = pcall(compiler.compile, s, opts)
  if not ok then
    if type(root_fn) == "table" and root_fn.schema_error then return nil, root_fn.schema_error end
    error(root_fn, 0)
  end
  local v = make_validator(root_fn)
  if by_loader then by_loader[okey] = v end
  return v
end

-- One table may carry both kinds of options: schema.validate(s, value,
-- { path = "x", defaults = true, loader = f, formats = true }).
function schema.validate(s, value, vopts, opts)
  local v, err = schema.compile(s, opts or vopts)
  if not v then return false, { err } end
  return v(value, vopts)
end

-- Validates a schema against the draft-07 meta-schema.
function schema.check(s)
  local meta = require "torii.schema.meta"
  local v = assert(schema.compile(meta.draft07()))
  return v(s)
end

return schema
