-- torii.re: PCRE2 regular expressions through the LuaJIT FFI.
--
--   re.compile(pattern, flags)            -> rx | nil, "message at offset N"
--   re.find(subject, pattern, flags, init) -> start, end | nil
--   re.match(subject, pattern, flags, init) -> captures | nil
--   re.gsub(subject, pattern, repl, flags) -> new string, count
--
-- flags is a string of letters: "i" caseless, "m" multiline (^ and $ at
-- line breaks), "s" dotall (. matches \n), "x" extended (whitespace and #
-- comments ignored), "u" UTF-8 (the pattern and subjects are UTF-8, `.` and
-- character classes see code points; subjects with invalid UTF-8 do not
-- error, the bad bytes just never match). Any other letter is an error.
--
-- Positions are 1-based and inclusive, as with string.find: an empty match
-- at position p gives p, p - 1. `init` may be negative (counted from the
-- end, as string.find does). In captures, [0] is the whole match and [1]..[n]
-- the groups; a group that took no part in the match is false, so the table
-- has no holes. In gsub's replacement string, $0..$9 stand for the match
-- and its groups, and $$ for a literal $; repl may also be a function, called
-- with the captures table, whose string result (or nil/false for "keep the
-- match") replaces the match. Empty matches are handled as in JavaScript:
-- after an empty match the search resumes one character further on.
--
-- A compiled rx has the same operations as methods: rx:find(subject, init),
-- rx:match(subject, init), rx:gsub(subject, repl). The module functions
-- also take a compiled rx in place of the pattern (flags are then ignored).
--
-- Each compiled pattern is JIT-compiled when the library has a JIT, and owns
-- one match-data block, allocated once, reused by every call (a worker runs
-- one Lua VM on one thread, so calls never overlap; nothing yields between a
-- match and the read of its offsets). Code and match data are freed by
-- ffi.gc when the rx is collected.
--
-- Cache: re.find/re.match/re.gsub compile through a cache keyed by
-- pattern .. "/" .. flags holding at most re.CACHE_SIZE (1024) compiled
-- patterns; past that the least recently used one is dropped (it is freed
-- once no caller holds it). Compile errors are not cached. re.compile itself
-- always compiles afresh; re.cached(pattern, flags) goes through the cache.

local ffi = require "ffi"

local C = ffi.C
local byte, sub, find, gsub = string.byte, string.sub, string.find, string.gsub
local tonumber, tostring, type, error = tonumber, tostring, type, error
local concat = table.concat
local bor = require("bit").bor
local setmetatable, getmetatable, pcall = setmetatable, getmetatable, pcall

-- Guarded so that a second load (busted's insulation, or another module that
-- declared them first) does not redefine the types.
if not pcall(ffi.typeof, "pcre2_code_8") then
  ffi.cdef [[
typedef struct pcre2_real_code_8 pcre2_code_8;
typedef struct pcre2_real_match_data_8 pcre2_match_data_8;
typedef struct pcre2_real_general_context_8 pcre2_general_context_8;
typedef struct pcre2_real_compile_context_8 pcre2_compile_context_8;
typedef struct pcre2_real_match_context_8 pcre2_match_context_8;

pcre2_code_8 *pcre2_compile_8(const char *pattern, size_t length,
    uint32_t options, int *errorcode, size_t *erroroffset,
    pcre2_compile_context_8 *ccontext);
void pcre2_code_free_8(pcre2_code_8 *code);
int pcre2_jit_compile_8(pcre2_code_8 *code, uint32_t options);
int pcre2_pattern_info_8(const pcre2_code_8 *code, uint32_t what, void *where);
pcre2_match_data_8 *pcre2_match_data_create_from_pattern_8(
    const pcre2_code_8 *code, pcre2_general_context_8 *gcontext);
void pcre2_match_data_free_8(pcre2_match_data_8 *match_data);
int pcre2_match_8(const pcre2_code_8 *code, const char *subject,
    size_t length, size_t startoffset, uint32_t options,
    pcre2_match_data_8 *match_data, pcre2_match_context_8 *mcontext);
size_t *pcre2_get_ovector_pointer_8(pcre2_match_data_8 *match_data);
int pcre2_get_error_message_8(int errorcode, unsigned char *buffer,
    size_t bufflen);
]]
end

-- The gateway binary links libpcre2-8 itself: use its symbols when they are
-- visible, else load the shared library (plain luajit, busted).
local function load_lib()
  if pcall(function() return C.pcre2_compile_8 end) then return C end
  local ok, lib = pcall(ffi.load, "libpcre2-8.so.0")
  if ok then return lib end
  return ffi.load("pcre2-8")
end
local lib = load_lib()

local re = {}

re.CACHE_SIZE = 1024

local PCRE2_CASELESS = 0x00000008
local PCRE2_DOTALL = 0x00000020
local PCRE2_EXTENDED = 0x00000080
local PCRE2_MULTILINE = 0x00000400
local PCRE2_UTF = 0x00080000
local PCRE2_MATCH_INVALID_UTF = 0x04000000
local PCRE2_JIT_COMPLETE = 1
local PCRE2_INFO_CAPTURECOUNT = 4
local PCRE2_ERROR_NOMATCH = -1

local FLAG_BITS = {
  i = PCRE2_CASELESS,
  m = PCRE2_MULTILINE,
  s = PCRE2_DOTALL,
  x = PCRE2_EXTENDED,
  u = PCRE2_UTF,
}

local errcode = ffi.new("int[1]")
local erroffset = ffi.new("size_t[1]")
local u32 = ffi.new("uint32_t[1]")
local msgbuf = ffi.new("unsigned char[256]")

local function error_message(code)
  local n = lib.pcre2_get_error_message_8(code, msgbuf, 256)
  if n < 0 then return "PCRE2 error " .. tostring(code) end
  return ffi.string(msgbuf, n)
end

local function flag_options(flags)
  local opts = 0
  for i = 1, #flags do
    local bits = FLAG_BITS[sub(flags, i, i)]
    if not bits then return nil, "unknown regex flag '" .. sub(flags, i, i) .. "'" end
    opts = bor(opts, bits)
  end
  return opts
end

local rx_mt = { __name = "torii.re" }
rx_mt.__index = rx_mt

local function compile(pattern, flags)
  if type(pattern) ~= "string" then
    error("bad argument #1 to 're.compile' (string expected, got " .. type(pattern) .. ")", 2)
  end
  flags = flags or ""
  local opts, ferr = flag_options(flags)
  if not opts then return nil, ferr end
  local utf = bor(opts, PCRE2_UTF) == opts
  if utf then opts = bor(opts, PCRE2_MATCH_INVALID_UTF) end
  local code = lib.pcre2_compile_8(pattern, #pattern, opts, errcode, erroffset, nil)
  if code == nil then
    return nil, error_message(errcode[0]) .. " at offset " .. tonumber(erroffset[0])
  end
  code = ffi.gc(code, lib.pcre2_code_free_8)
  local jit = lib.pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) == 0
  lib.pcre2_pattern_info_8(code, PCRE2_INFO_CAPTURECOUNT, u32)
  local ncap = tonumber(u32[0])
  local md = lib.pcre2_match_data_create_from_pattern_8(code, nil)
  if md == nil then return nil, "out of memory allocating match data" end
  md = ffi.gc(md, lib.pcre2_match_data_free_8)
  return setmetatable({
    pattern = pattern,
    flags = flags,
    jit = jit,        -- true when matching runs JIT-compiled code
    ncap = ncap,      -- number of capture groups
    utf = utf,
    code = code,
    md = md,
    -- valid as long as md lives, which it does as long as this table
    ov = lib.pcre2_get_ovector_pointer_8(md),
  }, rx_mt)
end
re.compile = compile

-- Matches at byte offset `off` (0-based). Returns the 0-based start and
-- end offsets of the whole match, or nil (no match), or nil, err.
local function exec(rx, subject, off)
  local rc = lib.pcre2_match_8(rx.code, subject, #subject, off, 0, rx.md, nil)
  if rc < 0 then
    if rc == PCRE2_ERROR_NOMATCH then return nil end
    return nil, error_message(rc)
  end
  local ov = rx.ov
  return tonumber(ov[0]), tonumber(ov[1])
end

local function start_offset(subject, init)
  local len = #subject
  init = init or 1
  if init < 0 then
    init = len + init + 1
    if init < 1 then init = 1 end
  elseif init == 0 then
    init = 1
  end
  if init > len + 1 then return nil end
  return init - 1
end

function rx_mt:find(subject, init)
  local off = start_offset(subject, init)
  if not off then return nil end
  local s, e = exec(self, subject, off)
  if not s then return nil, e end
  return s + 1, e
end

local UNSET = ffi.new("size_t", 0) - 1 -- PCRE2_UNSET (~0): a group that did not match

local function captures(rx, subject)
  local ov = rx.ov
  local caps = { [0] = sub(subject, tonumber(ov[0]) + 1, tonumber(ov[1])) }
  for i = 1, rx.ncap do
    local s = ov[2 * i]
    if s == UNSET then
      caps[i] = false
    else
      caps[i] = sub(subject, tonumber(s) + 1, tonumber(ov[2 * i + 1]))
    end
  end
  return caps
end

function rx_mt:match(subject, init)
  local off = start_offset(subject, init)
  if not off then return nil end
  local s, err = exec(self, subject, off)
  if not s then return nil, err end
  return captures(self, subject)
end

-- Expands $0..$9 and $$ in a replacement template.
local function expand(template, caps)
  return (gsub(template, "%$([%d%$])", function(d)
    if d == "$" then return "$" end
    return caps[tonumber(d)] or ""
  end))
end

-- Byte length of the character starting at 0-based offset `off`.
local function char_len(subject, off, utf)
  if not utf then return 1 end
  local c = byte(subject, off + 1)
  if not c or c < 0xC0 then return 1 end
  local n = c >= 0xF0 and 4 or c >= 0xE0 and 3 or 2
  for k = 1, n - 1 do
    local x = byte(subject, off + 1 + k)
    if not x or x < 0x80 or x > 0xBF then return k end
  end
  return n
end

function rx_mt:gsub(subject, repl)
  local trepl = type(repl)
  if trepl ~= "string" and trepl ~= "function" then
    error("bad argument #2 to 'gsub' (string or function expected, got " .. trepl .. ")", 2)
  end
  local plain = trepl == "string" and not find(repl, "$", 1, true)
  local buf, n, count = {}, 0, 0
  local pos, len = 0, #subject -- 0-based offset of the first unsearched byte
  while pos <= len do
    local s, e = exec(self, subject, pos)
    if not s then
      if e then return nil, e end
      break
    end
    count = count + 1
    n = n + 1; buf[n] = sub(subject, pos + 1, s)
    local out
    if plain then
      out = repl
    else
      local caps = captures(self, subject)
      if trepl == "string" then
        out = expand(repl, caps)
      else
        out = repl(caps)
        if not out then out = caps[0] end
      end
    end
    n = n + 1; buf[n] = out
    if e > s then
      pos = e
    else
      -- empty match: copy one character and search on after it
      local step = char_len(subject, e, self.utf)
      if e < len then n = n + 1; buf[n] = sub(subject, e + 1, e + step) end
      pos = e + step
    end
  end
  if pos < len then n = n + 1; buf[n] = sub(subject, pos + 1) end
  return concat(buf, "", 1, n), count
end

rx_mt.__tostring = function(self)
  return "torii.re: /" .. self.pattern .. "/" .. self.flags
end

---------------------------------------------------------------------------
-- the cache: a hash from key to node plus a doubly linked list, most
-- recently used first
---------------------------------------------------------------------------

local cache, cache_count = {}, 0
local head = {}          -- sentinel: head.next is the most recent node
head.next, head.prev = head, head

local function unlink(node)
  node.prev.next = node.next
  node.next.prev = node.prev
end

local function push_front(node)
  node.next = head.next
  node.prev = head
  head.next.prev = node
  head.next = node
end

local function cached(pattern, flags)
  if type(pattern) == "table" and getmetatable(pattern) == rx_mt then return pattern end
  flags = flags or ""
  local key = pattern .. "/" .. flags
  local node = cache[key]
  if node then
    if head.next ~= node then
      unlink(node)
      push_front(node)
    end
    return node.rx
  end
  local rx, err = compile(pattern, flags)
  if not rx then return nil, err end
  node = { key = key, rx = rx }
  cache[key] = node
  push_front(node)
  cache_count = cache_count + 1
  while cache_count > re.CACHE_SIZE do
    local last = head.prev
    unlink(last)
    cache[last.key] = nil
    cache_count = cache_count - 1
  end
  return rx
end
re.cached = cached

-- Number of compiled patterns held by the cache.
function re.cache_count()
  return cache_count
end

function re.flush_cache()
  cache, cache_count = {}, 0
  head.next, head.prev = head, head
end

function re.find(subject, pattern, flags, init)
  local rx, err = cached(pattern, flags)
  if not rx then return nil, err end
  return rx:find(subject, init)
end

function re.match(subject, pattern, flags, init)
  local rx, err = cached(pattern, flags)
  if not rx then return nil, err end
  return rx:match(subject, init)
end

function re.gsub(subject, pattern, repl, flags)
  local rx, err = cached(pattern, flags)
  if not rx then return nil, err end
  return rx:gsub(subject, repl)
end

return re
