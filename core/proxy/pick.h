/*
 * pick.h — the upstream node of a request's try, chosen by the balancer
 * of the route's upstream in the request's generation.
 */
#ifndef TORII_PICK_H
#define TORII_PICK_H

#include "http/request.h"

/* Choose r->node (and r->node_index) for the next try, and count the try
 * on it: the route's upstream first; a retry (r->retries > 0) goes where
 * retry_to or retry.to say, else to a node not tried yet. False when no
 * node can take it. now: the loop's time. */
bool torii_pick_node(torii_request_t *r, double now, const char **why);

/* The upstream the next try goes to, as chosen so far (the balancer
 * phase asks before it picks a node of it). */
const struct torii_upstream_conf_s *torii_pick_target(torii_request_t *r);

/* Bring the health states of that upstream up to date (active checks'
 * shared states, passive cool-downs over), as a pick does first. */
void torii_pick_refresh(torii_request_t *r, double now);

/* Within the upstream's circuit_breaker, may the request retry (retries
 * in flight, requests waiting to retry)? Why not in *why. */
bool torii_pick_may_retry(torii_request_t *r, const char **why);

/* The request enters or leaves a retry's back-off (load.pending). */
void torii_pick_backoff(torii_request_t *r, bool on);

/* The request's upstream: one a plugin chose (traffic-split), else its
 * route's. Its retry: policy governs the request's retries. */
const struct torii_upstream_conf_s *torii_pick_base(torii_request_t *r);

/* May one more retry go out, within the upstream's retry budget (a share
 * of its recent requests, or a few per second)? Counts it when it may. */
bool torii_pick_retry_budget(torii_request_t *r, double now);

/* The current try ended: its latency and outcome go to its balancer
 * (least_conn's and ewma's counts). */
void torii_pick_try_ended(torii_request_t *r, double now, bool failed);

/* The request is done: its last try ended, failed if it answered 5xx. */
void torii_pick_done(torii_request_t *r, double now);

#endif
