/*
 * request.h — one request's state, from its head to its last response
 * byte: what was asked, where it goes, how far the body and the response
 * have got. Connections (core/proxy) own the sockets; this is the data
 * the driver and, later, plugins work on.
 */
#ifndef TORII_REQUEST_H
#define TORII_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/list.h"
#include "base/buf.h"
#include "config/config.h"
#include "event/loop.h"
#include "http/chunked.h"
#include "http/forward.h"
#include "http/head.h"
#include "router/router.h"
#include "upstream/balancer.h"

/* How a body is moving through torii, in one direction. */
typedef struct {
    torii_body_kind_t in;  /* framing as received */
    uint64_t left;         /* TORII_BODY_LENGTH: bytes still to come */
    uint64_t total;        /* decoded bytes seen */
    torii_chunked_t chunk; /* TORII_BODY_CHUNKED: decoder state */
    bool out_chunked;      /* re-framed as chunked when forwarded */
    bool done;             /* last byte seen */
} torii_body_t;

struct torii_gen_s;

typedef struct torii_request_s {
    struct torii_gen_s *gen; /* the configuration generation it runs on */
    torii_http_head_t head;  /* slices into the client's input buffer */
    torii_str_t line;        /* the request line as received (for the access log) */
    const torii_route_conf_t *route;
    torii_route_match_t match; /* the route and its parameters (slices of `path`) */
    torii_str_t path;          /* normalised path the route was matched on */
    char *path_buf;            /* its storage when it differs from head.path */
    const torii_node_conf_t *node;
    torii_addr_t up_addr;                       /* the current try's address (a host name's change over time) */
    char up_addr_text[TORII_ADDRSTRLEN];        /* ... for logs */
    int node_index;                             /* in its upstream's nodes, for the balancer */
    bool balanced;                              /* the balancer counted a try on node_index */
    const struct torii_upstream_conf_s *try_up; /* the upstream of the current try */
    torii_btried_t tried;                       /* nodes of try_up tried already */
    uint8_t retries;                            /* tries after the first, so far */
    bool backing_off;                           /* counted in its upstream's load.pending */
    uint8_t replay;               /* the body kept for retries: 0 not decided, 1 kept so far, 2 not kept */
    torii_buf_t replay_buf;       /* ... as sent upstream (framed) */
    uint8_t try_error;            /* how the current try failed: 0, TORII_TRY_TCP, TORII_TRY_TIMEOUT */
    int try_status;               /* the current try's final status (0: none yet) */
    double t_first;               /* when the first try began */
    torii_timeouts_t try_timeout; /* the route's, or retry.per_try_timeout for reads */
    const struct torii_upstream_conf_s *base_up; /* the request's upstream: a plugin's choice or the route's */
    const struct torii_upstream_conf_s *bal_up;  /* the balancer phase's choice for this try, or NULL */
    uint32_t bal_node;                           /* ... 1 + a node of the try's upstream (0: the balancer's pick) */
    torii_str_t bal_test_up, bal_test_node;      /* torii test: the phase's choice, as named */
    torii_str_t consumer;                        /* set by an authentication plugin (chash on consumer) */
    torii_body_t body;                           /* client -> upstream */
    torii_http_head_t resp;                      /* upstream response head (slices valid while parsing) */
    torii_body_t resp_body;                      /* upstream -> client */
    int status;                                  /* sent to the client; 0 until the head goes out */
    const char *error;                           /* why torii answered itself, for the log */
    uint64_t bytes_sent;                         /* to the client, head included */
    double t_start, t_upstream, t_upstream_done;
    char id[17];             /* request id: 16 hex digits */
    const char *client_ip;   /* the peer's address, as text */
    const uint8_t *client16; /* the same, 16-byte form (base/cidr.h) */
    /* What plugins did (core/lua). */
    struct torii_pool_s *pool;                 /* per-request arena, made on first use */
    torii_hdr_edit_t *up_edits;                /* upstream header changes, in order */
    torii_str_t up_target, up_method, up_host; /* set by plugins, else empty */
    torii_hdr_edit_t *resp_edits;              /* response header changes, in order */
    int exit_status;                           /* a plugin answered: status (0: none) */
    torii_str_t exit_body;
    int co_ref;           /* the request's Lua coroutine (registry ref), 0: none */
    double wait_ms;       /* a plugin waits this long (torii.sleep, a socket) */
    torii_timer_t *wake;  /* fires to resume a waiting phase (the connection's wait timer) */
    torii_list_t held;    /* what plugins opened and the request's end closes (core/lua/wait.h) */
    bool waiting;         /* its coroutine is suspended mid-phase */
    uint8_t phase_at;     /* the next access-side phase to run (0: rewrite) */
    uint8_t phase;        /* the phase running in Lua */
    bool filtered;        /* the response body passes through body_filter plugins */
    bool bf_eof;          /* body_filter: the last call */
    torii_str_t bf_chunk; /* body_filter: the piece passing now */
    char *bf_buf;         /* body_filter: storage of a replaced piece */
    size_t bf_cap;
    uint8_t tries;
    bool response_started;    /* head queued for the client: no error page any more */
    bool response_done;       /* last response byte queued */
    bool request_sent;        /* head and whole body written upstream */
    bool close_after;         /* the client connection closes after this response */
    torii_header_t storage[]; /* header slots: request then response */
} torii_request_t;

/* How a try failed, for passive health checks. */
enum { TORII_TRY_TCP = 1, TORII_TRY_TIMEOUT = 2 };

/* True for methods a retry may repeat (RFC 9110 9.2.2). */
static inline bool torii_method_idempotent(torii_method_t m)
{
    return m == TORII_M_GET || m == TORII_M_HEAD || m == TORII_M_OPTIONS || m == TORII_M_TRACE || m == TORII_M_PUT ||
           m == TORII_M_DELETE;
}

#endif
