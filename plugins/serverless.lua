-- serverless: one-off logic as Lua functions written in the configuration.
--
--   plugins:
--     serverless:
--       phase: access            # rewrite (default) or access
--       functions:
--         - |
--           return function(conf, ctx)
--             if torii.request.get_header("x-block") then
--               torii.response.exit(403, {message = "blocked"})
--             end
--           end
--
-- Each string is a Lua chunk that returns a function (conf, ctx); they run
-- in order. `torii` is in scope. Chunks compile when the configuration
-- loads: a syntax error is a configuration error.
local torii = require "torii"

local plugin = {
  name = "serverless",
  version = "1.0",
  priority = 10000,
  schema = {
    type = "object",
    properties = {
      phase = { type = "string", enum = { "rewrite", "access" }, default = "rewrite",
        description = "The phase the functions run in." },
      functions = { type = "array", minItems = 1, items = { type = "string" },
        description = "Lua chunks, each returning a function(conf, ctx)." },
    },
    required = { "functions" },
    additionalProperties = false,
  },
}

local env = setmetatable({ torii = torii }, { __index = _G })

-- Compile every chunk once, keeping the functions out of the config view.
local compiled = setmetatable({}, { __mode = "k" })

function plugin.check(conf)
  if type(conf.functions) ~= "table" or #conf.functions == 0 then
    return nil, "functions: must list at least one Lua chunk"
  end
  local phase = conf.phase or "rewrite"
  if phase ~= "rewrite" and phase ~= "access" then
    return nil, "phase: must be rewrite or access, got " .. tostring(phase)
  end
  local fns = {}
  for i, src in ipairs(conf.functions) do
    if type(src) ~= "string" then return nil, ("functions[%d]: must be a string"):format(i - 1) end
    local chunk, err = loadstring(src, "=serverless[" .. (i - 1) .. "]")
    if not chunk then return nil, ("functions[%d]: %s"):format(i - 1, err) end
    setfenv(chunk, env)
    local ok, fn = pcall(chunk)
    if not ok or type(fn) ~= "function" then
      return nil, ("functions[%d]: must return a function%s"):format(i - 1, ok and "" or (": " .. tostring(fn)))
    end
    fns[i] = fn
  end
  compiled[conf] = { phase = phase, fns = fns }
  return true
end

local function run(phase, conf, ctx)
  local c = compiled[conf]
  if c.phase ~= phase then return end
  for i = 1, #c.fns do c.fns[i](conf, ctx) end
end

function plugin.rewrite(conf, ctx) run("rewrite", conf, ctx) end
function plugin.access(conf, ctx) run("access", conf, ctx) end

return plugin
