-- Upstream objects and balancing through the running gateway: upstreams
-- declared once and named by upstream_id, nodes with weights (list of
-- objects, or APISIX's {"host:port": weight} map), and the balancer types
-- roundrobin (smooth: 7/2/1 spreads as A A B A A C A A B A), chash (on a
-- header, a query argument, the consumer), least_conn. Each mock upstream
-- answers with X-Upstream-Id: its name.

local gateway = require "gateway"
local http = require "http"

describe("upstream balancing", function()
  local gw, mocks = nil, {}

  local function node(name, weight)
    return { host = "127.0.0.1", port = mocks[name].port, weight = weight }
  end

  local function config(opts)
    opts = opts or {}
    local chash_nodes = {}
    for _, name in ipairs(opts.chash or { "A", "B", "C", "D", "E" }) do
      chash_nodes["127.0.0.1:" .. mocks[name].port] = 1
    end
    return {
      workers = 1,
      consumers = {
        { username = "alice", plugins = { ["key-auth"] = { key = "alice-key" } } },
        { username = "bob", plugins = { ["key-auth"] = { key = "bob-key" } } },
      },
      upstreams = {
        { id = "weighted", nodes = { node("A", 7), node("B", 2), node("C", 1) } },
        { id = "by-user", type = "chash", hash_on = "header", key = "X-User", nodes = chash_nodes },
        { id = "by-arg", type = "chash", key = "arg_shard", nodes = chash_nodes },
        { id = "by-consumer", type = "chash", hash_on = "consumer", nodes = chash_nodes },
        { id = "least", type = "least_conn", nodes = { node("A", 1), node("B", 1) } },
      },
      routes = {
        { id = "w", uri = "/w/*", upstream_id = "weighted" },
        { id = "u", uri = "/u/*", upstream_id = "by-user" },
        { id = "q", uri = "/q/*", upstream_id = "by-arg" },
        { id = "c", uri = "/c/*", upstream_id = "by-consumer", plugins = { ["key-auth"] = {} } },
        { id = "l", uri = "/delay/*", upstream_id = "least" },
        { id = "inline", uri = "/i/*", upstream = { type = "roundrobin", nodes = { node("D", 1), node("E", 1) } } },
      },
    }
  end

  setup(function()
    for _, name in ipairs({ "A", "B", "C", "D", "E" }) do mocks[name] = gateway.mock({ id = name }) end
    gw = gateway.start { config = config() }
  end)

  teardown(function()
    if gw then gw:assert_clean() end
    gateway.cleanup_all()
  end)

  -- n requests on keep-alive connections; the upstream ids in order
  local function ids(path, n, headers)
    local conn
    local out = {}
    for i = 1, n do
      conn = conn or assert(http.connect(gw.port, { timeout = 10 }))
      local p = type(path) == "function" and path(i) or path
      local h = type(headers) == "function" and headers(i) or headers
      assert(conn:request({ method = "GET", path = p, headers = h }))
      local resp = assert(conn:read_response({ timeout = 10 }))
      assert.are.equal(200, resp.status, resp.body)
      out[i] = resp:header("X-Upstream-Id")
      if (resp:header("Connection") or ""):lower() == "close" then -- keepalive_requests reached
        conn:close()
        conn = nil
      end
    end
    if conn then conn:close() end
    return out
  end

  it("smooth weighted round robin: 7/2/1 spreads as A A B A A C A A B A", function()
    -- the first cycle of this worker's balancer (no request went there yet)
    assert.are.same({ "A", "A", "B", "A", "A", "C", "A", "A", "B", "A" }, ids("/w/x", 10))
  end)

  it("weighted round robin over 10,000 requests: exact in every cycle", function()
    local got = ids("/w/x", 10000)
    local count = { A = 0, B = 0, C = 0 }
    for i, id in ipairs(got) do
      count[id] = count[id] + 1
      if i % 10 == 0 then -- every full cycle of 10 has exactly 7, 2, 1
        assert.are.same({ A = i * 7 / 10, B = i * 2 / 10, C = i / 10 }, count)
      end
    end
    assert.are.same({ A = 7000, B = 2000, C = 1000 }, count)
  end)

  it("an inline upstream balances its own nodes", function()
    local got = ids("/i/x", 4)
    table.sort(got)
    assert.are.same({ "D", "D", "E", "E" }, got)
  end)

  it("chash on a header: a user always meets the same node, and users spread", function()
    local users = {}
    for i = 1, 200 do users[i] = "user-" .. i end
    local first = ids("/u/x", 200, function(i) return { { "X-User", users[i] } } end)
    local again = ids("/u/x", 200, function(i) return { { "X-User", users[i] } } end)
    assert.are.same(first, again)
    local seen = {}
    for _, id in ipairs(first) do seen[id] = (seen[id] or 0) + 1 end
    for _, name in ipairs({ "A", "B", "C", "D", "E" }) do
      assert.is_true((seen[name] or 0) >= 15, name .. " got " .. tostring(seen[name]))
    end
  end)

  it("chash on a query argument", function()
    local a = ids(function(i) return "/q/x?shard=s" .. i end, 50)
    local b = ids(function(i) return "/q/other?x=1&shard=s" .. i end, 50)
    assert.are.same(a, b)
  end)

  it("chash on the consumer key-auth attached", function()
    local alice = ids("/c/x", 5, { { "apikey", "alice-key" } })
    local bob = ids("/c/x", 5, { { "apikey", "bob-key" } })
    for i = 2, 5 do
      assert.are.equal(alice[1], alice[i])
      assert.are.equal(bob[1], bob[i])
    end
  end)

  it("chash: removing a node moves only the keys that were on it", function()
    local n = 300
    local function hdr(i) return { { "X-User", "key-" .. i } } end
    local before = ids("/u/x", n, hdr)
    gw:write_config(config({ chash = { "A", "B", "C", "D" } })) -- E removed
    local code, _, err = gw:cli({ "-s", "reload" }, { timeout = 60 })
    assert.are.equal(0, code, err)
    local after = ids("/u/x", n, hdr)
    local moved = 0
    for i = 1, n do
      if before[i] == "E" then
        assert.are_not.equal("E", after[i])
        moved = moved + 1
      else
        assert.are.equal(before[i], after[i], "key-" .. i .. " moved from " .. before[i])
      end
    end
    assert.is_true(moved > 0, "no key was on E")
    gw:write_config(config())
    assert.are.equal(0, (gw:cli({ "-s", "reload" }, { timeout = 60 })))
  end)

  it("least_conn: while a slow request holds one node, the others go to the other", function()
    local slow = assert(http.connect(gw.port, { timeout = 10 }))
    assert(slow:request({ method = "GET", path = "/delay/1500" }))
    require("proc").sleep(0.3)
    local quick = ids("/delay/0", 6)
    local resp = assert(slow:read_response({ timeout = 10 }))
    slow:close()
    local busy = resp:header("X-Upstream-Id")
    for _, id in ipairs(quick) do assert.are_not.equal(busy, id) end
  end)
end)

describe("upstream configuration errors", function()
  local check = require("testutil").config_error

  it("names what is wrong and where", function()
    assert.matches("torii%.yaml:2: route \"a\": upstream_id \"nope\" names no upstream",
      check("routes: [{id: a, uri: /w, upstream_id: nope}]\n"))
    assert.matches("upstreams%[0%]%.type: unknown type \"robin\"",
      check("upstreams: [{id: w, type: robin, nodes: [\"127.0.0.1:1\"]}]\n"))
    assert.matches("every weight is 0",
      check("upstreams: [{id: w, nodes: [{host: 127.0.0.1, port: 1, weight: 0}]}]\n"))
    assert.matches("upstreams%[0%]%.nodes%[0%]%.weight: must be 0%.%.1000000",
      check("upstreams: [{id: w, nodes: [{host: 127.0.0.1, port: 1, weight: -1}]}]\n"))
    assert.matches("hash_on header needs a key",
      check("upstreams: [{id: w, type: chash, hash_on: header, nodes: [\"127.0.0.1:1\"]}]\n"))
    assert.matches("hash_on and key are for type chash",
      check("upstreams: [{id: w, key: uri, nodes: [\"127.0.0.1:1\"]}]\n"))
    assert.matches("duplicate upstream id \"w\"",
      check("upstreams: [{id: w, nodes: [\"127.0.0.1:1\"]}, {id: w, nodes: [\"127.0.0.1:2\"]}]\n"))
    assert.matches("upstreams%[0%]%.key: unknown variable \"bogus_x\"",
      check("upstreams: [{id: w, type: chash, key: bogus_x, nodes: [\"127.0.0.1:1\"]}]\n"))
    assert.matches("an inline upstream has no id",
      check("routes: [{id: a, uri: /w, upstream: {id: x, nodes: [\"127.0.0.1:1\"]}}]\n"))
    assert.matches("upstreams%[0%]: missing required key \"id\"",
      check("upstreams: [{nodes: [\"127.0.0.1:1\"]}]\n"))
    assert.matches("retry%.to \"nope\" names no upstream",
      check("upstreams: [{id: w, nodes: [\"127.0.0.1:1\"], retry: {to: nope}}]\n"))
    assert.matches("nodes%[0%]%.retry_to \"x\" names neither a node id of this upstream nor an upstream",
      check("upstreams: [{id: w, nodes: [{host: 127.0.0.1, port: 1, retry_to: x}]}]\n"))
    assert.matches("upstreams%[0%]%.retry%.on%[0%]: must be connect_error, timeout, error, 5xx or a status",
      check("upstreams: [{id: w, nodes: [\"127.0.0.1:1\"], retry: {on: [sometimes]}}]\n"))
    assert.matches("upstreams%[0%]%.retry%.count: must be <= 100",
      check("upstreams: [{id: w, nodes: [\"127.0.0.1:1\"], retry: {count: 1000}}]\n"))
    assert.matches("listed twice",
      check("upstreams: [{id: w, type: chash, nodes: [\"127.0.0.1:1\", \"127.0.0.1:1\"]}]\n"))
  end)
end)
