/*
 * reload_msg.h — the reload channel between the master and a worker: a
 * SOCK_SEQPACKET socket pair per worker, one text message per packet.
 *
 * A reload is two-phase, so a generation becomes current in every worker
 * or in none:
 *
 *   master -> worker   "prepare ID"   build generation ID, keep serving
 *   worker -> master   "ready ID MS"  built in MS milliseconds
 *                      "failed ID REASON"
 *   master -> worker   "commit ID"    make it current
 *                      "abort ID"     drop it
 *   worker -> master   "current ID MS"
 */
#ifndef TORII_RELOAD_MSG_H
#define TORII_RELOAD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TORII_RELOAD_MSG_MAX 4096

/* Send one message; false when the channel is broken. */
bool torii_reload_send(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read one message into buf (NUL-terminated): its length, 0 when the peer
 * closed, -1 when nothing is there (EAGAIN) or on error. */
int torii_reload_recv(int fd, char *buf, size_t cap);

/* Split "verb ID rest": the verb's length, the id, where rest starts.
 * False when the message is malformed. */
bool torii_reload_parse(const char *msg, size_t *verb_len, uint64_t *id, const char **rest);

#endif
