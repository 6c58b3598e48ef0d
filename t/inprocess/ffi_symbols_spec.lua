-- Every C function torii.ffi declares is resolved when the module loads.
-- LuaJIT cannot record the first lookup of a C symbol: a trace that meets
-- one aborts ("symbol not in cache"), and a trace may start anywhere a hot
-- counter fires, rarely called API functions included. ffi.C's lookup cache
-- is its environment table, so the spec reads it directly.

local ffi = require "ffi"
local tffi = require "torii.ffi"

describe("torii.ffi", function()
  it("resolves every declared C function at load, before any trace can meet it", function()
    local cache = debug.getfenv(ffi.C)
    local missing, n = {}, 0
    for name in tffi.cdef:gmatch("(torii_ffi_[%w_]+)%s*%(") do
      n = n + 1
      if rawget(cache, name) == nil then missing[#missing + 1] = name end
    end
    assert.is_true(n > 50, "the declarations were not found in torii.ffi.cdef")
    assert.are.same({}, missing)
  end)
end)
