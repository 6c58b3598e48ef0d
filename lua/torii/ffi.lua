-- torii.ffi: the C functions of core/lua/ffi.h, declared for LuaJIT's FFI.
-- t/spec/ffi_spec.lua checks that these declarations are the header's.
local ffi = require "ffi"

local ABI = 4 -- TORII_FFI_ABI this file was written for

local cdef = [[
struct torii_request_s;
struct torii_shdict_s;
int torii_ffi_abi_version(void);
struct torii_request_s *torii_ffi_request(void);
int torii_ffi_phase(void);
const char *torii_ffi_errmsg(void);
int torii_ffi_req_method(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_path(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_target(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_query(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_client(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_id(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_route(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_header_count(struct torii_request_s *r);
int torii_ffi_req_header_at(struct torii_request_s *r, int i, const char **name, size_t *nlen,
  const char **value, size_t *vlen);
int torii_ffi_req_header(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen);
int torii_ffi_req_filter(struct torii_request_s *r, const void *filter);
int torii_ffi_req_param(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen);
int torii_ffi_up_header(struct torii_request_s *r, int op, const char *name, size_t nlen,
  const char *value, size_t vlen);
int torii_ffi_up_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v);
int torii_ffi_up_target(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_up_get_target(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_up_method(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_up_host(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_up_upstream(struct torii_request_s *r, const char *id, size_t n);
int torii_ffi_up_upstream_inline(struct torii_request_s *r, const void *u);
int torii_ffi_bal_set_node(struct torii_request_s *r, const char *name, size_t n);
int torii_ffi_bal_set_upstream(struct torii_request_s *r, const char *id, size_t n);
int torii_ffi_bal_try(struct torii_request_s *r, int *try_no, int *last, int *last_status);
int torii_ffi_bal_node(struct torii_request_s *r, int i, const char **id, size_t *idlen, const char **name,
                       size_t *namelen, int *weight, int *down);
int torii_ffi_req_set_consumer(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_resp_header(struct torii_request_s *r, int op, const char *name, size_t nlen,
  const char *value, size_t vlen);
int torii_ffi_resp_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v);
int torii_ffi_resp_status(struct torii_request_s *r);
int torii_ffi_resp_body_chunk(struct torii_request_s *r, const char **p, size_t *n, int *eof);
int torii_ffi_resp_set_body_chunk(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_resp_exit(struct torii_request_s *r, int status, const char *body, size_t blen);
int torii_ffi_sleep(struct torii_request_s *r, double ms);
int torii_ffi_task_enter(int task);
int torii_ffi_task_leave(void);
int torii_ffi_task_end(int task);
int torii_ffi_sock_connect(const char *host, size_t hlen, int port, double timeout, int *id, unsigned *gen);
int torii_ffi_sock_send(int id, unsigned gen, const char *p, size_t n, double timeout);
int torii_ffi_sock_recv(int id, unsigned gen, int mode, size_t n, const char *delim, double timeout, const char **p,
  size_t *len);
int torii_ffi_sock_result(int id, unsigned gen, const char **p, size_t *len);
int torii_ffi_sock_keepalive(int id, unsigned gen, double idle_ms, int pool_size);
int torii_ffi_sock_close(int id, unsigned gen);
int torii_ffi_sock_reused(int id, unsigned gen);
struct torii_shdict_s *torii_ffi_shdict(const char *name, size_t n);
int torii_ffi_shdict_get(struct torii_shdict_s *d, const char *key, size_t klen, int *type, double *num,
  const char **str, size_t *slen);
int torii_ffi_shdict_store(struct torii_shdict_s *d, int op, const char *key, size_t klen, int type, double num,
  const char *str, size_t slen, double ttl, int *forcible);
int torii_ffi_shdict_incr(struct torii_shdict_s *d, const char *key, size_t klen, double delta, double init,
  int has_init, double ttl, double *out);
int torii_ffi_shdict_delete(struct torii_shdict_s *d, const char *key, size_t klen);
int torii_ffi_shdict_expire(struct torii_shdict_s *d, const char *key, size_t klen, double ttl);
int torii_ffi_shdict_ttl(struct torii_shdict_s *d, const char *key, size_t klen, double *ttl);
int torii_ffi_shdict_flush_all(struct torii_shdict_s *d);
int torii_ffi_timer_start(int id, double delay, double interval);
int torii_ffi_timer_stop(int id);
double torii_ffi_now(void);
int torii_ffi_log(int level, const char *msg, size_t n);
]]

-- ffi.cdef is global to the VM: declare once, whoever loads this first.
if not pcall(ffi.typeof, "struct torii_request_s") then
  ffi.cdef(cdef)
end

local C = ffi.C
local M = { C = C, cdef = cdef, ABI = ABI }

local ok, have = pcall(function() return C.torii_ffi_abi_version() end)
if not ok then
  error("torii.ffi: the C functions are not there (run inside torii): " .. tostring(have), 0)
end
if have ~= ABI then
  error(("torii.ffi: C ABI version %d, this Lua side expects %d"):format(have, ABI), 0)
end

-- Resolve every declared function now. The JIT cannot record the first
-- lookup of a C symbol (it aborts the trace: "symbol not in cache"), and a
-- trace that starts at a rarely called API function could meet one.
for name in cdef:gmatch("(torii_ffi_[%w_]+)%s*%(") do
  local _ = C[name]
end

M.OK, M.ERROR, M.NOT_FOUND, M.BAD_PHASE, M.DECLINED, M.AGAIN = 0, -1, -2, -3, -4, -5
M.REWRITE, M.ACCESS, M.HEADER_FILTER, M.LOG, M.BODY_FILTER, M.TIMER = 1, 2, 3, 4, 5, 6
M.phase_names = { "rewrite", "access", "header_filter", "log", "body_filter", "timer", "balancer" }

-- A coroutine that waits yields (token, WAIT): C (a request's phase) or the
-- runtime (a timer task) then knows the yield is torii's, and resumes the
-- coroutine once the wait is over.
M.token = setmetatable({}, { __tostring = function() return "torii.token" end })
M.WAIT = 3

-- Out-parameter cells, allocated once (a worker runs one phase at a time).
M.p = ffi.new("const char *[1]")
M.n = ffi.new("size_t[1]")
M.p2 = ffi.new("const char *[1]")
M.n2 = ffi.new("size_t[1]")

function M.errmsg()
  return ffi.string(C.torii_ffi_errmsg())
end

return M
