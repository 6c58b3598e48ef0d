-- Specs for torii.json: strict decoding that keeps [] apart from {} and
-- null as a value, and encoding that round-trips it.

local json = require "torii.json"

local null, array_mt = json.null, json.array_mt

describe("torii.json", function()
  describe("decode", function()
    it("decodes scalars", function()
      assert.equal(1, json.decode("1"))
      assert.equal(-2.5, json.decode("-2.5"))
      assert.equal(1e10, json.decode("1e10"))
      assert.equal(1.5e-3, json.decode("15E-4"))
      assert.equal("a", json.decode('"a"'))
      assert.is_true(json.decode("true"))
      assert.is_false(json.decode("false"))
      assert.equal(null, json.decode("null"))
    end)

    it("decodes 1 and 1.0 to the same number", function()
      assert.equal(json.decode("1"), json.decode("1.0"))
      assert.equal(json.decode("100"), json.decode("1e2"))
    end)

    it("marks arrays with array_mt and leaves objects plain", function()
      local arr = json.decode("[1, 2, 3]")
      assert.equal(array_mt, getmetatable(arr))
      assert.same({ 1, 2, 3 }, { arr[1], arr[2], arr[3] })
      assert.is_true(json.is_array(arr))
      local obj = json.decode('{"a": 1}')
      assert.is_nil(getmetatable(obj))
      assert.is_false(json.is_array(obj))
    end)

    it("keeps [] and {} apart", function()
      local v = json.decode('{"a": [], "b": {}}')
      assert.is_true(json.is_array(v.a))
      assert.is_nil(next(v.a))
      assert.is_false(json.is_array(v.b))
      assert.is_nil(next(v.b))
    end)

    it("keeps null in arrays and objects", function()
      local arr = json.decode("[1, null, 3]")
      assert.equal(3, #arr)
      assert.equal(null, arr[2])
      local obj = json.decode('{"a": null}')
      assert.equal(null, obj.a)
    end)

    it("decodes escapes, \\u escapes and surrogate pairs to UTF-8", function()
      assert.equal('"\\/\b\f\n\r\t', json.decode([["\"\\\/\b\f\n\r\t"]]))
      assert.equal("\xc3\xa9", json.decode([["\u00e9"]]))
      assert.equal("\xf0\x9f\x98\x80", json.decode([["\ud83d\ude00"]]))
      assert.equal("a\0b", json.decode([["a\u0000b"]]))
    end)

    it("accepts UTF-8 text as is", function()
      assert.equal("h\xc3\xa9", json.decode('"h\xc3\xa9"'))
    end)

    it("allows whitespace around values", function()
      local v = json.decode(' \t\r\n{ "a" : [ 1 , 2 ] }\n ')
      assert.equal(2, v.a[2])
    end)

    local bad = {
      { "[1,]", "line 1 column 4: trailing comma in array" },
      { '{"a":1,}', "line 1 column 8: trailing comma in object" },
      { "01", "line 1 column 1: leading zero in number" },
      { '"a\nb"', "line 1 column 3: control character 0x0a in string" },
      { "[1 2]", "line 1 column 4: expected ',' or ']', got '2'" },
      { [["\ud800"]], "line 1 column 2: high surrogate \\ud800 not followed by a low surrogate" },
      { [["\udc00"]], "line 1 column 2: lone low surrogate \\udc00" },
      { "tru", "line 1 column 1: expected a value, got 't'" },
      { "", "line 1 column 1: unexpected end of input" },
      { "1 2", "line 1 column 3: expected end of input, got '2'" },
      { [["\x"]], "line 1 column 2: invalid escape '\\x'" },
      { "{1:2}", "line 1 column 2: expected a string key, got '1'" },
      { '"\255"', "line 1 column 2: invalid UTF-8" },
      { "1.", "line 1 column 3: digit expected after '.'" },
      { "1e", "line 1 column 3: digit expected in exponent" },
      { '{"a" 1}', "line 1 column 6: expected ':', got '1'" },
      { '"abc', "line 1 column 1: unterminated string" },
      { "// c\n1", "line 1 column 1: expected a value, got '/'" },
      { "[\n  1,\n  x]", "line 3 column 3: expected a value, got 'x'" },
    }
    for _, case in ipairs(bad) do
      it("rejects " .. string.format("%q", case[1]), function()
        local v, err = json.decode(case[1])
        assert.is_nil(v)
        assert.equal(case[2], err)
      end)
    end

    it("rejects nesting deeper than 1000", function()
      local ok = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
      assert.is_table(ok)
      local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
      assert.is_nil(v)
      assert.matches("nesting deeper than 1000", err, 1, true)
    end)

    it("rejects overlong UTF-8 and encoded surrogates", function()
      assert.is_nil(json.decode('"\xc0\xaf"'))
      assert.is_nil(json.decode('"\xed\xa0\x80"'))
      assert.is_nil(json.decode('"\xf4\x90\x80\x80"'))
    end)

    it("counts columns in characters", function()
      local _, err = json.decode('"\xc3\xa9\xc3\xa9" x')
      assert.equal("line 1 column 6: expected end of input, got 'x'", err)
    end)

    it("rejects a non-string argument", function()
      local v, err = json.decode(42)
      assert.is_nil(v)
      assert.matches("expected a string", err, 1, true)
    end)
  end)

  describe("encode", function()
    it("encodes scalars", function()
      assert.equal("1", json.encode(1))
      assert.equal("0.1", json.encode(0.1))
      assert.equal("1e+300", json.encode(1e300))
      assert.equal("0.3333333333333333", json.encode(1 / 3))
      assert.equal("123456789012", json.encode(123456789012))
      assert.equal("true", json.encode(true))
      assert.equal("null", json.encode(null))
      assert.equal("null", json.encode(nil))
    end)

    it("escapes strings", function()
      assert.equal([["a\"b\\c\n\u0001\u007f]] .. '\xc3\xa9"', json.encode('a"b\\c\n\1\127\xc3\xa9'))
    end)

    it("writes marked and sequence tables as arrays, others as objects", function()
      assert.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.equal("[]", json.encode(json.array()))
      assert.equal("{}", json.encode({}))
      assert.equal("[1,null,3]", json.encode(json.array({ 1, nil, 3 })))
      assert.equal('{"a":null}', json.encode({ a = null }))
    end)

    it("sorts keys and indents on request", function()
      local text = json.encode({ b = 1, a = { 2, 3 } }, { sort_keys = true, indent = "  " })
      assert.equal('{\n  "a": [\n    2,\n    3\n  ],\n  "b": 1\n}', text)
    end)

    it("round-trips decoded values", function()
      local text = '{"a":[],"b":{},"c":[1,null,"x",{"d":false}],"e":1.5}'
      local again = json.encode(json.decode(text), { sort_keys = true })
      assert.equal(text, again)
    end)

    local bad = {
      { "NaN", 0 / 0, "cannot encode NaN" },
      { "infinity", math.huge, "cannot encode an infinite number" },
      { "a function", print, "cannot encode a value of type function" },
      { "a boolean key", { [true] = 1 }, "cannot encode an object key of type boolean" },
      { "an array with a string key", setmetatable({ 1, x = 2 }, array_mt), "cannot encode an array with key x" },
    }
    for _, case in ipairs(bad) do
      it("refuses " .. case[1], function()
        local text, err = json.encode(case[2])
        assert.is_nil(text)
        assert.equal(case[3], err)
      end)
    end

    it("refuses reference cycles", function()
      local t = {}
      t.self = t
      local text, err = json.encode(t)
      assert.is_nil(text)
      assert.equal("cannot encode a reference cycle", err)
    end)

    it("encodes a table seen twice (not a cycle)", function()
      local shared = { 1 }
      assert.equal('{"a":[1],"b":[1]}', json.encode({ a = shared, b = shared }, { sort_keys = true }))
    end)
  end)
end)
