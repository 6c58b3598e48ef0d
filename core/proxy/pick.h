/*
 * pick.h — the upstream node of a request's try, chosen by the balancer
 * of the route's upstream in the request's generation.
 */
#ifndef TORII_PICK_H
#define TORII_PICK_H

#include "http/request.h"

/* Choose r->node (and r->node_index) and count the try on it. False when
 * no node can take it. */
bool torii_pick_node(torii_request_t *r);

/* The try ended (the request is done): its latency and outcome go to the
 * balancer (least_conn's and ewma's counts). now: the loop's time. */
void torii_pick_done(torii_request_t *r, double now);

#endif
