/* master.c — worker processes and signals. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "event/sock.h"
#include "process/master.h"
#include "shm/zones.h"
#include "process/pidfile.h"
#include "proxy/worker.h"

#define STOP_GRACE  10.0 /* seconds before SIGKILL after SIGTERM */
#define QUIT_GRACE  5.0  /* seconds past shutdown_timeout before SIGKILL */
#define MAX_BACKOFF 10.0 /* seconds between restarts of a crashing worker */

typedef struct {
    pid_t pid;             /* 0: not running */
    double started;        /* when it was (re)started */
    double respawn_at;     /* when to start it again (0: no restart planned) */
    unsigned quick_deaths; /* deaths soon after start, for back-off */
} slot_t;

typedef struct {
    torii_config_t *conf;
    int *fds;
    uint32_t nfds;
    slot_t *slots;
    uint32_t nslots;
    int stopping;    /* 0, SIGQUIT or SIGTERM */
    double deadline; /* when stopping: SIGKILL what is left after this */
    pid_t pid;
} master_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_listeners(master_t *m)
{
    char err[TORII_ERRLEN];
    m->fds = calloc(m->conf->nlisten, sizeof *m->fds);
    if (!m->fds)
        abort();
    for (uint32_t i = 0; i < m->conf->nlisten; i++) {
        int fd = torii_sock_listen(&m->conf->listen[i].addr, 4096, err, sizeof err);
        if (fd < 0) {
            torii_log_crit("%s", err);
            fprintf(stderr, "torii: %s\n", err);
            return TORII_ERROR;
        }
        m->fds[m->nfds++] = fd;
    }
    return TORII_OK;
}

static void close_listeners(master_t *m)
{
    for (uint32_t i = 0; i < m->nfds; i++)
        close(m->fds[i]);
    free(m->fds);
    m->fds = NULL;
    m->nfds = 0;
}

static void spawn(master_t *m, uint32_t i)
{
    pid_t pid = fork();
    if (pid < 0) {
        torii_log_alert("fork() failed: %s; retrying", strerror(errno));
        m->slots[i].respawn_at = now_s() + 1.0;
        return;
    }
    if (pid == 0) {
        int rc;
        /* The master's signals stay blocked until the worker's handlers are
         * in place (torii_worker_run): a SIGUSR1 or SIGQUIT that arrives
         * while the worker starts would otherwise kill it. */
        rc = torii_worker_run(m->conf, m->fds, m->nfds, (int)i + 1, m->pid);
        torii_zones_close(); /* this process's mappings only: the zones live on */
        free(m->fds);        /* the worker closed or will lose them at exit */
        free(m->slots);
        torii_config_free(m->conf);
        torii_log_close();
        exit(rc);
    }
    m->slots[i].pid = pid;
    m->slots[i].started = now_s();
    m->slots[i].respawn_at = 0;
}

static void describe_exit(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "was killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    else
        snprintf(out, len, "stopped with status %d", status);
}

/* A dead worker is restarted at once, or after a growing pause if it
 * keeps dying right after starting (a crash loop must not fork-bomb). */
static void plan_respawn(master_t *m, slot_t *s)
{
    double t = now_s(), delay = 0;
    if (t - s->started < 2.0) {
        s->quick_deaths++;
        delay = 0.1 * (double)(1u << (s->quick_deaths < 7 ? s->quick_deaths : 7));
        if (delay > MAX_BACKOFF)
            delay = MAX_BACKOFF;
    } else {
        s->quick_deaths = 0;
    }
    s->respawn_at = t + delay;
    (void)m;
}

static void reap(master_t *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (uint32_t i = 0; i < m->nslots; i++) {
            slot_t *s = &m->slots[i];
            char how[128];
            if (s->pid != pid)
                continue;
            s->pid = 0;
            describe_exit(status, how, sizeof how);
            if (m->stopping) {
                torii_log_info("worker %u (pid %d) %s", i + 1, (int)pid, how);
            } else {
                plan_respawn(m, s);
                torii_log_error("worker %u (pid %d) %s; restarting it%s", i + 1, (int)pid, how,
                                s->quick_deaths ? " after a pause" : "");
            }
        }
    }
}

static void signal_workers(master_t *m, int sig)
{
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid > 0)
            kill(m->slots[i].pid, sig);
    }
}

static bool any_alive(const master_t *m)
{
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid > 0)
            return true;
    }
    return false;
}

static void begin_stop(master_t *m, int sig)
{
    if (m->stopping == SIGTERM || (m->stopping && sig == SIGQUIT))
        return;
    m->stopping = sig;
    m->deadline = now_s() + (sig == SIGQUIT ? m->conf->shutdown_timeout_ms / 1000.0 + QUIT_GRACE : STOP_GRACE);
    torii_log_notice("%s: %s", sig == SIGQUIT ? "graceful shutdown" : "shutting down",
                     sig == SIGQUIT ? "waiting for requests in flight" : "closing connections now");
    /* Workers stop accepting; the master still holds the listening
     * sockets, so close them too: new clients get refused, not queued. */
    close_listeners(m);
    signal_workers(m, sig == SIGQUIT ? SIGQUIT : SIGTERM);
}

static void handle_signal(master_t *m, int sig)
{
    switch (sig) {
    case SIGCHLD: reap(m); break;
    case SIGQUIT: begin_stop(m, SIGQUIT); break;
    case SIGTERM:
    case SIGINT: begin_stop(m, SIGTERM); break;
    case SIGUSR1:
        torii_log_reopen();
        signal_workers(m, SIGUSR1);
        break;
    case SIGHUP:
        torii_log_notice("reload requested, but configuration reload is not supported yet; "
                         "restart torii to apply changes");
        break;
    }
}

static void tick(master_t *m)
{
    double t = now_s();
    if (m->stopping) {
        if (any_alive(m) && t > m->deadline) {
            torii_log_warn("workers did not exit in time; killing them");
            signal_workers(m, SIGKILL);
            m->deadline = t + 5.0;
        }
        return;
    }
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid == 0 && m->slots[i].respawn_at > 0 && t >= m->slots[i].respawn_at)
            spawn(m, i);
    }
}

static void ensure_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (copy && path[0] == '/')
        mkdir(dirname(copy), 0755); /* an existing directory is fine */
    free(copy);
}

static int prepare(master_t *m, char *err, size_t errlen)
{
    ensure_parent_dir(m->conf->pid_file);
    /* The pid file first: a second torii on the same prefix must say
     * "already running", not fail on the port the first one holds. */
    if (torii_pidfile_write(m->conf->pid_file, err, errlen) != TORII_OK) {
        fprintf(stderr, "torii: %s\n", err);
        return TORII_ERROR;
    }
    if (open_listeners(m) != TORII_OK) {
        torii_pidfile_remove(m->conf->pid_file);
        return TORII_ERROR;
    }
    return TORII_OK;
}

static void run_loop(master_t *m, const sigset_t *set)
{
    struct timespec timeout = {0, 100 * 1000 * 1000};
    for (uint32_t i = 0; i < m->nslots; i++)
        spawn(m, i);
    while (!m->stopping || any_alive(m)) {
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &timeout);
        if (sig > 0)
            handle_signal(m, sig);
        tick(m);
    }
}

int torii_master_run(torii_config_t *conf)
{
    master_t m = {.conf = conf, .pid = getpid()};
    char err[TORII_ERRLEN];
    sigset_t set;
    int rc = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    /* Signals are taken synchronously with sigtimedwait: no handlers. */
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m.nslots = conf->workers;
    m.slots = calloc(m.nslots, sizeof *m.slots);
    if (!m.slots)
        abort();
    if (prepare(&m, err, sizeof err) != TORII_OK) {
        rc = 1;
    } else {
        torii_log_notice("torii %s started: %u worker(s), listening on %s%s", TORII_VERSION, m.nslots,
                         conf->listen[0].text, conf->nlisten > 1 ? " and more" : "");
        run_loop(&m, &set);
        torii_pidfile_remove(conf->pid_file);
        torii_log_notice("torii stopped");
    }
    close_listeners(&m);
    free(m.slots);
    torii_config_free(conf);
    return rc;
}
