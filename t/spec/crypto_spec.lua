-- Specs for torii.crypto: OpenSSL 3 through the FFI. Keys are made at spec
-- time with the openssl command line, which also makes and checks
-- signatures, so the module is tested against an independent implementation.

local crypto = require "torii.crypto"

local char, byte, rep, format = string.char, string.byte, string.rep, string.format

local function unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(x) return char(tonumber(x, 16)) end))
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- os.execute is 5.1-style (a status number) or 5.2-style (true/nil) by build.
local function run(cmd)
  local r = os.execute(cmd .. " >/dev/null 2>&1")
  return r == 0 or r == true
end

local function sh(cmd)
  assert(run(cmd), "command failed: " .. cmd)
end

local function rss_kib()
  local s = read("/proc/self/status")
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- ECDSA signatures: DER (what the openssl CLI speaks) <-> JWS's r || s.
local function der_len(n)
  if n < 128 then return char(n) end
  return char(0x81, n)
end

local function der_int(bytes)
  bytes = bytes:gsub("^%z+", "")
  if bytes == "" or byte(bytes, 1) >= 0x80 then bytes = "\0" .. bytes end
  return "\2" .. der_len(#bytes) .. bytes
end

local function raw_to_der(raw)
  local half = #raw / 2
  local body = der_int(raw:sub(1, half)) .. der_int(raw:sub(half + 1))
  return "\48" .. der_len(#body) .. body
end

local function der_to_raw(der, half)
  local pos = 2
  local function len()
    local n = byte(der, pos)
    pos = pos + 1
    if n == 0x81 then
      n = byte(der, pos)
      pos = pos + 1
    end
    return n
  end
  assert(byte(der, 1) == 0x30)
  len()
  local out = {}
  for i = 1, 2 do
    assert(byte(der, pos) == 0x02)
    pos = pos + 1
    local n = len()
    local v = der:sub(pos, pos + n - 1):gsub("^%z+", "")
    pos = pos + n
    out[i] = rep("\0", half - #v) .. v
  end
  return out[1] .. out[2]
end

describe("torii.crypto", function()
  describe("loading", function()
    it("loads twice in one VM (guarded cdef)", function()
      local saved = package.loaded["torii.crypto"]
      package.loaded["torii.crypto"] = nil
      local again = require "torii.crypto"
      package.loaded["torii.crypto"] = saved
      assert.are_not.equal(saved, again)
      assert.equal(crypto.hex(crypto.sha256("abc")), again.hex(again.sha256("abc")))
    end)
  end)

  describe("digests", function()
    it("SHA-1 of 'abc' and ''", function()
      assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", crypto.hex(crypto.sha1("abc")))
      assert.equal("da39a3ee5e6b4b0d3255bfef95601890afd80709", crypto.hex(crypto.sha1("")))
    end)

    it("SHA-256 of 'abc', '', the two-block message and a million 'a'", function()
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", crypto.hex(crypto.sha256("abc")))
      assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", crypto.hex(crypto.sha256("")))
      assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        crypto.hex(crypto.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))
      assert.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
        crypto.hex(crypto.sha256(rep("a", 1000000))))
    end)

    it("SHA-384 and SHA-512 of 'abc', SHA-512 of ''", function()
      assert.equal("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        .. "8086072ba1e7cc2358baeca134c825a7", crypto.hex(crypto.sha384("abc")))
      assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", crypto.hex(crypto.sha512("abc")))
      assert.equal("cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
        .. "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", crypto.hex(crypto.sha512("")))
    end)

    it("returns raw bytes of the digest's size", function()
      assert.equal(20, #crypto.sha1("x"))
      assert.equal(32, #crypto.sha256("x"))
      assert.equal(48, #crypto.sha384("x"))
      assert.equal(64, #crypto.sha512("x"))
    end)

    it("hex encodes every byte value in lower case", function()
      assert.equal("", crypto.hex(""))
      assert.equal("00ff7f80", crypto.hex("\0\255\127\128"))
      local all = {}
      for i = 0, 255 do all[#all + 1] = char(i) end
      assert.equal(unhex(crypto.hex(table.concat(all))), table.concat(all))
    end)

    it("raises for a non-string", function()
      assert.has_error(function() crypto.sha256(nil) end)
      assert.has_error(function() crypto.hex(42) end)
    end)
  end)

  describe("hmac", function()
    local tc1_key, tc1_msg = rep("\11", 20), "Hi There"
    local tc2_key, tc2_msg = "Jefe", "what do ya want for nothing?"

    it("RFC 4231 test case 1", function()
      assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        crypto.hex(crypto.hmac("sha256", tc1_key, tc1_msg)))
      assert.equal("afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        .. "faea9ea9076ede7f4af152e8b2fa9cb6", crypto.hex(crypto.hmac("sha384", tc1_key, tc1_msg)))
      assert.equal("87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        .. "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
        crypto.hex(crypto.hmac("sha512", tc1_key, tc1_msg)))
    end)

    it("RFC 4231 test case 2", function()
      assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        crypto.hex(crypto.hmac("sha256", tc2_key, tc2_msg)))
      assert.equal("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        .. "8e2240ca5e69e2c78b3239ecfab21649", crypto.hex(crypto.hmac("sha384", tc2_key, tc2_msg)))
      assert.equal("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        .. "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
        crypto.hex(crypto.hmac("sha512", tc2_key, tc2_msg)))
    end)

    it("RFC 4231 test case 6 (key longer than the block)", function()
      assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        crypto.hex(crypto.hmac("sha256", rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
    end)

    it("RFC 2202 HMAC-SHA1 test cases 1 and 2", function()
      assert.equal("b617318655057264e28bc0b6fb378c8ef146be00", crypto.hex(crypto.hmac("sha1", tc1_key, tc1_msg)))
      assert.equal("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", crypto.hex(crypto.hmac("sha1", tc2_key, tc2_msg)))
    end)

    it("takes an empty key and message", function()
      assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
        crypto.hex(crypto.hmac("sha256", "", "")))
    end)

    it("gives the same answer when called again (the context is reused)", function()
      local a = crypto.hmac("sha256", "k1", "m")
      local b = crypto.hmac("sha256", "k2", "m")
      assert.are_not.equal(a, b)
      assert.equal(a, crypto.hmac("sha256", "k1", "m"))
    end)

    it("RFC 7515 appendix A.1: the HS256 JWS example", function()
      local key = crypto.base64url_decode(
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
      local input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        .. ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
      assert.equal("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        crypto.base64url_encode(crypto.hmac("sha256", key, input)))
    end)

    it("raises for an unknown alg or a non-string key", function()
      assert.has_error(function() crypto.hmac("md5", "k", "m") end)
      assert.has_error(function() crypto.hmac("SHA256", "k", "m") end)
      assert.has_error(function() crypto.hmac("sha256", nil, "m") end)
    end)
  end)

  describe("random_bytes", function()
    it("returns exactly n bytes", function()
      for _, n in ipairs({ 0, 1, 16, 32, 1000, 65537, 1024 * 1024 }) do
        assert.equal(n, #crypto.random_bytes(n))
      end
    end)

    it("differs between calls", function()
      assert.are_not.equal(crypto.random_bytes(32), crypto.random_bytes(32))
      assert.are_not.equal(rep("\0", 32), crypto.random_bytes(32))
    end)

    it("raises for a bad n", function()
      assert.has_error(function() crypto.random_bytes(-1) end)
      assert.has_error(function() crypto.random_bytes(1.5) end)
      assert.has_error(function() crypto.random_bytes(1024 * 1024 + 1) end)
      assert.has_error(function() crypto.random_bytes("16") end)
    end)
  end)

  describe("constant_time_eq", function()
    it("compares contents and lengths", function()
      assert.is_true(crypto.constant_time_eq("", ""))
      assert.is_true(crypto.constant_time_eq("abc", "abc"))
      assert.is_false(crypto.constant_time_eq("abc", "abd"))
      assert.is_false(crypto.constant_time_eq("abc", "ab"))
      assert.is_false(crypto.constant_time_eq("", "a"))
      assert.is_true(crypto.constant_time_eq("a\0b", "a\0b"))
      assert.is_false(crypto.constant_time_eq("a\0b", "a\0c"))
    end)

    it("raises for a non-string", function()
      assert.has_error(function() crypto.constant_time_eq(nil, "") end)
    end)
  end)

  describe("base64", function()
    local vectors = { -- RFC 4648 section 10
      { "", "", "" }, { "f", "Zg==", "Zg" }, { "fo", "Zm8=", "Zm8" }, { "foo", "Zm9v", "Zm9v" },
      { "foob", "Zm9vYg==", "Zm9vYg" }, { "fooba", "Zm9vYmE=", "Zm9vYmE" }, { "foobar", "Zm9vYmFy", "Zm9vYmFy" },
    }

    it("encodes the RFC 4648 vectors", function()
      for _, v in ipairs(vectors) do
        assert.equal(v[2], crypto.base64_encode(v[1]))
        assert.equal(v[3], crypto.base64url_encode(v[1]))
      end
    end)

    it("decodes the RFC 4648 vectors", function()
      for _, v in ipairs(vectors) do
        assert.equal(v[1], crypto.base64_decode(v[2]))
        assert.equal(v[1], crypto.base64url_decode(v[3]))
        assert.equal(v[1], crypto.base64url_decode(v[2])) -- url: padding is optional
      end
    end)

    it("uses +/ for the standard alphabet and -_ for the URL one", function()
      assert.equal("+/+/", crypto.base64_encode("\251\255\191"))
      assert.equal("-_-_", crypto.base64url_encode("\251\255\191"))
      assert.equal("\251\255\191", crypto.base64_decode("+/+/"))
      assert.equal("\251\255\191", crypto.base64url_decode("-_-_"))
    end)

    it("round-trips every byte value and every length up to 300", function()
      local all = {}
      for i = 0, 255 do all[#all + 1] = char(i) end
      local s = table.concat(all) .. table.concat(all):reverse()
      for n = 0, 300, 1 do
        local piece = s:sub(1, n)
        assert.equal(piece, crypto.base64_decode(crypto.base64_encode(piece)))
        assert.equal(piece, crypto.base64url_decode(crypto.base64url_encode(piece)))
      end
      local big = crypto.random_bytes(200000)
      assert.equal(big, crypto.base64_decode(crypto.base64_encode(big)))
      assert.equal(big, crypto.base64url_decode(crypto.base64url_encode(big)))
    end)

    it("matches the openssl command line on random data", function()
      local dir = os.tmpname()
      local data = crypto.random_bytes(1000)
      write(dir, data)
      local p = assert(io.popen("openssl base64 -A -in " .. dir))
      local out = p:read("*a")
      p:close()
      os.remove(dir)
      assert.equal(out, crypto.base64_encode(data))
    end)

    it("rejects bad standard base64 with nil, err", function()
      local bad = {
        ["Zg="] = "invalid base64 length", ["Zg"] = "invalid base64 length", ["Z"] = "invalid base64 length",
        ["Zm9v!A=="] = "invalid base64 character at position 5",
        ["Zm9v\n"] = "invalid base64 length", ["Zm9vYmF\n"] = "invalid base64 character at position 8",
        [" Zm9"] = "invalid base64 character at position 1",
        ["Zg==Zg=="] = "invalid base64 character at position 3",
        ["=Zg="] = "invalid base64 character at position 1",
        ["Z==="] = "invalid base64 character at position 2",
        ["===="] = "invalid base64 character at position 1",
        ["Zh=="] = "non-zero trailing bits in base64", ["Zm9="] = "non-zero trailing bits in base64",
        ["Zm9v-_8="] = "invalid base64 character at position 5",
        ["Zm\0v"] = "invalid base64 character at position 3",
      }
      for input, want in pairs(bad) do
        local v, err = crypto.base64_decode(input)
        assert.is_nil(v, input)
        assert.equal(want, err, input)
      end
    end)

    it("rejects bad base64url with nil, err", function()
      local bad = {
        ["Z"] = "invalid base64 length", ["Zm9vY"] = "invalid base64 length",
        ["Zg="] = "invalid base64 padding", ["Zm9vYg="] = "invalid base64 padding",
        ["Zg==="] = "invalid base64 padding",
        ["Zm9v+w"] = "invalid base64 character at position 5", ["Zm9v/w"] = "invalid base64 character at position 5",
        ["Zh"] = "non-zero trailing bits in base64", ["Zm9"] = "non-zero trailing bits in base64",
        ["Zm9v Zm9"] = "invalid base64 character at position 5",
        ["Zg=A"] = "invalid base64 character at position 3",
      }
      for input, want in pairs(bad) do
        local v, err = crypto.base64url_decode(input)
        assert.is_nil(v, input)
        assert.equal(want, err, input)
      end
    end)

    it("raises for a non-string", function()
      assert.has_error(function() crypto.base64_encode(nil) end)
      assert.has_error(function() crypto.base64url_decode({}) end)
    end)
  end)

  describe("keys and signatures", function()
    local dir
    local pem = {} -- name -> PEM text
    local msg = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0b3JpaSJ9"

    local function path(name) return dir .. "/" .. name end

    local function gen(name, args)
      sh(format("openssl genpkey %s -out %s", args, path(name .. ".pem")))
      sh(format("openssl pkey -in %s -pubout -out %s", path(name .. ".pem"), path(name .. ".pub")))
      pem[name] = read(path(name .. ".pem"))
      pem[name .. ".pub"] = read(path(name .. ".pub"))
    end

    local function priv(name) return assert(crypto.load_private_key(pem[name])) end
    local function pub(name) return assert(crypto.load_public_key(pem[name .. ".pub"])) end

    lazy_setup(function()
      local p = assert(io.popen("mktemp -d"))
      dir = p:read("*l")
      p:close()
      assert(dir and dir ~= "", "mktemp -d failed")
      gen("rsa", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048")
      gen("rsa2", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048")
      gen("pss", "-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048")
      gen("p256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256")
      gen("p384", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384")
      gen("p521", "-algorithm EC -pkeyopt ec_paramgen_curve:P-521")
      gen("k256", "-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1")
      gen("ed25519", "-algorithm ed25519")
      gen("ed448", "-algorithm ed448")
      write(path("msg"), msg)
    end)

    lazy_teardown(function()
      if dir and dir:match("^/tmp/") then os.execute("rm -rf '" .. dir .. "'") end
    end)

    describe("loading", function()
      it("reads PEM public and private keys and describes them", function()
        local cases = {
          { "rsa", "RSA", 2048 }, { "pss", "RSA-PSS", 2048 }, { "p256", "EC", 256, "P-256" },
          { "p384", "EC", 384, "P-384" }, { "p521", "EC", 521, "P-521" }, { "k256", "EC", 256, "secp256k1" },
          { "ed25519", "Ed25519" }, { "ed448", "Ed448" },
        }
        for _, c in ipairs(cases) do
          local k, p = priv(c[1]), pub(c[1])
          assert.equal(c[2], k.type, c[1])
          assert.equal(c[2], p.type, c[1])
          assert.is_true(k.private)
          assert.is_false(p.private)
          if c[3] then assert.equal(c[3], k.bits) end
          assert.equal(c[4], k.curve)
          assert.equal(c[4], p.curve)
          assert.is_true(crypto.is_key(k))
          assert.matches("^torii.crypto key: ", tostring(p))
        end
      end)

      it("reads traditional 'RSA PRIVATE KEY' and 'EC PRIVATE KEY' PEM", function()
        sh(format("openssl pkey -in %s -traditional -out %s", path("rsa.pem"), path("rsa-trad.pem")))
        sh(format("openssl pkey -in %s -traditional -out %s", path("p256.pem"), path("p256-trad.pem")))
        local r = read(path("rsa-trad.pem"))
        assert.matches("BEGIN RSA PRIVATE KEY", r)
        assert.equal("RSA", assert(crypto.load_private_key(r)).type)
        assert.equal("P-256", assert(crypto.load_private_key(read(path("p256-trad.pem")))).curve)
      end)

      it("reads the public key of a certificate", function()
        sh(format("openssl req -x509 -new -key %s -subj /CN=torii -days 1 -out %s", path("p256.pem"), path("cert.pem")))
        local k = assert(crypto.load_public_key(read(path("cert.pem"))))
        assert.equal("P-256", k.curve)
        assert.is_true(crypto.verify("ES256", k, msg, crypto.sign("ES256", priv("p256"), msg)))
      end)

      it("returns nil and OpenSSL's reason for garbage", function()
        for _, load in ipairs({ crypto.load_public_key, crypto.load_private_key }) do
          local k, err = load("garbage")
          assert.is_nil(k)
          assert.matches("not PEM", err)
          k, err = load("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
          assert.is_nil(k)
          assert.matches("^cannot read %a+ key: error:%x+:", err)
          k, err = load("")
          assert.is_nil(k)
          assert.is_string(err)
        end
        local k, err = crypto.load_public_key(pem["rsa.pub"]:sub(1, 200))
        assert.is_nil(k)
        assert.matches("error:", err)
      end)

      it("wants the right kind of PEM", function()
        local k, err = crypto.load_public_key(pem["rsa"])
        assert.is_nil(k)
        assert.matches("cannot read public key", err)
        k, err = crypto.load_private_key(pem["rsa.pub"])
        assert.is_nil(k)
        assert.matches("cannot read private key", err)
      end)

      it("returns nil, err for values that are not keys", function()
        for _, v in ipairs({ 42, true }) do
          local k, err = crypto.load_public_key(v)
          assert.is_nil(k)
          assert.is_string(err)
          k, err = crypto.load_private_key(v)
          assert.is_nil(k)
          assert.is_string(err)
        end
        local k, err = crypto.load_private_key(pem["rsa"], 42)
        assert.is_nil(k)
        assert.matches("passphrase", err)
      end)

      it("reads an encrypted private key with its passphrase and never prompts", function()
        sh(format("openssl pkey -in %s -aes256 -passout pass:s3cret -out %s", path("p256.pem"), path("enc.pem")))
        local enc = read(path("enc.pem"))
        assert.matches("ENCRYPTED", enc)
        local k, err = crypto.load_private_key(enc)
        assert.is_nil(k)
        assert.matches("cannot read private key", err)
        k, err = crypto.load_private_key(enc, "wrong")
        assert.is_nil(k)
        assert.is_string(err)
        k = assert(crypto.load_private_key(enc, "s3cret"))
        assert.is_true(crypto.verify("ES256", pub("p256"), msg, crypto.sign("ES256", k, msg)))
      end)

      it("leaves the OpenSSL error queue empty after a failure", function()
        crypto.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        assert.equal(0, tonumber(crypto.lib.ERR_get_error()))
        crypto.verify("RS256", pub("rsa"), msg, "bad")
        assert.equal(0, tonumber(crypto.lib.ERR_get_error()))
      end)
    end)

    describe("JWK public keys", function()
      local si = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"

      it("RFC 7515 appendix A.2: verifies the RS256 example", function()
        local key = assert(crypto.load_public_key({
          kty = "RSA", e = "AQAB",
          n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-"
            .. "SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-"
            .. "UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2e"
            .. "thFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",
        }))
        assert.equal("RSA", key.type)
        assert.equal(2048, key.bits)
        local sig = assert(crypto.base64url_decode(
          "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9"
          .. "CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383"
          .. "LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWk"
          .. "WywlVmtVrBp0igcN_IoypGlUPQGe77Rw"))
        assert.is_true(crypto.verify("RS256", key, "eyJhbGciOiJSUzI1NiJ9." .. si, sig))
        assert.is_false(crypto.verify("RS256", key, "eyJhbGciOiJSUzI1NiJ9." .. si .. "x", sig))
      end)

      it("RFC 7515 appendix A.3: verifies the ES256 example", function()
        local key = assert(crypto.load_public_key({
          kty = "EC", crv = "P-256",
          x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        assert.equal("P-256", key.curve)
        local sig = crypto.base64url_decode(
          "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
        assert.is_true(crypto.verify("ES256", key, "eyJhbGciOiJFUzI1NiJ9." .. si, sig))
        assert.is_false(crypto.verify("ES256", key, "eyJhbGciOiJFUzI1NiJ9." .. si .. "x", sig))
      end)

      it("RFC 7515 appendix A.4: verifies the ES512 example", function()
        local key = assert(crypto.load_public_key({
          kty = "EC", crv = "P-521",
          x = "AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk",
          y = "ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2",
        }))
        local sig = crypto.base64url_decode(
          "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZ"
          .. "goXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn")
        assert.equal(132, #sig)
        assert.is_true(crypto.verify("ES512", key, "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA", sig))
      end)

      it("RFC 8037 appendix A: verifies and reproduces the Ed25519 example", function()
        local input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
        local want = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        local key = assert(crypto.load_public_key({
          kty = "OKP", crv = "Ed25519", x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }))
        assert.is_true(crypto.verify("EdDSA", key, input, crypto.base64url_decode(want)))
        -- The private key d as PKCS#8: the fixed Ed25519 prefix, then the 32-byte seed.
        local d = crypto.base64url_decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        local der = unhex("302e020100300506032b657004220420") .. d
        local private = assert(crypto.load_private_key(
          "-----BEGIN PRIVATE KEY-----\n" .. crypto.base64_encode(der) .. "\n-----END PRIVATE KEY-----\n"))
        assert.equal(want, crypto.base64url_encode(crypto.sign("EdDSA", private, input)))
      end)

      it("rejects bad JWKs with nil, err", function()
        local bad = {
          { kty = "oct", k = "AAAA" },
          { kty = "RSA", e = "AQAB" },
          { kty = "RSA", n = "AQAB", e = "AQ!B" },
          { kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU" },
          { kty = "EC", crv = "P-192", x = "AA", y = "AA" },
          { kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "AAAA" },
          -- a point that is not on the curve
          { kty = "EC", crv = "P-256",
            x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5b0" },
          { kty = "OKP", crv = "X25519", x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
          { kty = "OKP", crv = "Ed25519", x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcH" },
          {},
        }
        for i, jwk in ipairs(bad) do
          local k, err = crypto.load_public_key(jwk)
          assert.is_nil(k, "case " .. i)
          assert.is_string(err, "case " .. i)
        end
        local _, err = crypto.load_public_key(bad[7])
        assert.matches("point is not on curve", err)
      end)

      it("gives the same key as the PEM it was taken from", function()
        -- modulus from the openssl CLI, exponent 65537
        local p = assert(io.popen(format("openssl rsa -pubin -in %s -noout -modulus", path("rsa.pub"))))
        local modulus = p:read("*a"):match("Modulus=(%x+)")
        p:close()
        local jwk = assert(crypto.load_public_key({
          kty = "RSA", n = crypto.base64url_encode(unhex(modulus)), e = "AQAB",
        }))
        assert.is_true(crypto.verify("RS256", jwk, msg, crypto.sign("RS256", priv("rsa"), msg)))
        -- Ed25519: the raw key is the last 32 bytes of the SubjectPublicKeyInfo
        local spki = crypto.base64_decode(pem["ed25519.pub"]:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", ""))
        local okp = assert(crypto.load_public_key({
          kty = "OKP", crv = "Ed25519", x = crypto.base64url_encode(spki:sub(-32)),
        }))
        assert.is_true(crypto.verify("EdDSA", okp, msg, crypto.sign("EdDSA", priv("ed25519"), msg)))
        -- P-256: x and y follow 0x04 at the end of the SubjectPublicKeyInfo
        spki = crypto.base64_decode(pem["p256.pub"]:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", ""))
        local point = spki:sub(-65)
        assert.equal(4, byte(point, 1))
        local ec = assert(crypto.load_public_key({
          kty = "EC", crv = "P-256",
          x = crypto.base64url_encode(point:sub(2, 33)), y = crypto.base64url_encode(point:sub(34)),
        }))
        assert.is_true(crypto.verify("ES256", ec, msg, crypto.sign("ES256", priv("p256"), msg)))
      end)
    end)

    describe("sign and verify", function()
      local cases = {
        { "RS256", "rsa", 256 }, { "RS384", "rsa", 256 }, { "RS512", "rsa", 256 },
        { "PS256", "rsa", 256 }, { "PS384", "rsa", 256 }, { "PS512", "rsa", 256 },
        { "PS256", "pss", 256 },
        { "ES256", "p256", 64 }, { "ES384", "p384", 96 }, { "ES512", "p521", 132 },
        { "EdDSA", "ed25519", 64 }, { "EdDSA", "ed448", 114 },
      }

      it("signs and verifies its own signatures", function()
        for _, c in ipairs(cases) do
          local alg, name, size = c[1], c[2], c[3]
          local sig, err = crypto.sign(alg, priv(name), msg)
          assert.is_string(sig, alg .. " " .. name .. ": " .. tostring(err))
          assert.equal(size, #sig, alg)
          assert.is_true(crypto.verify(alg, pub(name), msg, sig), alg)
          assert.is_true(crypto.verify(alg, priv(name), msg, sig), alg) -- a private key verifies too
          assert.is_true(crypto.verify(alg, pub(name), "", crypto.sign(alg, priv(name), "")), alg)
        end
      end)

      it("returns false for a tampered message or signature", function()
        for _, c in ipairs(cases) do
          local alg, name = c[1], c[2]
          local key = pub(name)
          local sig = crypto.sign(alg, priv(name), msg)
          assert.is_false(crypto.verify(alg, key, msg .. "x", sig), alg)
          assert.is_false(crypto.verify(alg, key, msg:sub(2), sig), alg)
          local flipped = sig:sub(1, 10) .. char((byte(sig, 11) + 1) % 256) .. sig:sub(12)
          assert.is_false(crypto.verify(alg, key, msg, flipped), alg)
          local last = sig:sub(1, -2) .. char((byte(sig, -1) + 1) % 256)
          assert.is_false(crypto.verify(alg, key, msg, last), alg)
          assert.is_false(crypto.verify(alg, key, msg, sig:sub(1, -2)), alg)
          assert.is_false(crypto.verify(alg, key, msg, sig .. "\0"), alg)
          assert.is_false(crypto.verify(alg, key, msg, ""), alg)
          assert.is_false(crypto.verify(alg, key, msg, rep("\0", #sig)), alg)
          assert.is_false(crypto.verify(alg, key, msg, rep("\255", #sig)), alg)
        end
      end)

      it("returns false for a signature from another key of the right type", function()
        assert.is_false(crypto.verify("RS256", pub("rsa2"), msg, crypto.sign("RS256", priv("rsa"), msg)))
        local other = assert(crypto.load_public_key({ -- RFC 7515 A.3's P-256 key
          kty = "EC", crv = "P-256",
          x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        }))
        assert.is_false(crypto.verify("ES256", other, msg, crypto.sign("ES256", priv("p256"), msg)))
        assert.is_false(crypto.verify("EdDSA", pub("ed25519"), msg, crypto.sign("EdDSA", priv("ed448"), msg)))
      end)

      it("does not take an ES signature in DER form", function()
        local raw = crypto.sign("ES256", priv("p256"), msg)
        assert.is_false(crypto.verify("ES256", pub("p256"), msg, raw_to_der(raw)))
      end)

      it("returns nil, err when the key does not fit the alg", function()
        local wrong = {
          { "RS256", "p256" }, { "PS256", "ed25519" }, { "ES256", "rsa" }, { "EdDSA", "rsa" },
          { "ES256", "p384" }, { "ES384", "p256" }, { "ES512", "p256" }, { "ES256", "k256" },
          { "RS256", "pss" }, { "EdDSA", "p256" },
        }
        for _, w in ipairs(wrong) do
          local alg, name = w[1], w[2]
          local ok, err = crypto.verify(alg, pub(name), msg, rep("\1", 64))
          assert.is_nil(ok, alg .. " " .. name)
          assert.is_string(err)
          local sig
          sig, err = crypto.sign(alg, priv(name), msg)
          assert.is_nil(sig, alg .. " " .. name)
          assert.is_string(err)
        end
        local _, err = crypto.verify("ES256", pub("p384"), msg, "")
        assert.equal("alg ES256 needs a P-256 key, not P-384", err)
        _, err = crypto.verify("RS256", pub("p256"), msg, "")
        assert.equal("alg RS256 does not go with a EC key", err)
      end)

      it("returns nil, err for an unknown alg or something that is not a key", function()
        for _, alg in ipairs({ "HS256", "none", "rs256", "ES256K", "", 42 }) do
          local ok, err = crypto.verify(alg, pub("rsa"), msg, "x")
          assert.is_nil(ok)
          assert.matches("unsupported alg", err)
          ok, err = crypto.sign(alg, priv("rsa"), msg)
          assert.is_nil(ok)
          assert.matches("unsupported alg", err)
        end
        for _, key in ipairs({ pem["rsa.pub"], {}, { pkey = pub("rsa").pkey, type = "RSA" } }) do
          local ok, err = crypto.verify("RS256", key, msg, "x")
          assert.is_nil(ok)
          assert.matches("key must come from", err)
        end
      end)

      it("will not sign with a public key", function()
        local sig, err = crypto.sign("RS256", pub("rsa"), msg)
        assert.is_nil(sig)
        assert.equal("sign needs a private key", err)
      end)

      it("raises for a message or signature that is not a string", function()
        assert.has_error(function() crypto.verify("RS256", pub("rsa"), nil, "x") end)
        assert.has_error(function() crypto.verify("RS256", pub("rsa"), msg, nil) end)
        assert.has_error(function() crypto.sign("RS256", priv("rsa"), 42) end)
      end)

      describe("against the openssl command line", function()
        local function cli_sign(args, name, out)
          sh(format("openssl dgst %s -sign %s -out %s %s", args, path(name .. ".pem"), path(out), path("msg")))
          return read(path(out))
        end

        local function cli_verify(args, name, sig)
          write(path("sig.bin"), sig)
          return run(format("openssl dgst %s -verify %s -signature %s %s", args, path(name .. ".pub"),
            path("sig.bin"), path("msg")))
        end

        local PSS = "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest"

        it("verifies RS256/RS384/RS512 made by openssl dgst, and openssl verifies ours", function()
          for _, bits in ipairs({ "256", "384", "512" }) do
            local sig = cli_sign("-sha" .. bits, "rsa", "rs.sig")
            assert.is_true(crypto.verify("RS" .. bits, pub("rsa"), msg, sig))
            assert.equal(sig, crypto.sign("RS" .. bits, priv("rsa"), msg)) -- PKCS#1 v1.5 is deterministic
            assert.is_true(cli_verify("-sha" .. bits, "rsa", crypto.sign("RS" .. bits, priv("rsa"), msg)))
            assert.is_false(crypto.verify("RS" .. bits, pub("rsa2"), msg, sig))
          end
        end)

        it("verifies PS256/PS384/PS512 made by openssl dgst, and openssl verifies ours", function()
          for _, bits in ipairs({ "256", "384", "512" }) do
            local sig = cli_sign("-sha" .. bits .. " " .. PSS, "rsa", "ps.sig")
            assert.is_true(crypto.verify("PS" .. bits, pub("rsa"), msg, sig))
            assert.is_false(crypto.verify("RS" .. bits, pub("rsa"), msg, sig))
            assert.is_true(cli_verify("-sha" .. bits .. " " .. PSS, "rsa", crypto.sign("PS" .. bits, priv("rsa"), msg)))
          end
        end)

        it("refuses a PSS signature whose salt is not the digest's length", function()
          local sig = cli_sign("-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:max", "rsa", "max.sig")
          assert.is_true(cli_verify("-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto", "rsa", sig))
          assert.is_false(crypto.verify("PS256", pub("rsa"), msg, sig))
        end)

        it("verifies ES256/ES384/ES512 made by openssl dgst (DER turned into r || s)", function()
          for _, c in ipairs({ { "256", "p256", 32 }, { "384", "p384", 48 }, { "512", "p521", 66 } }) do
            local der = cli_sign("-sha" .. c[1], c[2], "es.sig")
            local raw = der_to_raw(der, c[3])
            assert.equal(2 * c[3], #raw)
            assert.is_true(crypto.verify("ES" .. c[1], pub(c[2]), msg, raw), c[2])
            assert.is_false(crypto.verify("ES" .. c[1], pub(c[2]), msg .. ".", raw), c[2])
          end
        end)

        it("makes ES256/ES384/ES512 signatures that openssl verifies (r || s turned into DER)", function()
          for _, c in ipairs({ { "256", "p256" }, { "384", "p384" }, { "512", "p521" } }) do
            -- many signatures, so that r or s with leading zero bytes turn up
            for _ = 1, 20 do
              local raw = crypto.sign("ES" .. c[1], priv(c[2]), msg)
              assert.is_true(cli_verify("-sha" .. c[1], c[2], raw_to_der(raw)), c[2])
            end
          end
        end)

        it("verifies Ed25519 and Ed448 signatures made by openssl pkeyutl, and openssl verifies ours", function()
          for _, name in ipairs({ "ed25519", "ed448" }) do
            sh(format("openssl pkeyutl -sign -rawin -inkey %s -in %s -out %s", path(name .. ".pem"), path("msg"),
              path("ed.sig")))
            local sig = read(path("ed.sig"))
            assert.is_true(crypto.verify("EdDSA", pub(name), msg, sig))
            assert.equal(sig, crypto.sign("EdDSA", priv(name), msg)) -- EdDSA is deterministic
            write(path("ours.sig"), crypto.sign("EdDSA", priv(name), msg .. "2"))
            write(path("msg2"), msg .. "2")
            assert.is_true(run(format("openssl pkeyutl -verify -rawin -pubin -inkey %s -in %s -sigfile %s",
              path(name .. ".pub"), path("msg2"), path("ours.sig"))))
          end
        end)
      end)

      it("does not leak over 2000 rounds of load, sign and verify", function()
        local rsa, rsa_pub = priv("rsa"), pub("rsa")
        local ec, ec_pub = priv("p256"), pub("p256")
        local ed, ed_pub = priv("ed25519"), pub("ed25519")
        local pub_pem = pem["p256.pub"]
        local function round(i)
          local m = msg .. i
          assert(crypto.verify("ES256", ec_pub, m, crypto.sign("ES256", ec, m)))
          assert(crypto.verify("EdDSA", ed_pub, m, crypto.sign("EdDSA", ed, m)))
          assert(crypto.verify("PS256", rsa_pub, m, crypto.sign("PS256", rsa, m)) ~= nil)
          if i % 10 == 0 then assert(crypto.sign("RS256", rsa, m)) end
          assert(crypto.load_public_key(pub_pem))
          assert(crypto.load_public_key({ kty = "EC", crv = "P-256",
            x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }))
          assert.is_nil(crypto.load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
          assert.is_false(crypto.verify("ES256", ec_pub, m, rep("\1", 64)))
          assert.is_nil(crypto.verify("RS256", ec_pub, m, "x"))
          crypto.hmac("sha256", m, m)
        end
        for i = 1, 200 do round(i) end -- warm up allocator caches and the JIT
        collectgarbage()
        collectgarbage()
        local rss0, lua0 = rss_kib(), collectgarbage("count")
        for i = 1, 2000 do round(i) end
        collectgarbage()
        collectgarbage()
        local rss1, lua1 = rss_kib(), collectgarbage("count")
        for i = 1, 2000 do round(i) end
        collectgarbage()
        collectgarbage()
        local rss2 = rss_kib()
        -- Leaking one EVP_MD_CTX, EVP_PKEY or BIO per call would be several
        -- MiB in each batch of 2000 rounds. The first batch may still grow
        -- the allocator's and the JIT's memory once; a leak grows the
        -- second batch as much.
        assert.is_true(rss1 - rss0 < 6 * 1024, format("RSS grew by %d KiB", rss1 - rss0))
        assert.is_true(rss2 - rss1 < 1024, format("RSS grew by %d KiB in the second batch", rss2 - rss1))
        assert.is_true(lua1 - lua0 < 1024, format("Lua heap grew by %d KiB", lua1 - lua0))
      end)
    end)
  end)
end)
