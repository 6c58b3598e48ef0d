/*
 * balancer.h — choosing an upstream node for a request. One balancer per
 * upstream per configuration generation, per worker: no locks, no shared
 * memory on the pick path.
 *
 * Types (APISIX's names, the upstream's `type`):
 *   roundrobin  smooth weighted round robin: with weights 7/2/1 the picks run
 *               A A B A A C A A B A, exact counts in every cycle, no bursts.
 *   least_conn  the fewest active requests per unit of weight (active/weight);
 *               among equal loads, the fewest requests started per unit of
 *               weight, so equal nodes take turns and idle nodes share load
 *               by weight. Kept in a tournament tree: a pick reads its root,
 *               start/finish update one path (O(log n)).
 *   chash       consistent hashing of a caller-supplied key on a ring of
 *               points per node (proportional to weight, placed by the
 *               node's name): removing or adding a node moves only that
 *               node's share of keys.
 *   ewma        latency-aware: a per-node moving average of response time
 *               (it rises at once on a slow or failed response, falls back
 *               with time), times (active + 1); the better of two random
 *               nodes wins ("power of two choices"). A node left unused
 *               looks better and better with time, so a penalised node is
 *               tried again.
 *
 * Node indexes are the positions in the array given to torii_balancer_new.
 * A pick skips nodes marked down (torii_balancer_set_down, fed by health
 * checks), nodes of weight 0, and the nodes a request has already tried
 * (retries go to another node).
 *
 * Typical use, per request:
 *
 *   torii_btried_t tried = {0};
 *   int i = torii_balancer_pick(b, key, keylen, &tried, 0);
 *   if (i == TORII_BAL_ALL_DOWN)   // 503, or pick again with TORII_BAL_IGNORE_HEALTH
 *   torii_btried_add(&tried, i);
 *   torii_balancer_start(b, i);
 *   ... the try ends ...
 *   torii_balancer_finish(b, i, latency_us, failed);
 *
 * start/finish keep least_conn's and ewma's active counts and ewma's
 * latencies; the other types only count. Call start once the node is
 * chosen for a try (least_conn counts its turns there, so two picks with no
 * start between them give the same node), and finish once per start when
 * the try ends, whatever the outcome. Requests in flight when a new
 * generation is built finish on the old balancer; the new one starts idle.
 *
 * Costs with 100 nodes: roundrobin O(n) per pick (one pass over packed
 * arrays), least_conn O(1) per pick and O(log n) per start/finish, chash
 * O(1) (an index of the ring, then a few points), ewma O(1); a pick with
 * nodes down or tried may cost a pass over the nodes.
 */
#ifndef TORII_BALANCER_H
#define TORII_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    TORII_BALANCE_ROUNDROBIN,
    TORII_BALANCE_LEAST_CONN,
    TORII_BALANCE_CHASH,
    TORII_BALANCE_EWMA,
} torii_balance_type_t;

#define TORII_BAL_MAX_NODES  65535u
#define TORII_BAL_MAX_WEIGHT 1000000u /* keeps active * weight and weight sums far from overflow */

/* torii_balancer_pick's results besides a node index (>= 0). */
#define TORII_BAL_ALL_DOWN  (-1) /* every node of weight > 0 is down */
#define TORII_BAL_ALL_TRIED (-2) /* some are up, and this request tried them all */

/* torii_balancer_pick's flags. */
#define TORII_BAL_IGNORE_HEALTH 0x1u /* choose among down nodes too (try anyway) */

typedef struct {
    /* "host:port" as configured. chash places the node on its ring by this
     * name, so it is required and unique there (a node keeps its keys
     * whatever its index); other types use it only in error messages. */
    const char *name;
    /* 0..TORII_BAL_MAX_WEIGHT. Weight 0 keeps the node (indexes stay those
     * of the configuration) but it is never chosen, even with
     * TORII_BAL_IGNORE_HEALTH: a node being drained. At least one node must
     * weigh more than 0. */
    uint32_t weight;
} torii_bnode_t;

/* The nodes one request has tried, for retries. Zero-initialise it. Past
 * TORII_BTRIED_MAX entries, further nodes are not recorded (a request that
 * tried more nodes than that may come back to one of the later ones). */
#define TORII_BTRIED_MAX 32

typedef struct {
    uint32_t n;
    uint32_t idx[TORII_BTRIED_MAX];
} torii_btried_t;

static inline void torii_btried_add(torii_btried_t *t, int i)
{
    if (i < 0 || t->n >= TORII_BTRIED_MAX)
        return;
    for (uint32_t k = 0; k < t->n; k++)
        if (t->idx[k] == (uint32_t)i)
            return;
    t->idx[t->n++] = (uint32_t)i;
}

typedef struct {
    /* ewma's random choices; 0: seeded from the clock and the balancer's
     * address, so that workers do not all make the same choices. */
    uint64_t seed;
    /* A monotonic clock in microseconds, for ewma's decay (the worker's
     * cached loop time, or a test's fake one); NULL: CLOCK_MONOTONIC_COARSE. */
    uint64_t (*clock)(void *ud);
    void *clock_ud;
    uint32_t ewma_decay_ms;   /* time constant of the decay; 0: 10000 */
    uint32_t ewma_penalty_us; /* a failed request counts as at least this slow; 0: 1000000 */
} torii_balancer_opts_t;

typedef struct torii_balancer_s torii_balancer_t;

/* "roundrobin" ... into *type; false for an unknown name. */
bool torii_balance_type_parse(const char *name, size_t len, torii_balance_type_t *type);

const char *torii_balance_type_name(torii_balance_type_t type);

/*
 * A balancer of `type` ("roundrobin", "least_conn", "chash", "ewma"; NULL
 * means "roundrobin", APISIX's default) over n nodes; the nodes' names are
 * not kept. opts may be NULL. Returns NULL with the reason in err: an
 * unknown type, no nodes, too many, a weight out of range, every weight 0,
 * for chash a node without a name or two with the same one, out of memory.
 */
torii_balancer_t *torii_balancer_new(const char *type, const torii_bnode_t *nodes, uint32_t n,
                                     const torii_balancer_opts_t *opts, char *err, size_t errlen);

/*
 * The node for one try: an index, TORII_BAL_ALL_DOWN or TORII_BAL_ALL_TRIED.
 * key/keylen: chash's key (client address, header, cookie, URI, query
 * argument or consumer, found by the caller; when the request lacks it,
 * pass the client address, as APISIX does); ignored by the other types,
 * and may be NULL when keylen is 0.
 * tried: may be NULL. flags: TORII_BAL_IGNORE_HEALTH or 0.
 * Only TORII_BAL_ALL_DOWN is ever returned for an all-down upstream, whatever
 * `tried` holds; TORII_BAL_ALL_TRIED means nodes are up but all were tried
 * (down ones may remain: pick again with TORII_BAL_IGNORE_HEALTH to use them).
 */
int torii_balancer_pick(torii_balancer_t *b, const void *key, size_t keylen, const torii_btried_t *tried,
                        unsigned flags);

/* A request goes to node i / its try on node i ended after latency_us,
 * failed (connect error, timeout, or a status the caller counts as a
 * failure) or not. Call finish once per start. Bad indexes are ignored. */
void torii_balancer_start(torii_balancer_t *b, int i);
void torii_balancer_finish(torii_balancer_t *b, int i, uint32_t latency_us, bool failed);

/* Mark node i down or up again (health checks). Bad indexes are ignored. */
void torii_balancer_set_down(torii_balancer_t *b, int i, bool down);

/* Every node's state at once from a bitmap (bit i of word i / 64 set: node
 * i down), e.g. copied from the health checker's shared memory when its
 * version changed. */
void torii_balancer_load_down(torii_balancer_t *b, const uint64_t *bits);

bool torii_balancer_is_down(const torii_balancer_t *b, int i);
uint32_t torii_balancer_active(const torii_balancer_t *b, int i);
uint32_t torii_balancer_count(const torii_balancer_t *b); /* nodes, weight 0 included */
torii_balance_type_t torii_balancer_type(const torii_balancer_t *b);

/* Bytes the balancer holds (its arrays and, for chash, the ring). */
size_t torii_balancer_memory(const torii_balancer_t *b);

void torii_balancer_free(torii_balancer_t *b);

#endif
