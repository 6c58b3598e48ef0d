/* reload_msg.c — messages on the reload channel (see reload_msg.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "process/reload_msg.h"

bool torii_reload_send(int fd, const char *fmt, ...)
{
    char buf[TORII_RELOAD_MSG_MAX];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1; /* a long reason is cut, not lost */
    for (;;) {
        ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
        if (w == n)
            return true;
        if (w < 0 && errno == EINTR)
            continue;
        return false;
    }
}

int torii_reload_recv(int fd, char *buf, size_t cap)
{
    ssize_t n;
    do
        n = recv(fd, buf, cap - 1, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

bool torii_reload_parse(const char *msg, size_t *verb_len, uint64_t *id, const char **rest)
{
    const char *sp = strchr(msg, ' ');
    char *end;
    if (!sp || sp == msg)
        return false;
    *verb_len = (size_t)(sp - msg);
    errno = 0;
    *id = strtoull(sp + 1, &end, 10);
    if (errno || end == sp + 1 || (*end != '\0' && *end != ' '))
        return false;
    *rest = *end ? end + 1 : end;
    return true;
}
