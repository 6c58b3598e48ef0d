-- Integration specs: the key-auth and proxy-rewrite plugins, end to end
-- through the real gateway, and the upstream request API they are built on.
--
-- key-auth (plugins/key-auth.lua, priority 2500, access): the key in a
-- header or a query argument (both `apikey` by default), matched against the
-- `consumers:` of the configuration; 401 JSON without a key or with an
-- unknown one (the upstream never sees those requests); X-Consumer-Username
-- upstream; hide_credentials. proxy-rewrite (plugins/proxy-rewrite.lua,
-- priority 1008, rewrite): uri (with $name route parameters), regex_uri,
-- host, method, header edits; with key-auth on the same route. The upstream
-- API (torii.upstream.get_uri, set_uri, set_path, set_query, set_method,
-- set_host) through the fixture plugin upapi
-- (t/integration/fixtures/auth_rewrite/upapi.lua). And the configuration
-- errors `torii -t` reports as `torii: FILE:LINE: path: reason`.
--
-- The mock upstream echoes each request as JSON (method, target, headers as
-- a list of [name, value]); its /__stats counts the requests it answered.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local ROOT = gateway.root
local UPAPI = testutil.read_file(ROOT .. "/t/integration/fixtures/auth_rewrite/upapi.lua")

---------------------------------------------------------------------------
-- Gateways and requests

-- A mock upstream (id "up") and a gateway whose routes send to it; each
-- route is {id, uri, plugins}, config adds top-level keys (consumers). The
-- fixture plugin upapi is in PREFIX/conf/plugins (plugin_dirs: [plugins]).
local function start(routes, config)
  local mock = gateway.mock({ id = "up" })
  local cfg = { plugin_dirs = { "plugins" }, routes = {} }
  for k, v in pairs(config or {}) do cfg[k] = v end
  for _, r in ipairs(routes) do
    local route = { upstream = { nodes = { "127.0.0.1:" .. mock.port } } }
    for k, v in pairs(r) do route[k] = v end
    cfg.routes[#cfg.routes + 1] = route
  end
  local gw = gateway.start({ config = cfg, extra_files = { ["plugins/upapi.lua"] = UPAPI } })
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

local upstream_requests = testutil.upstream_requests

-- key-auth's 401: exactly the JSON body `message`, from torii, not the upstream.
local function assert_401(resp, message)
  assert.are.equal(401, resp.status, resp.raw_head .. (resp.body or ""))
  assert.is_nil(resp:header("X-Upstream-Id"), "the upstream answered")
  assert.are.equal("application/json", resp:header("Content-Type"))
  assert.are.equal(#resp.body, tonumber(resp:header("Content-Length")))
  assert.are.equal(cjson.encode({ message = message }) .. "\n", resp.body)
end

-- torii's own 500 after a plugin failure; returns the JSON document.
local function assert_plugin_failed(resp)
  assert.are.equal(500, resp.status, resp.raw_head .. (resp.body or ""))
  assert.is_nil(resp:header("X-Upstream-Id"), "the upstream answered")
  local doc = cjson.decode(resp.body)
  assert.are.equal("a plugin failed", doc.message)
  assert.is_truthy(tostring(doc.request_id):match("^" .. ("%x"):rep(16) .. "$"), tostring(doc.request_id))
  return doc
end

-- The [error] entry of a plugin failure after byte `from` (polling up to
-- 3 s): it names the plugin, the phase and `reason`, and ends with the
-- route and the request id.
local function assert_failure_logged(gw, from, want)
  local head = "plugin " .. want.plugin .. " failed in " .. want.phase .. ": "
  local entry
  local deadline = proc.now() + 3
  repeat
    local text = gw:error_log():sub(from + 1)
    local s = text:find(head, 1, true)
    if s then
      local line_start = text:sub(1, s):match(".*()\n") or 1
      local rest = text:sub(line_start)
      -- the entry: up to the next timestamped line
      entry = rest:match("^\n?(.-)\n%d%d%d%d/%d%d/%d%d ") or rest:match("^\n?(.-)\n?$")
    else
      proc.sleep(0.02)
    end
  until entry or proc.now() > deadline
  assert.is_truthy(entry, "no log entry with '" .. head .. "' in:\n" .. gw:error_log():sub(from + 1))
  assert.is_truthy(entry:find("^%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d %[error%] "), "not an [error] entry: " .. entry)
  assert.is_truthy(entry:find(want.reason, 1, true), "reason '" .. want.reason .. "' not in: " .. entry)
  local tail = ", route: " .. want.route .. ", request_id: " .. want.request_id
  assert.are.equal(tail, entry:sub(-#tail), "entry should end with the route and the request id: " .. entry)
end

-- The query arguments of a target as a sorted list of "name=value",
-- percent-decoded ('+' is a space), repeats and order of appearance kept
-- within a name.
local function query_list(target)
  local function unescape(s)
    return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  local out = {}
  for pair in (target:match("%?(.*)$") or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)(=?.*)$")
    out[#out + 1] = unescape(k) .. unescape(v)
  end
  table.sort(out)
  return out
end

---------------------------------------------------------------------------
-- key-auth

local CONSUMERS = {
  { username = "alice", desc = "first", plugins = { ["key-auth"] = { key = "alice-key" } } },
  { username = "bob.b_2-x", plugins = { ["key-auth"] = { key = "bob-key" } } },
  { username = "carol" }, -- no plugins: never found by a key
}

describe("key-auth", function()
  local gw, mock

  lazy_setup(function()
    gw, mock = start({
      { id = "ka", uri = "/ka/*", plugins = { ["key-auth"] = {} } },
      { id = "custom", uri = "/custom/*", plugins = { ["key-auth"] = { header = "X-API-KEY", query = "token" } } },
      { id = "hide", uri = "/hide/*", plugins = { ["key-auth"] = { hide_credentials = true } } },
      { id = "hide-custom", uri = "/hide-custom/*", plugins = {
        ["key-auth"] = { header = "X-API-KEY", query = "token", hide_credentials = true } } },
      { id = "open", uri = "/open/*" },
    }, { consumers = CONSUMERS })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean() end)

  it("no key: 401 {\"message\":\"Missing API key found in request\"}", function()
    local missing = "Missing API key found in request"
    assert_401(request(gw, "/ka/x"), missing)
    -- an empty key is no key, in the header or in the query
    assert_401(request(gw, "/ka/x", { headers = { { "apikey", "" } } }), missing)
    assert_401(request(gw, "/ka/x?apikey="), missing)
    assert_401(request(gw, "/ka/x?apikey"), missing)
    -- another argument or header name is not the key
    assert_401(request(gw, "/ka/x?key=alice-key&apikeys=alice-key", { headers = { { "X-Apikey", "alice-key" } } }),
      missing)
  end)

  it("a key no consumer has: 401 {\"message\":\"Invalid API key in request\"}", function()
    local invalid = "Invalid API key in request"
    assert_401(request(gw, "/ka/x", { headers = { { "apikey", "nope" } } }), invalid)
    assert_401(request(gw, "/ka/x?apikey=nope"), invalid)
    -- keys are compared whole and with their case
    assert_401(request(gw, "/ka/x", { headers = { { "apikey", "ALICE-KEY" } } }), invalid)
    assert_401(request(gw, "/ka/x", { headers = { { "apikey", "alice-key " .. "x" } } }), invalid)
    assert_401(request(gw, "/ka/x?apikey=alice"), invalid)
    -- a consumer's username is not a key
    assert_401(request(gw, "/ka/x?apikey=carol"), invalid)
  end)

  it("a 401 never reaches the upstream (the mock's request counter)", function()
    local before = upstream_requests(mock)
    assert_401(request(gw, "/ka/x"), "Missing API key found in request")
    assert_401(request(gw, "/ka/x?apikey=nope"), "Invalid API key in request")
    assert_401(request(gw, "/custom/x", { headers = { { "apikey", "alice-key" } } }),
      "Missing API key found in request")
    assert.are.equal(1, upstream_requests(mock) - before, "only the second /__stats request")
    -- the counter does see a request let through
    before = upstream_requests(mock)
    echo(request(gw, "/ka/x", { headers = { { "apikey", "alice-key" } } }))
    assert.are.equal(2, upstream_requests(mock) - before)
  end)

  it("the key in the `apikey` header (any case) or `apikey` query argument identifies the consumer", function()
    local doc = echo(request(gw, "/ka/x", { headers = { { "apikey", "alice-key" } } }))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    doc = echo(request(gw, "/ka/x", { headers = { { "APIKEY", "bob-key" } } }))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    doc = echo(request(gw, "/ka/x?a=1&apikey=bob-key"))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    -- percent-decoded like any query argument
    doc = echo(request(gw, "/ka/x?apikey=alice%2Dkey"))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    -- the first of repeated arguments
    doc = echo(request(gw, "/ka/x?apikey=bob-key&apikey=alice-key"))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
  end)

  it("custom `header` and `query` names; the default names no longer count", function()
    local doc = echo(request(gw, "/custom/x", { headers = { { "x-api-key", "alice-key" } } }))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    doc = echo(request(gw, "/custom/x?token=bob-key"))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    assert_401(request(gw, "/custom/x", { headers = { { "apikey", "alice-key" } } }),
      "Missing API key found in request")
    assert_401(request(gw, "/custom/x?apikey=alice-key"), "Missing API key found in request")
  end)

  it("the header wins over the query argument, also when the header's key is wrong", function()
    local doc = echo(request(gw, "/ka/x?apikey=bob-key", { headers = { { "apikey", "alice-key" } } }))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    doc = echo(request(gw, "/custom/x?token=alice-key", { headers = { { "X-API-KEY", "bob-key" } } }))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    assert_401(request(gw, "/ka/x?apikey=bob-key", { headers = { { "apikey", "wrong" } } }),
      "Invalid API key in request")
  end)

  it("X-Consumer-Username: the consumer's name replaces whatever the client sent", function()
    local doc = echo(request(gw, "/ka/x", { headers = {
      { "X-Consumer-Username", "admin" }, { "apikey", "alice-key" }, { "x-consumer-username", "root" } } }))
    assert.are.same({ "alice" }, upstream_values(doc, "X-Consumer-Username"))
    -- without key-auth the header is the client's business
    doc = echo(request(gw, "/open/x", { headers = { { "X-Consumer-Username", "admin" } } }))
    assert.are.same({ "admin" }, upstream_values(doc, "X-Consumer-Username"))
  end)

  it("hide_credentials: false (the default) sends the key upstream as it came", function()
    local doc = echo(request(gw, "/ka/x", { headers = { { "apikey", "alice-key" }, { "X-Other", "o" } } }))
    assert.are.same({ "alice-key" }, upstream_values(doc, "apikey"))
    assert.are.equal("/ka/x", doc.target)
    doc = echo(request(gw, "/ka/x?b=2&apikey=bob-key&a=x+y"))
    assert.are.equal("/ka/x?b=2&apikey=bob-key&a=x+y", doc.target)
    doc = echo(request(gw, "/custom/x?token=bob-key", { headers = { { "apikey", "other" } } }))
    assert.are.equal("/custom/x?token=bob-key", doc.target)
    assert.are.same({ "other" }, upstream_values(doc, "apikey"))
  end)

  it("hide_credentials: true removes the key's header, and nothing else", function()
    local doc = echo(request(gw, "/hide/x?apikey=bob-key", { headers = {
      { "X-Before", "b" }, { "apikey", "alice-key" }, { "X-After", "a" } } }))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    assert.are.same({}, upstream_values(doc, "apikey"))
    assert.are.equal("b", upstream_value(doc, "X-Before"))
    assert.are.equal("a", upstream_value(doc, "X-After"))
    -- the key came from the header: the query argument is not touched
    assert.are.equal("/hide/x?apikey=bob-key", doc.target)
    -- custom names: X-API-KEY goes, an `apikey` header stays
    doc = echo(request(gw, "/hide-custom/x", { headers = { { "x-api-key", "bob-key" }, { "apikey", "kept" } } }))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    assert.are.same({}, upstream_values(doc, "X-API-KEY"))
    assert.are.same({ "kept" }, upstream_values(doc, "apikey"))
  end)

  it("hide_credentials: true removes just the key's query argument", function()
    local doc = echo(request(gw, "/hide/x?a=1&apikey=bob-key&b=2"))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    assert.are.equal("/hide/x?a=1&b=2", doc.target)
    -- the only argument: no '?' left
    doc = echo(request(gw, "/hide/deep/path?apikey=alice-key"))
    assert.are.equal("/hide/deep/path", doc.target)
    -- custom query name: `token` goes, `apikey` stays
    doc = echo(request(gw, "/hide-custom/x?apikey=other&token=alice-key&z=9"))
    assert.are.equal("alice", upstream_value(doc, "X-Consumer-Username"))
    assert.are.same({ "apikey=other", "z=9" }, query_list(doc.target))
    assert.is_nil(doc.target:find("token", 1, true), doc.target)
  end)

  -- plugins/key-auth.lua rebuilds the query from get_query_args(), which
  -- keeps only the first value of a repeated argument.
  it("hide_credentials: true keeps repeated and valueless arguments of the query", function()
    local doc = echo(request(gw, "/hide/x?tag=a&apikey=bob-key&tag=b&flag&q=x%2By"))
    assert.are.equal("bob.b_2-x", upstream_value(doc, "X-Consumer-Username"))
    assert.are.same({ "flag", "q=x+y", "tag=a", "tag=b" }, query_list(doc.target))
  end)

  it("two consumers on one keep-alive connection: each request gets its own consumer", function()
    local conn = assert(http.connect(gw.port))
    local cases = {
      { { { "apikey", "alice-key" } }, "alice" }, { { { "apikey", "bob-key" } }, "bob.b_2-x" },
      { {}, false }, { { { "apikey", "alice-key" } }, "alice" }, { { { "apikey", "nope" } }, false },
      { { { "apikey", "bob-key" } }, "bob.b_2-x" },
    }
    for i, case in ipairs(cases) do
      assert(conn:request({ path = "/ka/" .. i, headers = case[1] }))
      local resp = read(conn)
      if case[2] then
        assert.are.equal(case[2], upstream_value(echo(resp), "X-Consumer-Username"), "request " .. i)
      else
        assert.are.equal(401, resp.status, "request " .. i)
      end
    end
    assert.is_false(conn:closed(0.1))
    conn:close()
  end)
end)

---------------------------------------------------------------------------
-- proxy-rewrite

describe("proxy-rewrite", function()
  local gw, mock

  lazy_setup(function()
    gw, mock = start({
      { id = "uri", uri = "/old/*", plugins = { ["proxy-rewrite"] = { uri = "/new/path" } } },
      { id = "users", uri = "/users/:id", plugins = { ["proxy-rewrite"] = { uri = "/u/$id/profile/$nope" } } },
      { id = "regex", uri = "/external-service/*", plugins = {
        ["proxy-rewrite"] = { regex_uri = { "^/external-service/(.+)", "/$1" } } } },
      { id = "nomatch", uri = "/keep/*", plugins = {
        ["proxy-rewrite"] = { regex_uri = { "^/elsewhere/(.*)", "/moved/$1" } } } },
      { id = "both", uri = "/both/*", plugins = {
        ["proxy-rewrite"] = { uri = "/fixed", regex_uri = { "^/both/(.*)", "/re/$1" } } } },
      { id = "host", uri = "/host", plugins = { ["proxy-rewrite"] = { host = "backend.internal" } } },
      { id = "method", uri = "/method", plugins = { ["proxy-rewrite"] = { method = "POST" } } },
      { id = "put", uri = "/put", plugins = { ["proxy-rewrite"] = { method = "PUT" } } },
      { id = "headers", uri = "/headers", plugins = { ["proxy-rewrite"] = { headers = {
        set = { ["X-Api-Version"] = "2", ["X-New"] = "n" },
        add = { ["X-Tag"] = "rewrite" },
        remove = { "X-Debug", "X-Absent" },
      } } } },
      { id = "combo", uri = "/combo/*", plugins = {
        ["key-auth"] = { hide_credentials = true },
        ["proxy-rewrite"] = { regex_uri = { "^/combo/(.*)", "/inner/$1" }, method = "PATCH",
          headers = { set = { ["X-Consumer-Username"] = "from-rewrite", ["X-Stage"] = "rewritten" } } },
        upapi = { ops = { { "get_uri" } } },
      } },
    }, { consumers = CONSUMERS })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean({ "plugin proxy%-rewrite failed in rewrite: " }) end)

  it("uri replaces the path and keeps the query", function()
    local doc = echo(request(gw, "/old/thing?q=1&r=a%20b"))
    assert.are.equal("/new/path?q=1&r=a%20b", doc.target)
    doc = echo(request(gw, "/old/x"))
    assert.are.equal("/new/path", doc.target)
    assert.are.equal("GET", doc.method)
  end)

  it("uri with $id from a /users/:id route (an unknown $name stays as written)", function()
    local doc = echo(request(gw, "/users/42?x=y"))
    assert.are.equal("/u/42/profile/$nope?x=y", doc.target)
    doc = echo(request(gw, "/users/alice.b-c"))
    assert.are.equal("/u/alice.b-c/profile/$nope", doc.target)
  end)

  -- torii.request.get_uri_param percent-decodes, and proxy-rewrite's
  -- expand() puts the decoded value into the path unescaped: a space makes
  -- set_path fail (500), '?' starts a query the client chose, '#' goes out raw.
  it("uri with $id: an escaped parameter stays escaped in the upstream path", function()
    for _, case in ipairs({
      { "/users/a%20b", "/u/a%20b/profile/$nope" },
      { "/users/a%3Fadmin=1", "/u/a%3Fadmin=1/profile/$nope" },
      { "/users/a%23b", "/u/a%23b/profile/$nope" },
    }) do
      local resp = request(gw, case[1])
      assert.are.equal(200, resp.status, case[1] .. ": " .. resp.raw_head .. (resp.body or ""))
      local doc = echo(resp)
      assert.are.same({}, query_list(doc.target), case[1] .. " gave a query: " .. doc.target)
      assert.are.equal(case[2], doc.target, case[1])
    end
  end)

  it("regex_uri rewrites the path with $1 and keeps the query", function()
    local doc = echo(request(gw, "/external-service/api/v1/items?limit=5"))
    assert.are.equal("/api/v1/items?limit=5", doc.target)
    doc = echo(request(gw, "/external-service/x"))
    assert.are.equal("/x", doc.target)
  end)

  it("a regex_uri that does not match leaves the path as it came", function()
    local doc = echo(request(gw, "/keep/this/path?q=1"))
    assert.are.equal("/keep/this/path?q=1", doc.target)
    -- `.+` needs a character after the prefix
    doc = echo(request(gw, "/external-service/"))
    assert.are.equal("/external-service/", doc.target)
  end)

  it("uri wins over regex_uri", function()
    assert.are.equal("/fixed?a=1", echo(request(gw, "/both/x?a=1")).target)
  end)

  it("host sets the Host sent upstream; the rest of the request is untouched", function()
    local doc = echo(request(gw, "/host?x=1", { headers = { { "X-Keep", "k" } } }))
    assert.are.same({ "backend.internal" }, upstream_values(doc, "Host"))
    assert.are.equal("/host?x=1", doc.target)
    assert.are.equal("GET", doc.method)
    assert.are.equal("k", upstream_value(doc, "X-Keep"))
  end)

  -- core/http/forward.c passes the rewritten host to put_forwarding, which
  -- uses it for X-Forwarded-Host.
  it("host: X-Forwarded-Host keeps the client's Host", function()
    local doc = echo(request(gw, "/host", { headers = { { "Host", "client.example:8080" } } }))
    assert.are.same({ "backend.internal" }, upstream_values(doc, "Host"))
    assert.are.same({ "client.example:8080" }, upstream_values(doc, "X-Forwarded-Host"))
  end)

  it("method changes the method sent upstream (the body goes along)", function()
    local doc = echo(request(gw, "/method"))
    assert.are.equal("POST", doc.method)
    assert.are.equal("/method", doc.target)
    doc = echo(request(gw, "/put", { method = "POST", body = "payload" }))
    assert.are.equal("PUT", doc.method)
    assert.are.equal("payload", doc.body)
    assert.are.equal("7", upstream_value(doc, "Content-Length"))
  end)

  it("headers: set replaces, add appends, remove drops", function()
    local doc = echo(request(gw, "/headers", { headers = {
      { "X-Api-Version", "1" }, { "x-api-version", "1b" }, { "X-Tag", "client" }, { "X-Debug", "on" },
      { "x-debug", "again" }, { "X-Keep", "k" } } }))
    assert.are.same({ "2" }, upstream_values(doc, "X-Api-Version"))
    assert.are.same({ "n" }, upstream_values(doc, "X-New"))
    assert.are.same({ "client", "rewrite" }, upstream_values(doc, "X-Tag"))
    assert.are.same({}, upstream_values(doc, "X-Debug"))
    assert.are.same({}, upstream_values(doc, "X-Absent"))
    assert.are.same({ "k" }, upstream_values(doc, "X-Keep"))
    -- without the client's headers
    doc = echo(request(gw, "/headers"))
    assert.are.same({ "2" }, upstream_values(doc, "X-Api-Version"))
    assert.are.same({ "rewrite" }, upstream_values(doc, "X-Tag"))
  end)

  it("with key-auth: proxy-rewrite (rewrite phase) and key-auth (access phase) both apply", function()
    local doc = echo(request(gw, "/combo/items/7?apikey=alice-key&page=2", { headers = {
      { "X-Consumer-Username", "client" } } }))
    -- rewritten path, the key's argument removed by key-auth afterwards
    assert.are.equal("/inner/items/7?page=2", doc.target)
    assert.are.equal("PATCH", doc.method)
    assert.are.equal("rewritten", upstream_value(doc, "X-Stage"))
    -- key-auth's X-Consumer-Username (access) comes after proxy-rewrite's (rewrite)
    assert.are.same({ "alice" }, upstream_values(doc, "X-Consumer-Username"))
    -- upapi (500, access) ran after key-auth (2500): get_uri was already the final one
    assert.are.equal("/inner/items/7?page=2", upstream_value(doc, "X-Get-Uri"))
    -- the key in the header
    doc = echo(request(gw, "/combo/a", { headers = { { "apikey", "bob-key" } } }))
    assert.are.equal("/inner/a", doc.target)
    assert.are.same({ "bob.b_2-x" }, upstream_values(doc, "X-Consumer-Username"))
    assert.are.same({}, upstream_values(doc, "apikey"))
    -- without a key: 401, and the upstream sees nothing
    local before = upstream_requests(mock)
    assert_401(request(gw, "/combo/a"), "Missing API key found in request")
    assert_401(request(gw, "/combo/a?apikey=nope"), "Invalid API key in request")
    assert.are.equal(1, upstream_requests(mock) - before)
  end)

  it("the access log shows the client's request line, not the rewritten one", function()
    local resp = request(gw, "/old/logged?q=1")
    assert.are.equal("/new/path?q=1", echo(resp).target)
    resp = request(gw, "/external-service/logged-too")
    assert.are.equal("/logged-too", echo(resp).target)
    local want = { '"GET /old/logged?q=1 HTTP/1.1" 200 ', '"GET /external-service/logged-too HTTP/1.1" 200 ' }
    local lines = testutil.eventually(function()
      local l = gw:access_log()
      local text = table.concat(l, "\n")
      for _, w in ipairs(want) do
        if not text:find(w, 1, true) then return nil end
      end
      return l
    end, 3)
    assert.is_truthy(lines, "no access log lines with " .. table.concat(want, " and ") .. " in:\n"
      .. table.concat(gw:access_log(), "\n"))
    for _, l in ipairs(lines) do
      assert.is_nil(l:find("/new/path", 1, true), l)
      assert.is_nil(l:find('"GET /logged-too', 1, true), l)
      assert.is_nil(l:find('"POST /method', 1, true), l)
    end
  end)
end)

---------------------------------------------------------------------------
-- The upstream API

describe("the upstream request API (fixture plugin upapi)", function()
  local gw, mock

  lazy_setup(function()
    gw, mock = start({
      { id = "api", uri = "/api/*", plugins = { upapi = {} } },
      { id = "rw", uri = "/rw/*", plugins = { upapi = { phase = "rewrite", ops = {
        { "set_query_json", { z = "last", a = "first", ["sp ace"] = "a+b&c=d", u = "\xC3\xBC~-._" } },
        { "set_path", "/from-rewrite" }, { "get_uri" } } } } },
    })
  end)
  lazy_teardown(gateway.cleanup_all)
  after_each(function() gw:assert_clean({ "plugin upapi failed in access: " }) end)

  local function ops(path, list, opts)
    local headers = {}
    for _, o in ipairs(list) do headers[#headers + 1] = { "X-Op", o } end
    local req = { headers = headers }
    for k, v in pairs(opts or {}) do req[k] = v end
    return request(gw, path, req)
  end

  it("set_uri replaces path and query; get_uri returns it", function()
    local doc = echo(ops("/api/x?old=1", { "set_uri /new/place?x=1&y=%2F", "get_uri" }))
    assert.are.equal("/new/place?x=1&y=%2F", doc.target)
    assert.are.equal("/api/x?old=1", upstream_value(doc, "X-Uri-Before"))
    assert.are.equal("/new/place?x=1&y=%2F", upstream_value(doc, "X-Get-Uri"))
    -- without a query: the client's query is gone too
    doc = echo(ops("/api/x?old=1", { "set_uri /bare" }))
    assert.are.equal("/bare", doc.target)
  end)

  it("set_path keeps the query (the client's, or one set before)", function()
    local doc = echo(ops("/api/x?q=1&r=a%20b", { "get_uri", "set_path /p2", "get_uri" }))
    assert.are.equal("/p2?q=1&r=a%20b", doc.target)
    assert.are.same({ "/api/x?q=1&r=a%20b", "/p2?q=1&r=a%20b" }, upstream_values(doc, "X-Get-Uri"))
    doc = echo(ops("/api/x?q=1", { "set_uri /a?b=2", "set_path /c/d" }))
    assert.are.equal("/c/d?b=2", doc.target)
    doc = echo(ops("/api/x", { "set_path /no-query" }))
    assert.are.equal("/no-query", doc.target)
  end)

  it("set_query with a string replaces the query and keeps the path; an empty one drops the '?'", function()
    local doc = echo(ops("/api/x?q=1", { "set_query a=1&b", "get_uri" }))
    assert.are.equal("/api/x?a=1&b", doc.target)
    assert.are.equal("/api/x?a=1&b", upstream_value(doc, "X-Get-Uri"))
    doc = echo(ops("/api/x?q=1", { "set_path /y", "set_query" }))
    assert.are.equal("/y", doc.target)
  end)

  it("set_query with a table: sorted by name, names and values percent-encoded", function()
    local doc = echo(ops("/api/x?q=1", { 'set_query_json {"b":"2","a":"x y/z","k&":"v=1","e":""}' }))
    assert.are.equal("/api/x?a=x%20y%2Fz&b=2&e=&k%26=v%3D1", doc.target)
    doc = echo(ops("/api/x?q=1", { "set_query_json {}" }))
    assert.are.equal("/api/x", doc.target)
    -- in the rewrite phase, from the plugin's configuration (unreserved bytes kept)
    doc = echo(request(gw, "/rw/x?q=1"))
    local want = "/from-rewrite?a=first&sp%20ace=a%2Bb%26c%3Dd&u=%C3%BC~-._&z=last"
    assert.are.equal(want, doc.target)
    assert.are.equal(want, upstream_value(doc, "X-Get-Uri"))
  end)

  it("get_uri returns what will be sent: origin form of an absolute-form target, unchanged by method and host",
    function()
      local doc = echo(ops("http://127.0.0.1/api/abs?y=1", { "get_uri" }))
      assert.are.equal("/api/abs?y=1", upstream_value(doc, "X-Get-Uri"))
      assert.are.equal("/api/abs?y=1", doc.target)
      doc = echo(ops("/api/m?y=1", { "set_method PUT", "set_host h.example:8080", "get_uri" }))
      assert.are.equal("/api/m?y=1", upstream_value(doc, "X-Get-Uri"))
      assert.are.equal("/api/m?y=1", doc.target)
      assert.are.equal("PUT", doc.method)
      assert.are.same({ "h.example:8080" }, upstream_values(doc, "Host"))
    end)

  it("set_method with an invalid value: 500, an [error] entry, nothing sent upstream", function()
    for _, case in ipairs({
      { "set_method get", "torii.upstream.set_method: a method is upper-case letters" },
      { "set_method GET /x", "torii.upstream.set_method: a method is upper-case letters" },
      { "set_method", "torii.upstream.set_method: empty method" },
    }) do
      local before = upstream_requests(mock)
      local from = gw:log_mark()
      local doc = assert_plugin_failed(ops("/api/x", { case[1] }))
      assert_failure_logged(gw, from, { plugin = "upapi", phase = "access", route = "api",
        request_id = doc.request_id, reason = case[2] })
      assert.are.equal(1, upstream_requests(mock) - before, case[1])
    end
  end)

  it("set_host with '/' (or '@', or a space): 500 and an [error] entry", function()
    for _, value in ipairs({ "a/b", "user@host", "a b" }) do
      local before = upstream_requests(mock)
      local from = gw:log_mark()
      local doc = assert_plugin_failed(ops("/api/x", { "set_host " .. value }))
      assert_failure_logged(gw, from, { plugin = "upapi", phase = "access", route = "api",
        request_id = doc.request_id, reason = "torii.upstream.set_host: invalid Host value" })
      assert.are.equal(1, upstream_requests(mock) - before, value)
    end
  end)

  it("set_uri or set_path without a leading '/', or with a space: 500 and an [error] entry", function()
    for _, op in ipairs({ "set_uri nope", "set_uri /a b", "set_path relative" }) do
      local from = gw:log_mark()
      local doc = assert_plugin_failed(ops("/api/x", { op }))
      assert_failure_logged(gw, from, { plugin = "upapi", phase = "access", route = "api",
        request_id = doc.request_id, reason = "the upstream target must start with '/'" })
    end
    -- the worker goes on
    assert.are.equal("/api/fine", echo(request(gw, "/api/fine")).target)
  end)
end)

---------------------------------------------------------------------------
-- Configuration errors

describe("key-auth and proxy-rewrite: configuration errors (torii -t: `FILE:LINE: path: reason`)", function()
  local tmpdirs = {}
  lazy_teardown(function()
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
  end)

  local function check(text)
    local code, out, err, conf, dir = gateway.check_config(text)
    tmpdirs[#tmpdirs + 1] = dir
    return code, out, err, conf
  end

  -- torii -t fails with exit 1 and the line
  --   torii: <conf>:<line>: <path>: <reason>
  -- (want.reason: the whole reason, or want.reason_has: parts of it).
  local function expect_error(text, want)
    local code, out, err, conf = check(text)
    assert.are.equal(1, code, "exit code; stdout: " .. out .. "\nstderr: " .. err)
    local head = "torii: " .. conf .. ":"
    local line
    for l in err:gmatch("[^\n]+") do
      if l:sub(1, #head) == head then line = l break end
    end
    assert.is_truthy(line, "expected a line starting with\n  " .. head .. "\nin stderr:\n" .. err)
    local rest = line:sub(#head + 1)
    assert.are.equal(want.line .. ": " .. want.path .. ": ", rest:sub(1, #(want.line .. ": " .. want.path .. ": ")),
      "line and path in: " .. line)
    local reason = rest:sub(#(want.line .. ": " .. want.path .. ": ") + 1)
    if want.reason then assert.are.equal(want.reason, reason, line) end
    for _, r in ipairs(want.reason_has or {}) do
      assert.is_truthy(reason:find(r, 1, true), "reason should mention " .. r .. ": " .. line)
    end
    assert.is_truthy(err:find("torii: configuration file " .. conf .. " test failed", 1, true), err)
    assert.are.equal("", out)
  end

  local H = "listen: 127.0.0.1:1\nworkers: 1\n" -- lines 1..2
  -- consumers from line 3: `consumers:` then the entries' text
  local function consumers(text) return H .. "consumers:\n" .. text end
  -- a route whose `plugins:` map starts on line 8
  local function route(plugins_yaml)
    return H .. "routes:\n  - id: a\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n    plugins:\n"
      .. plugins_yaml
  end

  it("a valid configuration with consumers, key-auth and proxy-rewrite passes", function()
    local code, out, err, conf = check(consumers([[
  - username: alice
    desc: the first
    plugins:
      key-auth: {key: alice-key}
  - username: bob.b_2-x
    plugins: {key-auth: {key: bob-key}}
  - username: carol
routes:
  - id: a
    uri: /a/*
    upstream: {nodes: ["127.0.0.1:1"]}
    plugins:
      key-auth: {header: X-Key, query: k, hide_credentials: true}
      proxy-rewrite:
        regex_uri: ["^/a/(.*)", "/$1"]
        host: backend.internal
        method: POST
        headers: {set: {X-A: "1"}, add: {X-B: "2"}, remove: [X-C]}
]]))
    assert.are.equal(0, code, err)
    assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)
    assert.are.equal("", err)
  end)

  it("consumer key-auth without a key, with a key that is not a string or empty, with an unknown property",
    function()
      expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {}\n"),
        { line = 6, path = "consumers[0].plugins.key-auth", reason = 'missing required property "key"' })
      expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {key: 123}\n"),
        { line = 6, path = "consumers[0].plugins.key-auth.key", reason = "must be a string, got number" })
      expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {key: [a]}\n"),
        { line = 6, path = "consumers[0].plugins.key-auth.key", reason_has = { "must be a string" } })
      expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {key: \"\"}\n"),
        { line = 6, path = "consumers[0].plugins.key-auth.key", reason_has = { "at least 1" } })
      expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {key: k, header: h}\n"),
        { line = 6, path = "consumers[0].plugins.key-auth", reason = 'unknown property "header"' })
    end)

  it("two consumers sharing a key", function()
    expect_error(consumers("  - username: alice\n    plugins:\n      key-auth: {key: same}\n"
      .. "  - username: bob\n    plugins:\n      key-auth: {key: same}\n"),
      { line = 9, path = "consumers[1].plugins.key-auth.key", reason = "the same key as consumers[0]" })
    expect_error(consumers("  - username: a\n    plugins: {key-auth: {key: k1}}\n"
      .. "  - username: b\n    plugins: {key-auth: {key: k2}}\n"
      .. "  - username: c\n    plugins:\n      key-auth: {key: k2}\n"),
      { line = 10, path = "consumers[2].plugins.key-auth.key", reason = "the same key as consumers[1]" })
  end)

  it("a consumer with an unknown key, a duplicate, invalid, empty or missing username", function()
    expect_error(consumers("  - username: alice\n    colour: red\n"),
      { line = 5, path = "consumers[0]", reason = 'unknown key "colour" (a consumer has username, plugins, desc)' })
    expect_error(consumers("  - username: alice\n  - username: bob\n  - username: alice\n"),
      { line = 6, path = "consumers[2]", reason = 'duplicate username "alice" (first at line 4)' })
    expect_error(consumers("  - username: al/ice\n"),
      { line = 4, path = "consumers[0]", reason = [[invalid username "al/ice" (letters, digits, '_', '-', '.')]] })
    expect_error(consumers("  - username: \"a b\"\n"),
      { line = 4, path = "consumers[0]", reason_has = { 'invalid username "a b"' } })
    expect_error(consumers("  - username: \"\"\n"),
      { line = 4, path = "consumers[0]", reason = "username must not be empty" })
    expect_error(consumers("  - desc: nobody\n    plugins: {key-auth: {key: k}}\n"),
      { line = 4, path = "consumers[0]", reason = 'missing required key "username"' })
  end)

  it("a consumer's plugin that is unknown, or whose configuration its schema rejects", function()
    expect_error(consumers("  - username: alice\n    plugins:\n      nope: {key: k}\n"),
      { line = 6, path = "consumers[0].plugins.nope", reason_has = { 'unknown plugin "nope"' } })
    -- a plugin without consumer_schema is an instance for the consumer's requests
    expect_error(consumers("  - username: alice\n    plugins:\n      proxy-rewrite: {uri: 5}\n"),
      { line = 6, path = "consumers[0].plugins.proxy-rewrite.uri", reason = "must be a string, got number" })
    expect_error(consumers("  - username: alice\n    plugins:\n      limit-count: {count: 0, time_window: 1}\n"),
      { line = 6, path = "consumers[0].plugins.limit-count.count", reason = "must be >= 1, got 0" })
  end)

  it("route key-auth: an unknown property, wrong types", function()
    expect_error(route("      key-auth: {key: k}\n"),
      { line = 8, path = "routes[0].plugins.key-auth", reason = 'unknown property "key"' })
    expect_error(route("      key-auth: {hide_credentials: \"yes\"}\n"),
      { line = 8, path = "routes[0].plugins.key-auth.hide_credentials", reason = "must be a boolean, got string" })
    expect_error(route("      key-auth: {header: \"\"}\n"),
      { line = 8, path = "routes[0].plugins.key-auth.header", reason_has = { "at least 1" } })
  end)

  it("proxy-rewrite: regex_uri with a bad regex or one item", function()
    expect_error(route("      proxy-rewrite: {regex_uri: [\"^/(a\", \"/$1\"]}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite", reason_has = { "regex_uri: ", "parenthesis" } })
    expect_error(route("      proxy-rewrite: {regex_uri: [\"^/a\"]}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite.regex_uri", reason_has = { "at least 2 items" } })
  end)

  it("proxy-rewrite: uri not starting with '/', an unknown property, a method not in the enum", function()
    expect_error(route("      proxy-rewrite: {uri: new/path}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite.uri", reason = 'must match pattern "^/"' })
    expect_error(route("      proxy-rewrite: {uri: /x, scheme: https}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite", reason = 'unknown property "scheme"' })
    expect_error(route("      proxy-rewrite: {method: FETCH}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite.method", reason_has = { "must be one of", '"FETCH"' } })
    expect_error(route("      proxy-rewrite: {method: get}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite.method", reason_has = { "must be one of", '"get"' } })
    expect_error(route("      proxy-rewrite: {headers: {X-Old-Style: v}}\n"),
      { line = 8, path = "routes[0].plugins.proxy-rewrite.headers", reason = 'unknown property "X-Old-Style"' })
  end)

  it("the line is the offending plugin's within its map", function()
    expect_error(route("      key-auth: {}\n      proxy-rewrite: {uri: x}\n"),
      { line = 9, path = "routes[0].plugins.proxy-rewrite.uri", reason = 'must match pattern "^/"' })
  end)
end)
