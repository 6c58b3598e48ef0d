/*
 * conn.h — the proxy's moving parts: the worker, a client (downstream)
 * connection, an upstream connection. Each connection has one state enum,
 * changed through one setter per struct so transitions can be checked and
 * narrated in debug logs.
 */
#ifndef TORII_CONN_H
#define TORII_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/addr.h"
#include "base/buf.h"
#include "base/list.h"
#include "config/config.h"
#include "event/ioq.h"
#include "event/loop.h"
#include "http/request.h"
#include "router/router.h"

typedef struct torii_worker_s torii_worker_t;
typedef struct torii_client_s torii_client_t;
typedef struct torii_upstream_s torii_upstream_t;
typedef struct torii_upool_s torii_upool_t;
typedef struct torii_upool_node_s torii_upool_node_t;

typedef enum {
    TORII_CLIENT_IDLE,   /* keep-alive: no byte of the next request yet */
    TORII_CLIENT_HEAD,   /* reading a request head */
    TORII_CLIENT_ACTIVE, /* a request is being proxied */
    TORII_CLIENT_TUNNEL, /* upgraded: bytes flow both ways untouched */
    TORII_CLIENT_LINGER, /* answered and half-closed; discarding input */
} torii_client_state_t;

struct torii_client_s {
    torii_worker_t *w;
    torii_list_t link; /* in the worker's list of clients */
    int fd;
    torii_client_state_t state;
    torii_io_t rio, wio;
    torii_ioop_t rop, sop; /* a read and a send queued for the loop pass's round */
    torii_timer_t timer;
    torii_timer_t wait_timer;  /* a plugin's torii.sleep */
    torii_timer_t retry_timer; /* back-off before the next try */
    torii_buf_t in, out;
    size_t scanned;    /* head bytes already checked */
    uint32_t body_pos; /* ACTIVE: offset of unread body bytes in `in` */
    uint32_t nrequests;
    torii_request_t *req;
    torii_upstream_t *up; /* upstream connection serving req */
    torii_addr_t peer;
    uint8_t peer16[16];
    char ip[46];
    bool read_paused; /* back-pressure: upstream is not taking the body */
    bool eof;         /* the client shut its sending side */
};

typedef enum {
    TORII_UP_CONNECTING,
    TORII_UP_BUSY, /* carrying a request */
    TORII_UP_IDLE, /* in the keep-alive pool */
    TORII_UP_TUNNEL,
} torii_upstream_state_t;

struct torii_upstream_s {
    torii_worker_t *w;
    int fd;
    torii_upstream_state_t state;
    torii_io_t rio, wio;
    torii_ioop_t rop, sop; /* as the client's */
    torii_timer_t timer;
    torii_buf_t in, out;
    size_t scanned;
    torii_client_t *client;   /* owner while BUSY or TUNNEL */
    torii_upool_node_t *pool; /* the pool of its address */
    torii_list_t link;        /* in the pool's idle list */
    uint32_t nrequests;
    bool reused;      /* taken from the pool for this request */
    bool got_bytes;   /* a response byte arrived for this request */
    bool read_paused; /* back-pressure: the client is slow */
    bool eof;
};

struct torii_worker_s {
    torii_loop_t *loop;
    const torii_config_t *conf; /* the current generation's */
    struct torii_gen_s *gen;    /* current: new requests start on it */
    struct torii_gen_s *next;   /* built by a reload, waiting for the commit */
    int id;
    int ctl_fd; /* the reload channel to the master (-1: none) */
    torii_io_t ctl_io;
    const int *listen_fds;
    uint32_t nlisten;
    torii_io_t *lio;
    bool accepting;
    bool quitting;
    torii_list_t clients;
    uint32_t nclients;
    torii_upool_t *upool;
    uint64_t seq; /* request ids: seed and counter */
    uint32_t seed;
    torii_request_t *free_reqs[64];
    uint32_t nfree_reqs;
    torii_prepare_t flush;
    torii_ioq_t *ioq;      /* the hot paths' socket calls, done once per loop pass */
    torii_idle_t ioq_more; /* keeps the loop from waiting while ioq has work */
    torii_signal_t sigs[5];
    torii_timer_t shutdown_timer;
};

/* Why an upstream exchange failed, for the driver. */
typedef enum {
    TORII_UPERR_CONNECT, /* connect refused, unreachable, reset */
    TORII_UPERR_IO,      /* read or write failed, or the peer closed */
    TORII_UPERR_TIMEOUT_CONNECT,
    TORII_UPERR_TIMEOUT_SEND,
    TORII_UPERR_TIMEOUT_READ,
} torii_uperr_t;

#endif
