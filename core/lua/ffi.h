/*
 * ffi.h — every C function Lua may call, and nothing else. lua/torii/ffi.lua
 * declares the same functions with ffi.cdef (a unit spec checks that the two
 * agree) and refuses to load if torii_ffi_abi_version() is not the version
 * it was written for. Rules: strings cross as pointer + length; C never keeps
 * a pointer Lua passed in (it copies into the request's arena); strings going
 * out point into request memory and are valid until the request ends; each
 * function returns TORII_FFI_OK or a negative code, with a message through
 * torii_ffi_errmsg().
 */
#ifndef TORII_FFI_H
#define TORII_FFI_H

#include <stddef.h>
#include <stdint.h>

#define TORII_FFI_ABI 4

/* Return codes. */
#define TORII_FFI_OK        0
#define TORII_FFI_ERROR     -1
#define TORII_FFI_NOT_FOUND -2
#define TORII_FFI_BAD_PHASE -3
#define TORII_FFI_DECLINED  -4
#define TORII_FFI_AGAIN     -5 /* the call waits: yield, then ask for the outcome */

/* Phases, in the order a request meets them. */
#define TORII_PHASE_REWRITE       1
#define TORII_PHASE_ACCESS        2
#define TORII_PHASE_HEADER_FILTER 3
#define TORII_PHASE_LOG           4
#define TORII_PHASE_BODY_FILTER   5
#define TORII_PHASE_TIMER         6 /* a torii.timer callback (no request) */
#define TORII_PHASE_BALANCER      7 /* before each try: may choose its node or upstream */

struct torii_request_s;
struct torii_shdict_s;

int torii_ffi_abi_version(void);

/* The request whose phase is running (NULL outside a request), and which
 * phase that is. */
struct torii_request_s *torii_ffi_request(void);
int torii_ffi_phase(void);

/* Why the last call failed. */
const char *torii_ffi_errmsg(void);

/* The request as received. The path is the normalised one the route was
 * matched on; the target is the request line's, as sent. */
int torii_ffi_req_method(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_path(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_target(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_query(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_client(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_id(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_req_route(struct torii_request_s *r, const char **p, size_t *n);

/* Headers: the i-th (0-based) of them all, or the first with a name. */
int torii_ffi_req_header_count(struct torii_request_s *r);
int torii_ffi_req_header_at(struct torii_request_s *r, int i, const char **name, size_t *nlen, const char **value,
                            size_t *vlen);
int torii_ffi_req_header(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen);

/* Does the request meet a plugin's _meta.filter (compiled by the
 * configuration loader)? 1 yes, 0 no. */
int torii_ffi_req_filter(struct torii_request_s *r, const void *filter);

/* A route parameter or named capture by name. */
int torii_ffi_req_param(struct torii_request_s *r, const char *name, size_t nlen, const char **value, size_t *vlen);

/* The upstream request: op 0 sets (replacing the client's), 1 adds, 2 clears. */
int torii_ffi_up_header(struct torii_request_s *r, int op, const char *name, size_t nlen, const char *value,
                        size_t vlen);
int torii_ffi_up_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v);

/* The upstream request's line: its target (origin form, path and query),
 * method and Host; get_target gives the current one (set or as received). */
int torii_ffi_up_target(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_up_get_target(struct torii_request_s *r, const char **p, size_t *n);
int torii_ffi_up_method(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_up_host(struct torii_request_s *r, const char *p, size_t n);

/* The upstream (an id of upstreams:) the request goes to instead of its
 * route's (rewrite, access): traffic-split. */
int torii_ffi_up_upstream(struct torii_request_s *r, const char *id, size_t n);

/* The same with an upstream written inline in a plugin's configuration
 * (the node the loader compiled; traffic-split's weighted_upstreams). */
int torii_ffi_up_upstream_inline(struct torii_request_s *r, const void *u);

/* The balancer phase (before each try, the first and every retry): send
 * this try to a node of its upstream (its id, or its "host:port" as
 * configured), or to another upstream (an id of upstreams:), whose
 * balancer then picks the node unless a node of it is chosen after. A
 * node chosen so is tried even when health checks have it down. */
int torii_ffi_bal_set_node(struct torii_request_s *r, const char *name, size_t n);
int torii_ffi_bal_set_upstream(struct torii_request_s *r, const char *id, size_t n);

/* This try: *try_no 1 for the first, 2 for the first retry...; how the
 * last one failed (*last 0 none, 1 connect error or reset, 2 timeout, 3
 * a status the upstream's retry.on lists) and its status (0: none). */
int torii_ffi_bal_try(struct torii_request_s *r, int *try_no, int *last, int *last_status);

/* Node i of the upstream this try goes to (as chosen so far): its id
 * (empty if none), "host:port", weight and health; NOT_FOUND past the end. */
int torii_ffi_bal_node(struct torii_request_s *r, int i, const char **id, size_t *idlen, const char **name,
                       size_t *namelen, int *weight, int *down);

/* The request's consumer, once an authentication plugin knows it (for
 * upstreams that hash on the consumer). */
int torii_ffi_req_set_consumer(struct torii_request_s *r, const char *p, size_t n);

/* The response: its headers (op as above; rewrite, access, header_filter),
 * its status (header_filter: the upstream's; log: what the client got), or
 * an answer from Lua instead of the upstream (rewrite, access). */
int torii_ffi_resp_header(struct torii_request_s *r, int op, const char *name, size_t nlen, const char *value,
                          size_t vlen);

/* The same with a number for the value, written as Lua's tostring would:
 * plugins setting counters in headers make no Lua string per request. */
int torii_ffi_resp_header_num(struct torii_request_s *r, int op, const char *name, size_t nlen, double v);
int torii_ffi_resp_status(struct torii_request_s *r);

/* body_filter: the response body piece passing now (eof: the last call,
 * with an empty piece), and its replacement. */
int torii_ffi_resp_body_chunk(struct torii_request_s *r, const char **p, size_t *n, int *eof);
int torii_ffi_resp_set_body_chunk(struct torii_request_s *r, const char *p, size_t n);
int torii_ffi_resp_exit(struct torii_request_s *r, int status, const char *body, size_t blen);

/* Wait ms milliseconds without blocking the worker (rewrite, access, timer
 * callbacks; r is NULL in a timer): on TORII_FFI_OK the Lua side yields; the
 * coroutine resumes when the time is up. */
int torii_ffi_sleep(struct torii_request_s *r, double ms);

/* Timer callbacks run as tasks (lua/torii/runtime.lua numbers them): a
 * task is entered around each resume of its coroutine, so that it may wait
 * like a request's phase, and ended when its coroutine is done (sockets it
 * left open are closed then). */
int torii_ffi_task_enter(int task);
int torii_ffi_task_leave(void);
int torii_ffi_task_end(int task);

/* Plugin TCP sockets (torii.socket; core/proxy/cosocket.c). A socket is
 * the handle (id, gen): gen changes whenever the slot is reused, so a
 * handle kept past its socket's end is refused. A socket belongs to the
 * request or timer task that connected it, is usable only there, and is
 * closed when that ends. connect, send and recv may wait (rewrite, access,
 * timer callbacks): TORII_FFI_AGAIN means Lua yields, and once resumed
 * calls torii_ffi_sock_result for the outcome (no outcome yet: the timeout
 * passed). Timeouts are milliseconds. Errors are short words for Lua:
 * "timeout", "closed", "connection refused", ... connect takes an IP
 * literal, localhost (127.0.0.1) or a name, looked up on other threads
 * within the connect timeout (core/event/resolve.h).
 * recv modes: 1 a line (without its CR LF), 2 all until the peer closes,
 * 3 exactly n bytes, 4 what is there (1 to n bytes), 5 up to the n-byte
 * delimiter delim (not returned). Received bytes are valid until the next
 * call on the socket; on failure they are what arrived (partial). */
int torii_ffi_sock_connect(const char *host, size_t hlen, int port, double timeout, int *id, unsigned *gen);
int torii_ffi_sock_send(int id, unsigned gen, const char *p, size_t n, double timeout);
int torii_ffi_sock_recv(int id, unsigned gen, int mode, size_t n, const char *delim, double timeout, const char **p,
                        size_t *len);
int torii_ffi_sock_result(int id, unsigned gen, const char **p, size_t *len);

/* Put the connection into the worker's keep-alive pool for its address
 * (shared with the proxy's upstream connections) for idle_ms, unless
 * pool_size idle ones wait there already (then it is closed); 0 takes the
 * proxy's settings. The handle is done either way. */
int torii_ffi_sock_keepalive(int id, unsigned gen, double idle_ms, int pool_size);
int torii_ffi_sock_close(int id, unsigned gen);

/* How many times the connection served before this socket got it from
 * the pool (0: a new connection). */
int torii_ffi_sock_reused(int id, unsigned gen);

/* Shared dicts (shared_dicts in the configuration), by name: NULL if none.
 * Values: type 1 string, 2 number, 3 boolean (0: none). ttl in seconds,
 * 0 = never expires. get points *str at a copy valid until the next call.
 * op for store: 0 set, 1 add, 2 replace, 3 safe_set, 4 safe_add.
 * Results are TORII_FFI_OK or TORII_FFI_NOT_FOUND, else an error with a
 * message; *forcible says live entries were evicted to make room. */
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

/* Timers (lua/torii/runtime.lua keeps the callbacks by id): fire id after
 * delay seconds, then every interval seconds if interval > 0. Only in a
 * worker (init_worker and after); TORII_FFI_DECLINED past the cap. */
int torii_ffi_timer_start(int id, double delay, double interval);
int torii_ffi_timer_stop(int id);

/* Wall-clock seconds (with milliseconds) as the worker's loop last saw
 * them: cheap, and the same for every plugin of a request. */
double torii_ffi_now(void);

/* Log through the error log, with the request's id and route appended. */
int torii_ffi_log(int level, const char *msg, size_t n);

#endif
