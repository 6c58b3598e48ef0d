-- torii.schema.kw_array: items, additionalItems, maxItems, minItems,
-- uniqueItems, contains. Item paths are 0-based, like every path in a
-- torii configuration error: the first item of `list` is `list[0]`.

local util = require "torii.schema.util"

local type, ipairs = type, ipairs
local format = string.format

local report, descend, probe, equal = util.report, util.descend, util.probe, util.equal
local kind_of, null, count = util.kind_of, util.null, util.count

local function compile_items(node, s)
  local items = s.items
  local all, list, nlist
  if items ~= nil then
    local k = kind_of(items)
    if k == "array" then
      list, nlist = {}, #items
      for i, sub in ipairs(items) do list[i] = node:sub(sub, "items", i - 1) end
    else
      node:want("items", "object", "boolean", "array")
      all = node:sub(items, "items")
    end
  end
  local extra, closed
  if list and s.additionalItems ~= nil then
    node:want("additionalItems", "object", "boolean")
    extra = node:sub(s.additionalItems, "additionalItems")
    closed = s.additionalItems == false
  end
  if not all and not list then return nil end
  return function(v, st, kind)
    if kind ~= "array" then return true end
    local n = #v
    local ok = true
    if all then
      for i = 1, n do
        if not descend(st, i, all, v[i]) then
          if not st.errs then return false end
          ok = false
        end
      end
      return ok
    end
    for i = 1, (n < nlist and n or nlist) do
      if not descend(st, i, list[i], v[i]) then
        if not st.errs then return false end
        ok = false
      end
    end
    if extra and n > nlist then
      if closed then
        return report(st, format("must have at most %s (additionalItems is false), got %d", count(nlist, "item"), n))
      end
      for i = nlist + 1, n do
        if not descend(st, i, extra, v[i]) then
          if not st.errs then return false end
          ok = false
        end
      end
    end
    return ok
  end
end

local function compile_counts(node, s)
  local max = s.maxItems ~= nil and node:want_count("maxItems") or nil
  local min = s.minItems ~= nil and node:want_count("minItems") or nil
  return function(v, st, kind)
    if kind ~= "array" then return true end
    local n = #v
    if max and n > max then return report(st, format("must have at most %s, got %d", count(max, "item"), n)) end
    if min and n < min then return report(st, format("must have at least %s, got %d", count(min, "item"), n)) end
    return true
  end
end

-- The first pair of equal items (i < j), or nil. Scalars go through a
-- lookup table (1 and 1.0 are one key, as they are one JSON number);
-- tables are compared pairwise.
local function duplicate(v)
  local seen, tables, nt = {}, {}, 0
  for j = 1, #v do
    local x = v[j]
    if type(x) ~= "table" or x == null then
      local i = seen[x]
      if i then return i, j end
      seen[x] = j
    else
      for t = 1, nt do
        if equal(v[tables[t]], x) then return tables[t], j end
      end
      nt = nt + 1
      tables[nt] = j
    end
  end
  return nil
end

local function compile_unique(node)
  if not node:want("uniqueItems", "boolean") then return nil end
  return function(v, st, kind)
    if kind ~= "array" then return true end
    local i, j = duplicate(v)
    if not i then return true end
    return report(st, format("must not contain duplicate items, [%d] and [%d] are equal", i, j))
  end
end

local function compile_contains(node, s)
  local fn = node:sub(s.contains, "contains")
  return function(v, st, kind)
    if kind ~= "array" then return true end
    for i = 1, #v do
      if probe(st, fn, v[i]) then return true end
    end
    return report(st, 'must contain an item matching the "contains" schema')
  end
end

return {
  { keys = { "items", "additionalItems" }, order = 70, compile = compile_items },
  { keys = { "maxItems", "minItems" }, order = 71, compile = compile_counts },
  { keys = { "uniqueItems" }, order = 72, compile = compile_unique },
  { keys = { "contains" }, order = 73, compile = compile_contains },
}
