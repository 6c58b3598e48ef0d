-- Integration specs: configuration checking (`torii -t` and startup), YAML
-- and JSON, include, error messages `torii: FILE:LINE: path: reason`, and
-- configured durations/sizes taking effect.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local testutil = require "testutil"

local write_file = testutil.write_file

local file_exists = testutil.file_exists

local escape = testutil.escape

local tmpdirs = {}

-- A prefix holding conf/<main> (text) and extra files (relative to conf/).
local function make_prefix(text, extra, main)
  local dir = gateway.tmpdir()
  tmpdirs[#tmpdirs + 1] = dir
  proc.mkdir_p(dir .. "/conf")
  local conf = dir .. "/conf/" .. (main or "torii.yaml")
  write_file(conf, text)
  for rel, content in pairs(extra or {}) do
    if content == true then
      proc.mkdir_p(dir .. "/conf/" .. rel)
    else
      write_file(dir .. "/conf/" .. rel, content)
    end
  end
  return dir, conf
end

-- torii -p DIR -c CONF -t → code, stdout, stderr, conf path, dir
local function check(text, extra, main)
  local dir, conf = make_prefix(text, extra, main)
  local code, out, err = gateway.run_cli({ "-p", dir, "-c", conf, "-t" }, { timeout = 10 })
  return code, out, err, conf, dir
end

-- Asserts that `torii -t` fails with exit 1, with the line
--   torii: <dir>/conf/<file>:<line>: <path>: <reason...>
-- where reason contains every string of `reason` (plain), and the
-- "test failed" line. Returns stderr.
local function expect_error(text, want, extra, main)
  local code, out, err, conf, dir = check(text, extra, main)
  assert.are.equal(1, code, "exit code; stdout: " .. out .. "\nstderr: " .. err)
  local file = dir .. "/conf/" .. (want.file or main or "torii.yaml")
  local head = "torii: " .. file .. ":" .. want.line .. ": "
  local line
  for l in err:gmatch("[^\n]+") do
    if l:sub(1, #head) == head then line = l break end
  end
  assert.is_truthy(line, "expected a line starting with\n  " .. head .. "\nin stderr:\n" .. err)
  local rest = line:sub(#head + 1)
  if want.path then
    assert.are.equal(want.path .. ": ", rest:sub(1, #want.path + 2),
      "path in: " .. line)
    rest = rest:sub(#want.path + 3)
  elseif want.path_pattern then
    local p = rest:match("^(" .. want.path_pattern .. "): ")
    assert.is_truthy(p, "path matching " .. want.path_pattern .. " in: " .. line)
    rest = rest:sub(#p + 3)
  end
  assert.is_true(#rest > 0, "empty reason: " .. line)
  for _, r in ipairs(type(want.reason) == "table" and want.reason or { want.reason }) do
    assert.is_truthy(rest:find(r, 1, true), "reason should mention " .. r .. ": " .. line)
  end
  assert.is_truthy(err:find("torii: configuration file " .. conf .. " test failed", 1, true), err)
  assert.are.equal("", out)
  return err
end

local L = "listen: 127.0.0.1:1\nworkers: 1\n" -- 2 lines, never bound by -t

local ROUTE_A = [[
routes:
  - id: a
    uri: /a
    upstream: {nodes: ["127.0.0.1:1"]}
]] -- lines 3..6 after L

local VALID_YAML = [[
# a comment
listen:
  - 127.0.0.1:${PORT}
workers: 1
pid_file: logs/torii.pid
log:
  level: info
  error: logs/error.log
  access: logs/access.log
shutdown_timeout: 2s
trusted_proxies: ["10.0.0.0/8", "192.168.0.0/16"]
client:
  header_timeout: 10s
  body_timeout: 1m
  send_timeout: 60
  keepalive_timeout: 75s
  keepalive_requests: 1000
  max_header_size: 32k
  max_headers: 100
  max_body_size: 1m
  max_connections: 10000
proxy:
  timeout: {connect: 5s, send: 60s, read: 60s}
  keepalive_pool: {size: 64, idle_timeout: 60s, requests: 1000}
  buffer_size: 64k
routes:
  - id: users
    uri: /users/*
    upstream:
      nodes: ["127.0.0.1:${MOCK}"]
    timeout: {connect: 2s, send: 5s, read: 5s}
    max_body_size: 10m
  - id: multi
    uris: [/x, /y/*]
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
]]

local function valid_json(port, mock)
  return cjson.encode({
    listen = { "127.0.0.1:" .. port },
    workers = 1,
    pid_file = "logs/torii.pid",
    log = { level = "info", error = "logs/error.log", access = "logs/access.log" },
    shutdown_timeout = "2s",
    trusted_proxies = { "10.0.0.0/8", "192.168.0.0/16" },
    client = {
      header_timeout = "10s", body_timeout = "1m", send_timeout = 60, keepalive_timeout = "75s",
      keepalive_requests = 1000, max_header_size = "32k", max_headers = 100,
      max_body_size = "1m", max_connections = 10000,
    },
    proxy = {
      timeout = { connect = "5s", send = "60s", read = "60s" },
      keepalive_pool = { size = 64, idle_timeout = "60s", requests = 1000 },
      buffer_size = "64k",
    },
    routes = {
      { id = "users", uri = "/users/*", upstream = { nodes = { "127.0.0.1:" .. mock } },
        timeout = { connect = "2s", send = "5s", read = "5s" }, max_body_size = "10m" },
      { id = "multi", uris = { "/x", "/y/*" }, upstream = { nodes = { "127.0.0.1:" .. mock } } },
    },
  }):gsub("\\/", "/")
end

local function route_of(gw, target)
  local deadline = proc.now() + 3
  while proc.now() < deadline do
    for _, l in ipairs(gw:access_log()) do
      if l:find('"GET ' .. target .. " ", 1, true) then return l:match(" route=(%S+)") end
    end
    proc.sleep(0.02)
  end
end

describe("torii configuration", function()
  after_each(function()
    gateway.cleanup_all()
    for _, d in ipairs(tmpdirs) do gateway.rmdir(d) end
    tmpdirs = {}
  end)

  describe("valid configurations", function()
    it("a full YAML config passes -t and starts with every key applied", function()
      local mock = gateway.mock { id = "m" }
      local code, out, err, conf = check((VALID_YAML:gsub("${PORT}", "1"):gsub("${MOCK}", mock.port)))
      assert.are.equal(0, code, err)
      assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)
      assert.are.equal("", err)

      local gw = gateway.start { config_text = VALID_YAML, vars = { MOCK = mock.port } }
      for _, path in ipairs({ "/users/1", "/x", "/y/z" }) do
        local resp = assert(http.get(gw.port, path))
        assert.are.equal(200, resp.status, path)
        assert.are.equal(path, cjson.decode(resp.body).target)
      end
      assert.are.equal(404, assert(http.get(gw.port, "/x/more")).status)
      assert.are.equal("users", route_of(gw, "/users/1"))
      assert.are.equal("multi", route_of(gw, "/y/z"))
      gw:assert_clean()
    end)

    it("the same config as JSON passes -t and starts", function()
      local mock = gateway.mock { id = "m" }
      local code, out, err, conf = check(valid_json(1, mock.port), nil, "torii.json")
      assert.are.equal(0, code, err)
      assert.are.equal("torii: configuration file " .. conf .. " test is successful\n", out)

      local port = gateway.free_port()
      local gw = gateway.start { config_text = valid_json(port, mock.port), config_name = "torii.json",
        port = port }
      for _, path in ipairs({ "/users/1", "/x", "/y/z" }) do
        local resp = assert(http.get(gw.port, path))
        assert.are.equal(200, resp.status, path)
        assert.are.equal(path, cjson.decode(resp.body).target)
      end
      assert.are.equal("multi", route_of(gw, "/x"))
      gw:assert_clean()
    end)

    it("accepts every duration and size unit", function()
      local code, out, err = check(L .. [[
shutdown_timeout: 1
client:
  header_timeout: 500ms
  body_timeout: 3s
  send_timeout: 2m
  keepalive_timeout: 1h
  max_header_size: 2048
  max_body_size: 1g
proxy:
  timeout: {connect: 1d, send: 10, read: 250ms}
  buffer_size: 32k
]])
      assert.are.equal(0, code, err)
      assert.is_truthy(out:find("test is successful", 1, true))
    end)

    it("keeps YAML 1.2 scalars: `on`, `yes`, `no` are strings (valid as route ids)", function()
      local mock = gateway.mock { id = "m" }
      local gw = gateway.start { config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
routes:
  - id: no
    uri: /no
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
  - id: on
    uri: /on
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
]], vars = { MOCK = mock.port } }
      assert.are.equal(200, assert(http.get(gw.port, "/no")).status)
      assert.are.equal(200, assert(http.get(gw.port, "/on")).status)
      assert.are.equal("no", route_of(gw, "/no"))
      assert.are.equal("on", route_of(gw, "/on"))
      gw:assert_clean()
    end)

    it("include: routes from conf.d/*.yaml are served, relative to the main file", function()
      local mock = gateway.mock { id = "inc" }
      local gw = gateway.start {
        config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
include: ["conf.d/*.yaml"]
routes:
  - id: main
    uri: /main
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
]],
        vars = { MOCK = mock.port },
        extra_files = {
          ["conf.d/a.yaml"] = "routes:\n  - id: from-a\n    uri: /a/*\n"
            .. "    upstream: {nodes: [\"127.0.0.1:${MOCK}\"]}\n",
          ["conf.d/b.yaml"] = "routes:\n  - id: from-b\n    uris: [/b, /bb]\n"
            .. "    upstream: {nodes: [\"127.0.0.1:${MOCK}\"]}\n",
          ["conf.d/ignored.txt"] = "this is not yaml: [",
        },
      }
      for path, id in pairs({ ["/main"] = "main", ["/a/1"] = "from-a", ["/b"] = "from-b", ["/bb"] = "from-b" }) do
        local resp = assert(http.get(gw.port, path))
        assert.are.equal(200, resp.status, path)
        assert.are.equal("inc", resp.h["x-upstream-id"])
        assert.are.equal(id, route_of(gw, path), path)
      end
      assert.are.equal(404, assert(http.get(gw.port, "/c")).status)
      gw:assert_clean()
    end)

    it("include of an empty conf.d is fine", function()
      local code, out, err = check(L .. 'include: ["conf.d/*.yaml"]\n', { ["conf.d"] = true })
      assert.are.equal(0, code, err)
      assert.is_truthy(out:find("test is successful", 1, true))
      local gw = gateway.start {
        config_text = 'listen: 127.0.0.1:${PORT}\nworkers: 1\ninclude: ["conf.d/*.yaml"]\n',
      }
      local resp = assert(http.get(gw.port, "/anything"))
      assert.are.equal(404, resp.status)
      gw:assert_clean()
    end)
  end)

  describe("errors (exit 1, `FILE:LINE: path: reason`)", function()
    it("unknown key at the top level", function()
      expect_error(L .. "bogus: 1\n", { line = 3, path = "bogus", reason = "unknown key" })
    end)

    it("unknown nested key", function()
      expect_error(L .. "client:\n  header_timeout: 1s\n  bogus: 2\n",
        { line = 5, path = "client.bogus", reason = "unknown key" })
      expect_error(L .. "proxy:\n  timeout:\n    connect: 1s\n    reed: 2s\n",
        { line = 6, path = "proxy.timeout.reed", reason = "unknown key" })
    end)

    it("unknown key in a route", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n"
        .. "    color: red\n", { line = 10, path = "routes[1].color", reason = "unknown key" })
    end)

    it("wrong types", function()
      expect_error(L .. "client:\n  keepalive_requests: abc\n",
        { line = 4, path = "client.keepalive_requests", reason = "integer" })
      expect_error(L .. "routes: {a: 1}\n", { line = 3, path = "routes", reason = "list" })
      expect_error(L .. "log: debug\n", { line = 3, path = "log", reason = "map" })
      expect_error(L .. "routes:\n  - id: 5\n    uri: /a\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 4, path = "routes[0].id", reason = "string" })
      expect_error(L .. "routes:\n  - id: a\n    uri: /a\n    upstream:\n      nodes: \"127.0.0.1:1\"\n",
        { line = 7, path = "routes[0].upstream.nodes", reason = "list" })
      expect_error(L .. "log: {level: loud}\n", { line = 3, path = "log.level", reason = "debug" })
      expect_error(L .. "io_uring: on\n", { line = 3, path = "io_uring", reason = "boolean" })
    end)

    it("out-of-range values", function()
      expect_error(L:gsub("workers: 1\n", "workers: 0\n"), { line = 2, path = "workers", reason = { "256", "0" } })
      expect_error(L:gsub("workers: 1\n", "workers: 257\n"), { line = 2, path = "workers", reason = "257" })
      expect_error(L .. "client:\n  max_header_size: 10\n",
        { line = 4, path = "client.max_header_size", reason = "10" })
      expect_error(L .. "proxy:\n  keepalive_pool:\n    size: -1\n",
        { line = 5, path = "proxy.keepalive_pool.size", reason = "-1" })
    end)

    it("bad durations and sizes", function()
      expect_error(L .. "shutdown_timeout: 5 parsecs\n",
        { line = 3, path = "shutdown_timeout", reason = { '"5 parsecs"', "duration" } })
      expect_error(L .. "client:\n  max_body_size: 1x\n",
        { line = 4, path = "client.max_body_size", reason = { '"1x"', "size" } })
      expect_error(L .. ROUTE_A .. "    timeout: {read: 1x}\n",
        { line = 7, path = "routes[0].timeout.read", reason = '"1x"' })
    end)

    it("missing listen", function()
      expect_error("workers: 1\nroutes: []\n", { line = 1, path_pattern = "[^:]+", reason = { "listen", "missing" } })
      expect_error("listen: []\nworkers: 1\n", { line = 1, path = "listen", reason = "at least one" })
    end)

    it("missing route id", function()
      expect_error(L .. ROUTE_A .. "  - uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 7, path = "routes[1]", reason = '"id"' })
    end)

    it("route with both uri and uris", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    uris: [/c]\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 7, path = "routes[1]", reason = { "uri", "uris" } })
    end)

    it("uri not starting with '/'", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: b/c\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 8, path = "routes[1].uri", reason = { '"/"', '"b/c"' } })
      expect_error(L .. "routes:\n  - id: a\n    uris: [/a, x]\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 5, path = "routes[0].uris[1]", reason = '"x"' })
    end)

    it("'*' not at the end of a uri", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b*/c\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 8, path = "routes[1].uri", reason = { "*", '"/b*/c"' } })
    end)

    it("empty nodes", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    upstream: {nodes: []}\n",
        { line = 9, path = "routes[1].upstream.nodes", reason = "node" })
    end)

    it("bad nodes: no port, port out of range", function()
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    upstream:\n      nodes:\n        - localhost\n",
        { line = 11, path = "routes[1].upstream.nodes[0]", reason = '"localhost"' })
      expect_error(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    upstream:\n      nodes:\n"
        .. "        - 127.0.0.1:2\n        - 127.0.0.1:70000\n",
        { line = 12, path = "routes[1].upstream.nodes[1]", reason = { '"127.0.0.1:70000"', "port" } })
    end)

    it("duplicate route ids, within a file and across included files (both places named)", function()
      local err = expect_error(L .. ROUTE_A .. "  - id: a\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
        { line = 7, path_pattern = "routes[^:]*", reason = '"a"' })
      assert.is_truthy(err:find("torii.yaml:4", 1, true), err)

      local extra = {
        ["conf.d/x.yaml"] = "routes:\n  - id: b\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n"
          .. "  - id: a\n    uri: /c\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n",
      }
      err = expect_error(L .. 'include: ["conf.d/*.yaml"]\n' .. ROUTE_A,
        { file = "conf.d/x.yaml", line = 5, path_pattern = "routes[^:]*", reason = '"a"' }, extra)
      -- the first declaration: main file, line 5 (`- id: a`)
      assert.is_truthy(err:find("/conf/torii.yaml:5", 1, true), "should name the first place: " .. err)
    end)

    it("errors inside included files name the included file", function()
      expect_error(L .. 'include: ["conf.d/*.yaml"]\n', { file = "conf.d/x.yaml", line = 1, path = "workers",
        reason = "unknown key" }, { ["conf.d/x.yaml"] = "workers: 2\n" })
      expect_error(L .. 'include: ["conf.d/*.yaml"]\n', { file = "conf.d/x.yaml", line = 5,
        path = "routes[0].bogus", reason = "unknown key" },
        { ["conf.d/x.yaml"] = "routes:\n  - id: b\n    uri: /b\n    upstream: {nodes: [\"127.0.0.1:1\"]}\n"
          .. "    bogus: 1\n" })
    end)

    it("syntax errors give the line number (YAML and JSON)", function()
      expect_error(L .. "client: {a: [1, 2}\n", { line = 3, reason = "flow" })
      expect_error('{\n  "listen": "127.0.0.1:1",\n  "workers": 1,\n  "client" {"a": 1}\n}\n',
        { line = 4, file = "torii.json", reason = "'}'" }, nil, "torii.json")
    end)

    it("JSON errors use the same FILE:LINE: path: reason shape", function()
      expect_error('{\n  "listen": "127.0.0.1:1",\n  "workers": 1,\n  "bogus": true\n}\n',
        { line = 4, file = "torii.json", path = "bogus", reason = "unknown key" }, nil, "torii.json")
      expect_error('{\n  "listen": "127.0.0.1:1",\n  "routes": [\n    {"id": "a", "uri": "/a",\n'
        .. '     "upstream": {"nodes": ["localhost"]}}\n  ]\n}\n',
        { line = 5, file = "torii.json", path = "routes[0].upstream.nodes[0]", reason = '"localhost"' },
        nil, "torii.json")
    end)

    it("duplicate YAML keys, top level and nested (path of the key, then the reason)", function()
      expect_error(L .. "workers: 2\n", { line = 3, path = "workers", reason = "duplicate" })
      expect_error(L .. "client:\n  header_timeout: 1s\n  header_timeout: 2s\n",
        { line = 5, path = "client.header_timeout", reason = "duplicate" })
    end)

    it("YAML 1.2 booleans: `workers: on` is a string, the error mentions auto", function()
      expect_error(L:gsub("workers: 1\n", "workers: on\n"), { line = 2, path = "workers", reason = "auto" })
      expect_error(L:gsub("workers: 1\n", "workers: yes\n"), { line = 2, path = "workers", reason = "auto" })
      expect_error(L:gsub("workers: 1\n", "workers: true\n"), { line = 2, path = "workers", reason = "auto" })
    end)

    it("more than one YAML document", function()
      expect_error(L .. "---\nlisten: 127.0.0.1:2\n", { line = 3, reason = "document" })
    end)

    it("a bad config also stops startup with the same message, exit 1", function()
      local dir, conf = make_prefix(L .. ROUTE_A .. "  - id: b\n    uri: /b\n    upstream:\n      nodes:\n"
        .. "        - 127.0.0.1:70000\n")
      local code, out, err = gateway.run_cli({ "-p", dir, "-c", conf }, { timeout = 10 })
      assert.are.equal(1, code, out .. err)
      local want = "torii: " .. conf .. ":11: routes[1].upstream.nodes[0]: invalid node \"127.0.0.1:70000\""
      assert.is_truthy(err:find(want, 1, true), err)
      assert.is_nil(err:find("test failed", 1, true))
      assert.is_false(file_exists(dir .. "/logs/torii.pid"))

      local dir2, conf2 = make_prefix(L .. "bogus: 1\n")
      code, out, err = gateway.run_cli({ "-p", dir2, "-c", conf2 }, { timeout = 10 })
      assert.are.equal(1, code, out .. err)
      assert.is_truthy(err:find("torii: " .. escape(conf2) .. ":3: bogus: unknown key"), err)
    end)
  end)

  describe("configured values take effect", function()
    it("a route's read timeout (200ms) gives a quick 504 for /delay/1000", function()
      local mock = gateway.mock { id = "m" }
      local gw = gateway.start { config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
proxy:
  timeout: {read: 5s}
routes:
  - id: slow
    uri: /delay/*
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
    timeout: {read: 200ms}
  - id: other
    uri: /other/*
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
]], vars = { MOCK = mock.port } }
      local t0 = proc.now()
      local resp = assert(http.get(gw.port, "/delay/1000"))
      local took = proc.now() - t0
      assert.are.equal(504, resp.status)
      assert.are.equal("application/json", resp.h["content-type"])
      assert.are.equal("Gateway Timeout", cjson.decode(resp.body).error)
      assert.is_true(took >= 0.15 and took < 0.8, "took " .. took .. " s")
      -- the other route keeps the global 5s read timeout
      resp = assert(http.get(gw.port, "/other/delay", { timeout = 5 }))
      assert.are.equal(200, resp.status)
      assert.is_truthy(gw:wait_log("%[error%].*timed out", 2))
      gw:assert_clean({ "timed out" })
    end)

    it("proxy.timeout.read applies globally and a route's timeout overrides it", function()
      local mock = gateway.mock { id = "m" }
      local gw = gateway.start { config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
proxy:
  timeout: {read: 300ms}
routes:
  - id: short
    uri: /delay/*
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
  - id: long
    uri: /delay/1000
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
    timeout: {read: 3s}
]], vars = { MOCK = mock.port } }
      local t0 = proc.now()
      local resp = assert(http.get(gw.port, "/delay/999"))
      assert.are.equal(504, resp.status)
      assert.is_true(proc.now() - t0 < 0.9, "took " .. (proc.now() - t0))
      -- the exact route /delay/1000 has its own 3s read timeout
      resp = assert(http.get(gw.port, "/delay/1000", { timeout = 5 }))
      assert.are.equal(200, resp.status)
      assert.are.equal("/delay/1000", cjson.decode(resp.body).target)
      assert.are.equal("long", route_of(gw, "/delay/1000"))
      assert.are.equal("short", route_of(gw, "/delay/999"))
      gw:assert_clean({ "timed out" })
    end)

    it("client.max_body_size and a route's max_body_size are applied", function()
      local mock = gateway.mock { id = "m" }
      local gw = gateway.start { config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
client: {max_body_size: 1k}
routes:
  - id: small
    uri: /small
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
  - id: big
    uri: /big-upload
    upstream: {nodes: ["127.0.0.1:${MOCK}"]}
    max_body_size: 4k
]], vars = { MOCK = mock.port } }
      local body = string.rep("x", 2048)
      local resp = assert(http.request(gw.port, { method = "POST", path = "/small", body = body }))
      assert.are.equal(413, resp.status)
      resp = assert(http.request(gw.port, { method = "POST", path = "/small", body = string.rep("x", 1024) }))
      assert.are.equal(200, resp.status)
      resp = assert(http.request(gw.port, { method = "POST", path = "/big-upload", body = body }))
      assert.are.equal(200, resp.status)
      assert.are.equal(2048, cjson.decode(resp.body).body_length)
      resp = assert(http.request(gw.port, { method = "POST", path = "/big-upload", body = string.rep("x", 4097) }))
      assert.are.equal(413, resp.status)
      gw:assert_clean()
    end)

    it("client.header_timeout (300ms) gives 408 and closes", function()
      local gw = gateway.start { config_text = [[
listen: 127.0.0.1:${PORT}
workers: 1
client: {header_timeout: 300ms}
]] }
      local conn = assert(http.connect(gw.port))
      assert(conn:send("GET / HTTP/1.1\r\nHost: x\r\n"))
      local t0 = proc.now()
      local resp = assert(conn:read_response { timeout = 3 })
      local took = proc.now() - t0
      assert.are.equal(408, resp.status)
      assert.is_true(took >= 0.2 and took < 1.5, "took " .. took)
      assert.are.equal("close", (resp.h["connection"] or ""):lower())
      assert.is_true(conn:closed(2))
      conn:close()
      gw:assert_clean()
    end)
  end)
end)
