-- Integration specs: streaming and back-pressure. A huge response read
-- slowly (or not at all) and a huge upload to a slow upstream keep the
-- worker's memory flat and arrive intact; /stream chunks arrive as they are
-- produced; big bodies keep their bytes exactly; a client that goes away
-- mid-response leaves the worker healthy.

local gateway = require "gateway"
local http = require "http"
local proc = require "proc"
local cjson = require "cjson"
local socket = require "socket"
local testutil = require "testutil"

local ALPHA = "abcdefghijklmnopqrstuvwxyz"
local PAT = string.rep(ALPHA, 41000) -- > 1 MiB of the mock's pattern
local RSS_SLACK_KB = 32 * 1024

local eventually = testutil.eventually

local function node(m) return "127.0.0.1:" .. m.port end

local function start(m, extra)
  local cfg = { workers = 1, routes = {
    { id = "all", uri = "/*", upstream = { nodes = { node(m) } } } } }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return gateway.start { config = cfg }
end

-- The only worker's pid and its RSS after a warm-up request.
local function baseline(gw)
  local resp = assert(http.get(gw.port, "/echo"))
  assert.are.equal(200, resp.status)
  local workers = gw:workers()
  assert.are.equal(1, #workers)
  local pid = workers[1]
  return pid, assert(proc.rss_kb(pid))
end

-- Is `piece` the mock's pattern starting at body offset `off`?
local function pattern_ok(piece, off)
  local i = 1
  while i <= #piece do
    local n = math.min(#piece - i + 1, #PAT - 26)
    local s = (off + i - 1) % 26
    if piece:sub(i, i + n - 1) ~= PAT:sub(s + 1, s + n) then return false end
    i = i + n
  end
  return true
end

-- A byte source over the connection's socket (after read_response{head}):
-- returns the next bytes, or nil and "closed" | "timeout" (no byte within
-- `stall` seconds).
local function raw_source(conn)
  local sock = conn.sock
  return function(stall)
    if #conn.buf > 0 then
      local d = conn.buf
      conn.buf = ""
      return d
    end
    if conn.eof then return nil, "closed" end
    local deadline = proc.now() + stall
    while true do
      local d, err, partial = sock:receive(262144)
      d = d or partial
      if err and err ~= "timeout" then conn.eof = true end
      if d and #d > 0 then return d end
      if conn.eof then return nil, "closed" end
      local left = deadline - proc.now()
      if left <= 0 then return nil, "timeout" end
      socket.select({ sock }, nil, math.min(left, 0.5))
    end
  end
end

-- A streaming body decoder: feed(bytes) calls on_data(piece) with body
-- bytes; returns true once the body is complete (leftover bytes after it
-- are kept in .rest), or nil and an error.
local function decoder(framing, length, on_data)
  local d = { rest = "" }
  if framing == "content-length" then
    local left = length
    function d.feed(b)
      local n = math.min(#b, left)
      if n > 0 then on_data(b:sub(1, n)) end
      left = left - n
      if left == 0 then d.rest = b:sub(n + 1); return true end
      return false
    end
  elseif framing == "chunked" then
    local state, left, pend = "size", 0, ""
    function d.feed(b)
      local s = pend .. b
      pend = ""
      local i = 1
      while i <= #s do
        if state == "data" then
          local n = math.min(#s - i + 1, left)
          on_data(s:sub(i, i + n - 1))
          i, left = i + n, left - n
          if left == 0 then state = "crlf" end
        elseif state == "crlf" then
          if #s - i + 1 < 2 then break end
          if s:sub(i, i + 1) ~= "\r\n" then return nil, "chunk data not followed by CRLF" end
          i, state = i + 2, "size"
        else -- "size" or "trailer": a line
          local e = s:find("\r\n", i, true)
          if not e then break end
          local line = s:sub(i, e - 1)
          i = e + 2
          if state == "size" then
            local hex = line:match("^(%x+)")
            if not hex then return nil, "bad chunk size line: " .. line end
            left = tonumber(hex, 16)
            state = left == 0 and "trailer" or "data"
          elseif line == "" then
            d.rest = s:sub(i)
            return true
          end
        end
      end
      pend = s:sub(i)
      if #pend > 4096 then return nil, "chunk line too long" end
      return false
    end
  else -- close-delimited: complete at EOF (see read_stream)
    function d.feed(b)
      on_data(b)
      return false
    end
  end
  return d
end

-- Reads a body as it streams. opts: framing, length, on_data(piece, off),
-- stall (max seconds without a byte, 5), deadline (absolute), pace
-- (function(total) called after each piece, for slow readers).
-- Returns total bytes and nil, or total bytes and an error.
local function read_stream(conn, opts)
  local src = raw_source(conn)
  local total = 0
  local dec = decoder(opts.framing, opts.length, function(piece)
    if opts.on_data then opts.on_data(piece, total) end
    total = total + #piece
  end)
  while true do
    if proc.now() > opts.deadline then return total, "deadline passed" end
    local b, err = src(opts.stall or 5)
    if not b then
      if err == "closed" and opts.framing == "close" then return total end
      return total, err == "timeout" and ("stalled: no byte for " .. (opts.stall or 5) .. " s") or err
    end
    local done, derr = dec.feed(b)
    if done == nil then return total, derr end
    if done then
      conn.buf = dec.rest .. conn.buf
      return total
    end
    if opts.pace then opts.pace(total) end
  end
end

-- Sends a request and reads its head only.
local function request_head(conn, req)
  assert(conn:request(req))
  local resp, err = conn:read_response { head = true, timeout = 5 }
  assert.is_truthy(resp, "no response head: " .. tostring(err))
  -- read_response{head=true} read no body: recompute the real framing
  local te = resp.h["transfer-encoding"]
  if te then
    resp.framing = "chunked"
  elseif resp.h["content-length"] then
    resp.framing, resp.length = "content-length", tonumber(resp.h["content-length"])
  else
    resp.framing = "close"
  end
  return resp
end

describe("back-pressure", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  -- Content-Length response: slow reader, pause, then fast.
  local function slow_then_fast(path, size, framing)
    local m = gateway.mock { id = "m" }
    local gw = start(m)
    local pid, base = baseline(gw)
    local conn = assert(http.connect(gw.port))
    local resp = request_head(conn, { path = path })
    assert.are.equal(200, resp.status)
    assert.are.equal(framing, resp.framing, resp.raw_head)
    if framing == "content-length" then assert.are.equal(size, resp.length) end
    local max_rss, bad_at = base, nil
    local function sample()
      local r = proc.rss_kb(pid)
      if r and r > max_rss then max_rss = r end
    end
    local function check(piece, off)
      if not bad_at and not pattern_ok(piece, off) then bad_at = off end
    end
    local t0 = proc.now()
    -- phase 1: a very slow reader (a few KiB every 50 ms), then no reading at all
    local slow = 0
    local src = raw_source(conn)
    local dec = decoder(resp.framing, resp.length, function(piece)
      check(piece, slow)
      slow = slow + #piece
    end)
    while proc.now() - t0 < 0.8 do
      local b = src(0.05)
      if b then assert.are.equal(false, dec.feed(b)) end
      sample()
      proc.sleep(0.05)
    end
    for _ = 1, 20 do -- 1 s paused
      sample()
      proc.sleep(0.05)
    end
    assert.is_true(max_rss - base <= RSS_SLACK_KB,
      ("worker RSS grew by %d KiB while the client was slow (base %d KiB)"):format(max_rss - base, base))
    assert.is_true(slow < size, "the slow reader got everything")
    -- phase 2: read the rest as fast as possible
    local rest_off = slow
    local total, err = read_stream(conn, {
      framing = resp.framing, length = resp.length and (resp.length - slow) or nil,
      deadline = proc.now() + 30, stall = 5,
      on_data = function(piece, off) check(piece, rest_off + off) end,
      pace = function(n) if n % (8 * 1024 * 1024) < 262144 then sample() end end,
    })
    assert.is_nil(err, ("reading the rest failed at %d of %d bytes: %s"):format(slow + total, size, tostring(err)))
    assert.are.equal(size, slow + total)
    assert.is_nil(bad_at, "body bytes differ from the pattern at offset " .. tostring(bad_at))
    assert.is_true(max_rss - base <= RSS_SLACK_KB,
      ("worker RSS grew by %d KiB (base %d KiB)"):format(max_rss - base, base))
    -- the connection is still good, and so is the worker
    assert(conn:request { path = "/echo" })
    local r2 = assert(conn:read_response())
    assert.are.equal(200, r2.status)
    conn:close()
    assert.are.same({ pid }, gw:workers())
    return gw
  end

  it("a 200 MB response read very slowly, then paused, keeps the worker RSS flat and arrives intact", function()
    local gw = slow_then_fast("/big?size=200000000", 200000000, "content-length")
    gw:stop()
    gw:assert_clean()
  end)

  it("a 50 MB chunked response read slowly keeps RSS flat and arrives intact", function()
    local size = 50000000
    local m = gateway.mock { id = "m" }
    local gw = start(m)
    local pid, base = baseline(gw)
    local conn = assert(http.connect(gw.port))
    local resp = request_head(conn, { path = "/big?chunked=1&size=" .. size })
    assert.are.equal(200, resp.status)
    assert.are.equal("chunked", resp.framing)
    local max_rss, bad_at, got = base, nil, 0
    local function sample()
      local r = proc.rss_kb(pid)
      if r and r > max_rss then max_rss = r end
    end
    local src = raw_source(conn)
    local dec = decoder("chunked", nil, function(piece)
      if not bad_at and not pattern_ok(piece, got) then bad_at = got end
      got = got + #piece
    end)
    local t0 = proc.now()
    local done, derr = false, nil
    -- slow: at most a few reads per 50 ms for 0.8 s, then 1 s paused
    while proc.now() - t0 < 0.8 do
      local b = src(0.05)
      if b then done, derr = dec.feed(b) end
      assert.is_not_nil(done, derr)
      sample()
      proc.sleep(0.05)
    end
    for _ = 1, 20 do sample(); proc.sleep(0.05) end
    assert.is_true(max_rss - base <= RSS_SLACK_KB,
      ("worker RSS grew by %d KiB while the client was slow"):format(max_rss - base))
    -- fast
    local deadline, n = proc.now() + 20, 0
    while not done do
      assert.is_true(proc.now() < deadline, "deadline passed at " .. got .. " bytes")
      local b, err = src(5)
      assert.is_truthy(b, ("reading stopped at %d of %d bytes: %s"):format(got, size, tostring(err)))
      done, derr = dec.feed(b)
      assert.is_not_nil(done, derr)
      n = n + 1
      if n % 32 == 0 then sample() end
    end
    assert.are.equal(size, got)
    assert.is_nil(bad_at, "body bytes differ from the pattern at offset " .. tostring(bad_at))
    assert.is_true(max_rss - base <= RSS_SLACK_KB, ("worker RSS grew by %d KiB"):format(max_rss - base))
    conn.buf = dec.rest .. conn.buf
    assert(conn:request { path = "/echo" })
    assert.are.equal(200, assert(conn:read_response()).status)
    conn:close()
    gw:stop()
    gw:assert_clean()
  end)

  -- Uploads `size` bytes (Content-Length or chunked) to /slowread at 20 MB/s,
  -- sampling the worker's RSS; returns the echo and the largest RSS growth.
  local function slow_upload(chunked)
    local size = 100 * 1000 * 1000
    local m = gateway.mock { id = "m" }
    local gw = start(m, { client = { max_body_size = "200m" } })
    local pid, base = baseline(gw)
    local conn = assert(http.connect(gw.port))
    local head = "POST /slowread?rate=20000000 HTTP/1.1\r\nHost: x\r\n"
      .. (chunked and "Transfer-Encoding: chunked\r\n" or ("Content-Length: " .. size .. "\r\n")) .. "\r\n"
    assert(conn:send(head))
    local piece = string.rep("u", 1000 * 1000)
    local max_rss = base
    local t0 = proc.now()
    for i = 1, size / #piece do
      local data = chunked and (("%x\r\n"):format(#piece) .. piece .. "\r\n") or piece
      local ok, err = conn:send(data, 10)
      assert.is_truthy(ok, "upload stopped after " .. (i - 1) .. " MB: " .. tostring(err))
      local r = proc.rss_kb(pid)
      if r and r > max_rss then max_rss = r end
      assert.is_true(proc.now() - t0 < 30, "upload too slow")
    end
    if chunked then assert(conn:send("0\r\n\r\n")) end
    local resp = assert(conn:read_response { timeout = 15 })
    assert.are.equal(200, resp.status, resp.body)
    local doc = cjson.decode(resp.body)
    local took = proc.now() - t0
    conn:close()
    gw:stop()
    gw:assert_clean()
    return doc, max_rss - base, took, size
  end

  it("a 100 MB Content-Length upload to a slow upstream keeps RSS flat; the upstream gets every byte", function()
    local doc, growth, took, size = slow_upload(false)
    assert.are.equal("content-length", doc.framing)
    assert.are.equal(size, doc.body_length)
    assert.is_true(growth <= RSS_SLACK_KB, ("worker RSS grew by %d KiB during the upload"):format(growth))
    -- the upstream's pace (20 MB/s) governed the upload: it was not buffered
    assert.is_true(took >= 3.5, "100 MB went through a 20 MB/s reader in " .. took .. " s")
  end)

  it("a 100 MB chunked upload to a slow upstream keeps RSS flat; the upstream gets every byte", function()
    local doc, growth, took, size = slow_upload(true)
    assert.are.equal("chunked", doc.framing)
    assert.are.equal(size, doc.body_length)
    assert.is_true(growth <= RSS_SLACK_KB, ("worker RSS grew by %d KiB during the upload"):format(growth))
    assert.is_true(took >= 3.5, "100 MB went through a 20 MB/s reader in " .. took .. " s")
  end)
end)

describe("streaming", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  -- Reads raw bytes until `done(all)` is true, recording arrival times.
  local function timed_read(conn, done, timeout)
    local arrivals, all = {}, ""
    local deadline = proc.now() + timeout
    while not done(all) do
      local left = deadline - proc.now()
      assert.is_true(left > 0, "timed out; got: " .. all)
      local d, err = conn:read_raw(nil, left)
      if not d then
        if err == "closed" and done(all, true) then break end
        error("read failed (" .. tostring(err) .. "); got: " .. all)
      end
      arrivals[#arrivals + 1] = { t = proc.now(), n = #d }
      all = all .. d
    end
    return all, arrivals
  end

  it("/stream chunks reach an HTTP/1.1 client as they are produced", function()
    local m = gateway.mock { id = "m" }
    local gw = start(m)
    local conn = assert(http.connect(gw.port))
    local t0 = proc.now()
    assert(conn:send("GET /stream?chunks=5&size=10&interval=200 HTTP/1.1\r\nHost: x\r\n\r\n"))
    local raw, arrivals = timed_read(conn, function(all)
      return all:find("\r\n0\r\n\r\n$") ~= nil
    end, 5)
    local head_end = assert(raw:find("\r\n\r\n", 1, true))
    local head = raw:sub(1, head_end + 3)
    assert.is_truthy(head:match("^HTTP/1%.1 200 "), head)
    assert.is_truthy(head:lower():find("\r\ntransfer%-encoding: chunked\r\n"), head)
    -- decode the chunked body
    local body, rest = {}, raw:sub(head_end + 4)
    while true do
      local hex, after = rest:match("^(%x+)[^\r]*\r\n()")
      assert.is_truthy(hex, "bad chunked body: " .. rest)
      local n = tonumber(hex, 16)
      if n == 0 then break end
      body[#body + 1] = rest:sub(after, after + n - 1)
      assert.are.equal("\r\n", rest:sub(after + n, after + n + 1))
      rest = rest:sub(after + n + 2)
    end
    assert.are.equal(PAT:sub(1, 50), table.concat(body))
    -- the first body bytes came long before the last chunk was even produced
    local first_body_t
    local seen = 0
    for _, a in ipairs(arrivals) do
      seen = seen + a.n
      if seen > #head then first_body_t = a.t; break end
    end
    local last_t = arrivals[#arrivals].t
    assert.is_true(first_body_t - t0 < 0.35, "first chunk after " .. (first_body_t - t0) .. " s")
    assert.is_true(last_t - t0 >= 0.75, "last chunk after " .. (last_t - t0) .. " s (5 chunks, 200 ms apart)")
    assert.is_true(last_t - first_body_t >= 0.6, "chunks arrived together")
    assert.is_true(#arrivals >= 4, "expected the chunks in separate reads, got " .. #arrivals)
    -- and the connection is reusable
    assert(conn:request { path = "/echo" })
    assert.are.equal(200, assert(conn:read_response()).status)
    conn:close()
    gw:assert_clean()
  end)

  it("/stream reaches an HTTP/1.0 client incrementally (close-delimited)", function()
    local m = gateway.mock { id = "m" }
    local gw = start(m)
    local conn = assert(http.connect(gw.port))
    local t0 = proc.now()
    assert(conn:send("GET /stream?chunks=4&size=7&interval=200 HTTP/1.0\r\n\r\n"))
    local raw, arrivals = timed_read(conn, function(_, closed) return closed == true end, 5)
    local head_end = assert(raw:find("\r\n\r\n", 1, true))
    local head = raw:sub(1, head_end + 3)
    assert.is_truthy(head:match("^HTTP/1%.[01] 200 "), head)
    assert.is_falsy(head:lower():find("transfer-encoding", 1, true), head)
    assert.are.equal(PAT:sub(1, 28), raw:sub(head_end + 4))
    local first_body_t
    local seen = 0
    for _, a in ipairs(arrivals) do
      seen = seen + a.n
      if seen > #head then first_body_t = a.t; break end
    end
    assert.is_true(first_body_t - t0 < 0.35, "first bytes after " .. (first_body_t - t0) .. " s")
    assert.is_true(arrivals[#arrivals].t - first_body_t >= 0.45, "bytes arrived together")
    conn:close()
    gw:assert_clean()
  end)
end)

describe("body integrity", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  local function random_bytes(n, seed)
    math.randomseed(seed)
    local t = {}
    for i = 1, n do t[i] = string.char(math.random(0, 255)) end
    return table.concat(t)
  end

  it("a 1 MiB binary request body (Content-Length) reaches the upstream byte for byte", function()
    local m = gateway.mock { id = "m" }
    local gw = start(m, { client = { max_body_size = "4m" } })
    local body = random_bytes(1024 * 1024, 7)
    local resp = assert(http.request(gw.port, { method = "POST", path = "/echo", body = body, timeout = 10 }))
    assert.are.equal(200, resp.status)
    local doc = cjson.decode(resp.body)
    assert.are.equal("content-length", doc.framing)
    assert.are.equal(#body, doc.body_length)
    assert.is_true(doc.body == body, "body bytes altered")
    gw:assert_clean()
  end)

  it("a chunked binary request body with odd chunk sizes reaches the upstream byte for byte", function()
    local m = gateway.mock { id = "m" }
    local gw = start(m, { client = { max_body_size = "4m" } })
    local body = random_bytes(1000003, 11)
    local parts, i, k = {}, 1, 1
    while i <= #body do
      local n = ({ 1, 17, 4096, 65537, 100000, 3 })[k % 6 + 1]
      parts[#parts + 1] = body:sub(i, i + n - 1)
      i, k = i + n, k + 1
    end
    local resp = assert(http.request(gw.port, { method = "PUT", path = "/echo", chunked = parts, timeout = 10 }))
    assert.are.equal(200, resp.status)
    local doc = cjson.decode(resp.body)
    assert.are.equal("chunked", doc.framing)
    assert.are.equal(#body, doc.body_length)
    assert.is_true(doc.body == body, "body bytes altered")
    gw:assert_clean()
  end)

  for _, case in ipairs({
    { path = "/big?size=10000019", size = 10000019, framing = "content-length" },
    { path = "/big?chunked=1&size=3000001", size = 3000001, framing = "chunked" },
    { path = "/noframe?size=5000011", size = 5000011, framing = "chunked" },
  }) do
    it("response " .. case.path .. " arrives byte for byte (" .. case.framing .. ")", function()
      local m = gateway.mock { id = "m" }
      local gw = start(m)
      local conn = assert(http.connect(gw.port))
      assert(conn:request { path = case.path })
      local resp = assert(conn:read_response { timeout = 20 })
      assert.are.equal(200, resp.status)
      assert.are.equal(case.framing, resp.framing)
      assert.are.equal(case.size, #resp.body)
      assert.is_true(pattern_ok(resp.body, 0), "body bytes differ from the pattern")
      assert(conn:request { path = "/echo" })
      assert.are.equal(200, assert(conn:read_response()).status)
      conn:close()
      gw:assert_clean()
    end)
  end
end)

describe("a client that disconnects mid-response", function()
  after_each(function()
    gateway.cleanup_all()
  end)

  for _, how in ipairs({ "close", "reset" }) do
    it("(" .. how .. ") leaves the worker healthy and frees the upstream connection", function()
      local m = gateway.mock { id = "m" }
      local stats_conn = assert(http.connect(m.port))
      local function stats()
        assert(stats_conn:request { path = "/__stats" })
        return cjson.decode(assert(stats_conn:read_response()).body)
      end
      local gw = start(m)
      local pid = baseline(gw)
      for round = 1, 3 do
        local conn = assert(http.connect(gw.port))
        local resp = request_head(conn, { path = "/big?size=100000000" })
        assert.are.equal(200, resp.status)
        local got = #conn.buf
        while got < 1000000 do
          local d = assert(conn:read_raw(nil, 5))
          got = got + #d
        end
        if how == "reset" then conn:reset() else conn:close() end
        -- the mid-response upstream connection cannot be reused: it is closed
        assert.is_truthy(eventually(function()
          return stats().connections_open == 1
        end, 5), "round " .. round .. ": upstream connections still open: " .. cjson.encode(stats()))
      end
      stats_conn:close()
      -- the worker is the same process and serves normally
      assert.are.same({ pid }, gw:workers())
      local resp = assert(http.get(gw.port, "/echo"))
      assert.are.equal(200, resp.status)
      local big = assert(http.get(gw.port, "/big?size=3000000", { timeout = 10 }))
      assert.are.equal(3000000, #big.body)
      assert.is_true(pattern_ok(big.body, 0))
      -- stopping it reports no leak or sanitizer error
      local exited = gw:stop()
      assert.is_true(exited)
      gw:assert_clean()
    end)
  end
end)
