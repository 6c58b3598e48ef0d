-- Retries through the running gateway, with misbehaving upstreams on
-- 127.0.0.1: a node that answers 503 to everything (mock --status), a
-- slow one (mock --delay), a port nothing listens on. The seed scenarios:
-- `retry: {status: [500, 503], to: searchC}`, and front API nodes that
-- name each other as retry_to.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"

describe("upstream retries", function()
  local gw
  local m = {}

  local function addr(name) return "127.0.0.1:" .. m[name].port end

  -- requests the mock answered, not counting the questions for this count
  local asked = {}
  local function stats(name)
    local resp = assert(http.get(m[name].port, "/__stats", { timeout = 2 }))
    asked[name] = (asked[name] or 0) + 1
    return tonumber(resp.body:match('"requests_total"%s*:%s*(%d+)')) - asked[name]
  end

  setup(function()
    m.fail_a = gateway.mock({ id = "fail-a", args = { "--status", "503" } })
    m.fail_b = gateway.mock({ id = "fail-b", args = { "--status", "500" } })
    m.c = gateway.mock({ id = "searchC" })
    m.ok = gateway.mock({ id = "ok" })
    m.slow = gateway.mock({ id = "slow", args = { "--delay", "3000" } })
    m.storm = gateway.mock({ id = "storm", args = { "--status", "503" } })
    m.storm_to = gateway.mock({ id = "storm-to", args = { "--status", "503" } })
    local dead = "127.0.0.1:" .. gateway.free_port() -- nothing listens there
    gw = gateway.start { config = {
      workers = 1,
      upstreams = {
        { id = "searchC", nodes = { addr("c") } },
        { id = "search", nodes = { { host = "127.0.0.1", port = m.fail_a.port, weight = 80 },
                                   { host = "127.0.0.1", port = m.fail_b.port, weight = 20 } },
          retry = { status = { 500, 503 }, to = "searchC" } },
        { id = "front", nodes = {
            { host = "127.0.0.1", port = m.fail_a.port, id = "frontapi-a", retry_to = "frontapi-b" },
            { host = "127.0.0.1", port = m.ok.port, id = "frontapi-b", retry_to = "frontapi-a" } },
          retry = { on = { "connect_error", "timeout", 503 } } },
        { id = "refused", nodes = { dead, addr("ok") }, retry = { count = 1 } },
        { id = "slowish", nodes = { addr("slow"), addr("ok") },
          retry = { on = { "timeout" }, per_try_timeout = "300ms" } },
        { id = "post", nodes = { addr("fail_a") }, retry = { status = { 503 }, to = "searchC" } },
        { id = "post-ok", nodes = { addr("fail_a") },
          retry = { status = { 503 }, to = "searchC", non_idempotent = true } },
        { id = "storm", nodes = { addr("storm") },
          retry = { status = { 503 }, count = 1, to = "storm-to",
                    budget = { percent = 10, min_per_second = 0 }, backoff = { base = "0ms" } } },
        { id = "storm-to", nodes = { addr("storm_to") } },
        { id = "capped", nodes = { addr("slow") }, circuit_breaker = { max_connections = 2 } },
        { id = "small-body", nodes = { addr("fail_a") },
          retry = { status = { 503 }, to = "searchC", body_limit = "1k" } },
      },
      routes = {
        { id = "search", uri = "/search/*", upstream_id = "search" },
        { id = "front", uri = "/front/*", upstream_id = "front" },
        { id = "refused", uri = "/refused/*", upstream_id = "refused" },
        { id = "slowish", uri = "/slowish/*", upstream_id = "slowish", timeout = { read = "5s" } },
        { id = "post", uri = "/post/*", upstream_id = "post" },
        { id = "post-ok", uri = "/post-ok/*", upstream_id = "post-ok" },
        { id = "storm", uri = "/storm/*", upstream_id = "storm" },
        { id = "capped", uri = "/capped/*", upstream_id = "capped" },
        { id = "small-body", uri = "/small-body/*", upstream_id = "small-body" },
      },
    } }
  end)

  teardown(function()
    if gw then gw:assert_clean({ "retry", "upstream" }) end
    gateway.cleanup_all()
  end)

  local function get(path, opts)
    opts = opts or {}
    opts.path, opts.timeout = path, opts.timeout or 10
    return assert(http.request(gw.port, opts))
  end

  it("retries 500 and 503 on the named target (retry: {status: [500, 503], to: searchC})", function()
    local before = stats("c")
    for _ = 1, 10 do
      local resp = get("/search/q")
      assert.are.equal(200, resp.status)
      assert.are.equal("searchC", resp:header("X-Upstream-Id"))
    end
    assert.are.equal(10, stats("c") - before)
    assert.is_truthy(gw:wait_log("answered 50[03]; retry 1 of 1", 2))
  end)

  it("a node's retry_to: frontapi-a fails over to frontapi-b", function()
    for _ = 1, 6 do
      local resp = get("/front/x")
      assert.are.equal(200, resp.status)
      assert.are.equal("ok", resp:header("X-Upstream-Id"))
    end
  end)

  it("a refused connection is retried on another node", function()
    for _ = 1, 6 do
      local resp = get("/refused/x")
      assert.are.equal(200, resp.status)
      assert.are.equal("ok", resp:header("X-Upstream-Id"))
    end
  end)

  it("a try past per_try_timeout is retried on another node", function()
    for _ = 1, 4 do
      local t0 = proc.now()
      local resp = get("/slowish/x")
      assert.are.equal(200, resp.status)
      assert.are.equal("ok", resp:header("X-Upstream-Id"))
      assert.is_true(proc.now() - t0 < 2, "the slow node's 3 s answer was awaited")
    end
  end)

  it("never retries a non-idempotent request unless configured", function()
    local before = stats("c")
    local resp = get("/post/x", { method = "POST" })
    assert.are.equal(503, resp.status)
    assert.are.equal(before, stats("c"))
    resp = get("/post-ok/x", { method = "POST" })
    assert.are.equal(200, resp.status)
    assert.are.equal("searchC", resp:header("X-Upstream-Id"))
    -- a GET on the same upstream is retried
    assert.are.equal(200, get("/post/x").status)
  end)

  it("sends a request body again on the retry (kept up to body_limit)", function()
    local body = string.rep("0123456789abcdef", 256) -- 4 KiB
    local resp = get("/search/put", { method = "PUT", body = body })
    assert.are.equal(200, resp.status)
    assert.are.equal("searchC", resp:header("X-Upstream-Id"))
    local doc = require("cjson").decode(resp.body)
    assert.are.equal(#body, #doc.body)
    assert.are.equal(body, doc.body)
    -- chunked from the client: the retry sends the same chunks
    resp = get("/search/put", { method = "PUT", chunked = { "first part, ", "second part" } })
    assert.are.equal(200, resp.status)
    assert.are.equal("first part, second part", require("cjson").decode(resp.body).body)
    -- over body_limit: not kept, so not retried
    resp = get("/small-body/put", { method = "PUT", body = string.rep("x", 2048) })
    assert.are.equal(503, resp.status)
    assert.are.equal(200, get("/small-body/put", { method = "PUT", body = string.rep("x", 512) }).status)
  end)

  it("circuit breaker: past max_connections in flight, a fast 503 with the reason", function()
    local held = {}
    for i = 1, 2 do
      held[i] = assert(http.connect(gw.port, { timeout = 10 }))
      assert(held[i]:request({ method = "GET", path = "/capped/x" }))
    end
    proc.sleep(0.3) -- both are at the slow node now
    local t0 = proc.now()
    local resp = get("/capped/x")
    assert.are.equal(503, resp.status)
    assert.matches("circuit open", resp.body)
    assert.is_true(proc.now() - t0 < 1, "the 503 was not fast")
    for i = 1, 2 do
      assert.are.equal(200, assert(held[i]:read_response({ timeout = 10 })).status)
      held[i]:close()
    end
    -- the slots are free again
    assert.are.equal(200, get("/capped/x").status)
  end)

  it("the retry budget stops a retry storm", function()
    local before = stats("storm_to")
    for _ = 1, 100 do
      assert.are.equal(503, get("/storm/x").status)
    end
    local retried = stats("storm_to") - before
    -- 10% of recent requests: about 10, never one per request
    assert.is_true(retried >= 5 and retried <= 15, "retries: " .. retried)
    assert.is_truthy(gw:wait_log("retry budget spent", 2))
  end)
end)
