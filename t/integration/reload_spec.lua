-- Hot reload: `torii -s reload`, SIGHUP. A reload builds a new generation
-- in every worker (configuration read again, plugins loaded fresh into a
-- new VM, schemas checked, router built) and makes it current only when
-- every worker has it; a failure anywhere leaves the running one. Requests
-- in flight finish on the generation they started on, tunnels stay up,
-- shared dicts and upstream pools carry over, the old generation's timers
-- run once more with premature = true.
--
-- The plugin `stamp` (written by the spec into a plugin directory, in two
-- versions) puts "X-Stamp: v<version>/<tag from the route's config>" on
-- every response, so each response tells which generation served it.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local socket = require "socket"
local testutil = require "testutil"

local eventually = testutil.eventually

local function stamp_plugin(version)
  return ([[
local torii = require "torii"
return {
  name = "stamp", version = "%d.0", priority = 10,
  schema = { type = "object", properties = { tag = { type = "string" } }, additionalProperties = false },
  header_filter = function(conf)
    torii.response.set_header("X-Stamp", "v%d/" .. (conf.tag or ""))
  end,
}
]]):format(version, version)
end

-- A plugin whose every-timer notes, in $TORII_RELOAD_MARK, when it runs
-- premature, with the tag written into this version of its file.
local function ticker_plugin(tag)
  return ([[
local torii = require "torii"
local plugin = { name = "ticker", version = "1.0", priority = 1 }
function plugin.init_worker()
  assert(torii.timer.every(0.05, function(premature)
    if premature then
      local f = io.open(os.getenv("TORII_RELOAD_MARK"), "ab")
      if f then f:write("premature %s\n") f:close() end
    end
  end))
end
return plugin
]]):format(tag)
end

describe("reload", function()
  local gw, mock, pdir, mark

  local function config(version_tag, opts)
    opts = opts or {}
    local routes = {
      { id = "s", uri = "/s", upstream = { nodes = { "127.0.0.1:" .. mock.port } },
        plugins = { stamp = { tag = version_tag } } },
      { id = "slow", uri = "/delay/*", upstream = { nodes = { "127.0.0.1:" .. mock.port } },
        plugins = { stamp = { tag = version_tag } } },
      { id = "ws", uri = "/ws", upstream = { nodes = { "127.0.0.1:" .. mock.port } } },
      { id = "limited", uri = "/limited", upstream = { nodes = { "127.0.0.1:" .. mock.port } },
        plugins = { ["limit-count"] = { count = 3, time_window = 3600, key = "route" } } },
    }
    if opts.extra_route then
      routes[#routes + 1] = { id = "b", uri = "/b", upstream = { nodes = { "127.0.0.1:" .. mock.port } } }
    end
    local cfg = {
      workers = 2,
      plugin_dirs = { pdir },
      routes = routes,
      global_rules = { { id = "tick", plugins = { ticker = {} } } },
    }
    for k, v in pairs(opts.set or {}) do cfg[k] = v end
    return cfg
  end

  local function set_plugin(version)
    testutil.write_file(pdir .. "/stamp.lua", stamp_plugin(version))
  end

  local function stamp(path)
    local resp = testutil.request(gw, path or "/s")
    assert.are.equal(200, resp.status)
    return resp:header("X-Stamp")
  end

  local function reload()
    local code, out, err = gw:cli({ "-s", "reload" }, { timeout = 60 })
    return code, out, err
  end

  setup(function()
    mock = gateway.mock({ id = "up" })
    pdir = gateway.tmpdir()
    mark = pdir .. "/mark.txt"
    set_plugin(1)
    testutil.write_file(pdir .. "/ticker.lua", ticker_plugin("start"))
    gw = gateway.start { config = config("A"), env = { TORII_RELOAD_MARK = mark } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "reload", "generation %d+ not built" }) end
    gateway.cleanup_all()
    if pdir then gateway.rmdir(pdir) end
  end)

  it("applies a changed configuration and a changed plugin module", function()
    assert.are.equal("v1/A", stamp())
    assert.are.equal(404, testutil.request(gw, "/b").status)
    set_plugin(2)
    gw:write_config(config("B", { extra_route = true }))
    local code, out, err = reload()
    assert.are.equal(0, code, err)
    assert.matches("generation %d+ is current in every worker", out)
    -- no stale package.loaded: the new version of the module runs
    for _ = 1, 10 do assert.are.equal("v2/B", stamp()) end
    assert.are.equal(200, testutil.request(gw, "/b").status)
  end)

  it("reloads on SIGHUP", function()
    set_plugin(1)
    gw:write_config(config("A"))
    local from = gw:log_mark()
    assert.is_true(gw:signal("HUP"))
    assert.is_truthy(gw:wait_log("reload %(SIGHUP%): generation %d+ is current", 10, from))
    for _ = 1, 10 do assert.are.equal("v1/A", stamp()) end
  end)

  describe("a failure leaves the running generation", function()
    local function expect_failure(pattern)
      local before = stamp()
      local from = gw:log_mark()
      local code, out, err = reload()
      assert.are_not.equal(0, code, out)
      assert.matches(pattern, err)
      assert.matches("the running configuration stays in force", err)
      assert.is_truthy(gw:wait_log("reload %(torii %-s reload%) failed", 5, from))
      for _ = 1, 6 do assert.are.equal(before, stamp()) end
      return err
    end

    after_each(function()
      set_plugin(1)
      gw:write_config(config("A"))
    end)

    it("a file that does not parse: the same file:line: reason as torii -t", function()
      testutil.write_file(gw.conf_path, "routes: [\n  - id: x\n")
      local _, _, terr = gw:cli({ "-t" })
      local first = terr:match("^torii: ([^\n]+)")
      assert.is_string(first)
      assert.matches("torii%.yaml:%d+:", first)
      local err = expect_failure("torii%.yaml:%d+:")
      assert.is_truthy(err:find(first, 1, true), err)
    end)

    it("a plugin configuration its schema rejects", function()
      local cfg = config("A")
      cfg.routes[1].plugins.stamp.tag = 5
      gw:write_config(cfg)
      local _, _, terr = gw:cli({ "-t" })
      local first = terr:match("^torii: ([^\n]+)")
      assert.matches("routes%[0%]%.plugins%.stamp%.tag", first)
      local err = expect_failure("routes%[0%]%.plugins%.stamp%.tag")
      assert.is_truthy(err:find(first, 1, true), err)
    end)

    it("a plugin that fails to compile", function()
      testutil.write_file(pdir .. "/stamp.lua", "return { name = 'stamp', version = \n")
      expect_failure("stamp")
    end)

    it("a plugin whose module raises an error when loaded", function()
      testutil.write_file(pdir .. "/stamp.lua", "error('refusing to load')\n")
      expect_failure("refusing to load")
    end)

    it("a shared dict that does not exist yet", function()
      gw:write_config(config("A", { set = { shared_dicts = { brandnew = "1m" } } }))
      expect_failure("shared_dicts%.brandnew")
    end)
  end)

  it("finishes requests in flight on the generation they started on", function()
    set_plugin(1)
    gw:write_config(config("A"))
    assert.are.equal(0, (reload()))
    local conn = assert(http.connect(gw.port, { timeout = 10 }))
    assert(conn:request({ method = "GET", path = "/delay/1500" }))
    proc.sleep(0.3) -- the request is at the upstream now
    set_plugin(2)
    gw:write_config(config("B"))
    local from = gw:log_mark()
    local code, _, err = reload()
    assert.are.equal(0, code, err)
    assert.are.equal("v2/B", stamp())
    local resp = assert(conn:read_response({ timeout = 10 }))
    conn:close()
    assert.are.equal(200, resp.status)
    assert.are.equal("v1/A", resp:header("X-Stamp"))
    -- and the old generation goes with its last request
    assert.is_truthy(gw:wait_log("generation %d+ freed", 5, from))
  end)

  it("a change of listen addresses or worker count: new workers on the new sockets, the old ones drained",
    function()
      set_plugin(1)
      gw:write_config(config("A"))
      assert.are.equal(0, (reload()))
      local old_workers = gw:workers()
      local conn = assert(http.connect(gw.port, { timeout = 10 }))
      assert(conn:request({ method = "GET", path = "/delay/1000" }))
      proc.sleep(0.2)
      local extra = gateway.free_port()
      local cfg = config("L")
      cfg.listen = { "127.0.0.1:" .. gw.port, "127.0.0.1:" .. extra }
      cfg.workers = 1
      gw:write_config(cfg)
      local code, out, err = reload()
      assert.are.equal(0, code, err)
      assert.matches("is current in every worker", out)
      assert.are.equal("v1/L", stamp())
      local resp = testutil.request(gw, "/s", { port = extra })
      assert.are.equal("v1/L", resp:header("X-Stamp"))
      -- the request in flight on an old worker finishes there
      local slow = assert(conn:read_response({ timeout = 10 }))
      conn:close()
      assert.are.equal(200, slow.status)
      assert.are.equal("v1/A", slow:header("X-Stamp"))
      local now = eventually(function()
        local w = gw:workers()
        return #w == 1 and w
      end, 10, 0.05)
      assert.is_truthy(now, "the old workers did not go")
      for _, pid in ipairs(old_workers) do assert.are_not.equal(pid, now[1]) end
      -- and back: one address, two workers
      gw:write_config(config("A"))
      assert.are.equal(0, (reload()))
      assert.are.equal("v1/A", stamp())
      assert.is_truthy(eventually(function() return #gw:workers() == 2 end, 10, 0.05))
      assert.is_nil(http.get(extra, "/s", { timeout = 1 }), "the removed address still answers")
    end)

  it("keeps a WebSocket tunnel up across a reload", function()
    local conn = assert(http.connect(gw.port, { timeout = 5 }))
    assert(conn:send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      .. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
    local resp = assert(conn:read_response({ timeout = 5 }))
    assert.are.equal(101, resp.status)
    assert(conn:send("before"))
    assert.are.equal("before", conn:read_raw(6, 5))
    set_plugin(2)
    assert.are.equal(0, (reload()))
    assert(conn:send("after"))
    assert.are.equal("after", conn:read_raw(5, 5))
    conn:close()
  end)

  it("keeps shared dicts: a rate limit counts on across a reload", function()
    -- count = 3 per route: two before, one after, then the fourth is refused
    assert.are.equal(200, testutil.request(gw, "/limited").status)
    assert.are.equal(200, testutil.request(gw, "/limited").status)
    assert.are.equal(0, (reload()))
    local third = testutil.request(gw, "/limited")
    assert.are.equal(200, third.status)
    assert.are.equal("0", third:header("X-RateLimit-Remaining"))
    assert.are.equal(429, testutil.request(gw, "/limited").status)
  end)

  it("keeps upstream keep-alive connections across reloads", function()
    local function conns()
      local resp = assert(http.get(mock.port, "/__stats", { timeout = 2 }))
      -- counting the connection of this very question
      return tonumber(resp.body:match('"connections_total"%s*:%s*(%d+)'))
    end
    local conn = assert(http.connect(gw.port, { timeout = 5 }))
    local function one()
      assert(conn:request({ method = "GET", path = "/s" }))
      assert.are.equal(200, assert(conn:read_response({ timeout = 5 })).status)
    end
    one()
    local before = conns()
    for _ = 1, 4 do
      assert.are.equal(0, (reload()))
      one()
    end
    conn:close()
    -- at most one new connection per worker, not one per reload
    local new = conns() - before - 1
    assert.is_true(new <= 2, "new upstream connections: " .. new)
  end)

  it("runs the old generation's timers once more with premature = true", function()
    testutil.write_file(pdir .. "/ticker.lua", ticker_plugin("T1"))
    assert.are.equal(0, (reload()))
    testutil.write_file(pdir .. "/ticker.lua", ticker_plugin("T2"))
    assert.are.equal(0, (reload()))
    local text = eventually(function()
      local t = testutil.read_file(mark) or ""
      return t:find("premature T1", 1, true) and t
    end, 5, 0.05)
    assert.is_truthy(text, "no premature run of generation T1's timer")
    assert.is_nil(text:find("premature T2", 1, true), "the current generation's timer was stopped")
  end)

  it("100 reloads under load: no request fails, and after each acknowledgement only the new generation answers",
    function()
      local reloads = tonumber(os.getenv("TORII_RELOADS")) or 100
      local dir = gateway.tmpdir()
      local stop = dir .. "/stop"
      local clients = {}
      for i = 1, 4 do
        local out = dir .. "/load" .. i .. ".txt"
        local pid = assert(proc.spawn({ "luajit", gateway.root .. "/t/support/loadgen.lua", tostring(gw.port), "/s",
          out, stop, "120", "X-Stamp" }, { stdout = dir .. "/lg.out", stderr = dir .. "/lg" .. i .. ".err" }))
        clients[i] = { pid = pid, out = out }
      end
      proc.sleep(0.3)
      local acks = {}
      for i = 1, reloads do
        local version, tag = i % 2 == 1 and 2 or 1, i % 2 == 1 and "B" or "A"
        set_plugin(version)
        gw:write_config(config(tag, { extra_route = tag == "B" }))
        local before = socket.gettime()
        local code, _, err = reload()
        assert.are.equal(0, code, err)
        acks[i] = { before = before, ack = socket.gettime(), stamp = ("v%d/%s"):format(version, tag) }
        proc.sleep(0.02)
      end
      proc.sleep(0.2)
      testutil.write_file(stop, "")
      for _, c in ipairs(clients) do assert.is_truthy(proc.wait(c.pid, 20)) end
      local total, checked, failures, wrong = 0, 0, {}, {}
      for _, c in ipairs(clients) do
        for line in (testutil.read_file(c.out) or ""):gmatch("[^\n]+") do
          local t, status, st = line:match("^(%S+) (%S+) (%S+)")
          t = tonumber(t)
          total = total + 1
          if status ~= "200" then
            failures[#failures + 1] = line
          else
            -- the last acknowledged reload before it was sent, if the next
            -- one had not begun yet
            local k
            for i = #acks, 1, -1 do
              if acks[i].ack <= t then k = i break end
            end
            if k and (k == #acks or t < acks[k + 1].before) then
              checked = checked + 1
              if st ~= acks[k].stamp then wrong[#wrong + 1] = line .. " expected " .. acks[k].stamp end
            end
          end
        end
      end
      gateway.rmdir(dir)
      assert.are.same({}, failures)
      assert.are.same({}, wrong)
      assert.is_true(total >= 200, "only " .. total .. " requests under load")
      assert.is_true(checked >= 50, "only " .. checked .. " responses checked against a generation")
    end)
end)

describe("reload by the file watcher (watch: true)", function()
  local gw, mock, pdir

  local function config(tag)
    return {
      workers = 1, watch = true, plugin_dirs = { pdir },
      include = { "conf.d/*.yaml" },
      routes = { { id = "s", uri = "/s", upstream = { nodes = { "127.0.0.1:" .. mock.port } },
        plugins = { stamp = { tag = tag } } } },
    }
  end

  local function stamp(path)
    local resp = testutil.request(gw, path or "/s")
    return resp.status == 200 and resp:header("X-Stamp") or resp.status
  end

  setup(function()
    mock = gateway.mock({ id = "up" })
    pdir = gateway.tmpdir()
    testutil.write_file(pdir .. "/stamp.lua", stamp_plugin(1))
    gw = gateway.start { config = config("A"), extra_files = { ["conf.d/.keep"] = "" } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "reload %(file watcher%) failed", "not built" }) end
    gateway.cleanup_all()
    if pdir then gateway.rmdir(pdir) end
  end)

  it("applies an edited configuration file", function()
    assert.are.equal("v1/A", stamp())
    gw:write_config(config("B"))
    assert.are.equal("v1/B", eventually(function() return stamp() == "v1/B" and "v1/B" end, 10, 0.1))
  end)

  it("applies an edited plugin", function()
    testutil.write_file(pdir .. "/stamp.lua", stamp_plugin(2))
    assert.is_truthy(eventually(function() return stamp() == "v2/B" end, 10, 0.1))
  end)

  it("applies a file dropped into an included directory", function()
    assert.are.equal(404, stamp("/dropped"))
    testutil.write_file(gw.prefix .. "/conf/conf.d/extra.yaml", ([[
routes:
  - id: dropped
    uri: /dropped
    upstream: {nodes: ["127.0.0.1:%d"]}
]]):format(mock.port))
    assert.is_truthy(eventually(function() return stamp("/dropped") == 200 end, 10, 0.1))
  end)

  it("ignores editors' swap files, and keeps the running generation when a change is bad", function()
    local from = gw:log_mark()
    testutil.write_file(gw.prefix .. "/conf/.torii.yaml.swp", "junk")
    testutil.write_file(pdir .. "/stamp.lua~", "junk")
    proc.sleep(1)
    assert.is_nil((gw:wait_log("file watcher", 0, from)))
    testutil.write_file(pdir .. "/stamp.lua", "return {")
    assert.is_truthy(gw:wait_log("reload %(file watcher%) failed", 10, from))
    assert.are.equal("v2/B", stamp())
  end)
end)
