-- The official JSON-Schema-Test-Suite, draft 7, against torii.schema.
--
-- Where: $TORII_ACCEPTANCE/jsonschema/draft7 when TORII_ACCEPTANCE is set,
-- else ../shared/acceptance/jsonschema/draft7 beside the repository. Both
-- layouts of that folder work:
--   <dir>/tests/draft7/*.json  with  <dir>/remotes/
--   <dir>/*.json               with  <dir>/remotes/ or <dir>/../remotes/
-- Remote references to http://localhost:1234/... are served from remotes/
-- by the loader; nothing goes to the network.
--
-- Every case of every top-level (required) file is its own `it`, named
-- file › group › case. optional/ runs in its own describe, with formats on
-- for optional/format/; the few optional features torii.schema does not
-- implement are listed in NOT_SUPPORTED and show up as pending, never
-- silently skipped. Without the suite folder the whole spec is one visible
-- pending.

local lfs = require "lfs"
local json = require "torii.json"
local schema = require "torii.schema"

-- An absolute path without "." and ".." segments.
local function clean(path)
  if path:sub(1, 1) ~= "/" then path = lfs.currentdir() .. "/" .. path end
  local out = {}
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  return "/" .. table.concat(out, "/")
end

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local ROOT = clean(HERE .. "/../..")

local function exists(path, mode)
  return lfs.attributes(path, "mode") == (mode or "directory")
end

local function locate()
  local base
  local env = os.getenv("TORII_ACCEPTANCE")
  if env and env ~= "" then
    base = clean(env .. "/jsonschema/draft7")
  else
    base = clean(ROOT .. "/../shared/acceptance/jsonschema/draft7")
  end
  if exists(base .. "/tests/draft7") then
    return base, base .. "/tests/draft7", base .. "/remotes"
  end
  if exists(base) then
    local remotes = exists(base .. "/remotes") and base .. "/remotes" or base .. "/../remotes"
    return base, base, remotes
  end
  return base
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function json_files(dir)
  local list = {}
  if not exists(dir) then return list end
  for name in lfs.dir(dir) do
    if name:match("%.json$") and exists(dir .. "/" .. name, "file") then list[#list + 1] = name end
  end
  table.sort(list)
  return list
end

local function make_loader(remotes)
  local docs = {}
  return function(uri)
    local rel = uri:match("^http://localhost:1234/(.*)$")
    if not rel then return nil, "not a test-suite remote: " .. uri end
    if docs[rel] == nil then
      local f = io.open(remotes .. "/" .. rel, "rb")
      if not f then return nil, "no such remote: " .. rel end
      local text = f:read("*a")
      f:close()
      docs[rel] = assert(json.decode(text))
    end
    return docs[rel]
  end
end

-- Optional cases torii.schema does not claim: file -> group (or "*") -> why.
local IDN = "internationalized formats are not checked"
local NOT_SUPPORTED = {
  ["bignum.json"] = { ["*"] = "numbers are doubles (torii.json): no big integers" },
  ["ecmascript-regex.json"] = { ["*"] = "patterns are PCRE2, not ECMA-262" },
  ["non-bmp-regex.json"] = {},
  ["content.json"] = { ["*"] = "contentMediaType/contentEncoding are annotations" },
  ["cross-draft.json"] = { ["*"] = "only draft-07 is implemented" },
  ["hostname.json"] = {
    ["validation of A-label (punycode) host names"] = "IDNA 2008 rules for A-labels need Unicode tables",
  },
  ["idn-email.json"] = { ["*"] = IDN },
  ["idn-hostname.json"] = { ["*"] = IDN },
  ["iri.json"] = { ["*"] = IDN },
  ["iri-reference.json"] = { ["*"] = IDN },
  ["uri-template.json"] = { ["*"] = "uri-template is not checked" },
}

local function run_file(dir, name, loader, opts, skips)
  local groups = assert(json.decode(read(dir .. "/" .. name)))
  describe(name, function()
    for gi, group in ipairs(groups) do
      describe(group.description or ("group " .. gi), function()
        local why = skips and (skips[group.description] or skips["*"])
        for ti, case in ipairs(group.tests) do
          local title = case.description or ("case " .. ti)
          if why then
            pending(title .. " (" .. why .. ")")
          else
            it(title, function()
              local v, err = schema.compile(group.schema, { loader = loader, formats = opts.formats })
              assert(v, err)
              local ok, errs = v(case.data)
              if case.valid then
                assert.is_true(ok, "expected valid, got: " .. table.concat(errs or {}, "; "))
              else
                assert.is_false(ok, "expected invalid")
                assert.is_true(#errs > 0)
              end
            end)
          end
        end
      end)
    end
  end)
end

local base, tests_dir, remotes = locate()

describe("JSON-Schema-Test-Suite draft7", function()
  if not tests_dir then
    pending("JSON-Schema-Test-Suite draft7 not found at " .. base)
    return
  end
  local loader = make_loader(remotes)
  local files = json_files(tests_dir)

  it("has test files", function()
    assert.is_true(#files > 0, "no *.json in " .. tests_dir)
  end)

  for _, name in ipairs(files) do
    run_file(tests_dir, name, loader, {})
  end

  describe("optional", function()
    for _, name in ipairs(json_files(tests_dir .. "/optional")) do
      run_file(tests_dir .. "/optional", name, loader, {}, NOT_SUPPORTED[name])
    end
    describe("format", function()
      for _, name in ipairs(json_files(tests_dir .. "/optional/format")) do
        run_file(tests_dir .. "/optional/format", name, loader, { formats = true }, NOT_SUPPORTED[name])
      end
    end)
  end)
end)
