-- torii.schema.compiler: turns a draft-07 schema into a tree of closures.
--
-- One compile is one session (`ctx`): it indexes every $id of the root
-- document and of each remote document it loads (only in schema positions:
-- an "$id" inside "enum" or "const" is data, not an identifier), resolves
-- each $ref once, at compile time, and compiles every (schema table, base
-- URI) pair once. A schema under compilation is first entered as a
-- forwarding function, so recursive schemas ($ref "#") compile in one pass.
--
-- A compiled schema is `fn(value, st) -> ok` (see util's "validation state").
-- Bad schemas raise { schema_error = "..." } through error(), which
-- torii.schema turns into nil, "invalid schema at #/json/pointer: why".

local util = require "torii.schema.util"
local uri = require "torii.schema.uri"

local type, pairs, ipairs, error, tostring, tonumber = type, pairs, ipairs, error, tostring, tonumber
local next, select, setmetatable = next, select, setmetatable
local concat, sort = table.concat, table.sort
local find, gsub, format = string.find, string.gsub, string.format

local kind_of, report = util.kind_of, util.report

local compiler = {}

-- How deep $ref may nest while validating one value: deeper means a schema
-- that recurses without consuming the value (a $ref cycle through allOf,
-- say), which would otherwise never end.
compiler.MAX_REF_DEPTH = 2000

-- The draft-07 meta-schema is known without a loader.
local BUILTIN = {
  ["http://json-schema.org/draft-07/schema"] = function()
    return require("torii.schema.meta").draft07()
  end,
}

-- Keyword groups, in the order their checks run. Each group's compile runs
-- when any of its keys is in the schema; it returns a check or nil.
local GROUPS = {}
for _, name in ipairs { "object", "generic", "array", "logic" } do
  for _, g in ipairs(require("torii.schema.kw_" .. name)) do
    GROUPS[#GROUPS + 1] = g
  end
end
sort(GROUPS, function(a, b) return a.order < b.order end)

---------------------------------------------------------------------------
-- errors at compile time
---------------------------------------------------------------------------

local function escape_token(t)
  t = gsub(gsub(tostring(t), "~", "~0"), "/", "~1")
  return t
end

local function schema_error(spath, msg)
  error({ schema_error = format("invalid schema at %s: %s", spath, msg) }, 0)
end
compiler.schema_error = schema_error

---------------------------------------------------------------------------
-- indexing identifiers
---------------------------------------------------------------------------

local SUB_SINGLE = { "additionalItems", "additionalProperties", "contains", "propertyNames",
  "if", "then", "else", "not" }
-- "$defs" is not a draft-07 keyword, but schemas written for later drafts use
-- it for the same purpose: identifiers inside it are found too.
local SUB_MAP = { "properties", "patternProperties", "definitions", "$defs", "dependencies" }
local SUB_LIST = { "allOf", "anyOf", "oneOf" }

local function register(ctx, key, s, base)
  key = uri.normalize(key)
  if ctx.registry[key] == nil then
    ctx.registry[key] = { schema = s, base = base }
  end
end

-- The base URI inside schema s, given the base URI around it.
local function inner_base(s, base)
  local id = s["$id"]
  if type(id) ~= "string" or s["$ref"] ~= nil then return base end
  local doc = uri.split(uri.resolve(base, id))
  if doc == "" and find(id, "^#") then return base end
  return doc
end

local function index(ctx, s, base)
  if type(s) ~= "table" or ctx.outer[s] then return end
  local kind = kind_of(s)
  if kind == "array" then
    for _, x in ipairs(s) do index(ctx, x, base) end
    return
  elseif kind ~= "object" then
    return
  end
  ctx.outer[s] = base
  local id = s["$id"]
  if type(id) == "string" and s["$ref"] == nil then
    local full = uri.resolve(base, id)
    local doc, frag = uri.split(full)
    local inner = inner_base(s, base)
    if frag and frag ~= "" then register(ctx, inner .. "#" .. frag, s, base) end
    if not find(id, "^#") then register(ctx, doc, s, base) end
    base = inner
  end
  ctx.inner[s] = base
  for _, k in ipairs(SUB_SINGLE) do index(ctx, s[k], base) end
  for _, k in ipairs(SUB_LIST) do index(ctx, s[k], base) end
  index(ctx, s.items, base)
  for _, k in ipairs(SUB_MAP) do
    local m = s[k]
    if type(m) == "table" and kind_of(m) == "object" then
      for _, sub in pairs(m) do index(ctx, sub, base) end
    end
  end
end
compiler.index = index

---------------------------------------------------------------------------
-- $ref resolution
---------------------------------------------------------------------------

local function load_document(ctx, doc, spath)
  local s, err
  if BUILTIN[doc] then
    s = BUILTIN[doc]()
  elseif ctx.loader then
    s, err = ctx.loader(doc)
  else
    err = "no loader for remote references"
  end
  if s == nil then
    schema_error(spath, format("cannot load %q: %s", doc, tostring(err or "not found")))
  end
  local k = kind_of(s)
  if k ~= "object" and k ~= "boolean" then
    schema_error(spath, format("%q is not a schema (got %s)", doc, k))
  end
  if type(s) == "table" then index(ctx, s, doc) end
  register(ctx, doc, s, doc)
  return ctx.registry[doc]
end

-- Resolves an absolute reference to (schema, outer base URI, its pointer).
local function resolve(ctx, ref, spath)
  ref = uri.normalize(ref)
  local e = ctx.registry[ref]
  if e then return e.schema, e.base, ref end
  local doc, frag = uri.split(ref)
  local d = ctx.registry[doc] or load_document(ctx, doc, spath)
  if not frag or frag == "" then return d.schema, d.base, ref end
  local segs = uri.pointer_segments(frag)
  if not segs then
    schema_error(spath, format("cannot resolve $ref %q: no such identifier", ref))
  end
  local node, base = d.schema, ctx.inner[d.schema] or d.base
  for _, seg in ipairs(segs) do
    if type(node) ~= "table" then node = nil; break end
    if kind_of(node) == "array" then
      node = find(seg, "^%d+$") and node[tonumber(seg) + 1] or nil
    else
      node = node[seg]
    end
    if node == nil then break end
    if type(node) == "table" and ctx.inner[node] then
      base = ctx.inner[node]
    end
  end
  if node == nil then
    schema_error(spath, format("cannot resolve $ref %q", ref))
  end
  if type(node) == "table" and ctx.outer[node] then base = ctx.outer[node] end
  return node, base, ref
end

---------------------------------------------------------------------------
-- compiling
---------------------------------------------------------------------------

local function pass() return true end
local function reject(_, st) return report(st, "is not allowed") end

local compile

-- The per-schema view a keyword compiler gets.
local Node = {}
Node.__index = Node

-- Compiles the subschema `s` found at this node's path + the given tokens.
function Node:sub(s, ...)
  local spath = self.spath
  for i = 1, select("#", ...) do
    spath = spath .. "/" .. escape_token((select(i, ...)))
  end
  return compile(self.ctx, s, self.base, spath)
end

function Node:fail(msg)
  schema_error(self.spath, msg)
end

-- Checks that keyword `key` of this schema has one of the given kinds.
-- An empty plain table counts as an empty array where an array is wanted.
function Node:want(key, ...)
  local v = self.schema[key]
  local k = kind_of(v)
  if k == "object" and type(v) == "table" and next(v) == nil then k = "array" end
  for i = 1, select("#", ...) do
    local want = select(i, ...)
    if k == want or (want == "integer" and k == "number" and util.is_integer(v)) then return v end
  end
  local words = {}
  for i = 1, select("#", ...) do words[i] = util.article(select(i, ...)) end
  self:fail(format("%q must be %s, got %s", key, concat(words, " or "), k))
end

function Node:want_count(key)
  local v = self:want(key, "integer")
  if v < 0 then self:fail(format("%q must not be negative", key)) end
  return v
end

local function ref_check(ctx, s, base, spath)
  local ref = s["$ref"]
  if type(ref) ~= "string" then
    schema_error(spath, format('"$ref" must be a string, got %s', kind_of(ref)))
  end
  local target, tbase, tpath = resolve(ctx, uri.resolve(base, ref), spath)
  -- a chain of $refs that comes back to itself would never reach a check
  local seen, t, b = { [s] = true }, target, tbase
  while type(t) == "table" and type(t["$ref"]) == "string" do
    if seen[t] then schema_error(spath, format("$ref %q is part of a $ref cycle", ref)) end
    seen[t] = true
    t, b = resolve(ctx, uri.resolve(b, t["$ref"]), spath)
  end
  local fn = compile(ctx, target, tbase, tpath)
  local max = compiler.MAX_REF_DEPTH
  return function(v, st)
    local d = st.depth + 1
    if d > max then return report(st, "schema recursion deeper than " .. max .. " $refs") end
    st.depth = d
    local ok = fn(v, st)
    st.depth = d - 1
    return ok
  end
end

local function build(ctx, s, base, spath)
  -- draft-07: a $ref ignores every keyword beside it
  if s["$ref"] ~= nil then return ref_check(ctx, s, base, spath) end
  local node = setmetatable({ ctx = ctx, schema = s, base = inner_base(s, base), spath = spath }, Node)
  local checks, n = {}, 0
  for _, g in ipairs(GROUPS) do
    local present = false
    for _, key in ipairs(g.keys) do
      if s[key] ~= nil then present = true; break end
    end
    if present then
      local check = g.compile(node, s)
      if check then n = n + 1; checks[n] = check end
    end
  end
  if n == 0 then return pass end
  if n == 1 then
    local c1 = checks[1]
    return function(v, st) return c1(v, st, kind_of(v)) end
  end
  return function(v, st)
    local kind = kind_of(v)
    local ok = true
    for i = 1, n do
      if not checks[i](v, st, kind) then
        if not st.errs then return false end
        ok = false
      end
    end
    return ok
  end
end

compile = function(ctx, s, base, spath)
  if s == true then return pass end
  if s == false then return reject end
  local k = kind_of(s)
  if k ~= "object" then
    schema_error(spath, "a schema must be an object or a boolean, got " .. k)
  end
  local by_base = ctx.compiled[s]
  if not by_base then
    by_base = {}
    ctx.compiled[s] = by_base
  end
  local done = by_base[base]
  if done then return done end
  if not ctx.outer[s] then index(ctx, s, base) end
  local impl
  by_base[base] = function(v, st) return impl(v, st) end
  impl = build(ctx, s, base, spath)
  by_base[base] = impl
  return impl
end

-- Compiles a root schema. opts: loader, base_uri, formats.
function compiler.compile(root, opts)
  local ctx = {
    registry = {},  -- absolute URI -> { schema, outer base }
    outer = {},     -- schema table -> base URI around it
    inner = {},     -- schema table -> base URI inside it (after its $id)
    compiled = {},  -- schema table -> outer base -> compiled fn
    loader = opts.loader,
    formats = opts.formats,
  }
  local base = opts.base_uri or ""
  if type(root) == "table" then index(ctx, root, base) end
  register(ctx, uri.split(base), root, base)
  return compile(ctx, root, base, "#")
end

return compiler
