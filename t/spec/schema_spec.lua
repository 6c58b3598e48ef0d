-- Specs for torii.schema: every draft-07 keyword, error messages and their
-- paths, defaults, caching, remote references, and bad schemas.

local schema = require "torii.schema"
local json = require "torii.json"

local null = json.null

local function J(text) return assert(json.decode(text)) end

-- ok, errors for a schema and a value (schema and value may be JSON text).
local function check(s, value, vopts, copts)
  if type(s) == "string" then s = J(s) end
  if type(value) == "string" and value:match("^[%[{]") then value = J(value) end
  local v = assert(schema.compile(s, copts))
  return v(value, vopts)
end

local function valid(s, value, vopts, copts)
  local ok, errs = check(s, value, vopts, copts)
  assert.is_true(ok, "expected valid, got: " .. table.concat(errs or {}, "; "))
end

-- Asserts the value fails with exactly these messages (in order).
local function invalid(s, value, expected, vopts, copts)
  local ok, errs = check(s, value, vopts, copts)
  assert.is_false(ok, "expected invalid")
  if type(expected) == "string" then expected = { expected } end
  if expected then assert.same(expected, errs) end
end

local function compile_error(s, expected)
  if type(s) == "string" and s:match("^[%[{]") then s = J(s) end
  local v, err = schema.compile(s)
  assert.is_nil(v)
  assert.equal(expected, err)
end

describe("torii.schema", function()
  describe("API", function()
    it("compiles to a validator function", function()
      local v = assert(schema.compile({ type = "string" }))
      assert.is_function(v)
      assert.is_true(v("x"))
      local ok, errs = v(1)
      assert.is_false(ok)
      assert.same({ "must be a string, got number" }, errs)
    end)

    it("validates in one call with schema.validate", function()
      assert.is_true(schema.validate({ type = "number" }, 1))
      local ok, errs = schema.validate({ type = "number" }, "a", { path = "x" })
      assert.is_false(ok)
      assert.same({ "x: must be a number, got string" }, errs)
      ok, errs = schema.validate({ format = "date" }, "x", { path = "d", formats = true })
      assert.is_false(ok)
      assert.same({ 'd: must be a valid date, got "x"' }, errs)
      ok, errs = schema.validate({ type = 1 }, "a")
      assert.is_false(ok)
      assert.matches("^invalid schema at #", errs[1])
    end)

    it("checks schemas against the draft-07 meta-schema", function()
      assert.is_true(schema.check(J('{"type": "object", "properties": {"a": {"minimum": 1}}}')))
      local ok, errs = schema.check(J('{"properties": {"a": {"minimum": "1"}}}'))
      assert.is_false(ok)
      assert.same({ 'properties.a.minimum: must be a number, got string' }, errs)
    end)

    it("accepts boolean schemas", function()
      valid(true, 1)
      invalid(false, 1, "is not allowed")
      invalid(false, 1, "x: is not allowed", { path = "x" })
    end)
  end)

  describe("type", function()
    local kinds = {
      { "null", null }, { "boolean", false }, { "number", 1.5 }, { "string", "s" },
      { "array", json.array() }, { "object", {} },
    }
    for _, k in ipairs(kinds) do
      it("matches " .. k[1], function()
        valid({ type = k[1] }, k[2])
        for _, other in ipairs(kinds) do
          if other[1] ~= k[1] then invalid({ type = k[1] }, other[2]) end
        end
      end)
    end

    it("treats numbers without a fractional part as integers (1.0 too)", function()
      valid({ type = "integer" }, 1)
      valid({ type = "integer" }, J("1.0"))
      valid({ type = "integer" }, -3e10)
      invalid({ type = "integer" }, 1.5, "must be an integer, got number")
    end)

    it("takes a list of types", function()
      valid({ type = { "string", "null" } }, null)
      invalid({ type = { "string", "null" } }, 1, "must be a string or null, got number")
      invalid({ type = { "object", "array", "integer" } }, 1.5, "must be an object, array or integer, got number")
    end)

    it("says array or object for tables", function()
      invalid({ type = "object" }, json.array(), "must be an object, got array")
      invalid({ type = "array" }, {}, "must be an array, got object")
      invalid({ type = "string" }, { 1, 2 }, "must be a string, got array")
    end)
  end)

  describe("[] and {}", function()
    it("counts an empty table without array_mt as an object", function()
      valid({ type = "object" }, {})
      invalid({ type = "array" }, {})
      valid({ type = "array" }, json.array())
    end)

    it("counts a plain non-empty sequence as an array", function()
      valid({ type = "array", items = { type = "integer" } }, { 1, 2, 3 })
      valid({ type = "object" }, { 1, 2, x = 3 })
      valid({ type = "object" }, setmetatable({ 1 }, {}))
    end)

    it("keeps [] and {} unequal in const, enum and uniqueItems", function()
      invalid({ const = json.array() }, {}, "must be equal to [], got {}")
      valid({ const = json.array() }, json.array())
      valid({ enum = { {} } }, {})
      invalid({ enum = { {} } }, json.array())
      valid(J('{"uniqueItems": true}'), J("[[], {}]"))
      invalid(J('{"uniqueItems": true}'), J("[{}, {}]"))
    end)
  end)

  describe("enum and const", function()
    it("compares deeply, with 1 == 1.0 and key order ignored", function()
      valid(J('{"const": {"a": [1, {"b": null}]}}'), J('{"a": [1.0, {"b": null}]}'))
      invalid(J('{"const": {"a": [1, {"b": null}]}}'), J('{"a": [1, {"b": false}]}'))
      valid(J('{"enum": [{"x": 1, "y": 2}]}'), J('{"y": 2, "x": 1}'))
      invalid(J('{"enum": [{"x": 1}]}'), J('{"x": 1, "y": 2}'))
    end)

    it("does not confuse booleans with numbers or strings with numbers", function()
      invalid({ const = false }, 0)
      invalid({ const = 1 }, true)
      invalid({ enum = { 1, 2 } }, "1", 'must be one of [1,2], got "1"')
    end)

    it("matches null", function()
      valid({ enum = { "a", null } }, null)
      invalid({ const = null }, false, "must be equal to null, got false")
    end)

    it("names the allowed values", function()
      invalid({ enum = { "local", "redis" } }, "x", 'must be one of ["local","redis"], got "x"')
      invalid({ const = "a" }, "b", 'must be equal to "a", got "b"')
    end)
  end)

  describe("numbers", function()
    it("checks bounds with >=, <=, > and <", function()
      invalid({ minimum = 1 }, 0, "must be >= 1, got 0")
      valid({ minimum = 1 }, 1)
      invalid({ maximum = 1.5 }, 2, "must be <= 1.5, got 2")
      invalid({ exclusiveMinimum = 1 }, 1, "must be > 1, got 1")
      valid({ exclusiveMinimum = 1 }, 1.0001)
      invalid({ exclusiveMaximum = 0 }, 0, "must be < 0, got 0")
    end)

    it("reports every failed bound", function()
      invalid({ minimum = 5, multipleOf = 2 }, 3, { "must be a multiple of 2, got 3", "must be >= 5, got 3" })
    end)

    it("checks multipleOf without float surprises", function()
      valid({ multipleOf = 0.0001 }, 0.0075)
      invalid({ multipleOf = 0.0001 }, 0.00751)
      valid({ multipleOf = 0.1 }, 0.3)
      valid({ multipleOf = 0.01 }, 19.99)
      invalid({ multipleOf = 0.1 }, 0.35, "must be a multiple of 0.1, got 0.35")
      valid({ multipleOf = 1.5 }, -4.5)
      valid({ multipleOf = 0.5 }, 1e308)
      invalid({ multipleOf = 0.123456789 }, 1e308)
    end)

    it("ignores non-numbers", function()
      valid({ minimum = 1, multipleOf = 2 }, "x")
    end)
  end)

  describe("strings", function()
    it("counts lengths in code points, not bytes", function()
      valid({ maxLength = 2 }, "\xc3\xa9\xc3\xa9")
      valid({ maxLength = 1 }, "\xf0\x9f\x90\xb2")
      invalid({ minLength = 2 }, "\xf0\x9f\x90\xb2", "must be at least 2 characters long, got 1")
      invalid({ maxLength = 3 }, "h\xc3\xa9llo", "must be at most 3 characters long, got 5")
    end)

    it("matches patterns anywhere, with UTF-8 semantics", function()
      valid({ pattern = "b" }, "abc")
      invalid({ pattern = "^a" }, "ba", 'must match pattern "^a"')
      valid({ pattern = "^.$" }, "\xc3\xa9")
      valid({ pattern = "^\\d+$" }, "123")
    end)

    it("ignores non-strings", function()
      valid({ maxLength = 1, pattern = "^a$" }, 12345)
    end)
  end)

  describe("arrays", function()
    it("checks items against one schema, with 0-based paths like the rest of the configuration", function()
      invalid({ items = { type = "integer" } }, { 1, "a", 3 }, "list[1]: must be an integer, got string",
        { path = "list" })
      valid({ items = { type = "integer" } }, json.array())
    end)

    it("checks tuples and additionalItems", function()
      local s = { items = { { type = "string" }, { type = "integer" } }, additionalItems = { type = "boolean" } }
      valid(s, { "a", 1, true, false })
      valid(s, { "a" })
      invalid(s, { "a", 1, 2 }, "[2]: must be a boolean, got number")
      invalid({ items = { {}, {} }, additionalItems = false }, { 1, 2, 3 },
        "must have at most 2 items (additionalItems is false), got 3")
      valid({ items = {}, additionalItems = false }, { 1, 2, 3 })
    end)

    it("checks minItems and maxItems", function()
      invalid({ minItems = 2 }, { 1 }, "must have at least 2 items, got 1")
      invalid({ maxItems = 1 }, { 1, 2 }, "must have at most 1 item, got 2")
      valid({ minItems = 1, maxItems = 1 }, { 1 })
    end)

    it("checks uniqueItems with deep equality", function()
      invalid({ uniqueItems = true }, { 1, 2, 1 }, "must not contain duplicate items, [1] and [3] are equal")
      invalid(J('{"uniqueItems": true}'), J('[{"a": 1, "b": 2}, {"b": 2, "a": 1.0}]'))
      valid(J('{"uniqueItems": true}'), J("[[1], [true], 1, true, \"1\", null]"))
      valid({ uniqueItems = false }, { 1, 1 })
    end)

    it("checks contains", function()
      valid({ contains = { type = "string" } }, { 1, "a" })
      invalid({ contains = { type = "string" } }, { 1, 2 }, 'must contain an item matching the "contains" schema')
      invalid({ contains = true }, json.array())
    end)
  end)

  describe("objects", function()
    it("checks properties, with .name paths", function()
      invalid({ properties = { a = { type = "string" } } }, { a = 1 }, "conf.a: must be a string, got number",
        { path = "conf" })
      valid({ properties = { a = { type = "string" } } }, { b = 1 })
    end)

    it("quotes property names that are not identifier-like", function()
      local s = { properties = { ["a.b"] = { type = "string" }, [""] = { type = "string" } } }
      invalid(s, { ["a.b"] = 1, [""] = 2 },
        { 'r[""]: must be a string, got number', 'r["a.b"]: must be a string, got number' }, { path = "r" })
      invalid({ properties = { ["limit-count"] = { type = "object" } } }, { ["limit-count"] = 1 },
        "limit-count: must be an object, got number")
    end)

    it("reports missing required properties", function()
      invalid({ required = { "a", "b" } }, { a = 1 }, 'missing required property "b"')
      invalid({ required = { "a", "b" } }, {}, { 'missing required property "a"', 'missing required property "b"' })
      valid({ required = {} }, {})
      valid({ required = { "a" } }, { a = null })
    end)

    it("checks patternProperties and additionalProperties", function()
      local s = {
        properties = { id = { type = "integer" } },
        patternProperties = { ["^x%-"] = { type = "string" }, ["^x-"] = { type = "string" } },
        additionalProperties = false,
      }
      valid(s, { id = 1, ["x-a"] = "b" })
      invalid(s, { id = 1, ["x-a"] = 2 }, 'x-a: must be a string, got number')
      invalid(s, { id = 1, foo = 2, bar = 3 }, { 'unknown property "bar"', 'unknown property "foo"' })
      invalid({ additionalProperties = { type = "integer" } }, { a = "x" }, "a: must be an integer, got string")
    end)

    it("checks minProperties and maxProperties", function()
      invalid({ minProperties = 2 }, { a = 1 }, "must have at least 2 properties, got 1")
      invalid({ maxProperties = 1 }, { a = 1, b = 2 }, "must have at most 1 property, got 2")
    end)

    it("checks dependencies in both forms", function()
      invalid({ dependencies = { a = { "b", "c" } } }, { a = 1, c = 1 }, 'property "a" requires property "b"')
      valid({ dependencies = { a = { "b" } } }, { b = 1 })
      invalid({ dependencies = { a = { required = { "z" } } } }, { a = 1 }, 'missing required property "z"')
      valid({ dependencies = { a = { required = { "z" } } } }, { b = 1 })
    end)

    it("checks propertyNames", function()
      invalid({ propertyNames = { pattern = "^a" } }, { abc = 1, bcd = 2 },
        'x: invalid property name "bcd": must match pattern "^a"', { path = "x" })
      invalid({ propertyNames = { maxLength = 2 } }, { abc = 1 },
        'invalid property name "abc": must be at most 2 characters long, got 3')
      invalid({ propertyNames = false }, { a = 1 }, 'invalid property name "a": is not allowed')
      valid({ propertyNames = false }, {})
    end)
  end)

  describe("combinators", function()
    it("applies then or else after if", function()
      local s = { ["if"] = { type = "integer" }, ["then"] = { minimum = 0 }, ["else"] = { type = "string" } }
      valid(s, 3)
      invalid(s, -1, "must be >= 0, got -1")
      valid(s, "a")
      invalid(s, true, "must be a string, got boolean")
      valid({ ["then"] = false }, 1)
    end)

    it("requires all of allOf", function()
      invalid({ allOf = { { minimum = 1 }, { maximum = 2 } } }, 3, "must be <= 2, got 3")
    end)

    it("requires one of anyOf and explains each branch", function()
      valid({ anyOf = { { type = "string" }, { minimum = 3 } } }, 5)
      invalid({ anyOf = { { type = "string" }, { type = "number", minimum = 3 } } }, 1,
        "x: must match at least one schema in anyOf: [1] must be a string, got number; [2] must be >= 3, got 1",
        { path = "x" })
      invalid({ anyOf = { { properties = { a = { type = "string" } } }, { type = "string" } } }, { a = 1 },
        "r: must match at least one schema in anyOf: [1] a: must be a string, got number; " ..
        "[2] must be a string, got object", { path = "r" })
    end)

    it("requires exactly one of oneOf", function()
      valid({ oneOf = { { type = "string" }, { type = "number" } } }, 1)
      invalid({ oneOf = { { type = "number" }, { minimum = 3 } } }, 5,
        "must match exactly one schema in oneOf, but matches [1] and [2]")
      invalid({ oneOf = { { type = "string" }, { type = "boolean" } } }, 5,
        "must match exactly one schema in oneOf: [1] must be a string, got number; [2] must be a boolean, got number")
    end)

    it("negates not", function()
      invalid({ ["not"] = { type = "string" } }, "a", 'must not match the "not" schema')
      valid({ ["not"] = { type = "string" } }, 1)
    end)
  end)

  describe("$ref", function()
    it("follows JSON pointers with ~0, ~1 and percent-encoding", function()
      local s = J([[{
        "definitions": {"a~b": {"type": "integer"}, "c/d": {"type": "string"}, "e%f": {"type": "null"}},
        "properties": {
          "x": {"$ref": "#/definitions/a~0b"},
          "y": {"$ref": "#/definitions/c~1d"},
          "z": {"$ref": "#/definitions/e%25f"}
        }
      }]])
      valid(s, { x = 1, y = "s", z = null })
      invalid(s, { x = "1" }, "x: must be an integer, got string")
      invalid(s, { z = 1 }, "z: must be null, got number")
    end)

    it("indexes arrays in pointers from 0", function()
      valid(J('{"items": [{"type": "integer"}, {"$ref": "#/items/0"}]}'), { 1, 2 })
      invalid(J('{"items": [{"type": "integer"}, {"$ref": "#/items/0"}]}'), { 1, "x" })
    end)

    it("ignores keywords beside $ref", function()
      valid(J('{"definitions": {"a": {"type": "array"}}, "$ref": "#/definitions/a", "maxItems": 1}'), { 1, 2 })
    end)

    it("validates recursive schemas", function()
      local s = J([[{
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "additionalProperties": false
      }]])
      valid(s, J('{"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}'))
      invalid(s, J('{"children": [{"children": [{"name": 1}]}]}'),
        "children[0].children[0].name: must be a string, got number")
    end)

    it("changes the base URI with $id and finds identifiers anywhere", function()
      local s = J([[{
        "$id": "http://example.com/root.json",
        "definitions": {
          "A": {"$id": "#foo", "type": "integer"},
          "B": {"$id": "other.json", "definitions": {"X": {"$id": "#bar", "type": "string"}}}
        },
        "properties": {
          "a": {"$ref": "#foo"},
          "b": {"$ref": "other.json#bar"},
          "c": {"$ref": "http://example.com/other.json#/definitions/X"}
        }
      }]])
      valid(s, { a = 1, b = "x", c = "y" })
      invalid(s, { a = "1" }, "a: must be an integer, got string")
      invalid(s, { b = 1 }, "b: must be a string, got number")
      invalid(s, { c = 1 }, "c: must be a string, got number")
    end)

    it("resolves remote documents through opts.loader, once per compile", function()
      local docs = {
        ["http://example.com/int.json"] = J('{"type": "integer"}'),
        ["http://example.com/defs.json"] = J('{"definitions": {"pos": {"$ref": "int.json", "minimum": 0}}}'),
      }
      local calls = {}
      local function loader(uri)
        calls[#calls + 1] = uri
        if docs[uri] then return docs[uri] end
        return nil, "not found"
      end
      local s = J([[{"properties": {
        "a": {"$ref": "http://example.com/int.json"},
        "b": {"$ref": "http://example.com/int.json#"},
        "c": {"$ref": "http://example.com/defs.json#/definitions/pos"}
      }}]])
      local v = assert(schema.compile(s, { loader = loader }))
      assert.is_true(v({ a = 1, b = 2, c = 3 }))
      assert.same({ false, { "a: must be an integer, got string" } }, { v({ a = "x" }) })
      assert.same({ "http://example.com/int.json", "http://example.com/defs.json" }, calls)
    end)

    it("resolves relative refs against opts.base_uri", function()
      local loader = function(uri)
        if uri == "http://example.com/s/int.json" then return { type = "integer" } end
        return nil, "no " .. uri
      end
      local v = assert(schema.compile({ ["$ref"] = "int.json" },
        { loader = loader, base_uri = "http://example.com/s/main.json" }))
      assert.is_true(v(1))
      assert.is_false(v("a"))
    end)

    it("knows the draft-07 meta-schema without a loader", function()
      local s = { ["$ref"] = "http://json-schema.org/draft-07/schema#" }
      valid(s, J('{"type": "string", "minLength": 1}'))
      invalid(s, J('{"minLength": -1}'), "minLength: must be >= 0, got -1")
    end)

    it("reports unresolvable references when compiling", function()
      compile_error({ ["$ref"] = "#/definitions/nope" },
        'invalid schema at #: cannot resolve $ref "#/definitions/nope"')
      compile_error({ properties = { a = { ["$ref"] = "http://x/y.json" } } },
        'invalid schema at #/properties/a: cannot load "http://x/y.json": no loader for remote references')
      local v, err = schema.compile({ ["$ref"] = "http://x/y.json" }, { loader = function() return nil, "gone" end })
      assert.is_nil(v)
      assert.equal('invalid schema at #: cannot load "http://x/y.json": gone', err)
    end)

    it("rejects $ref cycles and stops runaway recursion", function()
      compile_error(J('{"definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},' ..
        '"$ref": "#/definitions/a"}'), 'invalid schema at #: $ref "#/definitions/a" is part of a $ref cycle')
      local s = J('{"definitions": {"a": {"allOf": [{"$ref": "#/definitions/a"}]}}, "$ref": "#/definitions/a"}')
      invalid(s, 1, "schema recursion deeper than 2000 $refs")
    end)
  end)

  describe("format", function()
    it("is an annotation by default", function()
      valid({ format = "email" }, "not an email")
      valid({ format = "date" }, "yesterday")
    end)

    local cases = {
      { "date-time", "1963-06-19T08:30:06.283185Z", "1963-06-19 08:30:06" },
      { "date", "2020-02-29", "2021-02-29" },
      { "time", "23:59:60Z", "12:00:00" },
      { "email", "joe.bloggs@example.com", "joe..bloggs@example.com" },
      { "hostname", "www.example.com", "-bad.example.com" },
      { "ipv4", "192.168.0.1", "087.10.0.1" },
      { "ipv6", "::ffff:192.168.0.1", "1::2::3" },
      { "uri", "http://foo.bar/?baz=qux#quux", "/relative" },
      { "uri-reference", "/relative#frag", "\\\\WINDOWS\\share" },
      { "regex", "^[a-z]+$", "^(abc]" },
      { "json-pointer", "/a~1b/0", "a/b" },
    }
    for _, c in ipairs(cases) do
      it("checks " .. c[1] .. " with formats = true", function()
        valid({ format = c[1] }, c[2], nil, { formats = true })
        invalid({ format = c[1] }, c[3], "must be a valid " .. c[1] .. ", got " .. json.encode(c[3]), nil,
          { formats = true })
        valid({ format = c[1] }, 12, nil, { formats = true })
      end)
    end

    it("takes custom formats and ignores unknown ones", function()
      local copts = { formats = { even = function(s) return #s % 2 == 0 end } }
      valid({ format = "even" }, "ab", nil, copts)
      invalid({ format = "even" }, "abc", 'must be a valid even, got "abc"', nil, copts)
      -- the built-in formats stay on beside custom ones
      invalid({ format = "date" }, "2021-02-29", 'must be a valid date, got "2021-02-29"', nil, copts)
      valid({ format = "no-such-format" }, "x", nil, { formats = true })
    end)
  end)

  describe("error paths", function()
    local s = J([[{
      "type": "object",
      "properties": {
        "count": {"type": "integer", "minimum": 1},
        "key": {"type": "string", "pattern": "^a"},
        "tags": {"type": "array", "items": {"type": "string"}}
      },
      "required": ["key"],
      "additionalProperties": false
    }]])
    local P = "routes[3].plugins.limit-count"

    it("prefixes every message with the caller's path", function()
      invalid(s, J('{"count": 0, "key": "b", "tags": ["x", 2], "foo": 1}'), {
        P .. ".count: must be >= 1, got 0",
        P .. '.key: must match pattern "^a"',
        P .. ".tags[1]: must be a string, got number",
        P .. ': unknown property "foo"',
      }, { path = P })
    end)

    it("reports missing properties at the object's path", function()
      invalid(s, {}, P .. ': missing required property "key"', { path = P })
      invalid(s, { key = 1 }, P .. ".key: must be a string, got number", { path = P })
    end)

    it("prints just the message at an empty root path", function()
      invalid(s, 1, "must be an object, got number")
      invalid(s, { key = "a", count = 0 }, "count: must be >= 1, got 0")
      invalid({ items = { type = "string" } }, { 1 }, "[0]: must be a string, got number")
    end)
  end)

  describe("defaults", function()
    local s = J([[{
      "type": "object",
      "properties": {
        "mode": {"type": "string", "default": "local"},
        "count": {"type": "integer", "default": 10},
        "policy": {"type": "object", "default": {"keys": ["a"], "opts": {}},
                   "properties": {"burst": {"type": "integer", "default": 0}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"w": {"default": 1}}}}
      },
      "required": ["mode", "count"]
    }]])

    it("fills missing properties before required is checked", function()
      local value = {}
      assert.is_true((check(s, value, { defaults = true })))
      assert.equal("local", value.mode)
      assert.equal(10, value.count)
      assert.equal(0, value.policy.burst)
    end)

    it("never overrides provided values, null included", function()
      local value = { mode = "redis", count = null }
      local ok, errs = check(s, value, { defaults = true })
      assert.is_false(ok)
      assert.same({ "count: must be an integer, got null" }, errs)
      assert.equal("redis", value.mode)
    end)

    it("deep-copies defaults and keeps [] and {}", function()
      local a, b = {}, {}
      check(s, a, { defaults = true })
      check(s, b, { defaults = true })
      assert.are_not.equal(a.policy, b.policy)
      assert.is_true(json.is_array(a.policy.keys))
      assert.is_false(json.is_array(a.policy.opts))
      a.policy.keys[1] = "changed"
      assert.equal("a", b.policy.keys[1])
      assert.equal("a", s.properties.policy.default.keys[1])
    end)

    it("fills defaults inside arrays", function()
      local value = { mode = "m", count = 1, list = { {}, { w = 5 } } }
      assert.is_true((check(s, value, { defaults = true })))
      assert.equal(1, value.list[1].w)
      assert.equal(5, value.list[2].w)
    end)

    it("leaves the value alone without defaults = true", function()
      local value = { mode = "m" }
      local ok, errs = check(s, value)
      assert.is_false(ok)
      assert.same({ 'missing required property "count"' }, errs)
      assert.is_nil(value.count)
      assert.is_nil(value.policy)
    end)

    it("fills defaults from the matching anyOf or oneOf branch only", function()
      local s2 = J([[{"anyOf": [
        {"properties": {"kind": {"const": "a"}, "x": {"default": 1}}, "required": ["kind"]},
        {"properties": {"kind": {"const": "b"}, "y": {"default": 2}}, "required": ["kind"]}
      ]}]])
      local value = { kind = "b" }
      assert.is_true((check(s2, value, { defaults = true })))
      assert.is_nil(value.x)
      assert.equal(2, value.y)
      local s3 = J('{"oneOf": [{"type": "string"}, {"properties": {"z": {"default": 3}}}]}')
      value = {}
      assert.is_true((check(s3, value, { defaults = true })))
      assert.equal(3, value.z)
    end)

    it("does not fill defaults while evaluating not or if", function()
      local value = {}
      check(J('{"not": {"properties": {"a": {"default": 1}}, "required": ["b"]}}'), value, { defaults = true })
      check(J('{"if": {"properties": {"c": {"default": 1}}}, "then": true}'), value, { defaults = true })
      assert.is_nil(value.a)
      assert.is_nil(value.c)
    end)
  end)

  describe("caching", function()
    it("returns the same validator for the same schema table", function()
      local s = { type = "string" }
      local a = assert(schema.compile(s))
      assert.equal(a, schema.compile(s))
      assert.not_equal(a, schema.compile({ type = "string" }))
    end)

    it("keys the cache on the options that change the result", function()
      local s = { format = "date" }
      local plain = schema.compile(s)
      local checked = schema.compile(s, { formats = true })
      assert.not_equal(plain, checked)
      assert.equal(checked, schema.compile(s, { formats = true }))
      assert.is_true(plain("x"))
      assert.is_false(checked("x"))
      local loader = function() return nil end
      assert.not_equal(plain, schema.compile(s, { loader = loader }))
      assert.equal(schema.compile(s, { loader = loader }), schema.compile(s, { loader = loader }))
    end)

    it("lets unused schemas and their validators be collected", function()
      local weak = setmetatable({}, { __mode = "k" })
      do
        local s = J('{"properties": {"a": {"$ref": "#"}, "b": {"enum": [1, {"x": 2}]}}}')
        assert(schema.compile(s))
        weak[s] = true
      end
      collectgarbage()
      collectgarbage()
      assert.is_nil(next(weak))
    end)

    it("can validate from inside a loader-free reentrant call", function()
      local inner = assert(schema.compile({ type = "integer" }))
      local outer = assert(schema.compile({ type = "string" }))
      assert.is_true(outer("x"))
      assert.is_false(inner("x"))
      assert.is_true(outer("y"))
    end)
  end)

  describe("bad schemas", function()
    local cases = {
      { { type = "strin" }, 'invalid schema at #: unknown type "strin" in "type"' },
      { { type = 1 }, 'invalid schema at #: "type" must be a string or an array, got number' },
      { { minimum = "3" }, 'invalid schema at #: "minimum" must be a number, got string' },
      { { minLength = -1 }, 'invalid schema at #: "minLength" must not be negative' },
      { { maxItems = 1.5 }, 'invalid schema at #: "maxItems" must be an integer, got number' },
      { { multipleOf = 0 }, 'invalid schema at #: "multipleOf" must be greater than 0' },
      { { required = { 1 } }, 'invalid schema at #: "required" must list strings, got number' },
      { { pattern = "(" },
        'invalid schema at #: "pattern" "(" is not a valid regex: missing closing parenthesis at offset 1' },
      { { properties = { a = 3 } },
        "invalid schema at #/properties/a: a schema must be an object or a boolean, got number" },
      { { properties = { a = { items = { type = 5 } } } },
        'invalid schema at #/properties/a/items: "type" must be a string or an array, got number' },
      { { allOf = {} }, 'invalid schema at #: "allOf" must not be empty' },
      { { enum = "a" }, 'invalid schema at #: "enum" must be an array, got string' },
      { { patternProperties = { ["("] = {} } },
        'invalid schema at #: patternProperties "(" is not a valid regex: missing closing parenthesis at offset 1' },
      { { ["$ref"] = 5 }, 'invalid schema at #: "$ref" must be a string, got number' },
      { "x", "invalid schema at #: a schema must be an object or a boolean, got string" },
    }
    for _, c in ipairs(cases) do
      it("rejects " .. json.encode(c[1]), function()
        compile_error(c[1], c[2])
      end)
    end
  end)
end)
