-- Integration specs: shared dicts (torii.shared) and the limit-count
-- plugin, end to end through the real gateway.
--
-- torii.shared.NAME (lua/torii/init.lua) through the fixture plugin dictops
-- (t/integration/fixtures/shared/dictops.lua), which performs the operation
-- named in the query and answers {"r": [results, null for nil], "n": count,
-- "pid": worker pid}: get/set of strings, numbers and booleans, add,
-- replace, safe_set/safe_add, incr (with and without init, TTL), delete,
-- expire, ttl, flush_all, unknown names, a 100 KB value, one memory for
-- `workers: 2`, dicts a plugin asks for with its `shared_dicts` field.
--
-- limit-count (plugins/limit-count.lua): the 429 and the X-RateLimit-*
-- headers, rejected_code and rejected_msg, the keys remote_addr, route,
-- header:NAME and consumer (with key-auth), routes counted apart, a new
-- window, and exactness across two workers under concurrent requests.
--
-- And the configuration errors `torii -t` reports as
-- `torii: FILE:LINE: path: reason` for limit-count and `shared_dicts:`.
--
-- Fixed windows start at multiples of time_window seconds since the epoch
-- (os.time() in the plugin); fresh_window() keeps a test's requests inside
-- one window.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local socket = require "socket"
local testutil = require "testutil"

local ROOT = gateway.root
local FIXTURES = ROOT .. "/t/integration/fixtures/shared"
local eventually = testutil.eventually

-- The fixture plugins as {["plugins/NAME.lua"] = text}.
local function plugin_files()
  local files = {}
  for _, name in ipairs({ "dictops", "workerpid", "wantsdict" }) do
    files["plugins/" .. name .. ".lua"] = assert(testutil.read_file(FIXTURES .. "/" .. name .. ".lua"))
  end
  return files
end

-- The string dictops makes for op=big (the same LCG).
local function make_string(size, seed)
  local parts, x = {}, seed
  for i = 1, size do
    x = (x * 69069 + 1) % 4294967296
    parts[i] = string.char(32 + math.floor(x / 65536) % 95)
  end
  return table.concat(parts)
end

local function ipv6_loopback_available()
  local s = socket.tcp6 and socket.tcp6()
  if not s then return false end
  local ok = s:bind("::1", 0)
  s:close()
  return ok == 1 or ok == true
end

-- Waits, if needed, until at least `margin` seconds of the current fixed
-- window of `window` seconds remain, so that the requests that follow are
-- counted in one window. Sleeps at most `margin` seconds.
local function fresh_window(window, margin)
  local left = window - socket.gettime() % window
  if left < margin then proc.sleep(left + 0.05) end
end

local request = testutil.request

---------------------------------------------------------------------------
-- torii.shared through dictops

local function escape_arg(v)
  return (tostring(v):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- /ops?op=...: the query from a table (sorted, escaped).
local function ops_path(params)
  local keys, parts = {}, {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = escape_arg(k) .. "=" .. escape_arg(params[k]) end
  return "/ops?" .. table.concat(parts, "&")
end

-- dictops's JSON document for one operation, on a fresh connection.
local function op(gw, params, opts)
  local resp = request(gw, ops_path(params), opts)
  assert.are.equal(200, resp.status, resp.raw_head .. (resp.body or ""))
  assert.are.equal("application/json", resp:header("Content-Type"))
  local doc = cjson.decode(resp.body)
  assert.is_number(doc.pid, resp.body)
  return doc
end

-- The values an operation returned, as a list with cjson.null for nil.
local function results(gw, params, opts)
  local doc = op(gw, params, opts)
  assert.is_nil(doc.error, "the operation raised: " .. tostring(doc.error))
  if doc.n == 0 then return {} end
  return doc.r
end

-- The single value get returns (cjson.null when absent).
local function get(gw, key, dict)
  local r = results(gw, { op = "get", key = key, dict = dict })
  assert.are.equal(1, #r, "get returned " .. cjson.encode(r))
  return r[1]
end

local NULL = cjson.null
local SET_OK = { true, NULL, false } -- set: ok, err, forcible

describe("torii.shared (fixture dictops, workers: 2)", function()
  local gw

  lazy_setup(function()
    gw = gateway.start({
      config = {
        workers = 2,
        plugin_dirs = { "plugins" },
        lua = { cpu_budget = "10s" }, -- dictops spins (see below)
        shared_dicts = { d1 = "1m", d2 = "64k", small = "32k", sized_by_conf = "32k" },
        routes = {
          { id = "ops", uri = "/ops", plugins = { wantsdict = {}, dictops = {} },
            upstream = { nodes = { "127.0.0.1:1" } } },
        },
      },
      extra_files = plugin_files(),
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("set and get strings, numbers and booleans, keeping the type", function()
    local cases = {
      { "s", "string", "hello world", "hello world" },
      { "empty", "string", "", "" },
      { "digits", "string", "42", "42" }, -- a string of digits stays a string
      { "int", "number", "42", 42 },
      { "neg", "number", "-7", -7 },
      { "frac", "number", "3.25", 3.25 },
      { "zero", "number", "0", 0 },
      { "yes", "boolean", "true", true },
      { "no", "boolean", "false", false },
    }
    for _, c in ipairs(cases) do
      assert.are.same(SET_OK, results(gw, { op = "set", key = c[1], type = c[2], value = c[3] }), c[1])
    end
    for _, c in ipairs(cases) do
      local v = get(gw, c[1])
      assert.are.equal(type(c[4]), type(v), c[1] .. ": " .. cjson.encode({ v }))
      assert.are.equal(c[4], v, c[1])
    end
    -- a missing key: nil (and nothing else)
    assert.are.same({ NULL }, results(gw, { op = "get", key = "never-set" }))
    -- set replaces the value and its type
    assert.are.same(SET_OK, results(gw, { op = "set", key = "s", type = "number", value = "1" }))
    assert.are.equal(1, get(gw, "s"))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "s", type = "boolean", value = "false" }))
    assert.are.equal(false, get(gw, "s"))
    -- set to nil deletes
    assert.are.same({ true }, results(gw, { op = "set", key = "int", type = "nil" }))
    assert.are.equal(NULL, get(gw, "int"))
  end)

  it("dicts are separate: the same key in d1 and d2", function()
    assert.are.same(SET_OK, results(gw, { op = "set", dict = "d1", key = "same", value = "one" }))
    assert.are.same(SET_OK, results(gw, { op = "set", dict = "d2", key = "same", value = "two" }))
    assert.are.equal("one", get(gw, "same", "d1"))
    assert.are.equal("two", get(gw, "same", "d2"))
  end)

  it("add: only when absent (nil, \"exists\" otherwise, the value untouched)", function()
    assert.are.same(SET_OK, results(gw, { op = "add", key = "a1", value = "first" }))
    assert.are.same({ NULL, "exists", false }, results(gw, { op = "add", key = "a1", value = "second" }))
    assert.are.equal("first", get(gw, "a1"))
    assert.are.same({ NULL, "exists", false }, results(gw, { op = "safe_add", key = "a1", value = "third" }))
    assert.are.equal("first", get(gw, "a1"))
    assert.are.same(SET_OK, results(gw, { op = "safe_add", key = "a2", type = "number", value = "5" }))
    assert.are.equal(5, get(gw, "a2"))
  end)

  it("replace: only when present (nil, \"not found\" otherwise, nothing stored)", function()
    assert.are.same({ NULL, "not found", false }, results(gw, { op = "replace", key = "r1", value = "x" }))
    assert.are.equal(NULL, get(gw, "r1"))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "r1", value = "old" }))
    assert.are.same(SET_OK, results(gw, { op = "replace", key = "r1", type = "number", value = "9" }))
    assert.are.equal(9, get(gw, "r1"))
  end)

  it("incr: with init creates the counter, without it a missing key is \"not found\"", function()
    assert.are.same({ NULL, "not found" }, results(gw, { op = "incr", key = "c1", delta = 1 }))
    assert.are.equal(NULL, get(gw, "c1"))
    assert.are.same({ 15 }, results(gw, { op = "incr", key = "c1", delta = 5, init = 10 }))
    -- init only counts for a missing key
    assert.are.same({ 18 }, results(gw, { op = "incr", key = "c1", delta = 3, init = 100 }))
    assert.are.same({ 15 }, results(gw, { op = "incr", key = "c1", delta = -3 }))
    assert.are.same({ 15.5 }, results(gw, { op = "incr", key = "c1", delta = 0.5 }))
    assert.are.same({ 16.5 }, results(gw, { op = "incr", key = "c1" })) -- delta defaults to 1
    assert.are.equal(16.5, get(gw, "c1"))
    -- on a number that set stored
    assert.are.same(SET_OK, results(gw, { op = "set", key = "c2", type = "number", value = "41" }))
    assert.are.same({ 42 }, results(gw, { op = "incr", key = "c2", delta = 1 }))
  end)

  it("incr on a string or a boolean: nil, \"not a number\", the value untouched", function()
    assert.are.same(SET_OK, results(gw, { op = "set", key = "str", value = "12" }))
    assert.are.same({ NULL, "not a number" }, results(gw, { op = "incr", key = "str", delta = 1 }))
    assert.are.same({ NULL, "not a number" }, results(gw, { op = "incr", key = "str", delta = 1, init = 0 }))
    assert.are.equal("12", get(gw, "str"))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "bool", type = "boolean", value = "true" }))
    assert.are.same({ NULL, "not a number" }, results(gw, { op = "incr", key = "bool", delta = 1 }))
    assert.are.equal(true, get(gw, "bool"))
  end)

  it("storing nil with add (or any other type) raises an error naming the type", function()
    local doc = op(gw, { op = "add", key = "nil1", type = "nil" })
    assert.is_truthy(tostring(doc.error):find("values are strings, numbers or booleans, not nil", 1, true),
      cjson.encode(doc))
    assert.are.equal(NULL, get(gw, "nil1"))
  end)

  it("ttl: 0 for a key without expiry, the seconds left otherwise; the key goes when they run out", function()
    assert.are.same({ NULL, "not found" }, results(gw, { op = "ttl", key = "t-none" }))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "t-forever", value = "v" }))
    assert.are.same({ 0 }, results(gw, { op = "ttl", key = "t-forever" }))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "t1", value = "short", ttl = 1 }))
    assert.are.equal("short", get(gw, "t1"))
    local left = results(gw, { op = "ttl", key = "t1" })[1]
    assert.is_true(type(left) == "number" and left > 0 and left <= 1, "ttl: " .. tostring(left))
    local t0 = proc.now()
    assert.is_truthy(eventually(function() return get(gw, "t1") == NULL end, 3, 0.05), "t1 still there after 3 s")
    assert.is_true(proc.now() - t0 > 0.3, "t1 expired too early")
    assert.are.same({ NULL, "not found" }, results(gw, { op = "ttl", key = "t1" }))
    -- set without a TTL drops the old one
    assert.are.same(SET_OK, results(gw, { op = "set", key = "t2", value = "a", ttl = 1 }))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "t2", value = "b" }))
    assert.are.same({ 0 }, results(gw, { op = "ttl", key = "t2" }))
  end)

  it("expire: gives a present key a new TTL (0: never expires); a missing key is \"not found\"", function()
    assert.are.same({ NULL, "not found" }, results(gw, { op = "expire", key = "e-none", ttl = 1 }))
    assert.are.same(SET_OK, results(gw, { op = "set", key = "e1", value = "v" }))
    assert.are.same({ true }, results(gw, { op = "expire", key = "e1", ttl = 1 }))
    local left = results(gw, { op = "ttl", key = "e1" })[1]
    assert.is_true(type(left) == "number" and left > 0 and left <= 1, "ttl: " .. tostring(left))
    assert.is_truthy(eventually(function() return get(gw, "e1") == NULL end, 3, 0.05), "e1 still there after 3 s")
    -- expire 0 keeps a key that was about to go
    assert.are.same(SET_OK, results(gw, { op = "set", key = "e2", value = "kept", ttl = 1 }))
    assert.are.same({ true }, results(gw, { op = "expire", key = "e2", ttl = 0 }))
    assert.are.same({ 0 }, results(gw, { op = "ttl", key = "e2" }))
    proc.sleep(1.2)
    assert.are.equal("kept", get(gw, "e2"))
  end)

  it("incr's init_ttl: the counter expires, later increments keep its TTL", function()
    assert.are.same({ 1 }, results(gw, { op = "incr", key = "ic", delta = 1, init = 0, init_ttl = 1 }))
    assert.are.same({ 2 }, results(gw, { op = "incr", key = "ic", delta = 1, init = 0, init_ttl = 60 }))
    local left = results(gw, { op = "ttl", key = "ic" })[1]
    assert.is_true(type(left) == "number" and left > 0 and left <= 1, "ttl: " .. tostring(left))
    assert.is_truthy(eventually(function() return get(gw, "ic") == NULL end, 3, 0.05), "ic still there after 3 s")
    -- the next incr with init starts over
    assert.are.same({ 1 }, results(gw, { op = "incr", key = "ic", delta = 1, init = 0, init_ttl = 1 }))
  end)

  it("delete: true, then the key is gone and a second delete is \"not found\"", function()
    assert.are.same(SET_OK, results(gw, { op = "set", key = "del", value = "v" }))
    assert.are.same({ true }, results(gw, { op = "delete", key = "del" }))
    assert.are.equal(NULL, get(gw, "del"))
    assert.are.same({ NULL, "not found" }, results(gw, { op = "delete", key = "del" }))
    -- and it can be added again
    assert.are.same(SET_OK, results(gw, { op = "add", key = "del", value = "again" }))
    assert.are.equal("again", get(gw, "del"))
  end)

  it("flush_all empties one dict, not the others", function()
    for i = 1, 5 do
      assert.are.same(SET_OK, results(gw, { op = "set", dict = "d2", key = "f" .. i, value = "v" .. i }))
    end
    assert.are.same(SET_OK, results(gw, { op = "set", dict = "d1", key = "f1", value = "stays" }))
    assert.are.same({ true }, results(gw, { op = "flush_all", dict = "d2" }))
    for i = 1, 5 do assert.are.equal(NULL, get(gw, "f" .. i, "d2"), "f" .. i) end
    assert.are.equal("stays", get(gw, "f1", "d1"))
    -- the dict works after the flush
    assert.are.same(SET_OK, results(gw, { op = "set", dict = "d2", key = "f1", value = "new" }))
    assert.are.equal("new", get(gw, "f1", "d2"))
  end)

  it("an unknown dict name: torii.shared.NAME is nil (names are case-sensitive)", function()
    assert.are.same({ true }, results(gw, { op = "has", dict = "d1" }))
    assert.are.same({ false }, results(gw, { op = "has", dict = "nope" }))
    assert.are.same({ false }, results(gw, { op = "has", dict = "D1" }))
    assert.are.same({ false }, results(gw, { op = "has", dict = "d" }))
  end)

  it("a 100 KB string round-trips intact; it does not fit in a 32k dict", function()
    local big = make_string(102400, 7)
    assert.are.same(SET_OK, results(gw, { op = "big", key = "big", size = 102400, seed = 7 }))
    local v = get(gw, "big")
    assert.are.equal(102400, #v)
    assert.is_true(v == big, "the 100 KB value came back different")
    -- a second one beside it, and the first is still intact
    assert.are.same(SET_OK, results(gw, { op = "big", key = "big2", size = 102400, seed = 8 }))
    assert.is_true(get(gw, "big2") == make_string(102400, 8), "big2 differs")
    assert.is_true(get(gw, "big") == big, "big changed")
    -- larger than the whole zone
    assert.are.same({ NULL, "no memory", false }, results(gw, { op = "big", dict = "small", key = "big", size = 102400,
      seed = 7 }))
    assert.are.equal(NULL, get(gw, "big", "small"))
  end)

  it("a full dict: set evicts (forcible), safe_set and safe_add refuse with \"no memory\"", function()
    -- fill the 32k dict with 3000-byte values: set makes room by evicting
    local forced = false
    for i = 1, 30 do
      local r = results(gw, { op = "big", dict = "small", key = "fill" .. i, size = 3000, seed = i })
      assert.are.equal(true, r[1], "set fill" .. i .. ": " .. cjson.encode(r))
      forced = forced or r[3] == true
    end
    assert.is_true(forced, "30 * 3000 bytes in a 32k dict without evicting anything")
    assert.are.equal(NULL, get(gw, "fill1", "small"), "the least recently used entry should be gone")
    assert.is_true(get(gw, "fill30", "small") == make_string(3000, 30), "the newest entry")
    -- safe_set: refuses rather than evict (bounded: it must fail within 30 tries)
    local refused
    for i = 1, 30 do
      local r = results(gw, { op = "big", via = "safe_set", dict = "small", key = "safe" .. i, size = 3000, seed = i })
      if r[1] ~= true then
        refused = i
        assert.are.same({ NULL, "no memory", false }, r)
        break
      end
      assert.are.equal(false, r[3], "safe_set evicted: " .. cjson.encode(r))
    end
    assert.is_truthy(refused, "safe_set never refused in a full 32k dict")
    assert.are.equal(NULL, get(gw, "safe" .. refused, "small"))
    assert.are.same({ NULL, "no memory", false }, results(gw, { op = "big", via = "safe_add", dict = "small",
      key = "safe" .. refused, size = 3000, seed = 1 }))
    -- set still gets its way, by evicting
    assert.are.same({ true, NULL, true }, results(gw, { op = "big", dict = "small", key = "safe" .. refused,
      size = 3000, seed = 1 }))
    assert.is_true(get(gw, "safe" .. refused, "small") == make_string(3000, 1))
  end)

  it("a plugin's shared_dicts: created when not configured; the configuration's size wins", function()
    assert.are.same({ true }, results(gw, { op = "has", dict = "plugdict" }))
    -- plugdict is the plugin's 1m: 100 KB fit
    assert.are.same(SET_OK, results(gw, { op = "big", dict = "plugdict", key = "b", size = 102400, seed = 3 }))
    assert.is_true(get(gw, "b", "plugdict") == make_string(102400, 3))
    -- sized_by_conf: the plugin wants 10m, the configuration says 32k
    assert.are.same({ NULL, "no memory", false }, results(gw, { op = "big", dict = "sized_by_conf", key = "b",
      size = 102400, seed = 3 }))
    assert.are.same(SET_OK, results(gw, { op = "big", dict = "sized_by_conf", key = "b", size = 1000, seed = 3 }))
  end)

  it("one memory for both workers: values set through one worker are read through the other", function()
    local workers = gw:workers()
    assert.are.equal(2, #workers)
    local is_worker = {}
    for _, pid in ipairs(workers) do is_worker[pid] = true end
    local pids = {}
    -- Deterministically: set on a keep-alive connection, keep its worker
    -- busy, then read on fresh connections, which only the other worker
    -- can accept meanwhile.
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ path = ops_path({ op = "set", key = "xw", value = "across" }) }))
    local resp = assert(conn:read_response({ timeout = 5 }))
    local setter = cjson.decode(resp.body).pid
    assert.is_true(is_worker[setter], "pid " .. tostring(setter) .. " is not a worker")
    assert(conn:request({ path = ops_path({ op = "spin", ms = 700 }) }))
    proc.sleep(0.15)
    local doc = op(gw, { op = "get", key = "xw" })
    assert.are.same({ "across" }, doc.r)
    assert.are_not.equal(setter, doc.pid, "the busy worker answered")
    assert.is_true(is_worker[doc.pid], "pid " .. tostring(doc.pid) .. " is not a worker")
    resp = assert(conn:read_response({ timeout = 5 }))
    assert.are.equal(setter, cjson.decode(resp.body).pid)
    conn:close()
    -- And 40 reads on fresh connections, whoever serves them, all see it.
    for i = 1, 40 do
      doc = op(gw, { op = "get", key = "xw" })
      assert.are.same({ "across" }, doc.r, "read " .. i .. " by pid " .. tostring(doc.pid))
      pids[doc.pid] = true
    end
    -- 40 increments on fresh connections: every one sees all before it
    for i = 1, 40 do
      doc = op(gw, { op = "incr", key = "xw-count", delta = 1, init = 0 })
      assert.are.same({ i }, doc.r)
      pids[doc.pid] = true
    end
    for pid in pairs(pids) do assert.is_true(is_worker[pid], "pid " .. pid .. " is not a worker") end
  end)
end)

---------------------------------------------------------------------------
-- limit-count

-- The three headers of a response that went through limit-count.
local function rate_headers(resp)
  return tonumber(resp:header("X-RateLimit-Limit")), tonumber(resp:header("X-RateLimit-Remaining")),
    tonumber(resp:header("X-RateLimit-Reset"))
end

-- Asserts a response: status, from the upstream or not, and the headers.
-- want: status, limit, remaining, window (Reset in 1..window), proxied.
local function assert_limited(resp, want, what)
  what = (what or "") .. "\n" .. resp.raw_head .. (resp.body or "")
  assert.are.equal(want.status, resp.status, what)
  if want.proxied ~= nil then
    assert.are.equal(want.proxied and "up" or nil, resp:header("X-Upstream-Id"), "proxied? " .. what)
  end
  local limit, remaining, reset = rate_headers(resp)
  assert.are.equal(want.limit, limit, "X-RateLimit-Limit " .. what)
  assert.are.equal(want.remaining, remaining, "X-RateLimit-Remaining " .. what)
  assert.is_true(reset ~= nil and reset >= 1 and reset <= want.window and reset == math.floor(reset),
    "X-RateLimit-Reset " .. tostring(reset) .. " not in 1.." .. want.window .. " " .. what)
  for _, name in ipairs({ "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset" }) do
    assert.are.equal(1, #resp:values(name), name .. " once " .. what)
  end
end

local upstream_requests = testutil.upstream_requests

local CONSUMERS = {
  { username = "alice", plugins = { ["key-auth"] = { key = "alice-key" } } },
  { username = "bob", plugins = { ["key-auth"] = { key = "bob-key" } } },
}

local HOUR = 3600 -- the window of most tests: its edge is rarely near

-- n connections (and .pid) on the worker that busy_conn's is not: the
-- latter spins (dictops op=spin) while they connect, so only the other
-- worker accepts them. Each has made one /ops request; busy_conn is free
-- again on return.
local function conns_elsewhere(busy_conn, n)
  local list = {}
  assert(busy_conn:request({ path = ops_path({ op = "spin", ms = 800 }) }))
  proc.sleep(0.1)
  for i = 1, n do
    local c = assert(http.connect(busy_conn.port))
    assert(c:request({ path = ops_path({ op = "has" }) }))
    local pid = cjson.decode(assert(c:read_response({ timeout = 5 })).body).pid
    assert.is_true(list.pid == nil or list.pid == pid, "connection " .. i .. " went to another worker")
    list[i], list.pid = c, pid
  end
  local spun = cjson.decode(assert(busy_conn:read_response({ timeout = 5 })).body).pid
  assert.are_not.equal(spun, list.pid, "the spinning worker accepted")
  return list
end

describe("limit-count (workers: 2)", function()
  local gw, mock, v6port

  lazy_setup(function()
    mock = gateway.mock({ id = "up" })
    local port = gateway.free_port()
    local listen = { "127.0.0.1:" .. port }
    if ipv6_loopback_available() then
      v6port = gateway.free_port()
      listen[2] = "[::1]:" .. v6port
    end
    local function lc(conf) return { ["limit-count"] = conf } end
    local routes = {
      { id = "basic", uri = "/basic", plugins = lc({ count = 5, time_window = 60 }) },
      { id = "custom", uri = "/custom", plugins = lc({ count = 1, time_window = HOUR, rejected_code = 503,
        rejected_msg = "slow down" }) },
      { id = "addr", uri = "/addr", plugins = lc({ count = 2, time_window = HOUR, key = "remote_addr" }) },
      { id = "route", uri = "/route", plugins = lc({ count = 3, time_window = HOUR, key = "route" }) },
      { id = "hdr", uri = "/hdr", plugins = lc({ count = 2, time_window = HOUR, key = "header:X-User" }) },
      { id = "consumer", uri = "/consumer", plugins = { ["key-auth"] = {},
        ["limit-count"] = { count = 2, time_window = HOUR, key = "consumer" } } },
      { id = "ka", uri = "/ka", plugins = lc({ count = 2, time_window = HOUR }) },
      { id = "two-a", uri = "/two-a", plugins = lc({ count = 2, time_window = HOUR }) },
      { id = "two-b", uri = "/two-b", plugins = lc({ count = 2, time_window = HOUR }) },
      { id = "window", uri = "/window", plugins = lc({ count = 1, time_window = 2 }) },
      { id = "many", uri = "/many", plugins = { workerpid = {},
        ["limit-count"] = { count = 100, time_window = HOUR, key = "route" } } },
      { id = "flush", uri = "/flush", plugins = lc({ count = 1, time_window = HOUR }) },
      { id = "ops", uri = "/ops", plugins = { dictops = {} } },
    }
    for _, r in ipairs(routes) do r.upstream = { nodes = { "127.0.0.1:" .. mock.port } } end
    gw = gateway.start({
      -- dictops spins up to 800 ms of CPU to keep a worker busy: far from
      -- the CPU budget even when a loaded machine bills the process more
      config = { workers = 2, listen = listen, plugin_dirs = { "plugins" }, consumers = CONSUMERS, routes = routes,
                 lua = { cpu_budget = "10s" } },
      extra_files = plugin_files(),
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("count 5 per 60 s: Remaining 4..0 on proxied responses, then 429 with Remaining 0", function()
    fresh_window(60, 5)
    local before = upstream_requests(mock)
    for i = 1, 5 do
      local resp = request(gw, "/basic")
      assert_limited(resp, { status = 200, proxied = true, limit = 5, remaining = 5 - i, window = 60 }, "request " .. i)
      -- Reset: the seconds left in the window (the same clock here)
      local expected = 60 - math.floor(socket.gettime()) % 60
      local _, _, reset = rate_headers(resp)
      assert.is_true(math.abs(reset - expected) <= 1, "Reset " .. reset .. ", expected about " .. expected)
    end
    for i = 6, 8 do
      local resp = request(gw, "/basic")
      assert_limited(resp, { status = 429, proxied = false, limit = 5, remaining = 0, window = 60 }, "request " .. i)
      -- without rejected_msg: an empty body
      assert.are.equal("", resp.body)
      assert.are.equal("0", resp:header("Content-Length"))
    end
    -- the rejected requests never reached the upstream (+1: the second /__stats)
    assert.are.equal(5 + 1, upstream_requests(mock) - before)
  end)

  it("rejected_code 503 and rejected_msg as {\"error_msg\": ...}", function()
    local resp = request(gw, "/custom")
    assert_limited(resp, { status = 200, proxied = true, limit = 1, remaining = 0, window = HOUR })
    for _ = 1, 2 do
      resp = request(gw, "/custom")
      assert_limited(resp, { status = 503, proxied = false, limit = 1, remaining = 0, window = HOUR })
      assert.are.equal("application/json", resp:header("Content-Type"))
      assert.are.equal(#resp.body, tonumber(resp:header("Content-Length")))
      assert.are.same({ error_msg = "slow down" }, cjson.decode(resp.body))
    end
  end)

  it("keep-alive: the headers on each response of one connection, the limit across connections", function()
    fresh_window(HOUR, 5)
    local conn = assert(http.connect(gw.port))
    for i = 1, 2 do
      assert(conn:request({ path = "/ka" }))
      local resp = assert(conn:read_response({ timeout = 5 }))
      assert_limited(resp, { status = 200, proxied = true, limit = 2, remaining = 2 - i, window = HOUR })
    end
    conn:close()
    assert_limited(request(gw, "/ka"), { status = 429, proxied = false, limit = 2, remaining = 0, window = HOUR })
  end)

  it("two routes with the same limit are counted apart", function()
    fresh_window(HOUR, 5)
    for i = 1, 2 do
      assert_limited(request(gw, "/two-a"), { status = 200, proxied = true, limit = 2, remaining = 2 - i,
        window = HOUR }, "two-a " .. i)
    end
    assert_limited(request(gw, "/two-a"), { status = 429, limit = 2, remaining = 0, window = HOUR })
    for i = 1, 2 do
      assert_limited(request(gw, "/two-b"), { status = 200, proxied = true, limit = 2, remaining = 2 - i,
        window = HOUR }, "two-b " .. i)
    end
    assert_limited(request(gw, "/two-b"), { status = 429, limit = 2, remaining = 0, window = HOUR })
  end)

  it("key remote_addr (the default): each client address has its own count", function()
    if not v6port then
      print("(IPv6 loopback ::1 unavailable: remote_addr test skipped)")
      return
    end
    fresh_window(HOUR, 5)
    for i = 1, 2 do
      assert_limited(request(gw, "/addr"), { status = 200, limit = 2, remaining = 2 - i, window = HOUR }, "v4 " .. i)
    end
    assert_limited(request(gw, "/addr"), { status = 429, limit = 2, remaining = 0, window = HOUR }, "v4 3")
    -- ::1 starts at 2
    local v6 = { port = v6port, host = "::1" }
    for i = 1, 2 do
      assert_limited(request(gw, "/addr", v6), { status = 200, limit = 2, remaining = 2 - i, window = HOUR },
        "v6 " .. i)
    end
    assert_limited(request(gw, "/addr", v6), { status = 429, limit = 2, remaining = 0, window = HOUR }, "v6 3")
    -- /basic (default key) also tells ::1 apart from 127.0.0.1
    fresh_window(60, 5)
    assert_limited(request(gw, "/basic", v6), { status = 200, limit = 5, remaining = 4, window = 60 }, "v6 /basic")
  end)

  it("key route: every client shares one count", function()
    fresh_window(HOUR, 5)
    local v6 = v6port and { port = v6port, host = "::1" } or nil
    assert_limited(request(gw, "/route"), { status = 200, limit = 3, remaining = 2, window = HOUR })
    assert_limited(request(gw, "/route", v6), { status = 200, limit = 3, remaining = 1, window = HOUR })
    assert_limited(request(gw, "/route"), { status = 200, limit = 3, remaining = 0, window = HOUR })
    assert_limited(request(gw, "/route", v6), { status = 429, limit = 3, remaining = 0, window = HOUR })
    assert_limited(request(gw, "/route"), { status = 429, limit = 3, remaining = 0, window = HOUR })
  end)

  it("key header:X-User: each value has its own count; requests without the header share one", function()
    fresh_window(HOUR, 5)
    local function as(user) return { headers = user and { { "X-User", user } } or nil } end
    for i = 1, 2 do
      assert_limited(request(gw, "/hdr", as("alice")), { status = 200, limit = 2, remaining = 2 - i, window = HOUR },
        "alice " .. i)
    end
    assert_limited(request(gw, "/hdr", as("alice")), { status = 429, limit = 2, remaining = 0, window = HOUR })
    -- the header name in any case is the same header
    assert_limited(request(gw, "/hdr", { headers = { { "x-user", "alice" } } }),
      { status = 429, limit = 2, remaining = 0, window = HOUR })
    for i = 1, 2 do
      assert_limited(request(gw, "/hdr", as("bob")), { status = 200, limit = 2, remaining = 2 - i, window = HOUR },
        "bob " .. i)
    end
    assert_limited(request(gw, "/hdr", as("bob")), { status = 429, limit = 2, remaining = 0, window = HOUR })
    for i = 1, 2 do
      assert_limited(request(gw, "/hdr"), { status = 200, limit = 2, remaining = 2 - i, window = HOUR },
        "no header " .. i)
    end
    assert_limited(request(gw, "/hdr"), { status = 429, limit = 2, remaining = 0, window = HOUR })
    -- a third user is still fresh
    assert_limited(request(gw, "/hdr", as("carol")), { status = 200, limit = 2, remaining = 1, window = HOUR })
  end)

  it("key consumer (after key-auth): each consumer has its own count; 401s do not count", function()
    fresh_window(HOUR, 5)
    for _ = 1, 3 do
      local resp = request(gw, "/consumer", { headers = { { "apikey", "wrong" } } })
      assert.are.equal(401, resp.status, resp.raw_head)
    end
    local function as(key) return { headers = { { "apikey", key } } } end
    for i = 1, 2 do
      assert_limited(request(gw, "/consumer", as("alice-key")), { status = 200, proxied = true, limit = 2,
        remaining = 2 - i, window = HOUR }, "alice " .. i)
    end
    assert_limited(request(gw, "/consumer", as("alice-key")), { status = 429, proxied = false, limit = 2,
      remaining = 0, window = HOUR })
    -- the key in the query is the same consumer
    assert_limited(request(gw, "/consumer?apikey=alice-key"), { status = 429, limit = 2, remaining = 0,
      window = HOUR })
    for i = 1, 2 do
      assert_limited(request(gw, "/consumer", as("bob-key")), { status = 200, proxied = true, limit = 2,
        remaining = 2 - i, window = HOUR }, "bob " .. i)
    end
    assert_limited(request(gw, "/consumer", as("bob-key")), { status = 429, limit = 2, remaining = 0,
      window = HOUR })
  end)

  it("a new window starts a new count at the window's edge (time_window: 2)", function()
    -- start about 0.8 s before an edge: a counter that merely expired
    -- time_window seconds after its first request would come back later
    local left = 2 - socket.gettime() % 2
    if left < 0.9 then
      proc.sleep(left)
      left = 2 - socket.gettime() % 2
    end
    proc.sleep(math.max(left - 0.8, 0))
    local w0 = math.floor(socket.gettime() / 2)
    local resp = request(gw, "/window")
    assert_limited(resp, { status = 200, proxied = true, limit = 1, remaining = 0, window = 2 })
    assert.are.equal("1", resp:header("X-RateLimit-Reset"))
    assert_limited(request(gw, "/window"), { status = 429, proxied = false, limit = 1, remaining = 0, window = 2 })
    assert.are.equal(w0, math.floor(socket.gettime() / 2), "the two requests straddled a window edge")
    resp = eventually(function()
      local r = request(gw, "/window")
      return r.status == 200 and r or nil
    end, 4, 0.05)
    assert.is_truthy(resp, "no new window after 4 s")
    local late = socket.gettime() - (w0 + 1) * 2
    assert.is_true(late > 0, "200 again before the window's edge")
    assert.is_true(late < 0.5, "200 again only " .. late .. " s after the window's edge")
    assert_limited(resp, { status = 200, proxied = true, limit = 1, remaining = 0, window = 2 })
    assert.are.equal("2", resp:header("X-RateLimit-Reset"))
    assert_limited(request(gw, "/window"), { status = 429, limit = 1, remaining = 0, window = 2 })
  end)

  it("exact across workers: 160 concurrent requests for count 100 -> 100 x 200 and 60 x 429", function()
    fresh_window(HOUR, 10)
    -- 10 connections on each worker (dictops tells its pid), made so: while
    -- one worker spins, only the other can accept.
    local first = assert(http.connect(gw.port))
    assert(first:request({ path = ops_path({ op = "has" }) }))
    local pid_a = cjson.decode(assert(first:read_response({ timeout = 5 })).body).pid
    local on_b = conns_elsewhere(first, 10)
    local pid_b = on_b.pid
    assert.are_not.equal(pid_a, pid_b)
    local on_a = conns_elsewhere(on_b[1], 10)
    assert.are.equal(pid_a, on_a.pid)
    first:close()
    local conns = {}
    for i = 1, 10 do
      conns[#conns + 1] = on_a[i]
      conns[#conns + 1] = on_b[i]
    end
    -- 8 pipelined requests on each of 20 connections, all sent before any is read
    for _ = 1, 8 do
      for _, c in ipairs(conns) do assert(c:request({ path = "/many" })) end
    end
    local status, remaining, pids = {}, {}, {}
    for round = 1, 8 do
      for i, c in ipairs(conns) do
        local resp, err = c:read_response({ timeout = 10 })
        assert.is_table(resp, ("conn %d, response %d: %s"):format(i, round, tostring(err)))
        assert.is_nil(resp.incomplete)
        status[resp.status] = (status[resp.status] or 0) + 1
        local limit, left, reset = rate_headers(resp)
        assert.are.equal(100, limit)
        assert.is_true(reset ~= nil and reset >= 1 and reset <= HOUR)
        if resp.status == 200 then remaining[#remaining + 1] = left else assert.are.equal(0, left) end
        pids[resp:header("X-Worker-Pid") or "none"] = true
      end
    end
    for _, c in ipairs(conns) do c:close() end
    assert.are.same({ [200] = 100, [429] = 60 }, status)
    -- each accepted request had its own count: Remaining 99, 98, ..., 0 once each
    table.sort(remaining)
    for i = 0, 99 do assert.are.equal(i, remaining[i + 1], "Remaining values: " .. cjson.encode(remaining)) end
    -- both workers counted
    assert.are.same({ [tostring(pid_a)] = true, [tostring(pid_b)] = true }, pids)
    -- and the window stays closed
    assert_limited(request(gw, "/many"), { status = 429, limit = 100, remaining = 0, window = HOUR })
  end)

  it("the counters live in the shared dict \"limit-count\": flush_all there resets them", function()
    fresh_window(HOUR, 5)
    assert.are.same({ true }, results(gw, { op = "has", dict = "limit-count" }))
    assert_limited(request(gw, "/flush"), { status = 200, limit = 1, remaining = 0, window = HOUR })
    assert_limited(request(gw, "/flush"), { status = 429, limit = 1, remaining = 0, window = HOUR })
    assert.are.same({ true }, results(gw, { op = "flush_all", dict = "limit-count" }))
    assert_limited(request(gw, "/flush"), { status = 200, limit = 1, remaining = 0, window = HOUR })
    assert_limited(request(gw, "/flush"), { status = 429, limit = 1, remaining = 0, window = HOUR })
  end)
end)

---------------------------------------------------------------------------
-- Configuration errors

describe("limit-count and shared_dicts: configuration errors (torii -t: `FILE:LINE: path: reason`)", function()
  local tmpdirs = {}
  lazy_teardown(function()
    gateway.cleanup_all()
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
  end)

  local function check(text)
    local code, out, err, conf, dir = gateway.check_config(text, plugin_files())
    tmpdirs[#tmpdirs + 1] = dir
    return code, out, err, conf
  end

  -- torii -t fails with exit 1 and exactly the line
  --   torii: <conf>:<line>: <path>: <reason>
  -- then the "test failed" line, nothing else.
  local function expect_error(text, want)
    local code, out, err, conf = check(text)
    assert.are.equal(1, code, "exit code; stdout: " .. out .. "\nstderr: " .. err)
    assert.are.equal("torii: " .. conf .. ":" .. want.line .. ": " .. want.path .. ": " .. want.reason .. "\n"
      .. "torii: configuration file " .. conf .. " test failed\n", err)
    assert.are.equal("", out)
  end

  local function expect_ok(text)
    local code, out, err, conf = check(text)
    assert.are.equal(0, code, err)
    assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)
    assert.are.equal("", err)
  end

  local H = "listen: 127.0.0.1:1\nworkers: 1\nplugin_dirs: [plugins]\n" -- lines 1..3
  -- a route whose `plugins:` map starts on line 9
  local function route(plugins_yaml)
    return H .. "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n    plugins:\n"
      .. plugins_yaml
  end
  local function lc(conf) return route("      limit-count: " .. conf .. "\n") end
  local LC = "routes[0].plugins.limit-count"

  it("a valid configuration with shared_dicts and limit-count passes", function()
    expect_ok("shared_dicts:\n  limit-count: 1m\n  cache_1: 32k\n  Big-Dict: 10mb\n  exact: 32768\n"
      .. lc("{count: 5, time_window: 60, key: \"header:X-User\", rejected_code: 503, rejected_msg: busy}"))
    expect_ok(lc("{count: 1, time_window: 1, key: consumer}"))
    expect_ok(lc("{count: 1, time_window: 1, key: route, rejected_code: 200}"))
    expect_ok(lc("{count: 1, time_window: 1, key: remote_addr, rejected_code: 599}"))
  end)

  it("limit-count: count 0 or not an integer", function()
    expect_error(lc("{count: 0, time_window: 60}"),
      { line = 9, path = LC .. ".count", reason = "must be >= 1, got 0" })
    expect_error(lc("{count: 1.5, time_window: 60}"),
      { line = 9, path = LC .. ".count", reason = "must be an integer, got number" })
    expect_error(lc("{count: \"5\", time_window: 60}"),
      { line = 9, path = LC .. ".count", reason = "must be an integer, got string" })
  end)

  it("limit-count: a missing count or time_window, time_window 0", function()
    expect_error(lc("{count: 5}"), { line = 9, path = LC, reason = 'missing required property "time_window"' })
    expect_error(lc("{time_window: 5}"), { line = 9, path = LC, reason = 'missing required property "count"' })
    expect_error(lc("{count: 5, time_window: 0}"),
      { line = 9, path = LC .. ".time_window", reason = "must be >= 1, got 0" })
  end)

  it("limit-count: key \"bogus\" (or header: without a name)", function()
    local reason = 'must match pattern "^(remote_addr|consumer|route|header:.+)$"'
    expect_error(lc("{count: 5, time_window: 60, key: bogus}"), { line = 9, path = LC .. ".key", reason = reason })
    expect_error(lc("{count: 5, time_window: 60, key: \"header:\"}"),
      { line = 9, path = LC .. ".key", reason = reason })
  end)

  it("limit-count: rejected_code 100 (and 600), an empty rejected_msg, an unknown property", function()
    expect_error(lc("{count: 5, time_window: 60, rejected_code: 100}"),
      { line = 9, path = LC .. ".rejected_code", reason = "must be >= 200, got 100" })
    expect_error(lc("{count: 5, time_window: 60, rejected_code: 600}"),
      { line = 9, path = LC .. ".rejected_code", reason = "must be <= 599, got 600" })
    expect_error(lc("{count: 5, time_window: 60, rejected_msg: \"\"}"),
      { line = 9, path = LC .. ".rejected_msg", reason = "must be at least 1 characters long, got 0" })
    expect_error(lc("{count: 5, time_window: 60, burst: 2}"),
      { line = 9, path = LC, reason = 'unknown property "burst"' })
  end)

  it("shared_dicts: a size that is not one (10q, 1.5m, 0, -1, true)", function()
    for _, size in ipairs({ "10q", "\"1.5m\"", "0", "-1", "true", "[1]", "10 m" }) do
      expect_error(H .. "shared_dicts: {cache: " .. size .. "}\n",
        { line = 4, path = "shared_dicts.cache", reason = "must be a size such as 10m" })
    end
    -- block style: the line of the bad value
    expect_error(H .. "shared_dicts:\n  ok: 1m\n  cache: 10q\n",
      { line = 6, path = "shared_dicts.cache", reason = "must be a size such as 10m" })
  end)

  it("shared_dicts: sizes below 32k or above 64g", function()
    expect_error(H .. "shared_dicts: {cache: 1k}\n",
      { line = 4, path = "shared_dicts.cache", reason = "must be between 32k and 64g, got 1024 bytes" })
    expect_error(H .. "shared_dicts: {cache: 32767}\n",
      { line = 4, path = "shared_dicts.cache", reason = "must be between 32k and 64g, got 32767 bytes" })
    expect_error(H .. "shared_dicts: {cache: 65g}\n",
      { line = 4, path = "shared_dicts.cache", reason = "must be between 32k and 64g, got 69793218560 bytes" })
  end)

  it("shared_dicts: bad names, not a map, a name twice", function()
    expect_error(H .. "shared_dicts: {\"a.b\": 1m}\n",
      { line = 4, path = "shared_dicts.a.b", reason = [[invalid name "a.b" (letters, digits, '_', '-')]] })
    expect_error(H .. "shared_dicts: {\"a b\": 1m}\n",
      { line = 4, path = "shared_dicts.a b", reason = [[invalid name "a b" (letters, digits, '_', '-')]] })
    expect_error(H .. "shared_dicts: {\"caché\": 1m}\n",
      { line = 4, path = "shared_dicts.caché", reason = [[invalid name "caché" (letters, digits, '_', '-')]] })
    expect_error(H .. "shared_dicts: [cache]\n",
      { line = 4, path = "shared_dicts", reason = "must be a map, got a list" })
    expect_error(H .. "shared_dicts: {cache: 1m, cache: 2m}\n",
      { line = 4, path = "shared_dicts.cache", reason = "duplicate key" })
  end)

  it("shared_dicts: an empty name or one longer than 63 bytes is refused", function()
    local long = ("x"):rep(64)
    expect_error(H .. "shared_dicts: {" .. long .. ": 1m}\n",
      { line = 4, path = "shared_dicts." .. long, reason = 'invalid name "' .. long .. '" (1 to 63 characters)' })
    expect_error(H .. "shared_dicts: {\"\": 1m}\n",
      { line = 4, path = "shared_dicts.", reason = 'invalid name "" (1 to 63 characters)' })
  end)

  it("a bad shared_dicts size also stops startup, exit 1, same message", function()
    local port = gateway.free_port()
    local dir = gateway.tmpdir()
    tmpdirs[#tmpdirs + 1] = dir
    local conf = dir .. "/conf/torii.yaml"
    testutil.write_file(conf, ("listen: 127.0.0.1:%d\nworkers: 1\nshared_dicts: {cache: 1k}\n"):format(port))
    local code, out, err = gateway.run_cli({ "-p", dir, "-c", conf }, { timeout = 10 })
    assert.are.equal(1, code, out .. err)
    local line = "torii: " .. conf .. ":3: shared_dicts.cache: must be between 32k and 64g, got 1024 bytes\n"
    assert.is_truthy(err:find(line, 1, true), err)
    assert.is_nil(err:find("test failed", 1, true), err)
    assert.is_false(gateway.port_open(port))
  end)
end)

describe("headers plugins set on torii's own error answers", function()
  teardown(function() gateway.cleanup_all() end)

  it("a 502 from an unreachable upstream still carries X-RateLimit-*", function()
    local gw = gateway.start {
      config = {
        workers = 1,
        routes = { { id = "down", uri = "/*", upstream = { nodes = { "127.0.0.1:1" } },
          plugins = { ["limit-count"] = { count = 5, time_window = 60 } } } },
      },
    }
    local resp = assert(http.request(gw.port, { path = "/x", timeout = 5 }))
    assert.are.equal(502, resp.status)
    assert.are.equal("5", resp.h["x-ratelimit-limit"])
    assert.are.equal("4", resp.h["x-ratelimit-remaining"])
    assert.are.equal(1, resp:count("X-RateLimit-Limit"))
    gw:assert_clean({ "connect failed", "upstream 127%.0%.0%.1:1" })
  end)
end)
