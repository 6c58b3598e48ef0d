/*
 * log.h — the error log (levels, one line per event) and the access log
 * (one line per request, buffered and flushed once per event-loop pass).
 *
 * Error log lines read: `2026/11/22 08:53:24 [error] 1234#1: message`,
 * where 1234 is the pid and #1 the worker number (#0 is the master).
 */
#ifndef TORII_LOG_H
#define TORII_LOG_H

#include <stddef.h>

enum {
    TORII_LOG_DEBUG,
    TORII_LOG_INFO,
    TORII_LOG_NOTICE,
    TORII_LOG_WARN,
    TORII_LOG_ERROR,
    TORII_LOG_CRIT,
    TORII_LOG_ALERT,
    TORII_LOG_EMERG,
};

extern int torii_log_level;

/* Level from its name ("debug" ... "emerg"); -1 if unknown. */
int torii_log_level_parse(const char *name);

/* Open (append) the error log; "stderr" logs to standard error. */
int torii_log_open(const char *path, int level, char *err, size_t errlen);

/* Reopen the log files at the same paths (after log rotation). */
void torii_log_reopen(void);

/* Write msg as it is to the error log: safe in a signal handler. */
void torii_log_emergency_write(const char *msg, size_t len);

/* Worker number shown in every line (0 = master). */
void torii_log_set_worker(int worker);

void torii_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define torii_log(level, ...)                                                                                          \
    do {                                                                                                               \
        if ((level) >= torii_log_level)                                                                                \
            torii_log_write((level), __VA_ARGS__);                                                                     \
    } while (0)

#define torii_log_debug(...)  torii_log(TORII_LOG_DEBUG, __VA_ARGS__)
#define torii_log_info(...)   torii_log(TORII_LOG_INFO, __VA_ARGS__)
#define torii_log_notice(...) torii_log(TORII_LOG_NOTICE, __VA_ARGS__)
#define torii_log_warn(...)   torii_log(TORII_LOG_WARN, __VA_ARGS__)
#define torii_log_error(...)  torii_log(TORII_LOG_ERROR, __VA_ARGS__)
#define torii_log_crit(...)   torii_log(TORII_LOG_CRIT, __VA_ARGS__)
#define torii_log_alert(...)  torii_log(TORII_LOG_ALERT, __VA_ARGS__)

/* Open the access log ("off" or NULL disables it, "stdout"/"stderr" allowed). */
int torii_access_log_open(const char *path, char *err, size_t errlen);

/* True when access logging is on. */
int torii_access_log_enabled(void);

/* Reserve n bytes at the end of the access-log buffer to format one line
 * into; commit with torii_access_log_commit(written). */
char *torii_access_log_reserve(size_t n);
void torii_access_log_commit(size_t n);

/* Write buffered access-log lines out (called once per loop pass). */
void torii_access_log_flush(void);

/* Close both logs (at exit). */
void torii_log_close(void);

/* Cached local time strings, refreshed at most once per second. */
const char *torii_log_time_err(void);    /* 2026/11/22 08:53:24 */
const char *torii_log_time_access(void); /* 22/Nov/2026:08:53:24 +0000 */

#endif
