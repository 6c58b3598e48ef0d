-- torii.schema.kw_object: defaults, properties, patternProperties,
-- additionalProperties, required, maxProperties, minProperties,
-- dependencies, propertyNames.
--
-- Defaults: with st.defaults set, a missing property whose subschema in
-- "properties" has a "default" gets a deep copy of it, before any other
-- check of the object runs (so before "required"). Provided values, json.null
-- included, are never replaced. Defaults are filled only where the schema
-- asserts: not while probing anyOf/oneOf branches, "not", "if" or
-- "contains" (anyOf and oneOf fill them from the branch that matched).

local util = require "torii.schema.util"
local re = require "torii.re"

local type, pairs, ipairs, tostring, next = type, pairs, ipairs, tostring, next
local format, sort = string.format, table.sort

local report, descend, copy, show = util.report, util.descend, util.copy, util.show
local kind_of, new_state, count = util.kind_of, util.new_state, util.count

local function quoted(key)
  return show(tostring(key), 80)
end

local function compile_defaults(node)
  local props = node:want("properties", "object")
  local names, values, n = {}, {}, 0
  for name, sub in pairs(props) do
    if type(sub) == "table" and sub.default ~= nil then
      n = n + 1
      names[n], values[n] = name, sub.default
    end
  end
  if n == 0 then return nil end
  return function(v, st, kind)
    if st.defaults and kind == "object" then
      for i = 1, n do
        if v[names[i]] == nil then v[names[i]] = copy(values[i]) end
      end
    end
    return true
  end
end

-- Keys of an object, sorted when errors are wanted (stable messages).
local function keys_of(v, sorted)
  local keys, n = {}, 0
  for k in pairs(v) do n = n + 1; keys[n] = k end
  if sorted then
    sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      return a < b
    end)
  end
  return keys, n
end

local function compile_properties(node, s)
  local names, fns, np, known = {}, {}, 0, {}
  if s.properties ~= nil then
    for name in pairs(node:want("properties", "object")) do
      np = np + 1
      names[np] = name
      known[name] = true
    end
    sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for i = 1, np do fns[i] = node:sub(s.properties[names[i]], "properties", names[i]) end
  end
  local rxs, pfns, npat = {}, {}, 0
  if s.patternProperties ~= nil then
    for pat, sub in pairs(node:want("patternProperties", "object")) do
      local rx, err = re.cached(pat, "u")
      if not rx then node:fail(format("patternProperties %s is not a valid regex: %s", show(pat), err)) end
      npat = npat + 1
      rxs[npat], pfns[npat] = rx, node:sub(sub, "patternProperties", pat)
    end
  end
  local extra
  if s.additionalProperties ~= nil then
    node:want("additionalProperties", "object", "boolean")
    extra = node:sub(s.additionalProperties, "additionalProperties")
  end
  local closed = s.additionalProperties == false
  local scan = npat > 0 or extra ~= nil

  local function check_key(v, st, key)
    local x = v[key]
    local ok, matched = true, known[key] ~= nil
    local skey = tostring(key)
    for i = 1, npat do
      if rxs[i]:find(skey) then
        matched = true
        if not descend(st, key, pfns[i], x) then
          if not st.errs then return false end
          ok = false
        end
      end
    end
    if not matched and extra then
      if closed then return report(st, "unknown property " .. quoted(key)) end
      if not descend(st, key, extra, x) then return false end
    end
    return ok
  end

  return function(v, st, kind)
    if kind ~= "object" then return true end
    local ok = true
    for i = 1, np do
      local x = v[names[i]]
      if x ~= nil and not descend(st, names[i], fns[i], x) then
        if not st.errs then return false end
        ok = false
      end
    end
    if scan then
      local keys, n = keys_of(v, st.errs ~= nil)
      for i = 1, n do
        if not check_key(v, st, keys[i]) then
          if not st.errs then return false end
          ok = false
        end
      end
    end
    return ok
  end
end

local function compile_required(node)
  local list = node:want("required", "array")
  for _, name in ipairs(list) do
    if type(name) ~= "string" then node:fail('"required" must list strings, got ' .. kind_of(name)) end
  end
  local n = #list
  if n == 0 then return nil end
  return function(v, st, kind)
    if kind ~= "object" then return true end
    local ok = true
    for i = 1, n do
      if v[list[i]] == nil then
        ok = report(st, "missing required property " .. quoted(list[i]))
        if not st.errs then return false end
      end
    end
    return ok
  end
end

local function compile_counts(node, s)
  local max = s.maxProperties ~= nil and node:want_count("maxProperties") or nil
  local min = s.minProperties ~= nil and node:want_count("minProperties") or nil
  return function(v, st, kind)
    if kind ~= "object" then return true end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    if max and n > max then
      return report(st, format("must have at most %s, got %d", count(max, "property", "properties"), n))
    end
    if min and n < min then
      return report(st, format("must have at least %s, got %d", count(min, "property", "properties"), n))
    end
    return true
  end
end

local function compile_dependencies(node)
  local deps = {}
  for name, dep in pairs(node:want("dependencies", "object")) do
    local k = kind_of(dep)
    if k == "object" and next(dep) == nil then k = "array" end
    if k == "array" then
      for _, other in ipairs(dep) do
        if type(other) ~= "string" then
          node:fail(format("dependencies of %s must list strings, got %s", quoted(name), kind_of(other)))
        end
      end
      deps[#deps + 1] = { name = name, list = dep }
    else
      deps[#deps + 1] = { name = name, fn = node:sub(dep, "dependencies", name) }
    end
  end
  sort(deps, function(a, b) return tostring(a.name) < tostring(b.name) end)
  local n = #deps
  return function(v, st, kind)
    if kind ~= "object" then return true end
    local ok = true
    for i = 1, n do
      local d = deps[i]
      if v[d.name] ~= nil then
        if d.fn then
          if not d.fn(v, st) then
            if not st.errs then return false end
            ok = false
          end
        else
          for _, other in ipairs(d.list) do
            if v[other] == nil then
              ok = report(st, format("property %s requires property %s", quoted(d.name), quoted(other)))
              if not st.errs then return false end
            end
          end
        end
      end
    end
    return ok
  end
end

local function compile_property_names(node, s)
  local fn = node:sub(s.propertyNames, "propertyNames")
  return function(v, st, kind)
    if kind ~= "object" then return true end
    local ok = true
    local keys, n = keys_of(v, st.errs ~= nil)
    for i = 1, n do
      local key = tostring(keys[i])
      local sub = new_state("", false, st.errs and {} or nil)
      sub.depth = st.depth
      if not fn(key, sub) then
        if not st.errs then return false end
        ok = report(st, format("invalid property name %s: %s", quoted(key), sub.errs[1] or "not allowed"))
      end
    end
    return ok
  end
end

return {
  { keys = { "properties" }, order = 5, compile = compile_defaults },
  { keys = { "properties", "patternProperties", "additionalProperties" }, order = 60,
    compile = compile_properties },
  { keys = { "required" }, order = 61, compile = compile_required },
  { keys = { "maxProperties", "minProperties" }, order = 62, compile = compile_counts },
  { keys = { "dependencies" }, order = 63, compile = compile_dependencies },
  { keys = { "propertyNames" }, order = 64, compile = compile_property_names },
}
