-- torii.schema.kw_logic: if/then/else, allOf, anyOf, oneOf, not.
--
-- anyOf, oneOf, not and if evaluate their subschemas as probes (no errors,
-- no defaults). When anyOf or oneOf passes and defaults are wanted, the
-- matching branch (the first, for anyOf) runs once more with defaults on.
-- A failed anyOf or oneOf reports each branch's first error, made relative
-- to the value's path.

local util = require "torii.schema.util"

local ipairs, format, concat = ipairs, string.format, table.concat

local report, probe, collect, relative = util.report, util.probe, util.collect, util.relative

local function sub_list(node, key)
  local list = node:want(key, "array")
  if #list == 0 then node:fail(format("%q must not be empty", key)) end
  local fns = {}
  for i, s in ipairs(list) do fns[i] = node:sub(s, key, i - 1) end
  return fns, #fns
end

-- "[1] why; [2] why" from each branch's first error.
local function branch_errors(st, fns, v)
  local parts = {}
  for i, fn in ipairs(fns) do
    local _, errs = collect(st, fn, v)
    parts[i] = format("[%d] %s", i, errs[1] and relative(st, errs[1]) or "failed")
  end
  return concat(parts, "; ")
end

local function compile_if(node, s)
  local cond = node:sub(s["if"], "if")
  local yes = s["then"] ~= nil and node:sub(s["then"], "then") or nil
  local no = s["else"] ~= nil and node:sub(s["else"], "else") or nil
  if not yes and not no then return nil end
  return function(v, st)
    if probe(st, cond, v) then
      if yes then return yes(v, st) end
    elseif no then
      return no(v, st)
    end
    return true
  end
end

local function compile_all(node)
  local fns, n = sub_list(node, "allOf")
  return function(v, st)
    local ok = true
    for i = 1, n do
      if not fns[i](v, st) then
        if not st.errs then return false end
        ok = false
      end
    end
    return ok
  end
end

local function compile_any(node)
  local fns, n = sub_list(node, "anyOf")
  return function(v, st)
    for i = 1, n do
      if probe(st, fns[i], v) then
        if st.defaults then return fns[i](v, st) end
        return true
      end
    end
    if not st.errs then return false end
    return report(st, "must match at least one schema in anyOf: " .. branch_errors(st, fns, v))
  end
end

local function compile_one(node)
  local fns, n = sub_list(node, "oneOf")
  return function(v, st)
    local first
    for i = 1, n do
      if probe(st, fns[i], v) then
        if first then
          return report(st, format("must match exactly one schema in oneOf, but matches [%d] and [%d]", first, i))
        end
        first = i
      end
    end
    if first then
      if st.defaults then return fns[first](v, st) end
      return true
    end
    if not st.errs then return false end
    return report(st, "must match exactly one schema in oneOf: " .. branch_errors(st, fns, v))
  end
end

local function compile_not(node, s)
  local fn = node:sub(s["not"], "not")
  return function(v, st)
    if probe(st, fn, v) then return report(st, 'must not match the "not" schema') end
    return true
  end
end

return {
  { keys = { "if" }, order = 80, compile = compile_if },
  { keys = { "allOf" }, order = 81, compile = compile_all },
  { keys = { "anyOf" }, order = 82, compile = compile_any },
  { keys = { "oneOf" }, order = 83, compile = compile_one },
  { keys = { "not" }, order = 84, compile = compile_not },
}
