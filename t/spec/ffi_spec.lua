-- The FFI boundary has one source: core/lua/ffi.h. lua/torii/ffi.lua
-- declares the same functions for ffi.cdef; this spec fails when the two
-- drift apart (a changed signature, a function on one side only, or an ABI
-- version bumped on one side only).

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function normalise(decl)
  decl = decl:gsub("%s+", " "):gsub(" ?%( ?", "("):gsub(" ?%) ?", ")"):gsub(" ?, ?", ", "):gsub(" ?%*", " *")
  return (decl:gsub("%* ", "*"):gsub("^ ", ""):gsub(" ;$", ";"))
end

-- Declarations of torii_ffi_* functions in C text (comments and
-- preprocessor lines removed first).
local function declarations(text)
  text = text:gsub("/%*.-%*/", " "):gsub("\n#[^\n]*", "\n")
  local out = {}
  for decl in text:gmatch("[^;{}]+;") do
    decl = normalise(decl)
    if decl:find("torii_ffi_[%w_]+%(") then out[#out + 1] = decl end
  end
  table.sort(out)
  return out
end

describe("the FFI declarations", function()
  local header = read("core/lua/ffi.h")
  local lua = read("lua/torii/ffi.lua")
  local cdef = lua:match("local cdef = %[%[(.-)%]%]")

  it("are found on both sides", function()
    assert.is_string(cdef)
    assert.is_true(#declarations(header) >= 10)
  end)

  it("declare the same functions with the same signatures", function()
    assert.same(declarations(header), declarations(cdef))
  end)

  it("agree on the ABI version", function()
    local c_abi = tonumber(header:match("#define TORII_FFI_ABI%s+(%d+)"))
    local lua_abi = tonumber(lua:match("local ABI = (%d+)"))
    assert.is_number(c_abi)
    assert.equal(c_abi, lua_abi)
  end)

  it("agree on return codes and phase numbers", function()
    local codes = {}
    for name, v in header:gmatch("#define TORII_FFI_([A-Z_]+)%s+(%-?%d+)") do codes[name] = tonumber(v) end
    local phases = {}
    for name, v in header:gmatch("#define TORII_PHASE_([A-Z_]+)%s+(%d+)") do phases[name:lower()] = tonumber(v) end
    assert.equal(0, codes.OK)
    assert.equal(-1, codes.ERROR)
    assert.equal(-2, codes.NOT_FOUND)
    assert.equal(-3, codes.BAD_PHASE)
    assert.equal(-4, codes.DECLINED)
    assert.equal(-5, codes.AGAIN)
    local line = lua:match("M%.OK, M%.ERROR, M%.NOT_FOUND, M%.BAD_PHASE, M%.DECLINED, M%.AGAIN = ([^\n]+)")
    assert.equal("0, -1, -2, -3, -4, -5", line)
    local names = lua:match("M%.phase_names = { ([^}]+) }")
    local list = {}
    for n in names:gmatch('"([%w_]+)"') do list[#list + 1] = n end
    for name, v in pairs(phases) do assert.equal(name, list[v]) end
  end)
end)
