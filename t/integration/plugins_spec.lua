-- Integration specs: Lua plugins.
--
-- The chain of a route (rewrite then access, ctx shared by the plugins of a
-- request and fresh for each request), priorities and `_meta` (priority,
-- disable), global rules and route instances overriding them, plugins from
-- `plugin_dirs`, torii.response.exit (status, JSON body, headers, framing,
-- HEAD, keep-alive), the upstream header edits (set, add, clear, refused
-- names), Lua errors (500, the log entry, the worker keeps serving), the
-- request API (route parameters, query arguments, headers, ids), the
-- serverless plugin, and the configuration errors `torii -t` reports as
-- `torii: FILE:LINE: path: reason`.
--
-- The test plugins are in t/integration/fixtures/plugins; every gateway
-- gets them as PREFIX/conf/plugins with `plugin_dirs: [plugins]` (relative
-- to the configuration file's directory). The mock upstream echoes each
-- request as JSON, headers as a list of [name, value].
--

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local ROOT = gateway.root
local FIXTURES = ROOT .. "/t/integration/fixtures/plugins"
-- Where torii finds lua/ and plugins/: $TORII_HOME, else the repository
-- (core/lua/vm.c find_home).
local HOME = (os.getenv("TORII_HOME") or "") ~= "" and os.getenv("TORII_HOME") or ROOT

local read_file = testutil.read_file

local write_file = testutil.write_file

local escape = testutil.escape

local FIXTURE_NAMES = {
  "stamp_a", "stamp_b", "stamp_c", "gate", "boom", "params", "phase", "edit", "info", "typed", "misnamed",
}

-- Every fixture plugin as {["plugins/NAME.lua"] = text}, plus `more`.
local function plugin_files(more)
  local files = {}
  for _, name in ipairs(FIXTURE_NAMES) do
    files["plugins/" .. name .. ".lua"] = read_file(FIXTURES .. "/" .. name .. ".lua")
  end
  for k, v in pairs(more or {}) do files[k] = v end
  return files
end

---------------------------------------------------------------------------
-- Gateways and requests

-- A mock upstream (id "up") and a gateway whose routes send to it. Each
-- route is {id, uri, plugins}; config adds top-level keys (global_rules,
-- plugin_dirs: default {"plugins"}).
local function start(routes, config, extra)
  local mock = gateway.mock({ id = "up" })
  local cfg = { plugin_dirs = { "plugins" }, routes = {} }
  for k, v in pairs(config or {}) do cfg[k] = v end
  for _, r in ipairs(routes) do
    local route = { upstream = { nodes = { "127.0.0.1:" .. mock.port } } }
    for k, v in pairs(r) do route[k] = v end
    cfg.routes[#cfg.routes + 1] = route
  end
  local gw = gateway.start({ config = cfg, extra_files = plugin_files(extra) })
  return gw, mock
end

local request = testutil.request

local read = testutil.read

-- The mock's echo document of a proxied request.
local function echo(resp)
  assert.are.equal(200, resp.status, resp.raw_head .. (resp.body or ""))
  assert.are.equal("up", resp:header("X-Upstream-Id"), "not from the upstream: " .. resp.raw_head)
  return cjson.decode(resp.body)
end

local upstream_values = testutil.upstream_values

local upstream_value = testutil.upstream_value

-- torii's own 500 after a plugin failure; returns the JSON document.
local function assert_plugin_failed(resp)
  assert.are.equal(500, resp.status, resp.raw_head .. (resp.body or ""))
  assert.is_nil(resp:header("X-Upstream-Id"), "the upstream answered")
  assert.are.equal("application/json", resp:header("Content-Type"))
  assert.are.equal(#resp.body, tonumber(resp:header("Content-Length")))
  local doc = cjson.decode(resp.body)
  assert.are.equal("Internal Server Error", doc.error)
  assert.are.equal("a plugin failed", doc.message)
  assert.is_truthy(tostring(doc.request_id):match("^" .. ("%x"):rep(16) .. "$"), tostring(doc.request_id))
  return doc
end

-- Error log entries after byte `from`: a line starting with a timestamp and
-- the lines after it that do not (a Lua traceback spans several lines).
local STAMP = "^%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d "
local function log_entries(gw, from)
  local list = {}
  for line in gw:error_log():sub((from or 0) + 1):gmatch("[^\n]+") do
    if line:find(STAMP) or #list == 0 then
      list[#list + 1] = line
    else
      list[#list] = list[#list] .. "\n" .. line
    end
  end
  return list
end

-- The first entry after `from` containing `needle` (plain), polling up to
-- `timeout` (3 s). torii writes a request's lines before it answers, so
-- once the response is in, 0 is enough to say that a line is not there.
local function wait_entry(gw, needle, from, timeout)
  local deadline = proc.now() + (timeout or 3)
  while true do
    for _, e in ipairs(log_entries(gw, from)) do
      if e:find(needle, 1, true) then return e end
    end
    if proc.now() > deadline then return nil end
    proc.sleep(0.02)
  end
end

-- Asserts the [error] entry of a plugin failure: it names the plugin and
-- the phase, has `reason` and a traceback, and ends with the route and the
-- request id. Returns the entry.
local function assert_failure_logged(gw, from, want)
  local head = "plugin " .. want.plugin .. " failed in " .. want.phase .. ": "
  local e = wait_entry(gw, head, from)
  assert.is_truthy(e, "no log entry with '" .. head .. "' in:\n" .. gw:error_log():sub(from + 1))
  assert.is_truthy(e:find(STAMP .. "%[error%] %d+#%d+: plugin "), "not an [error] entry: " .. e)
  assert.is_truthy(e:find(want.reason, 1, true), "reason '" .. want.reason .. "' not in: " .. e)
  assert.is_truthy(e:find("\nstack traceback:\n", 1, true), "no traceback in: " .. e)
  local tail = ", route: " .. want.route .. ", request_id: " .. want.request_id
  assert.are.equal(tail, e:sub(-#tail), "entry should end with the route and the request id: " .. e)
  return e
end

---------------------------------------------------------------------------
-- The chain: phases, ctx, order

describe("plugins: a route's chain", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "phases", uri = "/phases", plugins = { phase = {}, stamp_a = {}, stamp_b = { tag = "x" } } },
      { id = "order", uri = "/order", plugins = { stamp_c = {}, stamp_a = {}, stamp_b = {} } },
      { id = "reorder", uri = "/reorder", plugins = {
        stamp_a = { _meta = { priority = 50 } }, stamp_b = {}, stamp_c = { _meta = { priority = 250 } } } },
      { id = "tie", uri = "/tie", plugins = {
        stamp_c = { _meta = { priority = 7 } }, stamp_b = { _meta = { priority = 7 } },
        stamp_a = { _meta = { priority = 7 } } } },
      { id = "negative", uri = "/negative", plugins = {
        stamp_a = { _meta = { priority = -1 } }, stamp_c = {} } },
      { id = "disable", uri = "/disable", plugins = {
        stamp_a = {}, stamp_b = { _meta = { disable = true } }, stamp_c = { _meta = { disable = false } } } },
      { id = "all-off", uri = "/all-off", plugins = { stamp_a = { _meta = { disable = true } } } },
      { id = "none", uri = "/none" },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("runs rewrite then access; ctx is shared by the plugins and by the two phases", function()
    local doc = echo(request(gw, "/phases"))
    assert.are.equal("rewrite,access", upstream_value(doc, "X-Phases"))
    assert.are.equal("true", upstream_value(doc, "X-Ctx-Fresh"))
    local id = upstream_value(doc, "X-Id")
    assert.is_truthy(id and id:match("^" .. ("%x"):rep(16) .. "$"), tostring(id))
    assert.are.equal(id, upstream_value(doc, "X-Ctx"), "ctx from rewrite seen in access")
    -- each stamp adds the list so far: the second value shows the first one's entry
    assert.are.same({ "stamp_a", "stamp_a,stamp_b:x" }, upstream_values(doc, "X-Rewrite-Order"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b:x" }, upstream_values(doc, "X-Order"))
  end)

  it("gives each request a fresh ctx (three requests on one connection)", function()
    local conn = assert(http.connect(gw.port))
    local ids = {}
    for i = 1, 3 do
      assert(conn:request({ path = "/phases" }))
      local doc = echo(read(conn))
      assert.are.equal("true", upstream_value(doc, "X-Ctx-Fresh"), "request " .. i)
      assert.are.equal(upstream_value(doc, "X-Id"), upstream_value(doc, "X-Ctx"), "request " .. i)
      assert.are.same({ "stamp_a", "stamp_a,stamp_b:x" }, upstream_values(doc, "X-Order"), "request " .. i)
      assert.is_nil(ids[upstream_value(doc, "X-Id")], "request id reused")
      ids[upstream_value(doc, "X-Id")] = true
    end
    conn:close()
  end)

  it("orders the chain by priority, highest first, whatever the config order", function()
    local doc = echo(request(gw, "/order"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b", "stamp_a,stamp_b,stamp_c" }, upstream_values(doc, "X-Order"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b", "stamp_a,stamp_b,stamp_c" },
      upstream_values(doc, "X-Rewrite-Order"))
  end)

  it("_meta.priority overrides a plugin's priority (also negative ones)", function()
    local doc = echo(request(gw, "/reorder")) -- c 250, b 200, a 50
    assert.are.same({ "stamp_c", "stamp_c,stamp_b", "stamp_c,stamp_b,stamp_a" }, upstream_values(doc, "X-Order"))
    assert.are.same({ "stamp_c", "stamp_c,stamp_b", "stamp_c,stamp_b,stamp_a" },
      upstream_values(doc, "X-Rewrite-Order"))
    doc = echo(request(gw, "/negative")) -- c 100, a -1
    assert.are.same({ "stamp_c", "stamp_c,stamp_a" }, upstream_values(doc, "X-Order"))
  end)

  it("breaks priority ties by name", function()
    for _ = 1, 3 do
      local doc = echo(request(gw, "/tie"))
      assert.are.same({ "stamp_a", "stamp_a,stamp_b", "stamp_a,stamp_b,stamp_c" }, upstream_values(doc, "X-Order"))
    end
  end)

  it("_meta.disable: true drops the plugin from both phases (false keeps it)", function()
    local doc = echo(request(gw, "/disable"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_c" }, upstream_values(doc, "X-Order"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_c" }, upstream_values(doc, "X-Rewrite-Order"))
    doc = echo(request(gw, "/all-off"))
    assert.are.same({}, upstream_values(doc, "X-Order"))
    assert.are.same({}, upstream_values(doc, "X-Rewrite-Order"))
  end)

  it("a route without plugins is proxied untouched", function()
    local doc = echo(request(gw, "/none", { headers = { { "X-Order", "client" } } }))
    assert.are.same({ "client" }, upstream_values(doc, "X-Order"))
    assert.are.same({}, upstream_values(doc, "X-Rewrite-Order"))
  end)
end)

---------------------------------------------------------------------------
-- Global rules

describe("plugins: global rules", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "plain", uri = "/plain" },
      { id = "mixed", uri = "/mixed", plugins = { stamp_a = {} } },
      { id = "override", uri = "/override", plugins = { stamp_c = { tag = "route" } } },
      { id = "reprioritised", uri = "/reprioritised", plugins = {
        stamp_c = { tag = "route", _meta = { priority = 900 } } } },
      { id = "off", uri = "/off", plugins = { stamp_c = { _meta = { disable = true } }, stamp_a = {} } },
    }, {
      global_rules = {
        { id = "g1", plugins = { stamp_c = { tag = "g1" } } },
        { id = "g2", plugins = { stamp_b = { tag = "g2" } } },
      },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("apply to every route, also one without plugins of its own", function()
    local doc = echo(request(gw, "/plain"))
    assert.are.same({ "stamp_b:g2", "stamp_b:g2,stamp_c:g1" }, upstream_values(doc, "X-Order"))
    assert.are.same({ "stamp_b:g2", "stamp_b:g2,stamp_c:g1" }, upstream_values(doc, "X-Rewrite-Order"))
  end)

  it("join a route's plugins in one chain ordered by priority", function()
    local doc = echo(request(gw, "/mixed"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b:g2", "stamp_a,stamp_b:g2,stamp_c:g1" },
      upstream_values(doc, "X-Order"))
  end)

  it("a route's instance of a plugin replaces the global one (its conf and _meta)", function()
    local doc = echo(request(gw, "/override"))
    assert.are.same({ "stamp_b:g2", "stamp_b:g2,stamp_c:route" }, upstream_values(doc, "X-Order"))
    doc = echo(request(gw, "/reprioritised"))
    assert.are.same({ "stamp_c:route", "stamp_c:route,stamp_b:g2" }, upstream_values(doc, "X-Order"))
  end)

  it("a route can disable a global plugin", function()
    local doc = echo(request(gw, "/off"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b:g2" }, upstream_values(doc, "X-Order"))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b:g2" }, upstream_values(doc, "X-Rewrite-Order"))
  end)
end)

---------------------------------------------------------------------------
-- plugin_dirs

describe("plugins: plugin_dirs", function()
  lazy_teardown(gateway.cleanup_all)

  it("loads NAME.lua and NAME/init.lua from an absolute directory", function()
    local gw = start({
      { id = "abs", uri = "/abs", plugins = { stamp_a = {}, nested = {} } },
    }, { plugin_dirs = { FIXTURES, "more" } }, {
      ["more/nested/init.lua"] = [[
local torii = require "torii"
return { name = "nested", version = "1", priority = 1,
  access = function() torii.upstream.set_header("X-Nested", "yes") end }
]],
    })
    local doc = echo(request(gw, "/abs"))
    assert.are.same({ "stamp_a" }, upstream_values(doc, "X-Order"))
    assert.are.equal("yes", upstream_value(doc, "X-Nested"))
    gw:assert_clean()
  end)

  it("the built-in plugins/ comes first: a serverless.lua in plugin_dirs is not used", function()
    local gw = start({
      { id = "sl", uri = "/sl", plugins = { serverless = { functions = {
        "return function() torii.upstream.set_header('X-Which', 'built-in') end" } } } },
    }, nil, {
      ["plugins/serverless.lua"] = "error('the shadowed serverless.lua was loaded')",
    })
    local doc = echo(request(gw, "/sl"))
    assert.are.equal("built-in", upstream_value(doc, "X-Which"))
    gw:assert_clean()
  end)
end)

---------------------------------------------------------------------------
-- torii.response.exit

describe("plugins: torii.response.exit", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "gate", uri = "/gate", plugins = {
        gate = {}, stamp_a = { log = true }, stamp_b = { log = true } } },
      { id = "moved", uri = "/moved", plugins = { stamp_a = {}, serverless = { functions = { [[
        return function(conf, ctx)
          torii.response.exit(308, "see /new\n", { Location = "/new", ["Content-Type"] = "text/plain" })
        end]] } } } },
      { id = "empty", uri = "/empty", plugins = { serverless = { phase = "access", functions = { [[
        return function()
          local status = tonumber(torii.request.get_query_arg("status"))
          torii.response.exit(status, torii.request.get_query_arg("body"))
        end]] } } } },
      { id = "badexit", uri = "/badexit", plugins = { serverless = { functions = { [[
        return function()
          local what = torii.request.get_header("x-what")
          if what == "header" then torii.response.exit(403, "no", { ["Content-Length"] = "2" }) end
          if what == "status" then torii.response.exit(99, "no") end
        end]] } } } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function()
    gw:assert_clean({ "plugin serverless failed in rewrite: " })
  end)

  -- The gate's 401, checked in full.
  local function assert_gate_401(resp, head_request)
    assert.are.equal(401, resp.status)
    assert.are.equal("Unauthorized", resp.reason)
    assert.is_nil(resp:header("X-Upstream-Id"), "the upstream answered")
    assert.are.equal("application/json", resp:header("Content-Type"))
    assert.are.equal('Key realm="torii"', resp:header("WWW-Authenticate"))
    assert.are.equal("closed", resp:header("X-Gate"))
    assert.are.equal(1, resp:count("Content-Length"))
    assert.is_nil(resp:header("Transfer-Encoding"))
    local body = '{"message":"missing X-Key","route":"gate"}\n'
    local body2 = '{"route":"gate","message":"missing X-Key"}\n' -- either key order
    assert.are.equal(#body, tonumber(resp:header("Content-Length")))
    if head_request then
      assert.are.equal("", resp.body)
    else
      assert.is_true(resp.body == body or resp.body == body2, "body: " .. resp.body)
      assert.are.same({ message = "missing X-Key", route = "gate" }, cjson.decode(resp.body))
    end
  end

  it("answers with the status, the JSON body and the headers; the chain stops; keep-alive goes on", function()
    local conn = assert(http.connect(gw.port))
    local from = gw:log_mark()
    assert(conn:request({ path = "/gate" }))
    local resp = read(conn)
    assert_gate_401(resp)
    assert.is_nil(resp:header("Connection"))
    -- stamp_a (300) ran before the gate (250) in both phases; stamp_b (200) only in rewrite
    assert.is_truthy(wait_entry(gw, "stamp_a ran in access, plugin: stamp_a, route: gate, request_id: ", from))
    assert.is_truthy(wait_entry(gw, "stamp_b ran in rewrite, plugin: stamp_b, route: gate", from))
    assert.is_nil(wait_entry(gw, "stamp_b ran in access", from, 0))

    -- the same connection, with the key: through to the upstream
    assert(conn:request({ path = "/gate", headers = { { "X-Key", "k" } } }))
    local doc = echo(read(conn))
    assert.are.same({ "stamp_a", "stamp_a,stamp_b" }, upstream_values(doc, "X-Order"))
    assert.are.equal("k", upstream_value(doc, "X-Key"))
    assert.is_false(conn:closed(0.1))
    conn:close()
  end)

  it("HEAD: the same head, no body bytes, the connection stays usable", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ method = "HEAD", path = "/gate" }))
    local resp = read(conn)
    assert_gate_401(resp, true)
    local extra, err = conn:read_raw(nil, 0.3)
    assert.is_nil(extra, "bytes after the HEAD response: " .. tostring(extra))
    assert.are.equal("timeout", err)
    assert(conn:request({ path = "/gate" }))
    assert_gate_401(read(conn))
    conn:close()
  end)

  it("a request whose body was not read gets Connection: close", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ method = "POST", path = "/gate", body = "some body" }))
    local resp = read(conn)
    assert_gate_401(resp)
    assert.are.equal("close", resp:header("Connection"))
    assert.is_true(conn:closed(2))
    conn:close()
  end)

  it("in rewrite, with a string body and the plugin's own Content-Type", function()
    local resp = request(gw, "/moved")
    assert.are.equal(308, resp.status)
    assert.are.equal("/new", resp:header("Location"))
    assert.are.equal("text/plain", resp:header("Content-Type"))
    assert.are.equal(1, resp:count("Content-Type"))
    assert.are.equal("see /new\n", resp.body)
    assert.are.equal(9, tonumber(resp:header("Content-Length")))
    assert.is_nil(resp:header("X-Upstream-Id"))
  end)

  it("no body: Content-Length: 0 and no Content-Type", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ path = "/empty?status=200" }))
    local resp = read(conn)
    assert.are.equal(200, resp.status)
    assert.are.equal("0", resp:header("Content-Length"))
    assert.is_nil(resp:header("Content-Type"))
    assert.is_nil(resp:header("X-Upstream-Id"))
    assert(conn:request({ path = "/empty?status=503&body=later" }))
    resp = read(conn)
    assert.are.equal(503, resp.status)
    assert.are.equal("later", resp.body)
    conn:close()
  end)

  -- torii_client_respond (core/proxy/client.c) writes Content-Length and
  -- the body whatever the status: after a 204 or 304 the body bytes are
  -- read as the start of the next response on the connection.
  it("exit(204 or 304, body) sends no body bytes (and no Content-Length on 204)", function()
    for _, status in ipairs({ 204, 304 }) do
      local conn = assert(http.connect(gw.port))
      assert(conn:request({ path = "/empty?status=" .. status .. "&body=oops" }))
      local resp = read(conn)
      assert.are.equal(status, resp.status)
      local extra = conn:read_raw(nil, 0.3)
      assert.is_nil(extra, status .. ": bytes after the response: " .. tostring(extra))
      if status == 204 then assert.is_nil(resp:header("Content-Length"), "Content-Length on a 204") end
      conn:close()
    end
  end)

  it("a refused header or status in exit is a plugin failure (500)", function()
    local from = gw:log_mark()
    local doc = assert_plugin_failed(request(gw, "/badexit", { headers = { { "X-What", "header" } } }))
    assert_failure_logged(gw, from, { plugin = "serverless", phase = "rewrite", route = "badexit",
      request_id = doc.request_id, reason = "torii.response.exit: framing and hop-by-hop headers are torii's own" })
    from = gw:log_mark()
    doc = assert_plugin_failed(request(gw, "/badexit", { headers = { { "X-What", "status" } } }))
    assert_failure_logged(gw, from, { plugin = "serverless", phase = "rewrite", route = "badexit",
      request_id = doc.request_id, reason = "torii.response.exit: exit status must be 200..599" })
    -- without X-What the function lets the request through
    echo(request(gw, "/badexit"))
  end)
end)

---------------------------------------------------------------------------
-- Upstream header edits

describe("plugins: upstream header edits", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "edit", uri = "/edit", plugins = { edit = {} } },
      { id = "conf-edit", uri = "/conf-edit", plugins = { edit = { ops = {
        { "set", "X-Set", "from-conf" }, { "add", "X-Add", "from-conf" }, { "clear", "X-Clear" } } } } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean({ "plugin edit failed in access: " }) end)

  -- The upstream's header list, without the X-Edit instructions.
  local function edited(headers)
    local doc = echo(request(gw, "/edit", { headers = headers }))
    local out = {}
    for _, hv in ipairs(doc.headers) do
      if hv[1]:lower() ~= "x-edit" then out[#out + 1] = hv end
    end
    return out, doc
  end

  it("set replaces every occurrence the client sent (any case); add keeps them; clear removes them", function()
    local list = edited({
      { "X-A", "c1" }, { "x-a", "c2" }, { "X-B", "c" }, { "X-C", "c1" }, { "X-Keep", "k" }, { "x-c", "c2" },
      { "X-Edit", "set X-A s" }, { "X-Edit", "add X-B a" }, { "X-Edit", "clear X-C" },
    })
    local function vals(name)
      local out = {}
      for _, hv in ipairs(list) do
        if hv[1]:lower() == name:lower() then out[#out + 1] = hv[2] end
      end
      return out
    end
    assert.are.same({ "s" }, vals("X-A"))
    assert.are.same({ "c", "a" }, vals("X-B"))
    assert.are.same({}, vals("X-C"))
    assert.are.same({ "k" }, vals("X-Keep"))
    -- torii's own headers are still there, once
    assert.are.same({ "127.0.0.1" }, vals("Host"))
    assert.are.same({ "127.0.0.1" }, vals("X-Forwarded-For"))
  end)

  it("set and add create headers the client did not send; clear of an absent header is fine", function()
    local list = edited({ { "X-Edit", "set X-New n" }, { "X-Edit", "add X-More m" }, { "X-Edit", "clear X-None" } })
    local names = {}
    for _, hv in ipairs(list) do names[hv[1]] = hv[2] end
    assert.are.equal("n", names["X-New"])
    assert.are.equal("m", names["X-More"])
    assert.is_nil(names["X-None"])
  end)

  it("edits from the plugin's conf", function()
    local doc = echo(request(gw, "/conf-edit", { headers = {
      { "X-Set", "client" }, { "X-Add", "client" }, { "X-Clear", "client" } } }))
    assert.are.same({ "from-conf" }, upstream_values(doc, "X-Set"))
    assert.are.same({ "client", "from-conf" }, upstream_values(doc, "X-Add"))
    assert.are.same({}, upstream_values(doc, "X-Clear"))
  end)

  it("refuses framing, hop-by-hop, Host and X-Forwarded-* headers: 500 and a log entry", function()
    local cases = {
      { "set Content-Length 5", "set_header" }, { "add Transfer-Encoding chunked", "add_header" },
      { "clear Host", "clear_header" }, { "set Connection close", "set_header" },
      { "set X-Forwarded-For 10.0.0.1", "set_header" }, { "clear x-forwarded-proto", "clear_header" },
      { "add Keep-Alive 5", "add_header" }, { "set TE trailers", "set_header" },
      { "set Upgrade websocket", "set_header" },
    }
    for _, case in ipairs(cases) do
      local from = gw:log_mark()
      local doc = assert_plugin_failed(request(gw, "/edit", {
        headers = { { "X-Edit", case[1] }, { "Content-Length", "0" } } }))
      assert_failure_logged(gw, from, { plugin = "edit", phase = "access", route = "edit", request_id = doc.request_id,
        reason = "torii.upstream." .. case[2]
          .. ": framing, hop-by-hop, Host and X-Forwarded-* headers are torii's own" })
    end
  end)

  it("refuses invalid header names and values", function()
    for _, case in ipairs({ { "set X(Y v", "invalid character in header name" },
      { "add X/Y v", "invalid character in header name" } }) do
      local from = gw:log_mark()
      local doc = assert_plugin_failed(request(gw, "/edit", { headers = { { "X-Edit", case[1] } } }))
      assert_failure_logged(gw, from, { plugin = "edit", phase = "access", route = "edit", request_id = doc.request_id,
        reason = case[2] })
    end
  end)

  -- set_header promises to replace the header, and clear_header to remove
  -- it; both only act on the client's headers, not on values plugins set
  -- or added before (core/http/forward.c put_edits).
  it("a second set replaces the first; clear removes what add/set made", function()
    local doc = echo(request(gw, "/edit", { headers = {
      { "X-Edit", "set X-E 1" }, { "X-Edit", "set X-E 2" },
      { "X-Edit", "add X-D 1" }, { "X-Edit", "clear X-D" },
      { "X-Edit", "set X-F 1" }, { "X-Edit", "clear X-F" },
      { "X-Edit", "add X-G 1" }, { "X-Edit", "set X-G 2" },
    } }))
    assert.are.same({ "2" }, upstream_values(doc, "X-E"))
    assert.are.same({}, upstream_values(doc, "X-D"))
    assert.are.same({}, upstream_values(doc, "X-F"))
    assert.are.same({ "2" }, upstream_values(doc, "X-G"))
  end)
end)

---------------------------------------------------------------------------
-- Lua errors

describe("plugins: a Lua error", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "boom", uri = "/boom", plugins = { boom = {}, stamp_a = { log = true }, stamp_c = { log = true } } },
      { id = "boom-rw", uri = "/boom-rw", plugins = { boom = { phase = "rewrite", message = "in rewrite" } } },
      { id = "long", uri = "/long", plugins = { boom = { message = ("x"):rep(3000) } } },
      { id = "fine", uri = "/fine", plugins = { stamp_a = {} } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean({ "plugin boom failed in %a+: " }) end)

  it("gives a 500 JSON error and an [error] entry with plugin, phase, traceback, route, request_id", function()
    local from = gw:log_mark()
    local doc = assert_plugin_failed(request(gw, "/boom"))
    local e = assert_failure_logged(gw, from, { plugin = "boom", phase = "access", route = "boom",
      request_id = doc.request_id, reason = "/conf/plugins/boom.lua:6: boom: kaput" })
    assert.is_truthy(e:find("in function 'explode'", 1, true), e)
    -- the chain stopped at boom (150): stamp_a (300) ran, stamp_c (100) did not
    assert.is_truthy(wait_entry(gw, "stamp_a ran in access, plugin: stamp_a, route: boom, request_id: "
      .. doc.request_id, from))
    assert.is_truthy(wait_entry(gw, "stamp_c ran in rewrite, plugin: stamp_c, route: boom, request_id: "
      .. doc.request_id, from))
    assert.is_nil(wait_entry(gw, "stamp_c ran in access", from, 0))
    -- the client gets nothing of the message or the traceback
    assert.are.same({ error = "Internal Server Error", message = "a plugin failed", request_id = doc.request_id }, doc)
    local body = request(gw, "/boom").body
    assert.is_nil(body:find("kaput", 1, true), body)
    assert.is_nil(body:find("boom.lua", 1, true), body)
  end)

  it("in rewrite, the entry names the rewrite phase", function()
    local from = gw:log_mark()
    local doc = assert_plugin_failed(request(gw, "/boom-rw"))
    assert_failure_logged(gw, from, { plugin = "boom", phase = "rewrite", route = "boom-rw",
      request_id = doc.request_id, reason = "boom: in rewrite" })
  end)

  it("the worker keeps serving: same worker, same connection, many errors then fine requests", function()
    local workers = gw:workers()
    assert.are.equal(1, #workers)
    local conn = assert(http.connect(gw.port))
    for i = 1, 50 do
      assert(conn:request({ path = (i % 2 == 0) and "/boom" or "/boom-rw" }))
      assert_plugin_failed(read(conn))
    end
    -- keep-alive survived the errors
    assert(conn:request({ path = "/fine" }))
    assert.are.same({ "stamp_a" }, upstream_values(echo(read(conn)), "X-Order"))
    conn:close()
    -- and on new connections, errors and fine requests mixed
    for i = 1, 300 do
      local resp = request(gw, i % 3 == 0 and "/fine" or "/boom")
      if i % 3 == 0 then echo(resp) else assert_plugin_failed(resp) end
    end
    assert.are.same(workers, gw:workers())
    assert.is_true(proc.alive(workers[1]))
    assert.is_nil(gw:error_log():find("Lua runtime failed", 1, true))
  end)

  -- The log line is cut at 2048 bytes (core/base/log.c) and route and
  -- request_id come after the message and its traceback.
  it("a long error message still leaves route and request_id in the entry", function()
    local from = gw:log_mark()
    local doc = assert_plugin_failed(request(gw, "/long"))
    local e = wait_entry(gw, "plugin boom failed in access: ", from)
    assert.is_truthy(e)
    assert.is_truthy(e:find("route: long, request_id: " .. doc.request_id, 1, true), e:sub(-300))
  end)

  it("the gateway stops cleanly afterwards (no sanitizer or leak report)", function()
    local ok, info = gw:stop()
    assert.is_true(ok)
    assert.are.equal(0, info.code, proc.describe(info))
  end)
end)

---------------------------------------------------------------------------
-- A plugin that yields

describe("plugins: coroutine.yield in a plugin", function()
  lazy_teardown(gateway.cleanup_all)

  -- A plugin's phase function runs inside the request's coroutine; a bare
  -- coroutine.yield() reaches the C side as "phase OK": the access phase
  -- then only resumes the yielded rewrite function, and the access chain
  -- (here: the gate) never runs.
  it("a plugin yielding cannot skip the access phase (the gate still answers 401)", function()
    local gw = start({
      { id = "y", uri = "/y", plugins = { gate = {}, serverless = { functions = {
        "return function() coroutine.yield() end" } } } },
    })
    local resp = request(gw, "/y")
    assert.are_not.equal(200, resp.status, "the gate was skipped")
    assert.is_nil(resp:header("X-Upstream-Id"), "the request reached the upstream without X-Key")
  end)
end)

---------------------------------------------------------------------------
-- The request API

describe("plugins: the request API", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "users", uri = "/users/:id", plugins = { params = {} } },
      { id = "files", uri = "/files/*path", plugins = { params = { param = "path", arg = "v" } } },
      { id = "info", uri = "/info/*", plugins = { info = { args = { "a", "b", "missing" } } } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  local function params(path)
    local doc = echo(request(gw, path))
    return upstream_value(doc, "X-Param"), upstream_value(doc, "X-Query-Arg")
  end

  it("get_uri_param gives a `:id` parameter (percent-decoded) and a named catch-all", function()
    assert.are.equal("42", (params("/users/42")))
    assert.are.equal("alice", (params("/users/alice?id=bob")))
    assert.are.equal("a b", (params("/users/a%20b")))
    assert.are.equal("a/b/c.txt", (params("/files/a/b/c.txt")))
  end)

  it("get_uri_param of an unknown name is nil", function()
    local gw2 = start({ { id = "u2", uri = "/u2/:id", plugins = { params = { param = "nope" } } } })
    local doc = echo(request(gw2, "/u2/1"))
    assert.are.equal("<nil>", upstream_value(doc, "X-Param"))
    gw2:assert_clean()
    gw2:cleanup()
  end)

  it("get_query_arg decodes %XX and '+', takes the first of repeats, nil when absent", function()
    assert.are.equal("a&b c+d", select(2, params("/users/1?q=a%26b+c%2Bd")))
    assert.are.equal("1", select(2, params("/users/1?q=1&q=2")))
    assert.are.equal("", select(2, params("/users/1?q")))
    assert.are.equal("", select(2, params("/users/1?q=")))
    assert.are.equal("<nil>", select(2, params("/users/1?qq=1")))
    assert.are.equal("<nil>", select(2, params("/users/1")))
    assert.are.equal("x y", select(2, params("/users/1?%71=x%20y"))) -- the name is decoded too
    assert.are.equal("%zz", select(2, params("/users/1?q=%zz")))     -- not an escape: kept
  end)

  it("an exit shows what the request getters return", function()
    local resp = request(gw, "/info/p?a=1%2F2&b=x+y&a=3", { method = "DELETE", headers = {
      { "X-Probe", "first" }, { "x-probe", "second" }, { "Accept", "*/*" } } })
    assert.are.equal(200, resp.status)
    assert.is_nil(resp:header("X-Upstream-Id"))
    local doc = cjson.decode(resp.body)
    assert.are.equal("DELETE", doc.method)
    assert.are.equal("/info/p", doc.path)
    assert.are.same({ a = "1/2", b = "x y" }, doc.query_args)
    assert.are.same({ a = "1/2", b = "x y", missing = false }, doc.args)
    assert.are.equal("first", doc.header) -- get_header: any case, the first value
    assert.are.same({ { "Host", "127.0.0.1" }, { "X-Probe", "first" }, { "x-probe", "second" }, { "Accept", "*/*" } },
      doc.headers)
    assert.are.equal("127.0.0.1", doc.remote_addr)
    assert.are.equal("info", doc.route_id)
    assert.are.equal("access", doc.phase)
    assert.is_truthy(tostring(doc.id):match("^" .. ("%x"):rep(16) .. "$"), tostring(doc.id))
    -- the access log names the same request id
    local line
    local deadline = proc.now() + 3
    repeat
      for _, l in ipairs(gw:access_log()) do
        if l:find("request_id=" .. doc.id, 1, true) then line = l end
      end
      if not line then proc.sleep(0.02) end
    until line or proc.now() > deadline
    assert.is_truthy(line, "no access log line for " .. doc.id)
    assert.is_truthy(line:find('"DELETE /info/p?a=1%2F2&b=x+y&a=3 HTTP/1.1" 200 ', 1, true), line)
    assert.is_truthy(line:find(" route=info ", 1, true), line)
  end)
end)

---------------------------------------------------------------------------
-- serverless

describe("plugins: serverless", function()
  local gw

  lazy_setup(function()
    gw = start({
      { id = "sl-rewrite", uri = "/sl-rewrite", plugins = {
        phase = {},
        serverless = { functions = {
          "return function(conf, ctx) ctx.who = 'fn0' end",
          [[return function(conf, ctx)
              torii.upstream.set_header("X-SL", ctx.who .. "@" .. torii.get_phase())
              torii.upstream.set_header("X-SL-Fresh", tostring(ctx.phases == nil))
            end]],
        } } } },
      { id = "sl-access", uri = "/sl-access", plugins = {
        stamp_a = {},
        serverless = { phase = "access", functions = { [[
          return function(conf, ctx)
            if torii.request.get_header("x-block") then
              torii.response.exit(403, { message = "blocked", rewrite = ctx.rewrite })
            end
            torii.upstream.set_header("X-SL", torii.get_phase() .. ":" .. table.concat(ctx.rewrite or {}, ","))
          end]] } } } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("runs its functions in order in rewrite (the default), before the other plugins (priority 10000)", function()
    local doc = echo(request(gw, "/sl-rewrite"))
    assert.are.equal("fn0@rewrite", upstream_value(doc, "X-SL"))
    -- serverless ran before phase (1000) had touched ctx, and phase found
    -- the ctx serverless had written to
    assert.are.equal("true", upstream_value(doc, "X-SL-Fresh"))
    assert.are.equal("false", upstream_value(doc, "X-Ctx-Fresh"))
    assert.are.equal("rewrite,access", upstream_value(doc, "X-Phases"))
  end)

  it("phase: access runs in access, sees ctx from rewrite, and can exit", function()
    local doc = echo(request(gw, "/sl-access"))
    assert.are.equal("access:stamp_a", upstream_value(doc, "X-SL"))
    -- in access, serverless (10000) runs before stamp_a (300)
    assert.are.same({ "stamp_a" }, upstream_values(doc, "X-Order"))
    local resp = request(gw, "/sl-access", { headers = { { "X-Block", "1" } } })
    assert.are.equal(403, resp.status)
    assert.is_nil(resp:header("X-Upstream-Id"))
    assert.are.same({ message = "blocked", rewrite = { "stamp_a" } }, cjson.decode(resp.body))
  end)
end)

---------------------------------------------------------------------------
-- Configuration errors

describe("plugins: configuration errors (torii -t: exit 1, `FILE:LINE: path: reason`)", function()
  local tmpdirs = {}
  lazy_teardown(function()
    gateway.cleanup_all()
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
  end)

  -- PREFIX/conf/torii.yaml with `text`, and the fixture plugins in
  -- PREFIX/conf/plugins (plus `extra`, relative to conf/).
  local function make_prefix(text, extra)
    local dir = gateway.tmpdir()
    tmpdirs[#tmpdirs + 1] = dir
    local conf = dir .. "/conf/torii.yaml"
    write_file(conf, text)
    for rel, content in pairs(plugin_files(extra)) do write_file(dir .. "/conf/" .. rel, content) end
    return dir, conf
  end

  local function check(text, extra)
    local code, out, err, conf, dir = gateway.check_config(text, plugin_files(extra))
    tmpdirs[#tmpdirs + 1] = dir
    return code, out, err, conf, dir
  end

  -- torii -t fails with exit 1 and the line
  --   torii: <conf>:<line>: <path>: <reason containing every want.reason>
  -- then the "test failed" line. Returns the line and the prefix.
  local function expect_error(text, want, extra)
    local code, out, err, conf, dir = check(text, extra)
    assert.are.equal(1, code, "exit code; stdout: " .. out .. "\nstderr: " .. err)
    local head = "torii: " .. conf .. ":" .. want.line .. ": "
    local line
    for l in err:gmatch("[^\n]+") do
      if l:sub(1, #head) == head then line = l break end
    end
    assert.is_truthy(line, "expected a line starting with\n  " .. head .. "\nin stderr:\n" .. err)
    local rest = line:sub(#head + 1)
    if want.path then
      assert.are.equal(want.path .. ": ", rest:sub(1, #want.path + 2), "path in: " .. line)
      rest = rest:sub(#want.path + 3)
    elseif want.path_prefix then
      assert.are.equal(want.path_prefix, rest:sub(1, #want.path_prefix), "path in: " .. line)
    end
    assert.is_true(#rest > 0, "empty reason: " .. line)
    for _, r in ipairs(type(want.reason) == "table" and want.reason or { want.reason }) do
      r = r:gsub("${DIR}", dir)
      assert.is_truthy(rest:find(r, 1, true), "reason should mention " .. r .. ": " .. line)
    end
    assert.is_truthy(err:find("torii: configuration file " .. conf .. " test failed", 1, true), err)
    assert.are.equal("", out)
    return line, dir
  end

  local H = "listen: 127.0.0.1:1\nworkers: 1\nplugin_dirs: [plugins]\n" -- lines 1..3
  -- a route with a block-style `plugins:` map; its first key is on line 9
  local function route(plugins_yaml)
    return H .. "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n    plugins:\n"
      .. plugins_yaml
  end

  it("a valid configuration with plugins, global rules and _meta passes", function()
    local code, out, err, conf = check(H .. [[
global_rules:
  - id: g
    desc: everywhere
    plugins: {stamp_c: {tag: g}}
routes:
  - id: a
    uri: /a
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      stamp_a: {_meta: {priority: -5, disable: false}}
      stamp_b: {tag: x, _meta: {disable: true}}
      typed: {count: 3}
      serverless:
        phase: access
        functions: ["return function() end"]
]])
    assert.are.equal(0, code, err)
    assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)
    assert.are.equal("", err)
  end)

  it("unknown plugin name", function()
    expect_error(route("      nope: {}\n"), { line = 9, path = "routes[0].plugins.nope",
      reason = { 'unknown plugin "nope"', HOME .. "/plugins", "${DIR}/conf/plugins" } })
    -- flow style: the line of `plugins:`
    expect_error(H .. "routes:\n  - {id: a, uri: /a, upstream: {nodes: [\"127.0.0.1:1\"]}, plugins: {nope: {}}}\n",
      { line = 5, path = "routes[0].plugins.nope", reason = 'unknown plugin "nope"' })
    -- in the second route
    expect_error(H .. "routes:\n  - {id: a, uri: /a, upstream: {nodes: [\"127.0.0.1:1\"]}, plugins: {stamp_a: {}}}\n"
      .. "  - id: b\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n    plugins:\n      bogus: {}\n",
      { line = 10, path = "routes[1].plugins.bogus", reason = 'unknown plugin "bogus"' })
  end)

  it("a plugin name that is not a plain name is unknown (no path lookups)", function()
    expect_error(route('      "../plugins/stamp_a": {}\n'),
      { line = 9, path = "routes[0].plugins.../plugins/stamp_a", reason = 'unknown plugin "../plugins/stamp_a"' })
  end)

  it("a plugin of plugin_dirs is unknown without plugin_dirs", function()
    local text = route("      stamp_a: {}\n"):gsub("plugin_dirs: %[plugins%]\n", "# no plugin_dirs\n")
    expect_error(text, { line = 9, path = "routes[0].plugins.stamp_a",
      reason = { 'unknown plugin "stamp_a" (looked in ' .. HOME .. "/plugins)" } })
  end)

  it("unknown plugin in a global rule", function()
    expect_error(H .. "global_rules: [{id: g, plugins: {nope: {}}}]\n", { line = 4,
      path = "global_rules[0].plugins.nope", reason = 'unknown plugin "nope"' })
  end)

  it("serverless: a syntax error in a function", function()
    expect_error(route("      serverless:\n        functions:\n          - \"return function() end\"\n"
      .. "          - \"return function( end\"\n"),
      { line = 9, path = "routes[0].plugins.serverless", reason = { "functions[1]: ", "near 'end'" } })
  end)

  it("serverless: a chunk that does not return a function, or fails", function()
    expect_error(route("      serverless:\n        functions: [\"return 42\"]\n"),
      { line = 9, path = "routes[0].plugins.serverless", reason = "functions[0]: must return a function" })
    expect_error(route("      serverless:\n        functions: [\"x = 1\"]\n"),
      { line = 9, path = "routes[0].plugins.serverless", reason = "functions[0]: must return a function" })
    expect_error(route("      serverless:\n        functions: [\"error('nope at load')\"]\n"),
      { line = 9, path = "routes[0].plugins.serverless",
        reason = { "functions[0]: must return a function", "nope at load" } })
  end)

  it("serverless: no functions, a bad phase", function()
    expect_error(route("      serverless: {functions: []}\n"),
      { line = 9, path_prefix = "routes[0].plugins.serverless", reason = "functions" })
    expect_error(route("      serverless: {phase: log, functions: [\"return function() end\"]}\n"),
      { line = 9, path_prefix = "routes[0].plugins.serverless", reason = "phase" })
  end)

  it("_meta: unknown key, bad priority, bad disable, not a map", function()
    expect_error(route("      stamp_a: {_meta: {prio: 1}}\n"), { line = 9, path = "routes[0].plugins.stamp_a._meta",
      reason = 'unknown key "prio" (priority, disable, filter)' })
    expect_error(route("      stamp_a: {_meta: {priority: 1.5}}\n"),
      { line = 9, path = "routes[0].plugins.stamp_a._meta.priority", reason = "integer" })
    expect_error(route("      stamp_a: {_meta: {priority: high}}\n"),
      { line = 9, path = "routes[0].plugins.stamp_a._meta.priority", reason = "integer" })
    expect_error(route("      stamp_a: {_meta: {disable: yes}}\n"),
      { line = 9, path = "routes[0].plugins.stamp_a._meta.disable", reason = "true or false" })
    expect_error(route("      stamp_a: {_meta: 1}\n"),
      { line = 9, path = "routes[0].plugins.stamp_a._meta", reason = "object" })
  end)

  it("a plugin's configuration that is not a map", function()
    for _, value in ipairs({ "5", "[1, 2]", "on", "[]", "some text" }) do
      expect_error(route("      stamp_a: " .. value .. "\n"),
        { line = 9, path = "routes[0].plugins.stamp_a", reason = "must be an object" })
    end
  end)

  it("`plugins:` itself must be a map", function()
    expect_error(route("      - stamp_a\n"), { line = 9, path = "routes[0].plugins", reason = "map" })
  end)

  it("a plugin file whose `name` is another", function()
    expect_error(route("      misnamed: {}\n"), { line = 9, path = "routes[0].plugins.misnamed",
      reason = { 'plugin "misnamed": ', "${DIR}/conf/plugins/misnamed.lua", 'says its name is "other"' } })
  end)

  it("a plugin file that does not load, or returns no table, or a bad priority", function()
    local extra = {
      ["plugins/broken.lua"] = "return {\n",
      ["plugins/notable.lua"] = "return 42\n",
      ["plugins/nopriority.lua"] = "return {name = 'nopriority', version = '1'}\n",
      ["plugins/badphase.lua"] = "return {name = 'badphase', priority = 1, access = 'yes'}\n",
      ["plugins/failing.lua"] = "error('cannot load me')\n",
    }
    expect_error(route("      broken: {}\n"), { line = 9, path = "routes[0].plugins.broken",
      reason = { 'plugin "broken"', "broken.lua" } }, extra)
    expect_error(route("      notable: {}\n"), { line = 9, path = "routes[0].plugins.notable",
      reason = { 'plugin "notable"', "must return a table" } }, extra)
    expect_error(route("      nopriority: {}\n"), { line = 9, path = "routes[0].plugins.nopriority",
      reason = { 'plugin "nopriority"', "priority" } }, extra)
    expect_error(route("      badphase: {}\n"), { line = 9, path = "routes[0].plugins.badphase",
      reason = { 'plugin "badphase"', "access must be a function" } }, extra)
    expect_error(route("      failing: {}\n"), { line = 9, path = "routes[0].plugins.failing",
      reason = { 'plugin "failing" failed to load', "cannot load me" } }, extra)
  end)

  it("a bad plugin configuration also stops startup, exit 1, same message", function()
    local port = gateway.free_port()
    local dir, conf = make_prefix((route("      nope: {}\n"):gsub("127%.0%.0%.1:1\n", "127.0.0.1:" .. port .. "\n", 1)))
    local code, out, err = gateway.run_cli({ "-p", dir, "-c", conf }, { timeout = 10 })
    assert.are.equal(1, code, out .. err)
    assert.is_truthy(err:find("torii: " .. escape(conf) .. ":9: routes%[0%]%.plugins%.nope: unknown plugin \"nope\""),
      err)
    assert.is_nil(err:find("test failed", 1, true))
    assert.is_false(gateway.port_open(port))
  end)

  it("schema: a required key is missing", function()
    expect_error(route("      typed: {}\n"),
      { line = 9, path = "routes[0].plugins.typed", reason = { "required", '"count"' } })
  end)

  it("schema: wrong type, below the minimum", function()
    expect_error(route("      typed: {count: many}\n"),
      { line = 9, path = "routes[0].plugins.typed.count", reason = "integer" })
    expect_error(route("      typed: {count: 1.5}\n"),
      { line = 9, path = "routes[0].plugins.typed.count", reason = "integer" })
    expect_error(route("      typed: {count: 0}\n"),
      { line = 9, path = "routes[0].plugins.typed.count", reason = "1" })
  end)

  it("schema: an unknown key (additionalProperties: false)", function()
    expect_error(route("      typed: {count: 1, colour: red}\n"),
      { line = 9, path_prefix = "routes[0].plugins.typed", reason = '"colour"' })
  end)

  it("schema: serverless's own schema (functions required, phase enum)", function()
    expect_error(route("      serverless: {}\n"),
      { line = 9, path = "routes[0].plugins.serverless", reason = { "required", '"functions"' } })
    expect_error(route("      serverless: {functions: [\"return function() end\"], extra: 1}\n"),
      { line = 9, path_prefix = "routes[0].plugins.serverless", reason = '"extra"' })
    expect_error(route("      serverless: {phase: log, functions: [\"return function() end\"]}\n"),
      { line = 9, path = "routes[0].plugins.serverless.phase", reason = "log" })
  end)

  -- The runtime knows only where the `plugins:` map (or the `global_rules:`
  -- list) starts (core/lua/vm.c push_origin), so an error in a later entry
  -- names the line of the first one.
  it("the line is the offending plugin's, not the first of its map or of global_rules", function()
    expect_error(route("      stamp_a: {}\n      nope: {}\n"),
      { line = 10, path = "routes[0].plugins.nope", reason = 'unknown plugin "nope"' })
    expect_error(H .. "global_rules:\n  - id: g1\n    plugins: {stamp_a: {}}\n"
      .. "  - id: g2\n    plugins:\n      nope: {}\n",
      { line = 9, path = "global_rules[1].plugins.nope", reason = 'unknown plugin "nope"' })
  end)
end)

describe("plugins: a schema-checked plugin", function()
  lazy_teardown(gateway.cleanup_all)

  it("gets its configuration (count: 3 sent upstream as X-Count)", function()
    local gw = start({ { id = "t", uri = "/t", plugins = { typed = { count = 3 } } } })
    assert.are.equal("3", upstream_value(echo(request(gw, "/t")), "X-Count"))
    gw:assert_clean()
  end)
end)
