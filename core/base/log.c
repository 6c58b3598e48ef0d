/* log.c — error and access logs. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"

int torii_log_level = TORII_LOG_INFO;

static const char *const level_names[] = {
    "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
};

static int err_fd = STDERR_FILENO;
static char *err_path;
static int worker_no;

/* The access log is buffered: under load one write(2) carries many lines. */
#define ACCESS_BUF_SIZE 65536
static int access_fd = -1;
static char *access_path;
static char *access_buf;
static size_t access_len;

static time_t cached_sec = -1;
static char time_err[32];
static char time_access[40];

static void refresh_time(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (now == cached_sec)
        return;
    cached_sec = now;
    localtime_r(&now, &tm);
    strftime(time_err, sizeof time_err, "%Y/%m/%d %H:%M:%S", &tm);
    strftime(time_access, sizeof time_access, "%d/%b/%Y:%H:%M:%S %z", &tm);
}

const char *torii_log_time_err(void)
{
    refresh_time();
    return time_err;
}

const char *torii_log_time_access(void)
{
    refresh_time();
    return time_access;
}

void torii_log_emergency_write(const char *msg, size_t len)
{
    if (write(err_fd, msg, len) < 0) {
        /* nowhere else to say it */
    }
}

int torii_log_level_parse(const char *name)
{
    for (size_t i = 0; i < TORII_ARRAY_LEN(level_names); i++) {
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

static int open_append(const char *path, char *err, size_t errlen)
{
    int fd;
    if (strcmp(path, "stderr") == 0)
        return dup(STDERR_FILENO);
    if (strcmp(path, "stdout") == 0)
        return dup(STDOUT_FILENO);
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 && err)
        snprintf(err, errlen, "cannot open log file \"%s\": %s", path, strerror(errno));
    return fd;
}

static void replace_path(char **slot, const char *path)
{
    free(*slot);
    *slot = path ? strdup(path) : NULL;
}

int torii_log_open(const char *path, int level, char *err, size_t errlen)
{
    int fd = open_append(path, err, errlen);
    if (fd < 0)
        return TORII_ERROR;
    if (err_fd != STDERR_FILENO)
        close(err_fd);
    err_fd = fd;
    replace_path(&err_path, path);
    torii_log_level = level;
    return TORII_OK;
}

void torii_log_set_worker(int worker)
{
    worker_no = worker;
}

void torii_log_write(int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n = snprintf(line, sizeof line, "%s [%s] %d#%d: ", torii_log_time_err(), level_names[level], (int)getpid(),
                     worker_no);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    /* One write per line: O_APPEND keeps lines of several processes whole. */
    if (write(err_fd, line, (size_t)n) < 0) {
        /* Nowhere left to report a failing log; drop the line. */
    }
}

int torii_access_log_open(const char *path, char *err, size_t errlen)
{
    int fd = -1;
    if (path && strcmp(path, "off") != 0) {
        fd = open_append(path, err, errlen);
        if (fd < 0)
            return TORII_ERROR;
    }
    torii_access_log_flush();
    if (access_fd >= 0)
        close(access_fd);
    access_fd = fd;
    replace_path(&access_path, fd >= 0 ? path : NULL);
    if (fd >= 0 && !access_buf) {
        access_buf = malloc(ACCESS_BUF_SIZE);
        if (!access_buf)
            abort();
    }
    return TORII_OK;
}

int torii_access_log_enabled(void)
{
    return access_fd >= 0;
}

char *torii_access_log_reserve(size_t n)
{
    if (n > ACCESS_BUF_SIZE)
        return NULL;
    if (ACCESS_BUF_SIZE - access_len < n)
        torii_access_log_flush();
    return access_buf + access_len;
}

void torii_access_log_commit(size_t n)
{
    access_len += n;
}

void torii_access_log_flush(void)
{
    size_t off = 0;
    while (off < access_len && access_fd >= 0) {
        ssize_t w = write(access_fd, access_buf + off, access_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* disk full or similar: drop the lines, keep serving */
        off += (size_t)w;
    }
    access_len = 0;
}

void torii_log_reopen(void)
{
    char err[TORII_ERRLEN];
    if (err_path && strcmp(err_path, "stderr") != 0) {
        char *p = strdup(err_path);
        if (p && torii_log_open(p, torii_log_level, err, sizeof err) != TORII_OK)
            torii_log_error("%s", err);
        free(p);
    }
    if (access_path) {
        char *p = strdup(access_path);
        if (p && torii_access_log_open(p, err, sizeof err) != TORII_OK)
            torii_log_error("%s", err);
        free(p);
    }
}

void torii_log_close(void)
{
    torii_access_log_flush();
    if (access_fd >= 0)
        close(access_fd);
    access_fd = -1;
    free(access_buf);
    access_buf = NULL;
    replace_path(&access_path, NULL);
    if (err_fd != STDERR_FILENO)
        close(err_fd);
    err_fd = STDERR_FILENO;
    replace_path(&err_path, NULL);
}
