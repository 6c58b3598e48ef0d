/*
 * idle_conns.c - open N keep-alive connections to an HTTP server and hold them.
 *
 *   idle_conns HOST PORT N [PATH] [CONCURRENCY]
 *
 * Used by bench/run.sh to measure the memory a proxy spends per idle
 * keep-alive connection. Each connection sends one "GET PATH HTTP/1.1"
 * (default PATH /bench), reads the whole response (Content-Length framing),
 * then stays open and idle. At most CONCURRENCY (default 100) connections
 * are connecting or waiting for their response at any time, so the proxy
 * sees a load like `wrk -c 100` while the set fills up, not a SYN flood.
 *
 * Once every connection has its response (or has failed), one line goes to
 * stdout:
 *   READY ok=N failed=F non2xx=X elapsed_ms=T
 * then the program holds the connections until stdin reaches EOF or it gets
 * SIGINT/SIGTERM, counting connections the server closes meanwhile. On exit:
 *   DONE held=N closed_by_peer=C
 * Errors go to stderr (the first few of each kind). Exit status: 0 if all N
 * connections were established with a 2xx response, 1 otherwise, 2 on usage
 * or setup errors. Everything is non-blocking, one epoll loop.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX       8192 /* enough for the /bench response through any proxy */
#define SETUP_DEADLINE 120  /* seconds to establish everything before giving up */

enum state { ST_FREE, ST_CONNECTING, ST_WAITING, ST_IDLE, ST_DEAD };

struct conn {
    int fd;
    enum state st;
    size_t sent, got;
    char *resp; /* response bytes, freed once the response is complete */
};

static volatile sig_atomic_t stop;
static struct conn *conns;
static int epfd;
static char req[512];
static size_t req_len;
static int n_ok, n_failed, n_non2xx, n_closed_by_peer;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Report the first few errors of a run, then only count them. */
static void report(int idx, const char *what, int err)
{
    static int reported;
    if (reported++ < 10)
        fprintf(stderr, "idle_conns: conn %d: %s%s%s\n", idx, what, err ? ": " : "", err ? strerror(err) : "");
}

static void conn_fail(int idx, const char *what, int err)
{
    struct conn *c = &conns[idx];
    report(idx, what, err);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->resp);
    c->resp = NULL;
    c->st = ST_DEAD;
    n_failed++;
}

static int conn_start(int idx, const struct sockaddr_in *sa)
{
    struct conn *c = &conns[idx];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(idx, "socket", errno);
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->resp = malloc(RESP_MAX);
    if (!c->resp) {
        conn_fail(idx, "out of memory", 0);
        return -1;
    }
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS) {
        conn_fail(idx, "connect", errno);
        return -1;
    }
    c->st = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)idx};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        conn_fail(idx, "epoll_ctl", errno);
        return -1;
    }
    return 0;
}

/* The response is complete once the head and Content-Length body bytes are in. */
static int response_complete(struct conn *c, int *status)
{
    char *end = memmem(c->resp, c->got, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->resp) + 4;
    *status = 0;
    if (c->got < 12 || sscanf(c->resp, "HTTP/1.%*c %d", status) != 1)
        return -1;
    long clen = 0;
    for (char *p = c->resp; p < end; p++) {
        if ((p == c->resp || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            clen = strtol(p + 15, NULL, 10);
            break;
        }
    }
    if (clen < 0 || head + (size_t)clen > RESP_MAX)
        return -1;
    return c->got >= head + (size_t)clen ? 1 : 0;
}

static void conn_io(int idx, uint32_t events)
{
    struct conn *c = &conns[idx];
    if (c->st == ST_IDLE) {
        /* An idle connection became readable: the server closed it (or sent
         * something unexpected). Either way it no longer counts as held. */
        n_closed_by_peer++;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->st = ST_DEAD;
        return;
    }
    if (c->st == ST_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_fail(idx, "connect", err);
            return;
        }
        c->st = ST_WAITING;
    }
    if (c->st != ST_WAITING)
        return;
    while (c->sent < req_len) {
        ssize_t n = write(c->fd, req + c->sent, req_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            conn_fail(idx, "write", errno);
            return;
        }
        c->sent += (size_t)n;
    }
    for (;;) {
        if (c->got >= RESP_MAX) {
            conn_fail(idx, "response too large", 0);
            return;
        }
        ssize_t n = read(c->fd, c->resp + c->got, RESP_MAX - c->got);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            conn_fail(idx, "read", errno);
            return;
        }
        if (n == 0) {
            conn_fail(idx, "closed before a complete response", 0);
            return;
        }
        c->got += (size_t)n;
    }
    int status;
    int done = response_complete(c, &status);
    if (done < 0) {
        conn_fail(idx, "malformed response", 0);
        return;
    }
    if (!done)
        return;
    if (status < 200 || status > 299) {
        if (n_non2xx++ < 5)
            fprintf(stderr, "idle_conns: conn %d: status %d\n", idx, status);
    }
    free(c->resp);
    c->resp = NULL;
    c->st = ST_IDLE;
    n_ok++;
    /* From now on only a close (or stray bytes) from the server wakes us. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)idx};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Allow N sockets plus a margin: raise the soft limit up to the hard one. */
static void raise_nofile(int n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)n + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "idle_conns: RLIMIT_NOFILE hard limit %lu is below %lu; some connections will fail\n",
                (unsigned long)rl.rlim_max, (unsigned long)want);
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: idle_conns HOST PORT N [PATH] [CONCURRENCY]\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "idle_conns: bad IPv4 address %s\n", argv[1]);
        return 2;
    }
    int n = atoi(argv[3]);
    const char *path = argc > 4 ? argv[4] : "/bench";
    int concurrency = argc > 5 ? atoi(argv[5]) : 100;
    if (n <= 0 || concurrency <= 0) {
        fprintf(stderr, "idle_conns: N and CONCURRENCY must be positive\n");
        return 2;
    }
    req_len = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: idle_conns\r\n\r\n",
                               path, argv[1], argv[2]);
    if (req_len >= sizeof req) {
        fprintf(stderr, "idle_conns: path too long\n");
        return 2;
    }

    raise_nofile(n);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sact = {.sa_handler = on_signal};
    sigaction(SIGINT, &sact, NULL);
    sigaction(SIGTERM, &sact, NULL);

    conns = calloc((size_t)n, sizeof *conns);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || epfd < 0) {
        perror("idle_conns: setup");
        return 2;
    }
    for (int i = 0; i < n; i++)
        conns[i].fd = -1;

    /* Phase 1: fill the set, at most `concurrency` requests in flight. */
    struct epoll_event evs[256];
    int next = 0;
    double t0 = now_ms();
    while (!stop && n_ok + n_failed < n) {
        while (next < n && next - (n_ok + n_failed) < concurrency)
            conn_start(next++, &sa);
        if (now_ms() - t0 > SETUP_DEADLINE * 1e3) {
            fprintf(stderr, "idle_conns: gave up after %d s\n", SETUP_DEADLINE);
            for (int i = 0; i < next; i++)
                if (conns[i].st == ST_CONNECTING || conns[i].st == ST_WAITING)
                    conn_fail(i, "timed out", 0);
            break;
        }
        int k = epoll_wait(epfd, evs, 256, 1000);
        for (int i = 0; i < k; i++)
            conn_io((int)evs[i].data.u32, evs[i].events);
    }
    /* Connections the server closed during the fill are not held. */
    int closed_during_fill = n_closed_by_peer;
    printf("READY ok=%d failed=%d non2xx=%d closed_during_fill=%d elapsed_ms=%.0f\n", n_ok - closed_during_fill,
           n_failed, n_non2xx, closed_during_fill, now_ms() - t0);
    fflush(stdout);

    /* Phase 2: hold until stdin closes or a signal arrives. */
    struct epoll_event sev = {.events = EPOLLIN | EPOLLHUP, .data.u32 = (uint32_t)n};
    int stdin_watched = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev) == 0;
    while (!stop) {
        int k = epoll_wait(epfd, evs, 256, stdin_watched ? -1 : 1000);
        for (int i = 0; i < k; i++) {
            if (evs[i].data.u32 == (uint32_t)n) {
                char buf[256];
                ssize_t r = read(0, buf, sizeof buf);
                if (r <= 0 && !(r < 0 && errno == EAGAIN))
                    stop = 1;
            } else {
                conn_io((int)evs[i].data.u32, evs[i].events);
            }
        }
    }
    int held = 0;
    for (int i = 0; i < n; i++)
        if (conns[i].st == ST_IDLE)
            held++;
    printf("DONE held=%d closed_by_peer=%d\n", held, n_closed_by_peer);
    fflush(stdout);
    return n_failed == 0 && n_non2xx == 0 && closed_during_fill == 0 ? 0 : 1;
}
