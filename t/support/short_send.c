/*
 * short_send.c - a preloaded library for tests: every send() and sendmsg()
 * on a stream socket hands the kernel at most TORII_TEST_SEND_MAX bytes, and
 * the call after a send cut short fails with EAGAIN, once: the socket acts
 * as one whose send buffer is nearly full. It is writable again at once, so
 * a sender that waits for the write event goes on in its next loop pass.
 *
 *   LD_PRELOAD=build/short-send.so TORII_TEST_SEND_MAX=997 build/torii ...
 *
 * On loopback the kernel almost always takes a small response whole, so a
 * sender's handling of a short write (keep the rest, wait for the socket,
 * finish only once all went) is otherwise rarely exercised. The calls that
 * io_uring makes do not pass through here: specs that use this library run
 * torii with `io_uring: false`. Without TORII_TEST_SEND_MAX (or with 0)
 * the calls pass unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

#define MAX_IOV 64
#define MAX_FD  65536

/* Per descriptor: the last send was cut, so the next one says EAGAIN. */
static unsigned char full[MAX_FD];

/* Before a send on fd: whether to fail it with EAGAIN. */
static int fake_full(int fd)
{
    if (fd < 0 || fd >= MAX_FD || !full[fd])
        return 0;
    full[fd] = 0;
    errno = EAGAIN;
    return 1;
}

/* After a send on fd of `asked` bytes cut to `max`. */
static ssize_t sent(int fd, ssize_t r, size_t asked, size_t max)
{
    if (r > 0 && asked > max && fd < MAX_FD)
        full[fd] = 1;
    return r;
}

static size_t send_max(int fd)
{
    static long max = -1;
    if (max < 0) {
        const char *s = getenv("TORII_TEST_SEND_MAX");
        max = s ? strtol(s, NULL, 10) : 0;
        if (max < 0)
            max = 0;
    }
    if (max == 0)
        return 0;
    int type = 0;
    socklen_t len = sizeof type;
    int saved = errno; /* a plain file or pipe is not ours to cut */
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
        errno = saved;
        return 0;
    }
    return (size_t)max;
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    static send_fn real;
    if (!real)
        real = (send_fn)dlsym(RTLD_NEXT, "send");
    size_t max = send_max(fd);
    if (!max)
        return real(fd, buf, n, flags);
    if (fake_full(fd))
        return -1;
    return sent(fd, real(fd, buf, n > max ? max : n, flags), n, max);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static sendmsg_fn real;
    if (!real)
        real = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
    size_t max = send_max(fd);
    if (!max || msg->msg_iovlen > MAX_IOV)
        return real(fd, msg, flags);
    if (fake_full(fd))
        return -1;
    /* The same message with its vector cut after `max` bytes. */
    struct iovec iov[MAX_IOV];
    struct msghdr cut = *msg;
    size_t total = 0, asked = 0, k = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        asked += msg->msg_iov[i].iov_len;
    for (; k < msg->msg_iovlen && total < max; k++) {
        iov[k] = msg->msg_iov[k];
        if (iov[k].iov_len > max - total)
            iov[k].iov_len = max - total;
        total += iov[k].iov_len;
    }
    cut.msg_iov = iov;
    cut.msg_iovlen = k;
    return sent(fd, real(fd, &cut, flags), asked, max);
}
