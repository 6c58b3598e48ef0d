/*
 * sock.h — non-blocking TCP socket calls with one error convention:
 * >= 0 bytes done (0 from read means the peer closed), TORII_AGAIN when the
 * call would block, TORII_ERROR with errno set.
 */
#ifndef TORII_SOCK_H
#define TORII_SOCK_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "base/addr.h"

/* Open listening socket for addr (IPv6 sockets are v6-only, so "[::]" and
 * "0.0.0.0" can be listened on side by side). */
int torii_sock_listen(const torii_addr_t *addr, int backlog, char *err, size_t errlen);

/* Accept one connection, non-blocking and close-on-exec. */
int torii_sock_accept(int lfd, torii_addr_t *peer);

/* Start a non-blocking connect: returns the fd with *in_progress set, or -1. */
int torii_sock_connect(const torii_addr_t *addr, int *in_progress);

/* The outcome of a connect that was in progress: 0 or an errno value. */
int torii_sock_connect_error(int fd);

ssize_t torii_sock_read(int fd, void *buf, size_t n);
ssize_t torii_sock_write(int fd, const void *buf, size_t n);
ssize_t torii_sock_writev(int fd, const struct iovec *iov, int iovcnt);

/* Close with an RST instead of a FIN (for aborted streams). */
void torii_sock_reset(int fd);

/* Raise the open-files limit to the hard limit; returns the new soft limit. */
long torii_sock_raise_nofile(void);

#endif
