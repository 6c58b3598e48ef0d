-- The hot paths of the plugin runtime must stay JIT-compiled: header
-- access through the FFI and the plugin chain loop. LuaJIT's trace log
-- (jit.v) shows what compiled; an "NYI" (not yet implemented) abort in
-- torii's own Lua, or no loop trace at all, fails the spec.

local gateway = require "gateway"
local http = require "http"
local testutil = require "testutil"

local FIXTURES = gateway.root .. "/t/integration/fixtures/jit"

-- NYI aborts in torii's own Lua (plugins under test are their authors'
-- business; a tiny fixture function may abort "return to lower frame").
local function own_nyi(text)
  for line in text:gmatch("[^\n]+") do
    if line:find("NYI", 1, true) and (line:find("runtime.lua", 1, true) or line:find("init.lua", 1, true)
      or line:find("ffi.lua", 1, true)) then
      return line
    end
  end
end

local function traces(text, file)
  local compiled, aborts = {}, {}
  for line in text:gmatch("[^\n]+") do
    if line:find(file, 1, true) then
      if line:find("^%[TRACE %-%-%-") then
        aborts[#aborts + 1] = line
      elseif line:find("^%[TRACE%s+%d+") then
        compiled[#compiled + 1] = line
      end
    end
  end
  return compiled, aborts
end

describe("JIT compilation of the plugin runtime's hot paths", function()
  local gw, log_path, m

  setup(function()
    m = gateway.mock { id = "jit" }
    local dir = gateway.tmpdir()
    log_path = dir .. "/jit.log"
    gw = gateway.start {
      env = { TORII_JIT_LOG = log_path },
      config = {
        workers = 1,
        plugin_dirs = { FIXTURES },
        routes = {
          { id = "hot", uri = "/hot", upstream = { nodes = { "127.0.0.1:" .. m.port } },
            plugins = { serverless = { phase = "access", functions = { [[
              return function(conf, ctx)
                local n = 0
                for i = 1, 5000 do
                  if torii.request.get_header("x-a") then n = n + 1 end
                  if torii.request.get_method() == "GET" then n = n + 1 end
                end
                torii.response.exit(200, tostring(n))
              end]] } } } },
          { id = "chain", uri = "/chain", upstream = { nodes = { "127.0.0.1:" .. m.port } },
            plugins = { jitlog = {}, noop = {} } },
        },
        global_rules = { { id = "g", plugins = { jitlog = {} } } },
      },
    }
  end)

  teardown(function() gateway.cleanup_all() end)

  -- What the worker traced while loading the configuration (schema checks,
  -- chain building) is not a request's path: only what follows counts.
  local function since(mark)
    return (testutil.read_file(log_path) or ""):sub(mark + 1)
  end

  local function mark()
    return #(testutil.read_file(log_path) or "")
  end

  it("header access in a plugin's loop compiles, with no NYI abort", function()
    local from = mark()
    local resp = assert(http.request(gw.port, { path = "/hot", headers = { { "X-A", "1" } } }))
    assert.are.equal(200, resp.status)
    assert.are.equal("10000", resp.body)
    local text = testutil.eventually(function()
      local t = since(from)
      return t:find("serverless%[0%]:%d+ loop") and t
    end, 5)
    assert.is_truthy(text, "no loop trace for the plugin:\n" .. tostring(testutil.read_file(log_path)))
    assert.is_nil(own_nyi(text), "an NYI abort:\n" .. text)
    local _, aborts = traces(text, "init.lua")
    for _, a in ipairs(aborts) do
      -- A root trace started inside a callee that returns into the loop is
      -- benign (the loop's own trace covers it); anything else is not.
      assert.is_truthy(a:find("leaving loop in root trace", 1, true), "the torii API aborted a trace: " .. a)
    end
  end)

  it("the plugin chain loop compiles over many requests", function()
    local from = mark()
    local conn = assert(http.connect(gw.port))
    for i = 1, 300 do
      assert(conn:request { path = "/chain" })
      local resp = assert(conn:read_response())
      assert.are.equal(200, resp.status, "request " .. i)
    end
    conn:close()
    local text = since(from)
    local compiled = traces(testutil.read_file(log_path) or "", "runtime.lua")
    assert.is_true(#compiled > 0, "no trace in the runtime's chain loop:\n" .. text)
    assert.is_nil(own_nyi(text), "an NYI abort:\n" .. text)
    gw:assert_clean()
  end)
end)
