/*
 * mock_dns.c - a small authoritative DNS server over UDP for torii's
 * integration tests.
 *
 *   mock-dns --listen 127.0.0.1:PORT --zone FILE
 *
 * The zone file is read again whenever it changes (its size, inode or
 * modification time, looked at on each query) and on SIGHUP. Lines:
 *
 *   NAME A TTL 127.0.0.1       an address record (AAAA: an IPv6 address)
 *   NAME CNAME TTL TARGET      an alias
 *   NAME servfail              answer SERVFAIL for NAME
 *   drop                       answer nothing at all (a dead server)
 *   delay MS                   hold every answer MS milliseconds
 *   # a comment
 *
 * A name without any record gets NXDOMAIN; a name with records, none of
 * the type asked, an empty answer (NODATA). CNAME chains are followed
 * inside the zone. Every query is logged on stdout, one line each:
 * "query NAME TYPE -> OUTCOME", so that tests can count them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RECORDS 256
#define MAX_MSG     512
#define MAX_CHAIN   8

enum { T_A = 1, T_CNAME = 5, T_AAAA = 28 };

typedef struct {
    char name[256];
    int type; /* T_*, or 0 for "servfail" */
    uint32_t ttl;
    uint8_t data[256]; /* address bytes, or the target name as text */
    size_t len;
} record_t;

static record_t zone[MAX_RECORDS];
static size_t nzone;
static bool drop_all;
static double delay_s;
static const char *zone_path;
static struct stat zone_st;
static int sfd = -1;

typedef struct held_s {
    ev_timer timer;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    uint8_t msg[MAX_MSG];
    size_t len;
} held_t;

static void die(const char *what)
{
    fprintf(stderr, "mock-dns: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static void load_zone(void)
{
    FILE *f = fopen(zone_path, "r");
    char line[512];
    nzone = 0;
    drop_all = false;
    delay_s = 0;
    if (!f) {
        fprintf(stderr, "mock-dns: cannot read %s\n", zone_path);
        return;
    }
    while (fgets(line, sizeof line, f) && nzone < MAX_RECORDS) {
        char name[256], type[16], value[256];
        unsigned long ttl;
        record_t *r = &zone[nzone];
        int n = sscanf(line, "%255s %15s %lu %255s", name, type, &ttl, value);
        if (n < 1 || name[0] == '#')
            continue;
        if (n == 1 && strcmp(name, "drop") == 0) {
            drop_all = true;
            continue;
        }
        if (n >= 2 && strcmp(name, "delay") == 0) {
            delay_s = atof(type) / 1000.0;
            continue;
        }
        lower(name);
        memset(r, 0, sizeof *r);
        snprintf(r->name, sizeof r->name, "%s", name);
        if (n == 2 && strcasecmp(type, "servfail") == 0) {
            nzone++;
            continue;
        }
        if (n != 4)
            continue;
        r->ttl = (uint32_t)ttl;
        if (strcasecmp(type, "A") == 0 && inet_pton(AF_INET, value, r->data) == 1) {
            r->type = T_A, r->len = 4;
        } else if (strcasecmp(type, "AAAA") == 0 && inet_pton(AF_INET6, value, r->data) == 1) {
            r->type = T_AAAA, r->len = 16;
        } else if (strcasecmp(type, "CNAME") == 0) {
            lower(value);
            r->type = T_CNAME;
            r->len = strlen(value);
            memcpy(r->data, value, r->len);
        } else {
            continue;
        }
        nzone++;
    }
    fclose(f);
    stat(zone_path, &zone_st);
}

static void reload_if_changed(void)
{
    struct stat st;
    if (stat(zone_path, &st) != 0)
        return;
    if (st.st_ino != zone_st.st_ino || st.st_size != zone_st.st_size || st.st_mtim.tv_sec != zone_st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != zone_st.st_mtim.tv_nsec)
        load_zone();
}

/* The question's name as dotted text (no compression in questions). */
static bool read_qname(const uint8_t *msg, size_t n, char *out, size_t *end)
{
    size_t pos = 12, len = 0;
    while (pos < n && msg[pos] != 0) {
        size_t l = msg[pos];
        if (l > 63 || pos + 1 + l >= n || len + l + 2 > 255)
            return false;
        if (len)
            out[len++] = '.';
        memcpy(out + len, msg + pos + 1, l);
        len += l;
        pos += 1 + l;
    }
    if (pos >= n)
        return false;
    out[len] = '\0';
    lower(out);
    *end = pos + 1;
    return true;
}

static size_t put_name(uint8_t *out, const char *name)
{
    size_t pos = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        out[pos++] = (uint8_t)l;
        memcpy(out + pos, name, l);
        pos += l;
        name += l + (dot ? 1 : 0);
    }
    out[pos++] = 0;
    return pos;
}

static size_t put_rr(uint8_t *out, const char *owner, int type, uint32_t ttl, const uint8_t *data, size_t len)
{
    size_t pos = put_name(out, owner), rdlen;
    out[pos++] = (uint8_t)(type >> 8), out[pos++] = (uint8_t)type;
    out[pos++] = 0, out[pos++] = 1;
    out[pos++] = (uint8_t)(ttl >> 24), out[pos++] = (uint8_t)(ttl >> 16);
    out[pos++] = (uint8_t)(ttl >> 8), out[pos++] = (uint8_t)ttl;
    if (type == T_CNAME) {
        char target[256];
        memcpy(target, data, len);
        target[len] = '\0';
        rdlen = put_name(out + pos + 2, target);
    } else {
        memcpy(out + pos + 2, data, len);
        rdlen = len;
    }
    out[pos++] = (uint8_t)(rdlen >> 8), out[pos++] = (uint8_t)rdlen;
    return pos + rdlen;
}

/* The answer to msg (the question copied); its outcome in *what. */
static size_t answer(const uint8_t *msg, size_t n, uint8_t *out, const char **what)
{
    char name[256], cur[256];
    size_t qend, pos;
    int qtype, rcode = 3, count = 0;
    if (n < 12 || !read_qname(msg, n, name, &qend) || qend + 4 > n)
        return 0;
    qtype = msg[qend] << 8 | msg[qend + 1];
    memcpy(out, msg, qend + 4);
    pos = qend + 4;
    snprintf(cur, sizeof cur, "%s", name);
    *what = "NXDOMAIN";
    for (int hop = 0; hop < MAX_CHAIN; hop++) {
        const record_t *cname = NULL;
        bool exists = false;
        for (size_t i = 0; i < nzone; i++) {
            const record_t *r = &zone[i];
            if (strcmp(r->name, cur) != 0)
                continue;
            exists = true;
            if (r->type == 0) {
                rcode = 2, *what = "SERVFAIL";
                goto done;
            }
            if (r->type == T_CNAME)
                cname = r;
            else if (r->type == qtype && pos + 300 < MAX_MSG) {
                pos += put_rr(out + pos, cur, r->type, r->ttl, r->data, r->len);
                count++;
            }
        }
        if (!exists)
            break;
        rcode = 0, *what = count ? "answer" : "NODATA";
        if (count || !cname || qtype == T_CNAME)
            break;
        pos += put_rr(out + pos, cur, T_CNAME, cname->ttl, cname->data, cname->len);
        count++;
        memcpy(cur, cname->data, cname->len);
        cur[cname->len] = '\0';
        rcode = 3, *what = "NXDOMAIN"; /* unless the target exists */
    }
done:
    out[2] = (uint8_t)(0x84 | (msg[2] & 0x01)); /* QR, AA, RD as asked */
    out[3] = (uint8_t)(0x80 | rcode);           /* RA */
    out[4] = 0, out[5] = 1;
    out[6] = (uint8_t)(count >> 8), out[7] = (uint8_t)count;
    memset(out + 8, 0, 4);
    printf("query %s %s -> %s\n", name, qtype == T_A ? "A" : qtype == T_AAAA ? "AAAA" : "other", *what);
    return pos;
}

static void on_held(struct ev_loop *loop, ev_timer *t, int revents)
{
    held_t *h = (held_t *)t;
    (void)loop, (void)revents;
    sendto(sfd, h->msg, h->len, 0, (struct sockaddr *)&h->peer, h->peerlen);
    free(h);
}

static void on_query(struct ev_loop *loop, ev_io *io, int revents)
{
    uint8_t msg[MAX_MSG], out[MAX_MSG];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    const char *what = "";
    ssize_t n = recvfrom(io->fd, msg, sizeof msg, 0, (struct sockaddr *)&peer, &plen);
    size_t len;
    (void)revents;
    if (n <= 0)
        return;
    reload_if_changed();
    len = answer(msg, (size_t)n, out, &what);
    if (len == 0)
        return;
    if (drop_all) {
        printf("dropped\n");
        return;
    }
    if (delay_s > 0) {
        held_t *h = calloc(1, sizeof *h);
        if (!h)
            abort();
        memcpy(h->msg, out, len);
        h->len = len;
        h->peer = peer;
        h->peerlen = plen;
        ev_timer_init(&h->timer, on_held, delay_s, 0.);
        ev_timer_start(loop, &h->timer);
        return;
    }
    sendto(sfd, out, len, 0, (struct sockaddr *)&peer, plen);
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)revents;
    if (s->signum == SIGHUP)
        load_zone();
    else
        ev_break(loop, EVBREAK_ALL);
}

static void usage(void)
{
    fprintf(stderr, "usage: mock-dns --listen 127.0.0.1:PORT --zone FILE\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_spec = NULL;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct ev_loop *loop;
    ev_io io;
    ev_signal sighup, sigterm, sigint;
    char host[64];
    unsigned port;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen_spec = argv[i + 1];
        else if (strcmp(argv[i], "--zone") == 0)
            zone_path = argv[i + 1];
        else
            usage();
    }
    if (!listen_spec || !zone_path || sscanf(listen_spec, "%63[^:]:%u", host, &port) != 2 || port == 0 ||
        port > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    sin.sin_port = htons((uint16_t)port);
    if ((sfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) < 0)
        die("socket");
    if (bind(sfd, (struct sockaddr *)&sin, sizeof sin) != 0)
        die("bind");
    load_zone();
    loop = ev_default_loop(EVFLAG_AUTO);
    ev_io_init(&io, on_query, sfd, EV_READ);
    ev_io_start(loop, &io);
    ev_signal_init(&sighup, on_signal, SIGHUP);
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_start(loop, &sighup);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    printf("ready\n");
    ev_run(loop, 0);
    close(sfd);
    return 0;
}
