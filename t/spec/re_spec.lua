-- Specs for torii.re: PCRE2 through the FFI.

local re = require "torii.re"

describe("torii.re", function()
  after_each(function()
    re.CACHE_SIZE = 1024
  end)

  describe("compile", function()
    it("compiles a pattern and reports its capture count", function()
      local rx = assert(re.compile("(a)(b)?"))
      assert.equal(2, rx.ncap)
      assert.equal("torii.re: /(a)(b)?/", tostring(rx))
    end)

    it("JIT-compiles when the library has a JIT", function()
      local rx = assert(re.compile("a+b"))
      assert.is_boolean(rx.jit)
      -- Debian's libpcre2-8 on x86_64 and arm64 is built with the JIT
      if jit and (jit.arch == "x64" or jit.arch == "arm64") then assert.is_true(rx.jit) end
    end)

    it("returns nil and 'message at offset N' for a bad pattern", function()
      local rx, err = re.compile("ab(")
      assert.is_nil(rx)
      assert.equal("missing closing parenthesis at offset 3", err)
      rx, err = re.compile("a{2,1}")
      assert.is_nil(rx)
      assert.matches("at offset %d+$", err)
    end)

    it("rejects unknown flags", function()
      local rx, err = re.compile("a", "iq")
      assert.is_nil(rx)
      assert.equal("unknown regex flag 'q'", err)
    end)

    it("raises for a pattern that is not a string", function()
      assert.has_error(function() re.compile(42) end)
    end)

    it("can be loaded twice (guarded cdefs)", function()
      package.loaded["torii.re"] = nil
      local again = require "torii.re"
      assert.is_truthy(again.find("abc", "b"))
      package.loaded["torii.re"] = re
    end)
  end)

  describe("flags", function()
    it("i: caseless", function()
      assert.is_nil(re.find("ABC", "b"))
      assert.equal(2, re.find("ABC", "b", "i"))
    end)

    it("m: ^ and $ at line breaks", function()
      assert.is_nil(re.find("a\nb", "^b$"))
      assert.equal(3, re.find("a\nb", "^b$", "m"))
    end)

    it("s: dot matches a newline", function()
      assert.is_nil(re.find("a\nb", "a.b"))
      assert.equal(1, re.find("a\nb", "a.b", "s"))
    end)

    it("x: extended syntax", function()
      assert.equal(1, re.find("ab", "a b # comment", "x"))
      assert.is_nil(re.find("ab", "a b"))
    end)

    it("u: UTF-8 code points", function()
      local s, e = re.find("h\xc3\xa9llo", "^h.l", "u")
      assert.same({ 1, 4 }, { s, e })
      assert.is_nil(re.find("h\xc3\xa9llo", "^h.l"))
    end)

    it("u: invalid UTF-8 in the subject does not match, and is no error", function()
      local s, e = re.find("\xff\xfeabc", "abc", "u")
      assert.same({ 3, 5 }, { s, e })
      assert.is_nil(re.find("\xff", ".", "u"))
    end)
  end)

  describe("find", function()
    it("returns 1-based inclusive positions", function()
      assert.same({ 5, 7 }, { re.find("hello world", "o w") })
    end)

    it("returns nil without a match", function()
      assert.is_nil(re.find("hello", "x"))
    end)

    it("starts at init, counted from the end when negative", function()
      assert.same({ 1, 1 }, { re.find("aba", "a") })
      assert.same({ 3, 3 }, { re.find("aba", "a", nil, 2) })
      assert.same({ 3, 3 }, { re.find("aba", "a", nil, -1) })
      assert.same({ 1, 1 }, { re.find("aba", "a", nil, -10) })
      assert.is_nil(re.find("aba", "a", nil, 5))
    end)

    it("gives p, p - 1 for an empty match", function()
      assert.same({ 4, 3 }, { re.find("abc", "$") })
      assert.same({ 4, 3 }, { re.find("abc", "", nil, 4) })
    end)

    it("handles subjects with NUL bytes", function()
      assert.same({ 2, 3 }, { re.find("a\0b", "\\x00b") })
    end)

    it("takes a compiled pattern instead of a string", function()
      local rx = assert(re.compile("b+"))
      assert.same({ 2, 3 }, { re.find("abbc", rx) })
      assert.same({ 2, 3 }, { rx:find("abbc") })
    end)
  end)

  describe("match", function()
    it("returns the whole match at [0] and the groups at [1..n]", function()
      local m = re.match("key=val; x", "(\\w+)=(\\w+)")
      assert.equal("key=val", m[0])
      assert.equal("key", m[1])
      assert.equal("val", m[2])
    end)

    it("gives false for groups that took no part", function()
      local m = re.match("ac", "(a)(b)?(c)")
      assert.same({ [0] = "ac", "a", false, "c" }, m)
      m = re.match("key=val", "(\\w+)=(\\w+)(z)?")
      assert.is_false(m[3])
    end)

    it("returns nil without a match", function()
      assert.is_nil(re.match("abc", "(x)"))
    end)

    it("honours init", function()
      assert.equal("b2", re.match("a1 b2", "[a-z]\\d", nil, 3)[0])
    end)
  end)

  describe("gsub", function()
    it("replaces every match and counts them", function()
      assert.same({ "hell0 w0rld", 2 }, { re.gsub("hello world", "o", "0") })
    end)

    it("expands $0..$9 and $$", function()
      assert.same({ "<hello> <world>", 2 }, { re.gsub("hello world", "(\\w+)", "<$1>") })
      assert.same({ "[ab]", 1 }, { re.gsub("ab", "a(b)", "[$0]") })
      assert.same({ "b-a", 1 }, { re.gsub("a-b", "(\\w)-(\\w)", "$2-$1") })
      assert.same({ "a$b", 1 }, { re.gsub("a.b", "\\.", "$$") })
      assert.same({ "x", 1 }, { re.gsub("a", "(a)(b)?", "x$2") })
    end)

    it("takes a function of the captures", function()
      local out, n = re.gsub("a1b22", "\\d+", function(m) return "<" .. #m[0] .. ">" end)
      assert.same({ "a<1>b<2>", 2 }, { out, n })
      out = re.gsub("ab", "a", function() return nil end)
      assert.equal("ab", out)
    end)

    it("handles empty matches one character at a time", function()
      assert.same({ "-a-b-c-", 4 }, { re.gsub("abc", "", "-") })
      assert.same({ "--a-b-", 4 }, { re.gsub("xab", "x*", "-") })
    end)

    it("steps over whole UTF-8 characters in u mode", function()
      assert.same({ "[h][\xc3\xa9][]", 3 }, { re.gsub("h\xc3\xa9", ".?", "[$0]", "u") })
    end)

    it("leaves a subject without matches alone", function()
      assert.same({ "abc", 0 }, { re.gsub("abc", "x", "y") })
    end)

    it("returns the compile error for a bad pattern", function()
      local out, err = re.gsub("abc", "(", "y")
      assert.is_nil(out)
      assert.matches("at offset 1", err, 1, true)
    end)
  end)

  describe("cache", function()
    it("compiles a pattern once per pattern and flags", function()
      re.flush_cache()
      local a = re.cached("abc", "i")
      assert.equal(a, re.cached("abc", "i"))
      assert.not_equal(a, re.cached("abc", ""))
      assert.equal(2, re.cache_count())
    end)

    it("keeps at most CACHE_SIZE patterns, dropping the least recently used", function()
      re.flush_cache()
      re.CACHE_SIZE = 3
      local first = re.cached("p1")
      re.cached("p2")
      re.cached("p3")
      assert.equal(first, re.cached("p1")) -- p1 is now the most recent
      re.cached("p4")                      -- drops p2
      assert.equal(3, re.cache_count())
      assert.equal(first, re.cached("p1"))
      for i = 1, 100 do re.find("x", "q" .. i) end
      assert.equal(3, re.cache_count())
    end)

    it("does not cache compile errors", function()
      re.flush_cache()
      assert.is_nil(re.cached("("))
      assert.equal(0, re.cache_count())
    end)

    it("frees dropped patterns when collected", function()
      re.flush_cache()
      re.CACHE_SIZE = 8
      for i = 1, 200 do re.find("x", "r" .. i) end
      collectgarbage()
      collectgarbage()
      assert.equal(8, re.cache_count())
      assert.same({ 1, 1 }, { re.find("x", "x") })
    end)
  end)
end)
