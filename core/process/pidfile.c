/* pidfile.c — pid file handling. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "process/pidfile.h"

pid_t torii_pidfile_read(const char *path, char *err, size_t errlen)
{
    char text[32] = {0};
    char *end;
    long pid;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0) {
        snprintf(err, errlen, "cannot open pid file \"%s\": %s (is torii running?)", path, strerror(errno));
        return -1;
    }
    n = read(fd, text, sizeof text - 1);
    close(fd);
    pid = n > 0 ? strtol(text, &end, 10) : 0;
    if (n <= 0 || pid <= 1 || (*end != '\n' && *end != '\0')) {
        snprintf(err, errlen, "invalid pid file \"%s\"", path);
        return -1;
    }
    return (pid_t)pid;
}

int torii_pidfile_write(const char *path, char *err, size_t errlen)
{
    char other[TORII_ERRLEN], text[32];
    pid_t old = torii_pidfile_read(path, other, sizeof other);
    int fd, n;
    if (old > 0 && old != getpid() && (kill(old, 0) == 0 || errno == EPERM)) {
        snprintf(err, errlen, "torii is already running with pid %d (pid file \"%s\")", (int)old, path);
        return TORII_ERROR;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write pid file \"%s\": %s", path, strerror(errno));
        return TORII_ERROR;
    }
    n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (write(fd, text, (size_t)n) != n) {
        snprintf(err, errlen, "cannot write pid file \"%s\": %s", path, strerror(errno));
        close(fd);
        return TORII_ERROR;
    }
    close(fd);
    return TORII_OK;
}

void torii_pidfile_remove(const char *path)
{
    char err[TORII_ERRLEN];
    if (torii_pidfile_read(path, err, sizeof err) == getpid())
        unlink(path);
}
