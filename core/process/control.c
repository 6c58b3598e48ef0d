/* control.c — the master's control socket (see control.h). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "process/control.h"

#define COMMAND_WAIT_MS 1000 /* a client sends its command right after connecting */

static socklen_t control_addr(pid_t pid, struct sockaddr_un *sa)
{
    int n;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    /* Abstract namespace: the name starts with a NUL byte. */
    n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "torii-control-%d", (int)pid);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int torii_control_listen(pid_t pid, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t len = control_addr(pid, &sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Read until a newline or the deadline; false on EOF, error or timeout. */
static bool read_line(int fd, char *buf, size_t cap, int wait_ms)
{
    size_t n = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long spent;
        ssize_t r;
        clock_gettime(CLOCK_MONOTONIC, &t);
        spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= wait_ms || poll(&p, 1, (int)(wait_ms - spent)) <= 0)
            return false;
        r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            return false;
        n += (size_t)r;
        buf[n] = '\0';
        char *nl = memchr(buf, '\n', n);
        if (nl) {
            *nl = '\0';
            return true;
        }
    }
    return false;
}

int torii_control_accept(int lfd, char *cmd, size_t cap)
{
    struct ucred cred;
    socklen_t clen = sizeof cred;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Abstract sockets have no file permissions: check who is asking. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || (cred.uid != getuid() && cred.uid != 0) ||
        !read_line(fd, cmd, cap, COMMAND_WAIT_MS)) {
        close(fd);
        return -1;
    }
    return fd;
}

int torii_control_call(pid_t pid, const char *cmd, double timeout_s, char *reply, size_t cap, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    socklen_t len = control_addr(pid, &sa);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, len) != 0) {
        snprintf(err, errlen, "cannot reach the master (pid %d): %s", (int)pid, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (write(fd, line, (size_t)n) != n) {
        snprintf(err, errlen, "cannot talk to the master (pid %d): %s", (int)pid, strerror(errno));
        close(fd);
        return -1;
    }
    if (!read_line(fd, reply, cap, (int)(timeout_s * 1000))) {
        snprintf(err, errlen, "the master (pid %d) gave no answer within %.0f s", (int)pid, timeout_s);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
