-- limit-count, in process: a fixed window counted in a shared dict.
local tt = require "torii.test"
local torii = require "torii"
local cjson = require "cjson"

describe("limit-count", function()
  it("lets `count` requests through per window, then rejects with 429", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 2, time_window = 60 } } }
    local r1, r2, r3 = gw:request {}, gw:request {}, gw:request {}
    assert.status(200, r1)
    assert.header("X-RateLimit-Limit", "2", r1)
    assert.header("X-RateLimit-Remaining", "1", r1)
    assert.status(200, r2)
    assert.header("X-RateLimit-Remaining", "0", r2)
    assert.status(429, r3)
    assert.equal("plugin", r3.answered)
    assert.is_nil(r3.upstream)
    assert.header("X-RateLimit-Remaining", "0", r3) -- on the rejection too
    local reset = tonumber(r3:header("X-RateLimit-Reset"))
    assert.is_true(reset >= 0 and reset <= 60)
    gw:close()
  end)

  it("answers with rejected_code and rejected_msg", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 1, time_window = 60, rejected_code = 503,
      rejected_msg = "slow down" } } }
    gw:request {}
    local res = gw:request {}
    assert.status(503, res)
    assert.same({ error_msg = "slow down" }, cjson.decode(res.body))
    gw:close()
  end)

  it("counts each client address apart by default", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 1, time_window = 60 } } }
    assert.status(200, gw:request { remote_addr = "10.0.0.1" })
    assert.status(429, gw:request { remote_addr = "10.0.0.1" })
    assert.status(200, gw:request { remote_addr = "10.0.0.2" })
    gw:close()
  end)

  it("counts by header: requests without it share one bucket", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 1, time_window = 60, key = "header:X-Team" } } }
    assert.status(200, gw:request { headers = { ["X-Team"] = "a" } })
    assert.status(200, gw:request { headers = { ["X-Team"] = "b" } })
    assert.status(429, gw:request { headers = { ["X-Team"] = "a" } })
    assert.status(200, gw:request {})
    assert.status(429, gw:request {})
    gw:close()
  end)

  it("counts by consumer after key-auth", function()
    local gw = tt.new {
      plugins = { ["key-auth"] = {}, ["limit-count"] = { count = 1, time_window = 60, key = "consumer" } },
      consumers = {
        { username = "ann", plugins = { ["key-auth"] = { key = "ka" } } },
        { username = "bob", plugins = { ["key-auth"] = { key = "kb" } } },
      },
    }
    assert.status(200, gw:request { headers = { apikey = "ka" }, remote_addr = "10.0.0.1" })
    assert.status(429, gw:request { headers = { apikey = "ka" }, remote_addr = "10.0.0.2" })
    assert.status(200, gw:request { headers = { apikey = "kb" }, remote_addr = "10.0.0.1" })
    gw:close()
  end)

  it("keeps its counters in the shared dict, which a new gateway starts empty", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 5, time_window = 60 } } }
    local function window() return math.floor(torii.now() / 60) * 60 end
    local start = window()
    gw:request {}
    gw:request {}
    if window() == start then -- else the window turned meanwhile
      local key = ("test|5/60/remote_addr|127.0.0.1|%d"):format(start)
      assert.equal(2, torii.shared["limit-count"]:get(key))
    end
    gw:close()
    gw = tt.new { plugins = { ["limit-count"] = { count = 1, time_window = 60 } } }
    assert.status(200, gw:request {})
    gw:close()
  end)

  it("starts a new window when the old one ends", function()
    local gw = tt.new { plugins = { ["limit-count"] = { count = 1, time_window = 1 } } }
    assert.status(200, gw:request {})
    local res = gw:request {}
    if res.status == 429 then -- else the window turned between the two requests
      tt.sleep(tonumber(res:header("X-RateLimit-Reset")) + 0.05)
      assert.status(200, gw:request {})
    end
    gw:close()
  end)

  it("rejects a configuration without count or with count 0", function()
    local ok, err = tt.check { plugins = { ["limit-count"] = { time_window = 60 } } }
    assert.is_nil(ok)
    assert.matches("count", err)
    ok, err = tt.check { plugins = { ["limit-count"] = { count = 0, time_window = 60 } } }
    assert.is_nil(ok)
    assert.matches("limit%-count%.count", err)
  end)
end)
