-- `make docs`: every plugin gets a reference page built from its own
-- declarations (leading comment, schema descriptions, defaults, limits).

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

describe("plugin reference pages", function()
  local out = os.tmpname()
  os.remove(out)

  setup(function()
    assert.is_true(os.execute("luajit t/support/plugin_docs.lua plugins " .. out .. " > /dev/null") == 0)
  end)

  teardown(function() os.execute("rm -rf '" .. out .. "'") end)

  it("indexes every plugin of plugins/", function()
    local index = assert(read(out .. "/README.md"))
    for _, name in ipairs({ "key-auth", "limit-count", "proxy-rewrite", "serverless" }) do
      assert.is_truthy(index:find("[" .. name .. "](" .. name .. ".md)", 1, true), name)
    end
  end)

  it("lists each key with its type, default, limits and description", function()
    local page = assert(read(out .. "/key-auth.md"))
    local row = "| `hide_credentials` | boolean |  | `false` |  | Remove the key from the request sent upstream. |"
    assert.is_truthy(page:find(row, 1, true), page)
    assert.is_truthy(page:find("### Consumer configuration", 1, true))
    assert.is_truthy(page:find("| `key` | string | yes |  | minLength 1 |", 1, true), page)
    local lc = assert(read(out .. "/limit-count.md"))
    assert.is_truthy(lc:find("| `count` | integer | yes |  | minimum 1 | Requests allowed per window. |", 1, true), lc)
    assert.is_truthy(lc:find("Version 1.0, priority 1002, phases: access.", 1, true))
  end)
end)
