-- Integration specs: the router.
--
-- Path patterns (exact, `:param`, trailing `*`, `*name`) and their
-- precedence (kind, literal before parameter, longest prefix, priority,
-- declaration order); the filters (hosts, methods, remote_addrs, vars) and
-- falling through to the next candidate when one fails; 404 JSON; path
-- normalisation before matching (the upstream still gets the target as
-- sent); and the configuration errors for every new key.
--
-- Each route has its own mock upstream started with the route's id, so the
-- echo document's "id" (and X-Upstream-Id) names the route that answered.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local socket = require "socket"
local testutil = require "testutil"

---------------------------------------------------------------------------
-- Gateways and requests

local mocks = {}

-- A route table whose upstream is a mock started with --id <id> (not
-- waited for: start() does that, for all mocks at once).
local function R(id, fields)
  local r = { id = id }
  for k, v in pairs(fields or {}) do r[k] = v end
  mocks[id] = mocks[id] or gateway.mock({ id = id, wait = false })
  r.upstream = { nodes = { "127.0.0.1:" .. mocks[id].port } }
  return r
end

-- Waits until every mock accepts, then starts torii with config.
local function start(config)
  local deadline = proc.now() + 10
  for id, m in pairs(mocks) do
    while not gateway.port_open(m.port, 0.1) do
      assert(proc.alive(m.pid), "mock " .. id .. " exited: " .. m.stderr())
      assert(proc.now() < deadline, "mock " .. id .. " not accepting on " .. m.port)
      proc.sleep(0.01)
    end
  end
  return gateway.start({ config = config })
end

-- Stops everything, the mocks in parallel (TERM to all, then reaped).
local function stop_all()
  for _, m in pairs(mocks) do
    if proc.alive(m.pid) then proc.kill(m.pid, "TERM") end
  end
  gateway.cleanup_all()
  mocks = {}
end

-- Sends raw bytes on a fresh connection (to 127.0.0.1, or ::1 when via is
-- "::1") and returns the (complete) response.
local function raw(port, bytes, via)
  local conn = assert(http.connect(port, { host = via }))
  assert(conn:send(bytes))
  local resp, err = conn:read_response({ timeout = 3, head = bytes:sub(1, 5) == "HEAD " })
  conn:close()
  assert.is_table(resp, "no response to " .. bytes:match("^[^\r]*") .. ": " .. tostring(err))
  assert.is_nil(resp.incomplete, "response cut short: " .. tostring(err))
  return resp
end

-- One request. opts: method, host (Host header, default 127.0.0.1),
-- headers, body, via ("::1" to connect over IPv6).
local function request(port, path, opts)
  opts = opts or {}
  local body = opts.body
  if body == nil and (opts.method == "POST" or opts.method == "PUT" or opts.method == "PATCH") then body = "" end
  return raw(port, http.build_request({
    method = opts.method, path = path, host = opts.host, headers = opts.headers, body = body,
  }), opts.via)
end

-- The id of the route (mock) that answered, or the status when torii
-- answered itself. For an echo, the document's id must agree with
-- X-Upstream-Id.
local function answered_by(resp)
  local id = resp:header("X-Upstream-Id")
  if not id then return resp.status end
  if resp.status == 200 and resp.body ~= "" then
    local ok, doc = pcall(cjson.decode, resp.body)
    assert.is_true(ok, "not an echo document: " .. tostring(resp.body))
    assert.are.equal(id, doc.id, "echo id vs X-Upstream-Id")
    return id, doc
  end
  return id
end

-- Asserts that `path` (with opts as request()) is served by the route
-- `want` (an id, or a status such as 404). Returns the response and the
-- echo document.
local function expect(port, want, path, opts)
  local resp = request(port, path, opts)
  local got, doc = answered_by(resp)
  local what = ((opts and opts.method) or "GET") .. " " .. path
  if opts and opts.host then what = what .. " (Host: " .. opts.host .. ")" end
  if opts and opts.headers then what = what .. " " .. cjson.encode(opts.headers) end
  if opts and opts.via then what = what .. " via " .. opts.via end
  assert.are.equal(want, got, what)
  return resp, doc
end

-- torii's own JSON error response.
local REASON = { [400] = "Bad Request", [404] = "Not Found" }
local function assert_json_error(resp, status)
  assert.are.equal(status, resp.status)
  assert.is_nil(resp:header("X-Upstream-Id"), "an upstream answered")
  assert.are.equal("application/json", resp:header("Content-Type"))
  assert.are.equal(#resp.body, tonumber(resp:header("Content-Length")))
  local ok, doc = pcall(cjson.decode, resp.body)
  assert.is_true(ok, "not JSON: " .. tostring(resp.body))
  assert.are.equal(REASON[status], doc.error)
  assert.is_string(doc.message)
  assert.is_true(#doc.message > 0)
  assert.is_truthy(tostring(doc.request_id):match("^" .. ("%x"):rep(16) .. "$"), tostring(doc.request_id))
  return doc
end

---------------------------------------------------------------------------
-- Path patterns and precedence

describe("router: path patterns and precedence", function()
  local gw

  lazy_setup(function()
    gw = start({
      routes = {
        -- declared first and with the highest priority: kind still wins
        R("p-prefix", { uri = "/p/*", priority = 100 }),
        R("p-param", { uri = "/p/:id", priority = 50 }),
        R("p-exact", { uri = "/p/new" }),

        R("users", { uri = "/users/:id" }),
        R("files-param", { uri = "/files/:name" }),
        R("files-rest", { uri = "/files/*path" }),
        R("colon", { uri = "/a:b" }),

        -- a literal segment beats a parameter at the first difference,
        -- whatever comes after it and whatever the priority
        R("u-id-posts", { uri = "/u/:id/posts", priority = 50 }),
        R("u-me-tab", { uri = "/u/me/:tab" }),
        R("u-id-tab", { uri = "/u/:id/:tab", priority = 60 }),

        -- prefixes: the longest consumed prefix wins, not the priority
        R("star", { uri = "/star*", priority = 9 }),
        R("star-deep", { uri = "/star/deep/*" }),
        R("star-dir", { uri = "/star/*" }),
        R("pl-short", { uri = "/pl/b*" }),
        R("pl-param", { uri = "/pl/:x/*" }),

        -- a literal branch that fails deeper on gives way to a parameter
        R("bt-lit", { uri = "/bt/b/d" }),
        R("bt-param", { uri = "/bt/:x/c" }),

        R("prio-low", { uri = "/prio" }),
        R("prio-high", { uri = "/prio", priority = 7 }),
        R("neg-first", { uri = "/neg", priority = -1 }),
        R("neg-default", { uri = "/neg" }),
        R("pp-low", { uri = "/pp/:a/*", priority = 1 }),
        R("pp-high", { uri = "/pp/:b/*", priority = 2 }),

        R("order-a", { uri = "/order" }),
        R("order-b", { uri = "/order" }),
        R("order-pa", { uri = "/op/:x" }),
        R("order-pb", { uri = "/op/:y" }),
        R("order-sa", { uri = "/os/*" }),
        R("order-sb", { uri = "/os/*" }),

        R("multi", { uris = { "/m1", "/m2/:id", "/m3/*" } }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  it("exact beats parameter beats prefix, whatever the priority and order", function()
    expect(gw.port, "p-exact", "/p/new")
    expect(gw.port, "p-param", "/p/5")
    expect(gw.port, "p-param", "/p/new2")
    expect(gw.port, "p-prefix", "/p/5/6")
    expect(gw.port, "p-prefix", "/p/new/")
    expect(gw.port, "p-prefix", "/p/new/x")
    -- a parameter needs a non-empty segment
    expect(gw.port, "p-prefix", "/p/")
    -- "/p/*" does not match "/p"
    expect(gw.port, 404, "/p")
    expect(gw.port, 404, "/pp")
  end)

  it("a query string does not take part in matching, and the upstream gets the target as sent", function()
    local _, doc = expect(gw.port, "p-exact", "/p/new?x=/p/1/2")
    assert.are.equal("/p/new?x=/p/1/2", doc.target)
    _, doc = expect(gw.port, "p-param", "/p/7?q")
    assert.are.equal("/p/7?q", doc.target)
  end)

  it("a named parameter matches exactly one non-empty segment", function()
    local _, doc = expect(gw.port, "users", "/users/42")
    assert.are.equal("/users/42", doc.target)
    expect(gw.port, "users", "/users/a.b-c~d")
    expect(gw.port, "users", "/users/42?full=1")
    expect(gw.port, 404, "/users/")
    expect(gw.port, 404, "/users")
    expect(gw.port, 404, "/users/1/2")
    expect(gw.port, 404, "/users/1/")
  end)

  it("a named catch-all matches the rest of the path, a parameter route wins for one segment", function()
    expect(gw.port, "files-rest", "/files/")
    expect(gw.port, "files-rest", "/files/a/b/c")
    expect(gw.port, "files-rest", "/files/a/")
    expect(gw.port, "files-param", "/files/a")
    expect(gw.port, 404, "/files")
    expect(gw.port, 404, "/filesx")
  end)

  it("':' inside a segment is a literal character", function()
    expect(gw.port, "colon", "/a:b")
    expect(gw.port, 404, "/a:c")
    expect(gw.port, 404, "/ab")
    expect(gw.port, 404, "/a:")
  end)

  it("among parameter paths, a literal segment wins at the first segment where they differ", function()
    expect(gw.port, "u-me-tab", "/u/me/posts")
    expect(gw.port, "u-me-tab", "/u/me/likes")
    expect(gw.port, "u-id-posts", "/u/5/posts")
    expect(gw.port, "u-id-tab", "/u/5/likes")
    expect(gw.port, "u-id-tab", "/u/mee/likes")
    expect(gw.port, 404, "/u/me")
    expect(gw.port, 404, "/u/me/posts/x")
  end)

  it("among prefixes, the longest consumed prefix wins, before priority", function()
    expect(gw.port, "star", "/star")
    expect(gw.port, "star", "/stars")
    expect(gw.port, "star", "/star-x/y")
    expect(gw.port, "star-dir", "/star/")
    expect(gw.port, "star-dir", "/star/x")
    expect(gw.port, "star-dir", "/star/deep")
    expect(gw.port, "star-deep", "/star/deep/")
    expect(gw.port, "star-deep", "/star/deep/x/y")
    expect(gw.port, 404, "/sta")
    -- "/pl/:x/*" consumes "/pl/b/", more than "/pl/b"
    expect(gw.port, "pl-param", "/pl/b/z")
    expect(gw.port, "pl-short", "/pl/bz")
    expect(gw.port, "pl-short", "/pl/b")
  end)

  it("a literal segment that leads nowhere gives way to a parameter", function()
    expect(gw.port, "bt-param", "/bt/b/c")
    expect(gw.port, "bt-lit", "/bt/b/d")
    expect(gw.port, "bt-param", "/bt/x/c")
    expect(gw.port, 404, "/bt/b/e")
  end)

  it("between equal paths the higher priority wins, default 0, negative allowed", function()
    expect(gw.port, "prio-high", "/prio")
    expect(gw.port, "neg-default", "/neg")
    expect(gw.port, "pp-high", "/pp/1/x")
  end)

  it("between equal paths and priorities the route declared first wins", function()
    expect(gw.port, "order-a", "/order")
    expect(gw.port, "order-pa", "/op/1")
    expect(gw.port, "order-sa", "/os/1/2")
  end)

  it("uris: every pattern of the list leads to the route", function()
    expect(gw.port, "multi", "/m1")
    expect(gw.port, "multi", "/m2/x")
    expect(gw.port, "multi", "/m3/")
    expect(gw.port, "multi", "/m3/a/b")
    expect(gw.port, 404, "/m2")
    expect(gw.port, 404, "/m1/")
  end)

  it("no match: 404 with a JSON body, on a connection that stays usable", function()
    local conn = assert(http.connect(gw.port))
    assert(conn:request({ path = "/nothing/here" }))
    local resp = assert(conn:read_response({ timeout = 3 }))
    assert_json_error(resp, 404)
    assert(conn:request({ path = "/p/new" }))
    resp = assert(conn:read_response({ timeout = 3 }))
    conn:close()
    assert.are.equal("p-exact", answered_by(resp))
    assert_json_error(request(gw.port, "/"), 404)
    assert_json_error(request(gw.port, "/P/new"), 404) -- paths are case-sensitive
  end)
end)

---------------------------------------------------------------------------
-- Hosts

describe("router: hosts", function()
  local gw

  lazy_setup(function()
    gw = start({
      routes = {
        R("h-exact", { uri = "/h", hosts = { "api.example.com" } }),
        R("h-wild", { uri = "/h", host = "*.example.com" }),
        R("h-other", { uri = "/h", hosts = { "other.test", "Mixed.Case.Test" } }),
        R("h-fallback", { uri = "/h" }),
        R("h-only", { uri = "/only", host = "api.example.com" }),
        -- a host does not add precedence: only path, priority and order do
        R("hp-any", { uri = "/hp" }),
        R("hp-host", { uri = "/hp", hosts = { "api.example.com" } }),
        R("hq-any", { uri = "/hq" }),
        R("hq-host", { uri = "/hq", hosts = { "api.example.com" }, priority = 1 }),
        -- a failed host filter falls through to a route of another kind
        R("hw-param", { uri = "/hw/:x", host = "*.wild.test" }),
        R("hw-prefix", { uri = "/hw/*" }),
        -- routes with and without hosts compete by path precedence alone
        R("x-any-prefix", { uri = "/x/*" }),
        R("x-host-exact", { uri = "/x/y", hosts = { "api.example.com" } }),
        R("y-host-prefix", { uri = "/y/*", hosts = { "api.example.com" }, priority = 10 }),
        R("y-any-exact", { uri = "/y/z" }),
        R("l-host-short", { uri = "/l/*", hosts = { "api.example.com" } }),
        R("l-any-long", { uri = "/l/a/*" }),
        R("w-wild-exact", { uri = "/w/x", hosts = { "*.example.com" } }),
        R("w-host-prefix", { uri = "/w/*", hosts = { "api.example.com" } }),
        -- a.b.example.com is under both wildcards
        R("z-wild1", { uri = "/z", hosts = { "*.example.com" } }),
        R("z-wild2", { uri = "/z/*", hosts = { "*.b.example.com" } }),
        R("q-wild2", { uri = "/q", hosts = { "*.b.example.com" } }),
        R("q-wild1", { uri = "/q", hosts = { "*.example.com" } }),
        R("s-exact", { uri = "/s", hosts = { "a.b.example.com" }, methods = { "POST" } }),
        R("s-wild", { uri = "/s", hosts = { "*.example.com" } }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  it("an exact host, in any case, with any port", function()
    expect(gw.port, "h-exact", "/h", { host = "api.example.com" })
    expect(gw.port, "h-exact", "/h", { host = "API.Example.COM" })
    expect(gw.port, "h-exact", "/h", { host = "api.example.com:8080" })
    expect(gw.port, "h-exact", "/h", { host = "Api.Example.Com:1" })
    expect(gw.port, "h-other", "/h", { host = "other.test" })
    expect(gw.port, "h-other", "/h", { host = "OTHER.TEST:80" })
    -- a pattern written with capitals matches too
    expect(gw.port, "h-other", "/h", { host = "mixed.case.test" })
    expect(gw.port, "h-other", "/h", { host = "MIXED.case.TEST" })
  end)

  it("a wildcard host matches subdomains, not the bare domain", function()
    expect(gw.port, "h-wild", "/h", { host = "www.example.com" })
    expect(gw.port, "h-wild", "/h", { host = "WWW.EXAMPLE.COM:9" })
    expect(gw.port, "h-fallback", "/h", { host = "example.com" })
    expect(gw.port, "h-fallback", "/h", { host = ".example.com" })
    expect(gw.port, "h-fallback", "/h", { host = "xexample.com" })
    expect(gw.port, "h-fallback", "/h", { host = "example.com.evil" })
    expect(gw.port, "h-fallback", "/h", { host = "nope.test" })
    expect(gw.port, "h-fallback", "/h", { host = "api.example.comm" })
  end)

  it("without any matching host route the request is a 404", function()
    expect(gw.port, "h-only", "/only", { host = "api.example.com" })
    assert_json_error(request(gw.port, "/only", { host = "other.test" }), 404)
    assert_json_error(request(gw.port, "/only", { host = "www.example.com" }), 404)
    assert_json_error(request(gw.port, "/only", { host = "api.example.co" }), 404)
  end)

  it("no Host at all (HTTP/1.0): host routes are skipped", function()
    local resp = raw(gw.port, "GET /h HTTP/1.0\r\n\r\n")
    assert.are.equal("h-fallback", answered_by(resp))
    assert_json_error(raw(gw.port, "GET /only HTTP/1.0\r\n\r\n"), 404)
  end)

  it("an absolute-form target's authority is the host, not the Host header", function()
    local resp = raw(gw.port, "GET http://api.example.com/only HTTP/1.1\r\nHost: other.test\r\n\r\n")
    local id, doc = answered_by(resp)
    assert.are.equal("h-only", id)
    assert.are.equal("/only", doc.target)
    resp = raw(gw.port, "GET http://API.example.com:8080/only?x=1 HTTP/1.1\r\nHost: other.test\r\n\r\n")
    assert.are.equal("h-only", answered_by(resp))
    resp = raw(gw.port, "GET http://other.test/only HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    assert_json_error(resp, 404)
    resp = raw(gw.port, "GET http://www.example.com/h HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    assert.are.equal("h-wild", answered_by(resp))
  end)

  it("a host only filters: declaration order and priority decide between routes", function()
    expect(gw.port, "hp-any", "/hp", { host = "api.example.com" })
    expect(gw.port, "hq-host", "/hq", { host = "api.example.com" })
    expect(gw.port, "hq-any", "/hq", { host = "other.test" })
  end)

  it("routes for a host, for a wildcard and for any host compete by path, priority and order", function()
    local api = { host = "api.example.com" }
    expect(gw.port, "x-host-exact", "/x/y", api)
    expect(gw.port, "x-any-prefix", "/x/y", { host = "other.test" })
    expect(gw.port, "y-any-exact", "/y/z", api)
    expect(gw.port, "y-host-prefix", "/y/q", api)
    expect(gw.port, "l-any-long", "/l/a/b", api)
    expect(gw.port, "l-host-short", "/l/b", api)
    expect(gw.port, "w-wild-exact", "/w/x", api)
    expect(gw.port, "w-host-prefix", "/w/y", api)
    expect(gw.port, 404, "/w/y", { host = "www.example.com" })
  end)

  it("a wildcard matches at any depth; overlapping wildcards both apply", function()
    local abc = { host = "a.b.example.com" }
    expect(gw.port, "h-wild", "/h", abc)
    expect(gw.port, "z-wild1", "/z", abc)
    expect(gw.port, "z-wild2", "/z/1", abc)
    expect(gw.port, "q-wild2", "/q", abc)
    expect(gw.port, "q-wild1", "/q", { host = "a.c.example.com" })
    expect(gw.port, "q-wild1", "/q", { host = "b.example.com" })
    expect(gw.port, "s-exact", "/s", { method = "POST", host = "a.b.example.com" })
    expect(gw.port, "s-wild", "/s", abc)
  end)

  it("a parameter route failing its host falls through to a prefix route", function()
    expect(gw.port, "hw-param", "/hw/x", { host = "a.wild.test" })
    expect(gw.port, "hw-prefix", "/hw/x", { host = "wild.test" })
    expect(gw.port, "hw-prefix", "/hw/x/y", { host = "a.wild.test" })
  end)
end)

---------------------------------------------------------------------------
-- Methods

describe("router: methods", function()
  local gw

  lazy_setup(function()
    gw = start({
      routes = {
        R("m-read", { uri = "/m", methods = { "GET", "HEAD" } }),
        R("m-write", { uri = "/m", methods = { "POST", "PUT", "PATCH" } }),
        R("m-del", { uri = "/m", methods = { "DELETE" } }),
        R("m-misc", { uri = "/m", methods = { "OPTIONS", "TRACE" } }),
        R("mo-post", { uri = "/mo", methods = { "POST" } }),
        R("mx-exact", { uri = "/mx/1", methods = { "PUT" } }),
        R("mx-param", { uri = "/mx/:id", methods = { "DELETE" } }),
        R("mx-prefix", { uri = "/mx/*" }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  it("each method reaches the route that lists it", function()
    for method, want in pairs({
      GET = "m-read", HEAD = "m-read", POST = "m-write", PUT = "m-write", PATCH = "m-write",
      DELETE = "m-del", OPTIONS = "m-misc", TRACE = "m-misc",
    }) do
      local resp = expect(gw.port, want, "/m", { method = method })
      assert.are.equal(200, resp.status, method)
    end
    local _, doc = expect(gw.port, "m-write", "/m", { method = "PATCH", body = "x=1" })
    assert.are.equal("PATCH", doc.method)
    assert.are.equal("x=1", doc.body)
  end)

  it("a method no route lists is a 404 JSON, not a 405", function()
    expect(gw.port, "mo-post", "/mo", { method = "POST" })
    assert_json_error(request(gw.port, "/mo"), 404)
    assert_json_error(request(gw.port, "/mo", { method = "PUT" }), 404)
    local resp = request(gw.port, "/mo", { method = "HEAD" })
    assert.are.equal(404, resp.status)
    assert.is_nil(resp:header("X-Upstream-Id"))
  end)

  it("a route failing its methods passes the request on: exact, then parameter, then prefix", function()
    expect(gw.port, "mx-exact", "/mx/1", { method = "PUT" })
    expect(gw.port, "mx-param", "/mx/1", { method = "DELETE" })
    expect(gw.port, "mx-prefix", "/mx/1")
    expect(gw.port, "mx-prefix", "/mx/2", { method = "PUT" })
    expect(gw.port, "mx-param", "/mx/2", { method = "DELETE" })
  end)
end)

---------------------------------------------------------------------------
-- Client addresses

-- Whether this host can listen on [::1].
local function ipv6_loopback()
  local s = socket.tcp6 and socket.tcp6()
  if not s then return false end
  local ok = s:bind("::1", 0)
  s:close()
  return ok == 1 or ok == true
end

describe("router: remote_addrs", function()
  local gw, port6
  local have6 = ipv6_loopback()

  lazy_setup(function()
    local port = gateway.free_port()
    port6 = gateway.free_port()
    local listen = { "127.0.0.1:" .. port }
    if have6 then listen[2] = "[::1]:" .. port6 end
    gw = start({
      listen = listen,
      routes = {
        R("ra-v6", { uri = "/ra", remote_addrs = { "::1/128" } }),
        R("ra-ten", { uri = "/ra", remote_addr = "10.0.0.0/8" }),
        R("ra-lo", { uri = "/ra", remote_addrs = { "10.1.2.3", "127.0.0.0/8" } }),
        R("ra-any", { uri = "/ra" }),
        R("rb-lo", { uri = "/rb", remote_addrs = { "127.0.0.0/8" } }),
        R("rb-any", { uri = "/rb" }),
        R("rc-one", { uri = "/rc", remote_addr = "127.0.0.1" }),
        R("rd-v6", { uri = "/rd", remote_addr = "::1" }),
        R("re-both", { uri = "/re", remote_addrs = { "10.0.0.0/8", "::1/128" } }),
        R("rf-near", { uri = "/rf", remote_addrs = { "127.0.0.2", "126.0.0.0/8", "128.0.0.0/8" } }),
        R("rv-v6", { uri = "/rv", vars = { { "remote_addr", "==", "::1" } } }),
        R("rv-v4", { uri = "/rv", vars = { { "remote_addr", "==", "127.0.0.1" } } }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  it("IPv4 client 127.0.0.1: CIDRs and exact addresses filter, a miss falls through", function()
    expect(gw.port, "ra-lo", "/ra")
    expect(gw.port, "rb-lo", "/rb")
    expect(gw.port, "rc-one", "/rc")
    expect(gw.port, "rv-v4", "/rv")
    assert_json_error(request(gw.port, "/rd"), 404)
    assert_json_error(request(gw.port, "/re"), 404)
    assert_json_error(request(gw.port, "/rf"), 404)
  end)

  it("IPv6 client ::1: only IPv6 blocks match", function()
    if not have6 then
      pending("no IPv6 loopback here")
      return
    end
    local v6 = { via = "::1" }
    expect(port6, "ra-v6", "/ra", v6)
    expect(port6, "rb-any", "/rb", v6)
    expect(port6, "rd-v6", "/rd", v6)
    expect(port6, "re-both", "/re", v6)
    expect(port6, "rv-v6", "/rv", v6)
    assert_json_error(request(port6, "/rc", v6), 404)
    assert_json_error(request(port6, "/rf", v6), 404)
  end)
end)

---------------------------------------------------------------------------
-- vars

describe("router: vars", function()
  local gw

  lazy_setup(function()
    gw = start({
      routes = {
        R("v-hdr", { uri = "/v/header", vars = { { "http_x_user", "==", "alice" } } }),
        R("v-arg", { uri = "/v/arg", vars = { { "arg_env", "==", "a b" } } }),
        R("v-cookie", { uri = "/v/cookie", vars = { { "cookie_session", "==", "s1" } } }),
        R("v-re", { uri = "/v/re", vars = { { "http_x_ver", "~~", "^v[0-9]+$" } } }),
        R("v-rei", { uri = "/v/rei", vars = { { "http_x_ver", "~*", "^v[0-9]+$" } } }),
        R("v-in", { uri = "/v/in", vars = { { "arg_color", "in", { "red", "green" } } } }),
        R("v-num", { uri = "/v/num", vars = { { "arg_n", ">", 10 }, { "arg_n", "<=", 100 } } }),
        R("v-num2", { uri = "/v/num2", vars = { { "arg_n", ">=", 2.5 }, { "arg_n", "<", 3 } } }),
        R("v-neg", { uri = "/v/neg", vars = { { "http_x_env", "!", "==", "prod" } } }),
        R("v-ne", { uri = "/v/ne", vars = { { "arg_a", "!=", "x" } } }),
        R("v-or", { uri = "/v/or", vars = { { "OR", { "arg_a", "==", "1" }, { "arg_b", "==", "1" } } } }),
        R("v-notor", { uri = "/v/notor", vars = { { "!OR", { "arg_a", "==", "1" }, { "arg_b", "==", "1" } } } }),
        R("v-and", { uri = "/v/and", vars = {
          { "AND", { "arg_a", "==", "1" }, { "OR", { "arg_b", "==", "1" }, { "arg_c", "==", "1" } } },
        } }),
        R("v-notand", { uri = "/v/notand", vars = { { "!AND", { "arg_a", "==", "1" }, { "arg_b", "==", "1" } } } }),
        R("v-missing", { uri = "/v/missing", vars = { { "http_x_absent", "~=", "x" } } }),
        R("v-missing-re", { uri = "/v/missing-re", vars = { { "arg_q", "~~", ".*" } } }),
        R("v-has", { uri = "/v/has", vars = { { "http_x_tags", "has", "b" } } }),
        R("v-ip", { uri = "/v/ip", vars = { { "remote_addr", "ipmatch", { "10.0.0.0/8", "127.0.0.1" } } } }),
        R("v-ip-cidr", { uri = "/v/ipc", vars = { { "remote_addr", "ipmatch", "127.0.0.0/8" } } }),
        R("v-ip-no", { uri = "/v/ipno", vars = { { "remote_addr", "ipmatch", "192.168.0.0/16" } } }),
        R("v-misc", { uri = "/v/misc", vars = {
          { "request_method", "==", "POST" }, { "scheme", "==", "http" }, { "host", "==", "vars.test" },
        } }),
        R("v-uri", { uri = "/v/uri/*", vars = { { "uri", "==", "/v/uri/x" } } }),
        R("v-ruri", { uri = "/v/ruri/*", vars = { { "request_uri", "==", "/v/ruri/./x?k=1" } } }),
        R("v-ft-param", { uri = "/v/ft/:id", vars = { { "http_x_beta", "==", "1" } } }),
        R("v-prio-low", { uri = "/v/prio" }),
        R("v-prio-high", { uri = "/v/prio", priority = 10, vars = { { "arg_x", "==", "1" } } }),
        R("v-fallback", { uri = "/v/*" }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  local function V(want, path, opts) return expect(gw.port, want, path, opts) end

  it("http_NAME: a request header, '_' read as '-', the name in any case", function()
    V("v-hdr", "/v/header", { headers = { { "X-User", "alice" } } })
    V("v-hdr", "/v/header", { headers = { { "x-USER", "alice" } } })
    V("v-fallback", "/v/header", { headers = { { "X-User", "Alice" } } })
    V("v-fallback", "/v/header", { headers = { { "X-User", "alice2" } } })
    V("v-fallback", "/v/header")
  end)

  it("arg_NAME: a query argument, percent-decoded", function()
    V("v-arg", "/v/arg?env=a%20b")
    V("v-arg", "/v/arg?x=1&env=a%20b&y=2")
    V("v-fallback", "/v/arg?env=ab")
    V("v-fallback", "/v/arg?environment=a%20b")
    V("v-fallback", "/v/arg?xenv=a%20b")
    V("v-fallback", "/v/arg")
  end)

  it("cookie_NAME: one cookie of the Cookie header", function()
    V("v-cookie", "/v/cookie", { headers = { { "Cookie", "session=s1" } } })
    V("v-cookie", "/v/cookie", { headers = { { "Cookie", "a=1; session=s1; b=2" } } })
    V("v-fallback", "/v/cookie", { headers = { { "Cookie", "session=s2" } } })
    V("v-fallback", "/v/cookie", { headers = { { "Cookie", "xsession=s1" } } })
    V("v-fallback", "/v/cookie", { headers = { { "X-Session", "s1" } } })
  end)

  it("~~ is a case-sensitive regex, ~* a case-insensitive one", function()
    V("v-re", "/v/re", { headers = { { "X-Ver", "v12" } } })
    V("v-fallback", "/v/re", { headers = { { "X-Ver", "V12" } } })
    V("v-fallback", "/v/re", { headers = { { "X-Ver", "v1x" } } })
    V("v-fallback", "/v/re", { headers = { { "X-Ver", "av1" } } })
    V("v-rei", "/v/rei", { headers = { { "X-Ver", "V12" } } })
    V("v-rei", "/v/rei", { headers = { { "X-Ver", "v3" } } })
    V("v-fallback", "/v/rei", { headers = { { "X-Ver", "w3" } } })
  end)

  it("in: one of a list of values", function()
    V("v-in", "/v/in?color=red")
    V("v-in", "/v/in?color=green")
    V("v-fallback", "/v/in?color=blue")
    V("v-fallback", "/v/in?color=re")
    V("v-fallback", "/v/in?color=redd")
  end)

  it("> >= < <= compare numbers, not strings; several conditions must all hold", function()
    V("v-num", "/v/num?n=11") -- "11" <= "100" is false as strings
    V("v-num", "/v/num?n=100")
    V("v-fallback", "/v/num?n=10")
    V("v-fallback", "/v/num?n=9") -- "9" > "10" as strings
    V("v-fallback", "/v/num?n=101")
    V("v-num", "/v/num?n=50") -- "50" <= "100" is false as strings
    V("v-fallback", "/v/num?n=abc")
    V("v-fallback", "/v/num")
    V("v-num2", "/v/num2?n=2.5")
    V("v-num2", "/v/num2?n=2.99")
    V("v-fallback", "/v/num2?n=3")
    V("v-fallback", "/v/num2?n=2.4")
  end)

  it("! negates an operator; != and ~= mean not equal", function()
    V("v-neg", "/v/neg", { headers = { { "X-Env", "dev" } } })
    V("v-fallback", "/v/neg", { headers = { { "X-Env", "prod" } } })
    V("v-ne", "/v/ne?a=y")
    V("v-fallback", "/v/ne?a=x")
  end)

  it("OR, !OR, AND and !AND groups", function()
    V("v-or", "/v/or?a=1")
    V("v-or", "/v/or?b=1")
    V("v-or", "/v/or?a=2&b=1")
    V("v-fallback", "/v/or?a=2&b=2")
    V("v-fallback", "/v/or")
    V("v-notor", "/v/notor?a=2&b=2")
    V("v-notor", "/v/notor")
    V("v-fallback", "/v/notor?a=1")
    V("v-fallback", "/v/notor?b=1")
    V("v-and", "/v/and?a=1&b=1")
    V("v-and", "/v/and?a=1&c=1")
    V("v-fallback", "/v/and?a=1")
    V("v-fallback", "/v/and?b=1&c=1")
    V("v-notand", "/v/notand?a=1")
    V("v-notand", "/v/notand")
    V("v-fallback", "/v/notand?a=1&b=1")
  end)

  it("a missing variable makes every operator false except ~=", function()
    V("v-missing", "/v/missing")
    V("v-missing", "/v/missing", { headers = { { "X-Absent", "y" } } })
    V("v-fallback", "/v/missing", { headers = { { "X-Absent", "x" } } })
    V("v-fallback", "/v/missing-re")
    V("v-fallback", "/v/missing-re?other=1")
    V("v-missing-re", "/v/missing-re?q=z")
    V("v-ne", "/v/ne") -- != is ~=
  end)

  it("has: an item of a comma-separated list", function()
    V("v-has", "/v/has", { headers = { { "X-Tags", "a,b,c" } } })
    V("v-has", "/v/has", { headers = { { "X-Tags", "b" } } })
    V("v-fallback", "/v/has", { headers = { { "X-Tags", "a,bb,c" } } })
    V("v-fallback", "/v/has", { headers = { { "X-Tags", "abc" } } })
  end)

  it("ipmatch: an address, a CIDR or a list of them", function()
    V("v-ip", "/v/ip")
    V("v-ip-cidr", "/v/ipc")
    V("v-fallback", "/v/ipno")
  end)

  it("request_method, scheme and host (lowercased, without the port)", function()
    V("v-misc", "/v/misc", { method = "POST", host = "vars.test" })
    V("v-misc", "/v/misc", { method = "POST", host = "VARS.Test:99" })
    V("v-fallback", "/v/misc", { host = "vars.test" })
    V("v-fallback", "/v/misc", { method = "POST", host = "other.test" })
  end)

  it("uri is the normalised path, request_uri the target as sent", function()
    local _, doc = V("v-uri", "/v/uri/./x")
    assert.are.equal("/v/uri/./x", doc.target)
    V("v-uri", "/v/uri/x?k=1")
    V("v-uri", "/v/uri/%78")
    V("v-fallback", "/v/uri/y")
    V("v-ruri", "/v/ruri/./x?k=1")
    V("v-fallback", "/v/ruri/x?k=1")
    V("v-fallback", "/v/ruri/./x")
  end)

  it("a candidate failing its vars passes the request to the next one", function()
    V("v-ft-param", "/v/ft/1", { headers = { { "X-Beta", "1" } } })
    V("v-fallback", "/v/ft/1", { headers = { { "X-Beta", "0" } } })
    V("v-fallback", "/v/ft/1")
    V("v-prio-high", "/v/prio?x=1")
    V("v-prio-low", "/v/prio?x=2")
    V("v-prio-low", "/v/prio")
  end)
end)

---------------------------------------------------------------------------
-- Normalisation

describe("router: path normalisation", function()
  local gw

  lazy_setup(function()
    gw = start({
      routes = {
        R("root", { uri = "/" }),
        R("admin", { uri = "/admin" }),
        R("public", { uri = "/public/*" }),
        R("enc-exact", { uri = "/enc/a/b" }),
        R("enc-prefix", { uri = "/enc/*" }),
        R("pct-exact", { uri = "/pct/A" }),
        R("pct-prefix", { uri = "/pct/*" }),
        R("n-param", { uri = "/np/:id/x" }),
      },
    })
  end)

  lazy_teardown(stop_all)
  after_each(function() gw:assert_clean() end)

  -- Served by `want`, and the upstream got the target unchanged.
  local function N(want, target)
    local _, doc = expect(gw.port, want, target)
    assert.are.equal(target, doc.target, "target sent upstream")
  end

  it("'..' segments are resolved before matching", function()
    N("admin", "/public/../admin")
    N("admin", "/public/x/../../admin")
    N("public", "/public/x/..")
    N("public", "/public/x/../y")
    N("public", "/public/./x")
    N("admin", "/./admin")
    N("root", "/public/..")
  end)

  it("'..' never climbs above /", function()
    N("admin", "/../admin")
    N("admin", "/../../../admin")
    N("admin", "/public/../../admin")
    N("root", "/..")
  end)

  it("encoded dots are dot segments too", function()
    N("admin", "/%2e%2e/admin")
    N("admin", "/%2E%2E/admin")
    N("admin", "/public/%2e%2e/admin")
    N("admin", "/public/.%2e/admin")
    N("admin", "/%2e/admin")
  end)

  it("%XX escapes are decoded", function()
    N("admin", "/%61dmin")
    N("admin", "/ad%6D%69n")
    N("enc-exact", "/enc/%61/b")
    N("pct-exact", "/pct/%41")
    N("n-param", "/np/%31/x")
  end)

  it("%2F and %25 stay escaped: no new separators, no double decoding", function()
    N("enc-exact", "/enc/a/b")
    N("enc-prefix", "/enc/a%2Fb")
    N("enc-prefix", "/enc/a%2fb")
    N("pct-prefix", "/pct/%2541")
    N("public", "/public/..%2Fadmin")
    N("public", "/public/%2e%2e%2fadmin")
    assert_json_error(request(gw.port, "/public%2F..%2Fadmin"), 404)
    assert_json_error(request(gw.port, "/np/a%2Fb/x/x"), 404)
    N("n-param", "/np/a%2Fb/x")
  end)

  it("a bad escape or an escaped NUL is a 400 JSON, never sent upstream", function()
    for _, target in ipairs({ "/a%zz", "/admin%", "/admin%2", "/ad%00min", "/%00", "/public/%g1", "/admin%%41" }) do
      local resp = request(gw.port, target)
      assert.are.equal(400, resp.status, target)
      assert_json_error(resp, 400)
    end
  end)

  it("the query is not normalised", function()
    local _, doc = expect(gw.port, "admin", "/admin?x=/../public&y=%2e%2e")
    assert.are.equal("/admin?x=/../public&y=%2e%2e", doc.target)
  end)
end)

---------------------------------------------------------------------------
-- Configuration errors

local write_file = testutil.write_file

local tmpdirs, jobs = {}, {}

-- Starts `torii -p DIR -c DIR/conf/<main> -t` on a config text; the
-- checks of one `it` run at once (ASan startup is slow), finish() collects.
local function spawn_check(text, main)
  local dir = gateway.tmpdir()
  tmpdirs[#tmpdirs + 1] = dir
  local conf = dir .. "/conf/" .. (main or "torii.yaml")
  write_file(conf, text)
  local pid = assert(proc.spawn({ gateway.bin(), "-p", dir, "-c", conf, "-t" },
    { stdout = dir .. "/out", stderr = dir .. "/err" }))
  local job = { pid = pid, dir = dir, conf = conf }
  jobs[#jobs + 1] = job
  return job
end

-- Exit code, stdout, stderr and the config path of a spawned check.
local function finish(job)
  local ok, info = proc.wait(job.pid, 10)
  assert.is_true(ok, "torii -t did not exit within 10 s: " .. job.conf)
  return info.code, proc.read_file(job.dir .. "/out") or "", proc.read_file(job.dir .. "/err") or "", job.conf
end

-- `torii -t` failed with exit 1 and the line
--   torii: <conf>:<line>: <path>: <reason>
-- where the reason contains every string of want.reason (none: any
-- reason); then the "test failed" line.
local function check_error(job, want)
  local code, out, err, conf = finish(job)
  assert.are.equal(1, code, "exit code; stdout: " .. out .. "\nstderr: " .. err)
  local head = "torii: " .. conf .. ":" .. want.line .. ": "
  local line
  for l in err:gmatch("[^\n]+") do
    if l:sub(1, #head) == head then line = l break end
  end
  assert.is_truthy(line, "expected a line starting with\n  " .. head .. "\nin stderr:\n" .. err)
  local rest = line:sub(#head + 1)
  assert.are.equal(want.path .. ": ", rest:sub(1, #want.path + 2), "path in: " .. line)
  rest = rest:sub(#want.path + 3)
  assert.is_true(#rest > 0, "empty reason: " .. line)
  local reasons = type(want.reason) == "table" and want.reason or { want.reason }
  for _, r in ipairs(reasons) do
    assert.is_truthy(rest:find(r, 1, true), "reason should mention " .. r .. ": " .. line)
  end
  assert.is_truthy(err:find("torii: configuration file " .. conf .. " test failed", 1, true), err)
  assert.are.equal("", out)
end

-- cases: { {text, want}, ... }; want: line, path, reason, main (file name).
local function expect_errors(cases)
  local started = {}
  for i, c in ipairs(cases) do started[i] = spawn_check(c[1], c[2].main) end
  for i, c in ipairs(cases) do check_error(started[i], c[2]) end
end

local L = "listen: 127.0.0.1:1\nworkers: 1\n" -- lines 1-2
local ROUTE = "routes:\n  - id: a\n" -- lines 3-4
local UPSTREAM = '    upstream: {nodes: ["127.0.0.1:1"]}\n'

-- A route with uri /a and one more key on line 7.
local function with(line)
  return L .. ROUTE .. "    uri: /a\n" .. UPSTREAM .. line
end

-- A route whose uri line (line 5) is `line`.
local function uri_line(line)
  return L .. ROUTE .. line .. UPSTREAM
end

describe("router: configuration", function()
  after_each(function()
    for _, job in ipairs(jobs) do
      if proc.alive(job.pid) then proc.stop(job.pid, 2) end
    end
    jobs = {}
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
    tmpdirs = {}
  end)

  it("every key, pattern kind, variable and operator passes -t", function()
    local code, out, err, conf = finish(spawn_check(L .. [==[
routes:
  - id: all
    uris: ["/a:b", "/users/:id", "/u/:id/posts/:post", "/files/*path", "/p/*", "/x*", "/"]
    hosts: ["api.example.com", "*.example.com", "API.Example.ORG"]
    methods: [GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, TRACE]
    remote_addrs: ["127.0.0.1", "10.0.0.0/8", "::1", "fe80::/10"]
    priority: -3
    vars:
      - [uri, "~~", "^/"]
      - [request_uri, "~=", "/x"]
      - [host, "!=", "evil.test"]
      - [request_method, "in", [GET, POST]]
      - [remote_addr, ipmatch, ["127.0.0.1", "10.0.0.0/8"]]
      - [scheme, "==", http]
      - [http_x_api_version, ">", 1]
      - [arg_page, ">=", 1]
      - [arg_page, "<", 100]
      - [arg_page, "<=", 99]
      - [cookie_session, "~*", "^[a-f0-9]+$"]
      - [http_x_tags, has, beta]
      - [http_x_env, "!", "==", prod]
      - ["OR", [arg_a, "==", "1"], ["!AND", [arg_b, "==", "1"], [arg_c, "==", "1"]]]
      - ["!OR", [arg_d, "==", "1"]]
      - ["AND", [arg_e, "~=", "1"]]
    upstream: {nodes: ["127.0.0.1:1"]}
  - id: single
    uri: /s
    host: api.example.com
    remote_addr: 127.0.0.1
    priority: 2
    upstream: {nodes: ["127.0.0.1:1"]}
]==]))
    assert.are.equal(0, code, err)
    assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)
    assert.are.equal("", err)
  end)

  it("bad path patterns", function()
    expect_errors({
      { uri_line('    uri: "admin"\n'), { line = 5, path = "routes[0].uri", reason = "admin" } },
      { uri_line('    uri: "/a/*/b"\n'), { line = 5, path = "routes[0].uri", reason = "*" } },
      { uri_line('    uri: "/files/*path/x"\n'), { line = 5, path = "routes[0].uri", reason = "*" } },
      { uri_line('    uri: "/users/:"\n'), { line = 5, path = "routes[0].uri" } },
      { uri_line('    uri: "/:"\n'), { line = 5, path = "routes[0].uri" } },
      { uri_line('    uri: "/a/:/b"\n'), { line = 5, path = "routes[0].uri" } },
      { uri_line('    uris: ["/ok", "/bad/:"]\n'), { line = 5, path = "routes[0].uris[1]" } },
    })
  end)

  it("hosts: a pattern with a port", function()
    expect_errors({
      { with('    hosts: ["api.example.com", "api.example.com:8080"]\n'),
        { line = 7, path = "routes[0].hosts[1]", reason = "api.example.com:8080" } },
      { with('    host: "*.example.com:443"\n'),
        { line = 7, path = "routes[0].host", reason = "*.example.com:443" } },
    })
  end)

  it("host and hosts together", function()
    expect_errors({
      { with('    host: a.test\n    hosts: ["b.test"]\n'),
        { line = 4, path = "routes[0]", reason = { "host", "hosts" } } },
    })
  end)

  it("methods: names outside GET POST PUT DELETE PATCH HEAD OPTIONS TRACE", function()
    expect_errors({
      { with("    methods: [GET, FETCH]\n"), { line = 7, path = "routes[0].methods[1]", reason = "FETCH" } },
      { with("    methods: [CONNECT]\n"), { line = 7, path = "routes[0].methods[0]", reason = "CONNECT" } },
      { with("    methods:\n      - POST\n      - PURGE\n"),
        { line = 9, path = "routes[0].methods[1]", reason = "PURGE" } },
    })
  end)

  it("remote_addrs: bad addresses and CIDRs", function()
    expect_errors({
      { with('    remote_addrs: ["127.0.0.1", "10.0.0.0/33"]\n'),
        { line = 7, path = "routes[0].remote_addrs[1]", reason = "10.0.0.0/33" } },
      { with('    remote_addrs: ["not-an-ip"]\n'),
        { line = 7, path = "routes[0].remote_addrs[0]", reason = "not-an-ip" } },
      { with('    remote_addr: "::1/129"\n'), { line = 7, path = "routes[0].remote_addr", reason = "::1/129" } },
      { with('    remote_addr: "300.1.1.1"\n'), { line = 7, path = "routes[0].remote_addr", reason = "300.1.1.1" } },
    })
  end)

  it("remote_addr and remote_addrs together", function()
    expect_errors({
      { with('    remote_addr: 127.0.0.1\n    remote_addrs: ["::1"]\n'),
        { line = 4, path = "routes[0]", reason = { "remote_addr", "remote_addrs" } } },
    })
  end)

  it("priority must be an integer", function()
    expect_errors({
      { with("    priority: high\n"), { line = 7, path = "routes[0].priority", reason = "integer" } },
    })
  end)

  it("vars: unknown operator, unknown variable, bad regex; the path names the item", function()
    expect_errors({
      { with('    vars: [["arg_a", "=~", "x"]]\n'), { line = 7, path = "routes[0].vars[0][1]", reason = "=~" } },
      { with('    vars: [["foo", "==", "x"]]\n'), { line = 7, path = "routes[0].vars[0][0]", reason = "foo" } },
      { with('    vars: [["arg_a", "~~", "a(b"]]\n'), { line = 7, path = "routes[0].vars[0][2]" } },
      { with('    vars: [["http_x", "~*", "[z-a]"]]\n'), { line = 7, path = "routes[0].vars[0][2]" } },
      { with('    vars: [["arg_a", "!", "===", "x"]]\n'),
        { line = 7, path = "routes[0].vars[0][2]", reason = "===" } },
      { with('    vars: [["arg_a", "==", "1"], ["bogus_x", "==", "1"]]\n'),
        { line = 7, path = "routes[0].vars[1][0]", reason = "bogus_x" } },
      { with('    vars: [["OR", ["arg_a", "==", "1"], ["arg_b", "=~", "1"]]]\n'),
        { line = 7, path = "routes[0].vars[0][2][1]", reason = "=~" } },
    })
  end)

  it("vars: the line is the offending item's", function()
    expect_errors({
      { with('    vars:\n      - [arg_a, "==", "1"]\n      - [arg_b, "=~", "1"]\n'),
        { line = 9, path = "routes[0].vars[1][1]", reason = "=~" } },
      { with('    vars:\n      - ["OR",\n         [arg_a, "==", "1"],\n         [nope, "==", "1"]]\n'),
        { line = 10, path = "routes[0].vars[0][2][0]", reason = "nope" } },
    })
  end)

  it("JSON configs name the path and line the same way", function()
    local json = '{\n  "listen": "127.0.0.1:1",\n  "routes": [\n    {"id": "a", "uri": "/a",\n'
      .. '     "upstream": {"nodes": ["127.0.0.1:1"]},\n'
    expect_errors({
      { json .. '     "vars": [["arg_a", "=~", "1"]]}\n  ]\n}\n',
        { line = 6, path = "routes[0].vars[0][1]", reason = "=~", main = "torii.json" } },
      { json .. '     "methods": ["GET",\n                 "BREW"]}\n  ]\n}\n',
        { line = 7, path = "routes[0].methods[1]", reason = "BREW", main = "torii.json" } },
    })
  end)
end)
