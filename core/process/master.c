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

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/log.h"
#include "event/sock.h"
#include "lua/budget.h"
#include "process/control.h"
#include "process/master.h"
#include "process/master_int.h"
#include "process/pidfile.h"
#include "process/reload_msg.h"
#include "process/watch.h"
#include "proxy/worker.h"
#include "shm/zones.h"

#define STOP_GRACE  10.0 /* seconds before SIGKILL after SIGTERM */
#define QUIT_GRACE  5.0  /* seconds past shutdown_timeout before SIGKILL */
#define MAX_BACKOFF 10.0 /* seconds between restarts of a crashing worker */

double torii_master_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define now_s torii_master_now

#define WATCH_QUIET 0.3 /* seconds without a change before the watcher reloads */

void torii_master_rewatch(master_t *m)
{
    torii_watch_t *old = m->watch;
    m->watch = NULL;
    /* The new watch first, then what the old one saw meanwhile: a file
     * written while the watches change is seen by one or the other. */
    if (m->conf->watch) {
        m->watch = torii_watch_new(m->conf);
        if (m->watch)
            torii_log_info("watch: %u director%s watched for changes", torii_watch_count(m->watch),
                           torii_watch_count(m->watch) == 1 ? "y" : "ies");
    }
    if (old && torii_watch_changed(old) && m->watch)
        m->watch_due = now_s() + WATCH_QUIET;
    torii_watch_free(old);
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

/* In a new worker: drop what only the master uses. */
static void close_master_fds(master_t *m, uint32_t self)
{
    if (m->sigfd >= 0)
        close(m->sigfd);
    if (m->ctlfd >= 0)
        close(m->ctlfd);
    torii_watch_free(m->watch);
    for (uint32_t i = 0; i < m->nslots; i++)
        if (i != self && m->slots[i].ctl >= 0)
            close(m->slots[i].ctl);
    for (uint32_t i = 0; i < m->rl.nclients; i++)
        close(m->rl.clients[i]);
    for (uint32_t i = 0; i < m->rl.nnext; i++)
        close(m->rl.next_clients[i]);
    if (m->rl.conf && m->rl.conf != m->conf)
        torii_config_free(m->rl.conf);
}

static void spawn(master_t *m, uint32_t i)
{
    int sv[2];
    pid_t pid;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        torii_log_alert("socketpair() failed: %s; retrying", strerror(errno));
        m->slots[i].respawn_at = now_s() + 1.0;
        return;
    }
    pid = fork();
    if (pid < 0) {
        torii_log_alert("fork() failed: %s; retrying", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        m->slots[i].respawn_at = now_s() + 1.0;
        return;
    }
    if (pid == 0) {
        int rc;
        close(sv[0]);
        close_master_fds(m, i);
        /* The master's signals stay blocked until the worker's handlers are
         * in place (torii_worker_run): a SIGUSR1 or SIGQUIT that arrives
         * while the worker starts would otherwise kill it. The worker
         * takes over the configuration. */
        rc = torii_worker_run(m->conf, m->gen_id, m->fds, m->nfds, sv[1], (int)i + 1, m->pid);
        torii_zones_close(); /* this process's mappings only: the zones live on */
        free(m->fds);        /* the worker closed or will lose them at exit */
        free(m->slots);
        free(m->draining);
        torii_log_close();
        exit(rc);
    }
    close(sv[1]);
    if (m->slots[i].ctl >= 0)
        close(m->slots[i].ctl);
    m->slots[i].ctl = sv[0];
    m->slots[i].pid = pid;
    m->slots[i].started = now_s();
    m->slots[i].respawn_at = 0;
    torii_master_reload_spawned(m, i);
}

static void describe_exit(int status, char *out, size_t len);

/* Listening sockets for conf: the running one's where the address is the
 * same (so nothing queued on it is lost), new ones elsewhere. */
static int *listeners_for(master_t *m, const torii_config_t *conf, char *err, size_t errlen)
{
    int *fds = calloc(conf->nlisten, sizeof *fds);
    if (!fds)
        abort();
    for (uint32_t i = 0; i < conf->nlisten; i++) {
        fds[i] = -1;
        for (uint32_t k = 0; k < m->nfds && k < m->conf->nlisten; k++)
            if (strcmp(m->conf->listen[k].text, conf->listen[i].text) == 0)
                fds[i] = dup(m->fds[k]);
        if (fds[i] < 0)
            fds[i] = torii_sock_listen(&conf->listen[i].addr, 4096, err, errlen);
        if (fds[i] < 0) {
            while (i-- > 0)
                close(fds[i]);
            free(fds);
            return NULL;
        }
    }
    return fds;
}

int torii_master_replace_workers(master_t *m, torii_config_t *conf, uint64_t gen_id, char *err, size_t errlen)
{
    int *fds = listeners_for(m, conf, err, errlen);
    slot_t *slots;
    if (!fds)
        return TORII_ERROR;
    slots = calloc(conf->workers, sizeof *slots);
    m->draining = realloc(m->draining, (m->ndraining + m->nslots) * sizeof *m->draining);
    if (!slots || (!m->draining && m->ndraining + m->nslots > 0))
        abort();
    /* The old workers finish their requests and go (SIGQUIT: they stop
     * accepting and close idle connections); nothing is restarted. */
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid > 0) {
            kill(m->slots[i].pid, SIGQUIT);
            m->draining[m->ndraining++] = m->slots[i].pid;
        }
        if (m->slots[i].ctl >= 0)
            close(m->slots[i].ctl);
    }
    free(m->slots);
    close_listeners(m);
    m->fds = fds;
    m->nfds = conf->nlisten;
    m->conf = conf;
    m->gen_id = gen_id;
    m->slots = slots;
    m->nslots = conf->workers;
    for (uint32_t i = 0; i < m->nslots; i++) {
        m->slots[i].ctl = -1;
        spawn(m, i);
        if (m->slots[i].ctl >= 0)
            m->slots[i].awaiting = gen_id; /* it says "current" once it accepts */
    }
    torii_log_notice("%u new worker(s) listening on %s%s; %u old one(s) draining", m->nslots, conf->listen[0].text,
                     conf->nlisten > 1 ? " and more" : "", m->ndraining);
    return TORII_OK;
}

static void describe_exit(int status, char *out, size_t len)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == TORII_BUDGET_EXIT)
        snprintf(out, len, "exited with code %d: a plugin overran its CPU budget where it could not be interrupted",
                 WEXITSTATUS(status));
    else if (WIFEXITED(status))
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
        for (uint32_t i = 0; i < m->ndraining; i++) {
            if (m->draining[i] == pid) {
                char how[128];
                describe_exit(status, how, sizeof how);
                torii_log_info("replaced worker (pid %d) drained and %s", (int)pid, how);
                m->draining[i] = m->draining[--m->ndraining];
                break;
            }
        }
        for (uint32_t i = 0; i < m->nslots; i++) {
            slot_t *s = &m->slots[i];
            char how[128];
            if (s->pid != pid)
                continue;
            s->pid = 0;
            if (s->ctl >= 0) {
                close(s->ctl);
                s->ctl = -1;
            }
            torii_master_reload_exited(m, i);
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
    for (uint32_t i = 0; i < m->ndraining; i++)
        kill(m->draining[i], sig == SIGQUIT ? SIGQUIT : sig);
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].pid > 0)
            kill(m->slots[i].pid, sig);
    }
}

static bool any_alive(const master_t *m)
{
    if (m->ndraining > 0)
        return true;
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
    torii_master_reload_cancel(m, "torii is shutting down");
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
    case SIGHUP: torii_master_reload(m, "SIGHUP", -1); break;
    }
}

static void tick(master_t *m)
{
    double t = now_s();
    torii_master_reload_tick(m);
    if (m->watch_due > 0 && t >= m->watch_due && !m->stopping) {
        m->watch_due = 0;
        torii_master_reload(m, "file watcher", -1);
    }
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

static void on_control(master_t *m)
{
    char cmd[64];
    int fd = torii_control_accept(m->ctlfd, cmd, sizeof cmd);
    if (fd < 0)
        return;
    if (strcmp(cmd, "reload") == 0) {
        torii_master_reload(m, "torii -s reload", fd);
    } else {
        static const char bad[] = "error unknown command\n";
        if (write(fd, bad, sizeof bad - 1) < 0) {
            /* the caller is gone */
        }
        close(fd);
    }
}

static void on_channel(master_t *m, uint32_t i)
{
    char msg[TORII_RELOAD_MSG_MAX];
    const slot_t *slots = m->slots;
    int n;
    while ((n = torii_reload_recv(m->slots[i].ctl, msg, sizeof msg)) > 0) {
        torii_master_reload_message(m, i, msg);
        if (m->slots != slots) /* the message made new workers replace the old */
            return;
    }
    if (n == 0) { /* the worker is exiting; reap() tells the rest */
        close(m->slots[i].ctl);
        m->slots[i].ctl = -1;
    }
}

/* One pass: wait up to 100 ms for a signal, a control command or a
 * worker's message, and handle what came. */
static void wait_events(master_t *m)
{
    struct pollfd pfd[3 + 256];
    const slot_t *slots = m->slots;
    uint32_t slot_of[256], n = 0, nslot = 0;
    pfd[n++] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
    if (m->ctlfd >= 0)
        pfd[n++] = (struct pollfd){.fd = m->ctlfd, .events = POLLIN};
    if (m->watch)
        pfd[n++] = (struct pollfd){.fd = torii_watch_fd(m->watch), .events = POLLIN};
    for (uint32_t i = 0; i < m->nslots && nslot < 256; i++) {
        if (m->slots[i].ctl >= 0) {
            slot_of[nslot++] = i;
            pfd[n++] = (struct pollfd){.fd = m->slots[i].ctl, .events = POLLIN};
        }
    }
    if (poll(pfd, n, 100) <= 0)
        return;
    if (pfd[0].revents) {
        struct signalfd_siginfo si;
        while (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            handle_signal(m, (int)si.ssi_signo);
    }
    for (uint32_t k = 1; k < n; k++) {
        if (!pfd[k].revents)
            continue;
        if (m->slots != slots) /* replaced: the descriptors polled are gone */
            return;
        if (pfd[k].fd == m->ctlfd)
            on_control(m);
        else if (m->watch && pfd[k].fd == torii_watch_fd(m->watch)) {
            if (torii_watch_changed(m->watch)) /* debounced: editors write in steps */
                m->watch_due = now_s() + WATCH_QUIET;
        } else
            for (uint32_t j = 0; j < nslot && m->slots == slots; j++)
                if (m->slots[slot_of[j]].ctl == pfd[k].fd)
                    on_channel(m, slot_of[j]);
    }
}

static void run_loop(master_t *m)
{
    for (uint32_t i = 0; i < m->nslots; i++)
        spawn(m, i);
    while (!m->stopping || any_alive(m)) {
        wait_events(m);
        tick(m);
    }
}

int torii_master_run(torii_config_t *conf)
{
    master_t m = {.conf = conf, .pid = getpid(), .gen_id = 1, .sigfd = -1, .ctlfd = -1};
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
    /* Signals are read from a signalfd in the loop: no handlers. */
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m.sigfd < 0) {
        fprintf(stderr, "torii: signalfd: %s\n", strerror(errno));
        torii_config_free(conf);
        return 1;
    }
    m.nslots = conf->workers;
    m.slots = calloc(m.nslots, sizeof *m.slots);
    if (!m.slots)
        abort();
    for (uint32_t i = 0; i < m.nslots; i++)
        m.slots[i].ctl = -1;
    if (prepare(&m, err, sizeof err) != TORII_OK) {
        rc = 1;
    } else {
        m.ctlfd = torii_control_listen(m.pid, err, sizeof err);
        if (m.ctlfd < 0) /* reloads still work by SIGHUP */
            torii_log_error("%s; torii -s reload will not be able to wait for reloads", err);
        torii_master_rewatch(&m);
        torii_log_notice("torii %s started: %u worker(s), listening on %s%s", TORII_VERSION, m.nslots,
                         conf->listen[0].text, conf->nlisten > 1 ? " and more" : "");
        run_loop(&m);
        torii_pidfile_remove(m.conf->pid_file);
        torii_log_notice("torii stopped");
    }
    close_listeners(&m);
    for (uint32_t i = 0; i < m.nslots; i++)
        if (m.slots[i].ctl >= 0)
            close(m.slots[i].ctl);
    free(m.slots);
    if (m.ctlfd >= 0)
        close(m.ctlfd);
    torii_watch_free(m.watch);
    free(m.draining);
    close(m.sigfd);
    torii_config_free(m.conf);
    return rc;
}
