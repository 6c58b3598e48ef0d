-- torii.crypto: hashes, HMAC, random bytes, base64 and JWS signatures,
-- through the LuaJIT FFI against OpenSSL 3 (libcrypto.so.3).
--
--   crypto.sha1(s) / sha256(s) / sha384(s) / sha512(s) -> raw digest bytes
--   crypto.hex(bytes)                    -> lower-case hex
--   crypto.hmac(alg, key, msg)           -> raw MAC; alg "sha1" | "sha256" | "sha384" | "sha512"
--   crypto.random_bytes(n)               -> n bytes from RAND_bytes (0 <= n <= 1 MiB; raises on failure)
--   crypto.constant_time_eq(a, b)        -> boolean (CRYPTO_memcmp; lengths are not secret)
--
--   crypto.base64_encode(s)              -> standard alphabet, padded
--   crypto.base64_decode(s)              -> bytes | nil, err
--   crypto.base64url_encode(s)           -> URL-safe alphabet, no padding
--   crypto.base64url_decode(s)           -> bytes | nil, err
--
--   crypto.load_public_key(pem_or_jwk)   -> key | nil, err
--   crypto.load_private_key(pem, pass)   -> key | nil, err
--   crypto.verify(alg, key, msg, sig)    -> true | false | nil, err
--   crypto.sign(alg, key, msg)           -> signature | nil, err
--
-- Decoding is strict. base64_decode wants a length that is a multiple of 4,
-- at most two '=' and only at the end, nothing outside the alphabet (no
-- whitespace, no line breaks). base64url_decode takes the padding or leaves
-- it out, but padding that is there must be right. Both refuse an encoding
-- whose unused low bits in the last character are not zero ("QR==" is not
-- "QQ=="): every byte string has exactly one accepted encoding, so a token
-- cannot be changed without its signature changing too. The errors are
-- "invalid base64 character at position N", "invalid base64 length",
-- "invalid base64 padding" and "non-zero trailing bits in base64".
--
-- Keys. load_public_key takes a PEM "PUBLIC KEY" (SubjectPublicKeyInfo), a
-- PEM "CERTIFICATE" (its public key is used), or a JWK as a Lua table:
-- {kty="RSA", n=, e=}, {kty="EC", crv="P-256"|"P-384"|"P-521", x=, y=} or
-- {kty="OKP", crv="Ed25519"|"Ed448", x=} (values base64url; other members
-- ignored). load_private_key takes a PEM private key (PKCS#8, or the
-- traditional "RSA/EC PRIVATE KEY" forms); an encrypted one needs `pass`
-- (OpenSSL never prompts on the terminal). A key is a table:
--   key.type     "RSA" | "RSA-PSS" | "EC" | "Ed25519" | "Ed448"
--   key.bits     key size in bits, as OpenSSL reports it (RSA modulus, EC field)
--   key.curve    "P-256" | "P-384" | "P-521" (another curve's OpenSSL name) for EC, else nil
--   key.private  true when loaded with load_private_key
--   key.size     the largest signature it makes, in bytes (DER for EC)
--   key.pkey     the EVP_PKEY *, freed by ffi.gc when the key is collected
-- crypto.is_key(v) says whether v is such a key. Failures return nil and a
-- message; a text that is not PEM at all gives "cannot read public key: not
-- PEM", otherwise the message ends in OpenSSL's own reason, for example
-- "cannot read public key: error:1E08010C:DECODER routines::unsupported".
--
-- Signatures (JWA, RFC 7518 section 3 and RFC 8037):
--   RS256 RS384 RS512   RSA PKCS#1 v1.5 with SHA-2                (RSA key)
--   PS256 PS384 PS512   RSA-PSS, MGF1 with the same hash, salt length =
--                       hash length (verify accepts no other)    (RSA or RSA-PSS key)
--   ES256 ES384 ES512   ECDSA on P-256/P-384/P-521 with SHA-2; the signature
--                       is JWS's fixed-size r || s (64/96/132 bytes), not DER
--   EdDSA               Ed25519 or Ed448 (pure, no pre-hash)
-- The key must fit the alg (ES256 wants a P-256 key, RS* an RSA key, ...);
-- otherwise verify/sign return nil, err, as for an unknown alg or something
-- that is not a key. verify returns false for any signature that does not
-- check out (wrong length, bad DER/encoding, tampered message), never an
-- error. sign needs a key from load_private_key. RSA key sizes are not
-- policed here: key.bits is there for the caller's policy (JWA says >= 2048).
-- HMAC algs (HS256...) are not in verify/sign on purpose: use crypto.hmac
-- and constant_time_eq, so a public key can never be taken for an HMAC secret.
--
-- crypto.algs lists the signature algs; crypto.lib is the ffi.load()ed
-- libcrypto (for specs and for modules that need more of it).
--
-- Every OpenSSL object made during a call is freed before the call returns,
-- on success and on error alike (the HMAC method and one EVP_MAC_CTX per
-- digest are made on first use and kept for reuse); failures leave the
-- thread's OpenSSL error queue empty. Output is copied into Lua strings from scratch buffers that
-- live as long as the module (a worker runs one Lua VM on one thread).

local ffi = require "ffi"
local bit = require "bit"

local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local byte, char, find, format = string.byte, string.char, string.find, string.format
local type, tostring, error, pcall, setmetatable, getmetatable = type, tostring, error, pcall, setmetatable,
  getmetatable
local floor = math.floor
local ffi_new, ffi_string, ffi_cast, ffi_gc = ffi.new, ffi.string, ffi.cast, ffi.gc

local function load_libcrypto()
  local ok, lib = pcall(ffi.load, "libcrypto.so.3")
  if ok then return lib end
  local ok2, lib2 = pcall(ffi.load, "crypto")
  if ok2 then return lib2 end
  error("torii.crypto: cannot load libcrypto (OpenSSL 3): " .. tostring(lib), 0)
end

local lib = load_libcrypto()

-- Opaque typedefs and prototypes only (no struct bodies, no enums), so a
-- redeclaration would be harmless; still declared once per VM, skipped when
-- an earlier load (busted's insulation, a second require) already did it.
local function declared()
  return pcall(ffi.typeof, "EVP_PKEY") and pcall(ffi.typeof, "ECDSA_SIG") and pcall(ffi.typeof, "OSSL_PARAM_BLD")
    and pcall(function() return lib.EVP_PKEY_new_raw_public_key_ex end)
end

if not declared() then
  ffi.cdef [[
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct evp_mac_st EVP_MAC;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;
typedef struct engine_st ENGINE;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_param_st OSSL_PARAM;
typedef struct ossl_param_bld_st OSSL_PARAM_BLD;
typedef struct bio_st BIO;
typedef struct bignum_st BIGNUM;
typedef struct ECDSA_SIG_st ECDSA_SIG;
typedef struct x509_st X509;

unsigned char *SHA1(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *SHA384(const unsigned char *d, size_t n, unsigned char *md);
unsigned char *SHA512(const unsigned char *d, size_t n, unsigned char *md);

int RAND_bytes(unsigned char *buf, int num);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);

unsigned long ERR_get_error(void);
void ERR_error_string_n(unsigned long e, char *buf, size_t len);
void ERR_clear_error(void);

EVP_MAC *EVP_MAC_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *properties);
EVP_MAC_CTX *EVP_MAC_CTX_new(EVP_MAC *mac);
void EVP_MAC_CTX_free(EVP_MAC_CTX *ctx);
int EVP_MAC_CTX_set_params(EVP_MAC_CTX *ctx, const OSSL_PARAM *params);
int EVP_MAC_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen, const OSSL_PARAM *params);
int EVP_MAC_update(EVP_MAC_CTX *ctx, const unsigned char *data, size_t datalen);
int EVP_MAC_final(EVP_MAC_CTX *ctx, unsigned char *out, size_t *outl, size_t outsize);

OSSL_PARAM_BLD *OSSL_PARAM_BLD_new(void);
void OSSL_PARAM_BLD_free(OSSL_PARAM_BLD *bld);
OSSL_PARAM *OSSL_PARAM_BLD_to_param(OSSL_PARAM_BLD *bld);
int OSSL_PARAM_BLD_push_BN(OSSL_PARAM_BLD *bld, const char *key, const BIGNUM *bn);
int OSSL_PARAM_BLD_push_utf8_string(OSSL_PARAM_BLD *bld, const char *key, const char *buf, size_t bsize);
int OSSL_PARAM_BLD_push_octet_string(OSSL_PARAM_BLD *bld, const char *key, const void *buf, size_t bsize);
void OSSL_PARAM_free(OSSL_PARAM *p);

const EVP_MD *EVP_sha256(void);
const EVP_MD *EVP_sha384(void);
const EVP_MD *EVP_sha512(void);

BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(BIO *a);
EVP_PKEY *PEM_read_bio_PUBKEY(BIO *bp, EVP_PKEY **x, void *cb, void *u);
EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, EVP_PKEY **x, void *cb, void *u);
X509 *PEM_read_bio_X509(BIO *bp, X509 **x, void *cb, void *u);
EVP_PKEY *X509_get_pubkey(X509 *x);
void X509_free(X509 *a);

void EVP_PKEY_free(EVP_PKEY *pkey);
int EVP_PKEY_is_a(const EVP_PKEY *pkey, const char *name);
int EVP_PKEY_get_bits(const EVP_PKEY *pkey);
int EVP_PKEY_get_size(const EVP_PKEY *pkey);
int EVP_PKEY_get_group_name(const EVP_PKEY *pkey, char *name, size_t name_sz, size_t *gname_len);
EVP_PKEY_CTX *EVP_PKEY_CTX_new_from_name(OSSL_LIB_CTX *libctx, const char *name, const char *propquery);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_fromdata_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_fromdata(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey, int selection, OSSL_PARAM *params);
EVP_PKEY *EVP_PKEY_new_raw_public_key_ex(OSSL_LIB_CTX *libctx, const char *keytype, const char *propq,
    const unsigned char *pub, size_t len);

EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs, size_t tbslen);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sigret, size_t siglen, const unsigned char *tbs,
    size_t tbslen);
int EVP_PKEY_CTX_set_rsa_padding(EVP_PKEY_CTX *ctx, int pad_mode);
int EVP_PKEY_CTX_set_rsa_pss_saltlen(EVP_PKEY_CTX *ctx, int saltlen);

BIGNUM *BN_bin2bn(const unsigned char *s, int len, BIGNUM *ret);
int BN_bn2binpad(const BIGNUM *a, unsigned char *to, int tolen);
void BN_free(BIGNUM *a);
ECDSA_SIG *ECDSA_SIG_new(void);
void ECDSA_SIG_free(ECDSA_SIG *sig);
int ECDSA_SIG_set0(ECDSA_SIG *sig, BIGNUM *r, BIGNUM *s);
void ECDSA_SIG_get0(const ECDSA_SIG *sig, const BIGNUM **pr, const BIGNUM **ps);
int i2d_ECDSA_SIG(const ECDSA_SIG *sig, unsigned char **pp);
ECDSA_SIG *d2i_ECDSA_SIG(ECDSA_SIG **sig, const unsigned char **pp, long length);
]]
end

local M = { lib = lib }

local RSA_PKCS1_PSS_PADDING = 6
local RSA_PSS_SALTLEN_DIGEST = -1
local EVP_PKEY_PUBLIC_KEY = 0x86 -- all parameters | public key
local RANDOM_MAX = 1024 * 1024

local u8p = ffi.typeof("const uint8_t *")
local uint8_arr = ffi.typeof("uint8_t[?]")
local size_out = ffi_new("size_t[1]")
local pctx_out = ffi_new("EVP_PKEY_CTX *[1]")
local pkey_out = ffi_new("EVP_PKEY *[1]")
local bn_out_r = ffi_new("const BIGNUM *[1]")
local bn_out_s = ffi_new("const BIGNUM *[1]")
local ptr_out = ffi_new("unsigned char *[1]")
local cptr_out = ffi_new("const unsigned char *[1]")
local errbuf = ffi_new("char[256]")
local mdbuf = ffi_new("unsigned char[64]")

-- Scratch buffer for outputs, grown on demand. Buffers above KEEP bytes are
-- not kept, so one large call does not pin its memory.
local KEEP = 64 * 1024
local scratch, scratch_size = ffi_new(uint8_arr, 1024), 1024

local function buffer(n)
  if n <= scratch_size then return scratch end
  local b = ffi_new(uint8_arr, n)
  if n <= KEEP then scratch, scratch_size = b, n end
  return b
end

-- The OpenSSL error queue as one message: the first (oldest) reason, which
-- is the root cause; the queue is left empty.
local function ossl_error(what)
  local code = lib.ERR_get_error()
  local reason
  if code ~= 0 then
    lib.ERR_error_string_n(code, errbuf, 256)
    reason = ffi_string(errbuf)
  end
  lib.ERR_clear_error()
  if reason then return what .. ": " .. reason end
  return what
end

local function check_string(v, name, level)
  if type(v) ~= "string" then
    error(format("torii.crypto: %s must be a string, got %s", name, type(v)), level + 1)
  end
end

---------------------------------------------------------------- digests

local function digest(fn, len)
  return function(s)
    check_string(s, "input", 2)
    fn(s, #s, mdbuf)
    return ffi_string(mdbuf, len)
  end
end

M.sha1 = digest(lib.SHA1, 20)
M.sha256 = digest(lib.SHA256, 32)
M.sha384 = digest(lib.SHA384, 48)
M.sha512 = digest(lib.SHA512, 64)

local hexmap = {}
for i = 0, 255 do hexmap[char(i)] = format("%02x", i) end

function M.hex(s)
  check_string(s, "input", 2)
  return (s:gsub(".", hexmap))
end

---------------------------------------------------------------- HMAC

-- One EVP_MAC_CTX per digest, made on first use with its digest set and
-- kept: EVP_MAC_init with a key starts a fresh computation each call.
local HMAC_DIGEST = { sha1 = "SHA1", sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512" }
local mac_ctx = {}
local hmac_mac

local function make_mac_ctx(alg)
  if hmac_mac == nil then
    local mac = lib.EVP_MAC_fetch(nil, "HMAC", nil)
    if mac == nil then return nil, ossl_error("EVP_MAC_fetch(HMAC)") end
    hmac_mac = mac -- held for the life of the VM
  end
  local bld = lib.OSSL_PARAM_BLD_new()
  if bld == nil then return nil, ossl_error("OSSL_PARAM_BLD_new") end
  local params
  if lib.OSSL_PARAM_BLD_push_utf8_string(bld, "digest", HMAC_DIGEST[alg], 0) == 1 then
    params = lib.OSSL_PARAM_BLD_to_param(bld)
  end
  lib.OSSL_PARAM_BLD_free(bld)
  if params == nil then return nil, ossl_error("HMAC parameters") end
  local ctx = lib.EVP_MAC_CTX_new(hmac_mac)
  local ok = ctx ~= nil and lib.EVP_MAC_CTX_set_params(ctx, params) == 1
  lib.OSSL_PARAM_free(params)
  if not ok then
    local err = ossl_error("HMAC " .. alg)
    if ctx ~= nil then lib.EVP_MAC_CTX_free(ctx) end
    return nil, err
  end
  mac_ctx[alg] = ctx
  return ctx
end

function M.hmac(alg, key, msg)
  local ctx = mac_ctx[alg]
  if ctx == nil then
    if HMAC_DIGEST[alg] == nil then
      error("torii.crypto: unknown hmac alg " .. tostring(alg) .. " (sha1, sha256, sha384 or sha512)", 2)
    end
    local err
    ctx, err = make_mac_ctx(alg)
    if not ctx then error("torii.crypto: " .. err, 2) end
  end
  check_string(key, "key", 2)
  check_string(msg, "message", 2)
  if lib.EVP_MAC_init(ctx, key, #key, nil) ~= 1 or lib.EVP_MAC_update(ctx, msg, #msg) ~= 1
      or lib.EVP_MAC_final(ctx, mdbuf, size_out, 64) ~= 1 then
    error("torii.crypto: " .. ossl_error("HMAC"), 2)
  end
  return ffi_string(mdbuf, size_out[0])
end

---------------------------------------------------------------- random, compare

function M.random_bytes(n)
  if type(n) ~= "number" or n ~= floor(n) or n < 0 or n > RANDOM_MAX then
    error("torii.crypto: random_bytes wants an integer 0.." .. RANDOM_MAX .. ", got " .. tostring(n), 2)
  end
  if n == 0 then return "" end
  local buf = buffer(n)
  if lib.RAND_bytes(buf, n) ~= 1 then
    error("torii.crypto: " .. ossl_error("RAND_bytes"), 2)
  end
  return ffi_string(buf, n)
end

function M.constant_time_eq(a, b)
  check_string(a, "a", 2)
  check_string(b, "b", 2)
  local n = #a
  if n ~= #b then return false end
  if n == 0 then return true end
  return lib.CRYPTO_memcmp(a, b, n) == 0
end

---------------------------------------------------------------- base64

local STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local PAD = byte("=")

local function enc_table(alphabet)
  local t = ffi_new("uint8_t[64]")
  for i = 1, 64 do t[i - 1] = byte(alphabet, i) end
  return t
end

local function dec_table(alphabet)
  local t = ffi_new("int16_t[256]")
  for i = 0, 255 do t[i] = -1 end
  for i = 1, 64 do t[byte(alphabet, i)] = i - 1 end
  return t
end

local enc_std, enc_url = enc_table(STD), enc_table(URL)
local dec_std, dec_url = dec_table(STD), dec_table(URL)

local function encode(s, e, pad)
  local n = #s
  if n == 0 then return "" end
  local full = n - n % 3
  local rest = n - full
  local outlen = full / 3 * 4 + (rest == 0 and 0 or (pad and 4 or rest + 1))
  local out = buffer(outlen)
  local p = ffi_cast(u8p, s)
  local o = 0
  for i = 0, full - 1, 3 do
    local v = bor(lshift(p[i], 16), lshift(p[i + 1], 8), p[i + 2])
    out[o] = e[rshift(v, 18)]
    out[o + 1] = e[band(rshift(v, 12), 63)]
    out[o + 2] = e[band(rshift(v, 6), 63)]
    out[o + 3] = e[band(v, 63)]
    o = o + 4
  end
  if rest == 1 then
    local v = p[full]
    out[o] = e[rshift(v, 2)]
    out[o + 1] = e[lshift(band(v, 3), 4)]
    if pad then out[o + 2] = PAD; out[o + 3] = PAD end
  elseif rest == 2 then
    local v = bor(lshift(p[full], 8), p[full + 1])
    out[o] = e[rshift(v, 10)]
    out[o + 1] = e[band(rshift(v, 4), 63)]
    out[o + 2] = e[lshift(band(v, 15), 2)]
    if pad then out[o + 3] = PAD end
  end
  return ffi_string(out, outlen)
end

-- Decodes the first m characters of s (no padding among them), m % 4 ~= 1.
local function decode(s, m, d)
  local p = ffi_cast(u8p, s)
  local full = m - m % 4
  local rest = m - full
  local outlen = full / 4 * 3 + (rest == 0 and 0 or rest - 1)
  local out = buffer(outlen)
  local o = 0
  for i = 0, full - 1, 4 do
    local a, b, c, x = d[p[i]], d[p[i + 1]], d[p[i + 2]], d[p[i + 3]]
    if bor(a, b, c, x) < 0 then
      local bad = a < 0 and i or b < 0 and i + 1 or c < 0 and i + 2 or i + 3
      return nil, "invalid base64 character at position " .. bad + 1
    end
    local v = bor(lshift(a, 18), lshift(b, 12), lshift(c, 6), x)
    out[o] = rshift(v, 16)
    out[o + 1] = band(rshift(v, 8), 255)
    out[o + 2] = band(v, 255)
    o = o + 3
  end
  if rest > 0 then
    local a, b = d[p[full]], d[p[full + 1]]
    local c = rest == 3 and d[p[full + 2]] or 0
    if bor(a, b, c) < 0 then
      local bad = a < 0 and full or b < 0 and full + 1 or full + 2
      return nil, "invalid base64 character at position " .. bad + 1
    end
    if rest == 2 then
      if band(b, 15) ~= 0 then return nil, "non-zero trailing bits in base64" end
      out[o] = bor(lshift(a, 2), rshift(b, 4))
    else
      if band(c, 3) ~= 0 then return nil, "non-zero trailing bits in base64" end
      local v = bor(lshift(a, 10), lshift(b, 4), rshift(c, 2))
      out[o] = rshift(v, 8)
      out[o + 1] = band(v, 255)
    end
  end
  return ffi_string(out, outlen)
end

-- Number of '=' at the end of s (0, 1 or 2; a third is left for decode to
-- reject as a bad character).
local function padding(s, n)
  if n > 0 and byte(s, n) == PAD then
    if n > 1 and byte(s, n - 1) == PAD then return 2 end
    return 1
  end
  return 0
end

function M.base64_encode(s)
  check_string(s, "input", 2)
  return encode(s, enc_std, true)
end

function M.base64url_encode(s)
  check_string(s, "input", 2)
  return encode(s, enc_url, false)
end

function M.base64_decode(s)
  check_string(s, "input", 2)
  local n = #s
  if n % 4 ~= 0 then return nil, "invalid base64 length" end
  return decode(s, n - padding(s, n), dec_std)
end

function M.base64url_decode(s)
  check_string(s, "input", 2)
  local n = #s
  local pads = padding(s, n)
  if pads > 0 and n % 4 ~= 0 then return nil, "invalid base64 padding" end
  local m = n - pads
  if m % 4 == 1 then return nil, "invalid base64 length" end
  return decode(s, m, dec_url)
end

---------------------------------------------------------------- keys

local Key = {}
Key.__index = Key
Key.__tostring = function(k)
  return format("torii.crypto key: %s%s %d bits%s", k.private and "private " or "", k.type, k.bits,
    k.curve and (" " .. k.curve) or "")
end

local CURVE_NAMES = { prime256v1 = "P-256", secp384r1 = "P-384", secp521r1 = "P-521" }
local JWK_CURVES = { -- JWK crv -> OpenSSL group name, coordinate size
  ["P-256"] = { "prime256v1", 32 }, ["P-384"] = { "secp384r1", 48 }, ["P-521"] = { "secp521r1", 66 },
}
local KEY_TYPES = { "RSA", "RSA-PSS", "EC", "ED25519", "ED448" }
local TYPE_NAMES = { ED25519 = "Ed25519", ED448 = "Ed448" }

-- Wraps an EVP_PKEY * the caller owns (nil, err if its type is not one we sign with).
local function wrap(pkey, private)
  pkey = ffi_gc(pkey, lib.EVP_PKEY_free)
  local kind
  for i = 1, #KEY_TYPES do
    if lib.EVP_PKEY_is_a(pkey, KEY_TYPES[i]) == 1 then kind = KEY_TYPES[i]; break end
  end
  lib.ERR_clear_error()
  if not kind then return nil, "unsupported key type (want RSA, EC, Ed25519 or Ed448)" end
  local key = setmetatable({
    pkey = pkey, type = TYPE_NAMES[kind] or kind, private = private or false,
    bits = lib.EVP_PKEY_get_bits(pkey), size = lib.EVP_PKEY_get_size(pkey),
  }, Key)
  if kind == "EC" then
    local name = ffi_new("char[64]")
    if lib.EVP_PKEY_get_group_name(pkey, name, 64, size_out) ~= 1 then
      return nil, ossl_error("EC key without a named curve")
    end
    local group = ffi_string(name, size_out[0])
    key.curve = CURVE_NAMES[group] or group
  end
  return key
end

local function with_bio(s, fn, ...)
  local bio = lib.BIO_new_mem_buf(s, #s)
  if bio == nil then return nil end
  local r = fn(bio, nil, nil, ...)
  lib.BIO_free(bio)
  return r
end

local function read_certificate_key(pem)
  local x509 = with_bio(pem, lib.PEM_read_bio_X509, ffi_cast("void *", ""))
  if x509 == nil then return nil end
  local pkey = lib.X509_get_pubkey(x509)
  lib.X509_free(x509)
  return pkey
end

local function b64url_field(jwk, name)
  local v = jwk[name]
  if type(v) ~= "string" or v == "" then return nil, "JWK member '" .. name .. "' missing" end
  local raw, err = M.base64url_decode(v)
  if not raw then return nil, "JWK member '" .. name .. "': " .. err end
  return raw
end

-- EVP_PKEY_fromdata for key type `name`; `push` adds the parameters to the
-- builder and returns true, or nil, err. Everything made here is freed here.
local function key_fromdata(name, push)
  local bld = lib.OSSL_PARAM_BLD_new()
  if bld == nil then return nil, ossl_error("OSSL_PARAM_BLD_new") end
  local ok, err = push(bld)
  local params = ok and lib.OSSL_PARAM_BLD_to_param(bld) or nil
  lib.OSSL_PARAM_BLD_free(bld)
  if not ok then lib.ERR_clear_error(); return nil, err end
  if params == nil then return nil, ossl_error("cannot build JWK key parameters") end
  local ctx = lib.EVP_PKEY_CTX_new_from_name(nil, name, nil)
  pkey_out[0] = nil
  local made = ctx ~= nil and lib.EVP_PKEY_fromdata_init(ctx) == 1
    and lib.EVP_PKEY_fromdata(ctx, pkey_out, EVP_PKEY_PUBLIC_KEY, params) == 1
  if ctx ~= nil then lib.EVP_PKEY_CTX_free(ctx) end
  lib.OSSL_PARAM_free(params)
  if not made then return nil, ossl_error("invalid " .. name .. " JWK") end
  local pkey = pkey_out[0]
  pkey_out[0] = nil
  return pkey
end

local function rsa_jwk(jwk)
  local n, err = b64url_field(jwk, "n")
  if not n then return nil, err end
  local e
  e, err = b64url_field(jwk, "e")
  if not e then return nil, err end
  -- OSSL_PARAM_BLD_push_BN keeps a pointer to the BIGNUM until to_param, so
  -- the BIGNUMs must outlive the builder: make them here, free them after.
  local bn_n = lib.BN_bin2bn(n, #n, nil)
  local bn_e = bn_n ~= nil and lib.BN_bin2bn(e, #e, nil) or nil
  local pkey
  if bn_e ~= nil then
    pkey, err = key_fromdata("RSA", function(bld)
      if lib.OSSL_PARAM_BLD_push_BN(bld, "n", bn_n) == 1 and lib.OSSL_PARAM_BLD_push_BN(bld, "e", bn_e) == 1 then
        return true
      end
      return nil, ossl_error("OSSL_PARAM_BLD_push_BN")
    end)
  else
    err = ossl_error("BN_bin2bn")
  end
  if bn_n ~= nil then lib.BN_free(bn_n) end
  if bn_e ~= nil then lib.BN_free(bn_e) end
  return pkey, err
end

local function ec_jwk(jwk)
  local curve = JWK_CURVES[jwk.crv]
  if not curve then return nil, "unsupported JWK EC curve " .. tostring(jwk.crv) end
  local x, err = b64url_field(jwk, "x")
  if not x then return nil, err end
  local y
  y, err = b64url_field(jwk, "y")
  if not y then return nil, err end
  if #x ~= curve[2] or #y ~= curve[2] then
    return nil, format("JWK %s coordinates must be %d bytes each", jwk.crv, curve[2])
  end
  local point = "\4" .. x .. y
  return key_fromdata("EC", function(bld)
    if lib.OSSL_PARAM_BLD_push_utf8_string(bld, "group", curve[1], 0) == 1
        and lib.OSSL_PARAM_BLD_push_octet_string(bld, "pub", point, #point) == 1 then
      return true
    end
    return nil, ossl_error("cannot build JWK key parameters")
  end)
end

local OKP_CURVES = { Ed25519 = { "ED25519", 32 }, Ed448 = { "ED448", 57 } }

local function okp_jwk(jwk)
  local curve = OKP_CURVES[jwk.crv]
  if not curve then return nil, "unsupported JWK OKP curve " .. tostring(jwk.crv) end
  local x, err = b64url_field(jwk, "x")
  if not x then return nil, err end
  if #x ~= curve[2] then return nil, format("JWK %s key must be %d bytes", jwk.crv, curve[2]) end
  local pkey = lib.EVP_PKEY_new_raw_public_key_ex(nil, curve[1], nil, x, #x)
  if pkey == nil then return nil, ossl_error("invalid OKP JWK") end
  return pkey
end

local JWK_LOADERS = { RSA = rsa_jwk, EC = ec_jwk, OKP = okp_jwk }

function M.load_public_key(src)
  local pkey, err
  if type(src) == "table" then
    local loader = JWK_LOADERS[src.kty]
    if not loader then return nil, "unsupported JWK kty " .. tostring(src.kty) .. " (want RSA, EC or OKP)" end
    pkey, err = loader(src)
    if pkey == nil then return nil, err end
  elseif type(src) == "string" then
    if not find(src, "-----BEGIN ", 1, true) then return nil, "cannot read public key: not PEM" end
    if find(src, "-----BEGIN CERTIFICATE-----", 1, true) then
      pkey = read_certificate_key(src)
    else
      pkey = with_bio(src, lib.PEM_read_bio_PUBKEY, ffi_cast("void *", ""))
    end
    if pkey == nil then return nil, ossl_error("cannot read public key") end
  else
    return nil, "public key must be a PEM string or a JWK table, got " .. type(src)
  end
  return wrap(pkey, false)
end

function M.load_private_key(pem, passphrase)
  if type(pem) ~= "string" then return nil, "private key must be a PEM string, got " .. type(pem) end
  if not find(pem, "-----BEGIN ", 1, true) then return nil, "cannot read private key: not PEM" end
  if passphrase ~= nil and type(passphrase) ~= "string" then
    return nil, "passphrase must be a string, got " .. type(passphrase)
  end
  -- With no callback, a non-NULL u is the passphrase: "" instead of NULL
  -- keeps OpenSSL from prompting on the terminal for an encrypted key.
  local pass = passphrase or ""
  local pkey = with_bio(pem, lib.PEM_read_bio_PrivateKey, ffi_cast("void *", pass))
  if pkey == nil then return nil, ossl_error("cannot read private key") end
  return wrap(pkey, true)
end

M.is_key = function(v) return getmetatable(v) == Key end

---------------------------------------------------------------- sign / verify

local ALGS = {
  RS256 = { md = lib.EVP_sha256, kind = "RSA" },
  RS384 = { md = lib.EVP_sha384, kind = "RSA" },
  RS512 = { md = lib.EVP_sha512, kind = "RSA" },
  PS256 = { md = lib.EVP_sha256, kind = "PSS" },
  PS384 = { md = lib.EVP_sha384, kind = "PSS" },
  PS512 = { md = lib.EVP_sha512, kind = "PSS" },
  ES256 = { md = lib.EVP_sha256, kind = "EC", curve = "P-256", half = 32 },
  ES384 = { md = lib.EVP_sha384, kind = "EC", curve = "P-384", half = 48 },
  ES512 = { md = lib.EVP_sha512, kind = "EC", curve = "P-521", half = 66 },
  EdDSA = { kind = "OKP" },
}

local KIND_TYPES = {
  RSA = { RSA = true },
  PSS = { RSA = true, ["RSA-PSS"] = true },
  EC = { EC = true },
  OKP = { Ed25519 = true, Ed448 = true },
}

local function check_alg_key(alg, key)
  local spec = ALGS[alg]
  if not spec then return nil, "unsupported alg " .. tostring(alg) end
  if getmetatable(key) ~= Key then return nil, "key must come from load_public_key or load_private_key" end
  if not KIND_TYPES[spec.kind][key.type] then
    return nil, format("alg %s does not go with a %s key", alg, key.type)
  end
  if spec.curve and key.curve ~= spec.curve then
    return nil, format("alg %s needs a %s key, not %s", alg, spec.curve, tostring(key.curve))
  end
  return spec
end

-- Initialises ctx for signing (init = EVP_DigestSignInit) or verifying.
local function init_ctx(ctx, init, spec, key)
  pctx_out[0] = nil
  local md = spec.md and spec.md() or nil
  if init(ctx, pctx_out, md, nil, key.pkey) ~= 1 then return false end
  if spec.kind == "PSS" then
    local pctx = pctx_out[0]
    if lib.EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ~= 1
        or lib.EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) ~= 1 then
      return false
    end
  end
  return true
end

local rawbuf = ffi_new("uint8_t[132]") -- r || s for P-521

-- DER ECDSA-Sig-Value -> r || s, each left-padded to `half` bytes.
local function der_to_raw(der, len, half)
  cptr_out[0] = der
  local sig = lib.d2i_ECDSA_SIG(nil, cptr_out, len)
  if sig == nil then return nil end
  lib.ECDSA_SIG_get0(sig, bn_out_r, bn_out_s)
  local out = rawbuf
  local ok = lib.BN_bn2binpad(bn_out_r[0], out, half) == half
    and lib.BN_bn2binpad(bn_out_s[0], out + half, half) == half
  lib.ECDSA_SIG_free(sig)
  if not ok then return nil end
  return ffi_string(out, 2 * half)
end

local derbuf = ffi_new("unsigned char[256]") -- a P-521 DER signature is at most 139 bytes

-- r || s -> DER in derbuf; returns its length, or nil.
local function raw_to_der(raw, half)
  local p = ffi_cast(u8p, raw)
  local r = lib.BN_bin2bn(p, half, nil)
  local s = lib.BN_bin2bn(p + half, half, nil)
  local sig = lib.ECDSA_SIG_new()
  if r == nil or s == nil or sig == nil then
    if r ~= nil then lib.BN_free(r) end
    if s ~= nil then lib.BN_free(s) end
    if sig ~= nil then lib.ECDSA_SIG_free(sig) end
    return nil
  end
  if lib.ECDSA_SIG_set0(sig, r, s) ~= 1 then -- on success sig owns r and s
    lib.BN_free(r)
    lib.BN_free(s)
    lib.ECDSA_SIG_free(sig)
    return nil
  end
  ptr_out[0] = derbuf
  local len = lib.i2d_ECDSA_SIG(sig, ptr_out)
  lib.ECDSA_SIG_free(sig)
  if len <= 0 or len > 256 then return nil end
  return len
end

local function do_sign(ctx, spec, key, msg)
  if not init_ctx(ctx, lib.EVP_DigestSignInit, spec, key) then return nil, ossl_error("sign init") end
  local size = key.size
  local buf = buffer(size)
  size_out[0] = size
  if lib.EVP_DigestSign(ctx, buf, size_out, msg, #msg) ~= 1 then return nil, ossl_error("sign") end
  if spec.half then
    local raw = der_to_raw(buf, size_out[0], spec.half)
    if not raw then return nil, ossl_error("cannot convert the ECDSA signature") end
    return raw
  end
  return ffi_string(buf, size_out[0])
end

local function do_verify(ctx, spec, key, msg, sig)
  if not init_ctx(ctx, lib.EVP_DigestVerifyInit, spec, key) then return nil, ossl_error("verify init") end
  local p, len = sig, #sig
  if spec.half then
    if len ~= 2 * spec.half then return false end
    len = raw_to_der(sig, spec.half)
    if not len then lib.ERR_clear_error(); return false end
    p = derbuf
  end
  local rc = lib.EVP_DigestVerify(ctx, p, len, msg, #msg)
  if rc == 1 then return true end
  lib.ERR_clear_error()
  return false
end

function M.sign(alg, key, msg)
  check_string(msg, "message", 2)
  local spec, err = check_alg_key(alg, key)
  if not spec then return nil, err end
  if not key.private then return nil, "sign needs a private key" end
  local ctx = lib.EVP_MD_CTX_new()
  if ctx == nil then return nil, ossl_error("EVP_MD_CTX_new") end
  local sig
  sig, err = do_sign(ctx, spec, key, msg)
  lib.EVP_MD_CTX_free(ctx)
  return sig, err
end

function M.verify(alg, key, msg, sig)
  check_string(msg, "message", 2)
  check_string(sig, "signature", 2)
  local spec, err = check_alg_key(alg, key)
  if not spec then return nil, err end
  local ctx = lib.EVP_MD_CTX_new()
  if ctx == nil then return nil, ossl_error("EVP_MD_CTX_new") end
  local ok
  ok, err = do_verify(ctx, spec, key, msg, sig)
  lib.EVP_MD_CTX_free(ctx)
  return ok, err
end

M.algs = {}
for name in pairs(ALGS) do M.algs[#M.algs + 1] = name end
table.sort(M.algs)

return M
