/* test_dns.c — the DNS wire format, /etc/hosts and resolv.conf parsing,
 * and the UDP client against a server in this process (core/event/dns*). */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event/dns.h"
#include "event/dns_client.h"
#include "event/dns_sys.h"
#include "event/loop.h"

/* ---- building answers ---------------------------------------------------- */

typedef struct {
    uint8_t b[1024];
    size_t n;
} msg_t;

static void put8(msg_t *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)v;
}

static void put16(msg_t *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(msg_t *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void put_name(msg_t *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        memcpy(m->b + m->n, name, l);
        m->n += l;
        name += l + (dot ? 1 : 0);
    }
    put8(m, 0);
}

/* The answer's header and question: flags QR|RD|RA plus rcode and tc. */
static void answer_start(msg_t *m, uint16_t id, const char *qname, uint16_t qtype, unsigned rcode, bool tc,
                         unsigned ancount)
{
    m->n = 0;
    put16(m, id);
    put16(m, 0x8180 | rcode | (tc ? 0x0200 : 0));
    put16(m, 1);
    put16(m, ancount);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, 1);
}

/* A record owned by the question's name (a pointer to offset 12). */
static void rr_head(msg_t *m, int owner_ptr, const char *owner, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
    if (owner_ptr >= 0)
        put16(m, 0xc000 | (unsigned)owner_ptr);
    else
        put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put32(m, ttl);
    put16(m, rdlen);
}

static void rr_a(msg_t *m, int owner_ptr, const char *owner, uint32_t ttl, const char *ip)
{
    rr_head(m, owner_ptr, owner, TORII_DNS_A, ttl, 4);
    inet_pton(AF_INET, ip, m->b + m->n);
    m->n += 4;
}

static torii_dns_result_t parse(const msg_t *m, uint16_t id, const char *name, uint16_t qtype, torii_dns_answer_t *a,
                                const char **why)
{
    return torii_dns_parse(m->b, m->n, id, name, qtype, a, why);
}

/* ---- the wire format ----------------------------------------------------- */

TEST(names_fit_for_questions)
{
    const char *why;
    char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    for (size_t i = 0; i < 255; i++)
        long_name[i] = i % 2 ? '.' : 'a';
    long_name[255] = '\0';
    CHECK(torii_dns_name_ok("api.internal", &why));
    CHECK(torii_dns_name_ok("api.internal.", &why));
    CHECK(torii_dns_name_ok("_srv-1.x", &why));
    CHECK(!torii_dns_name_ok("", &why));
    CHECK(!torii_dns_name_ok(".", &why));
    CHECK(!torii_dns_name_ok("a..b", &why));
    CHECK(!torii_dns_name_ok(".a", &why));
    CHECK(!torii_dns_name_ok("a b", &why));
    CHECK(!torii_dns_name_ok("a\\.b", &why));
    CHECK(!torii_dns_name_ok(long_label, &why));
    CHECK_STR(why, "host name label longer than 63 characters");
    CHECK(!torii_dns_name_ok(long_name, &why));
    CHECK_STR(why, "host name longer than 253 characters");
}

TEST(query_building)
{
    uint8_t q[512];
    size_t n = torii_dns_query_build(q, sizeof q, 0xbeef, "api.internal.", TORII_DNS_AAAA);
    static const uint8_t want[] = {0xbe, 0xef, 0x01, 0x00, 0,   1,   0,   0,   0,   0,   0, 0, 3,  'a', 'p',
                                   'i',  8,    'i',  'n',  't', 'e', 'r', 'n', 'a', 'l', 0, 0, 28, 0,   1};
    CHECK_INT(n, sizeof want);
    CHECK(memcmp(q, want, sizeof want) == 0);
    CHECK_INT(torii_dns_query_build(q, 20, 1, "api.internal", TORII_DNS_A), 0);
    CHECK_INT(torii_dns_query_build(q, sizeof q, 1, "bad..name", TORII_DNS_A), 0);
}

TEST(a_records)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    char ip[64];
    answer_start(&m, 7, "svc.test", TORII_DNS_A, 0, false, 2);
    rr_a(&m, 12, NULL, 30, "10.0.0.1");
    rr_a(&m, 12, NULL, 20, "10.0.0.2");
    CHECK_INT(parse(&m, 7, "SVC.test.", TORII_DNS_A, &a, &why), TORII_DNS_FOUND);
    CHECK_INT(a.naddrs, 2);
    CHECK_INT(a.ttl, 20);
    CHECK_INT(a.addrs[0].family, AF_INET);
    inet_ntop(AF_INET, a.addrs[1].ip, ip, sizeof ip);
    CHECK_STR(ip, "10.0.0.2");
}

TEST(aaaa_records_and_nodata)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    char ip[64];
    answer_start(&m, 9, "v6.test", TORII_DNS_AAAA, 0, false, 1);
    rr_head(&m, 12, NULL, TORII_DNS_AAAA, 5, 16);
    inet_pton(AF_INET6, "::1", m.b + m.n);
    m.n += 16;
    CHECK_INT(parse(&m, 9, "v6.test", TORII_DNS_AAAA, &a, &why), TORII_DNS_FOUND);
    CHECK_INT(a.addrs[0].family, AF_INET6);
    inet_ntop(AF_INET6, a.addrs[0].ip, ip, sizeof ip);
    CHECK_STR(ip, "::1");
    /* an A record of the wrong size is not an address */
    answer_start(&m, 9, "v6.test", TORII_DNS_A, 0, false, 1);
    rr_head(&m, 12, NULL, TORII_DNS_A, 5, 16);
    m.n += 16;
    CHECK_INT(parse(&m, 9, "v6.test", TORII_DNS_A, &a, &why), TORII_DNS_NODATA);
    answer_start(&m, 9, "v6.test", TORII_DNS_A, 0, false, 0);
    CHECK_INT(parse(&m, 9, "v6.test", TORII_DNS_A, &a, &why), TORII_DNS_NODATA);
    CHECK_STR(why, "no A record");
}

TEST(cname_chains)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    size_t target, cdn;
    /* www.test -> edge.cdn.test -> node.cdn.test (A), records out of order,
     * names compressed against earlier ones */
    answer_start(&m, 1, "www.test", TORII_DNS_A, 0, false, 3);
    cdn = m.n + 5; /* "cdn.test" inside "node.cdn.test" */
    rr_a(&m, -1, "node.cdn.test", 300, "192.0.2.7");
    rr_head(&m, 12, NULL, TORII_DNS_CNAME, 60, 7);
    target = m.n;
    put8(&m, 4);
    memcpy(m.b + m.n, "edge", 4);
    m.n += 4;
    put16(&m, 0xc000 | (unsigned)cdn);
    rr_head(&m, (int)target, NULL, TORII_DNS_CNAME, 100, 7);
    put8(&m, 4);
    memcpy(m.b + m.n, "node", 4);
    m.n += 4;
    put16(&m, 0xc000 | (unsigned)cdn);
    CHECK_INT(parse(&m, 1, "www.test", TORII_DNS_A, &a, &why), TORII_DNS_FOUND);
    CHECK_INT(a.naddrs, 1);
    CHECK_INT(a.ttl, 60); /* the least of the chain */
    /* a chain leading out of the answer: no data here */
    answer_start(&m, 1, "www.test", TORII_DNS_A, 0, false, 1);
    rr_head(&m, 12, NULL, TORII_DNS_CNAME, 60, 11);
    put_name(&m, "gone.test");
    CHECK_INT(parse(&m, 1, "www.test", TORII_DNS_A, &a, &why), TORII_DNS_NODATA);
    /* a CNAME loop ends */
    answer_start(&m, 1, "www.test", TORII_DNS_A, 0, false, 1);
    rr_head(&m, 12, NULL, TORII_DNS_CNAME, 60, 2);
    put16(&m, 0xc00c);
    CHECK_INT(parse(&m, 1, "www.test", TORII_DNS_A, &a, &why), TORII_DNS_NODATA);
}

TEST(error_codes)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    answer_start(&m, 3, "x.test", TORII_DNS_A, 3, false, 0);
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_NXDOMAIN);
    CHECK_STR(why, "name not found (NXDOMAIN)");
    answer_start(&m, 3, "x.test", TORII_DNS_A, 2, false, 0);
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_FAILED);
    CHECK_STR(why, "server failure (SERVFAIL)");
    answer_start(&m, 3, "x.test", TORII_DNS_A, 5, false, 0);
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_FAILED);
}

TEST(answers_to_other_queries_are_ignored)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    answer_start(&m, 3, "x.test", TORII_DNS_A, 0, false, 1);
    rr_a(&m, 12, NULL, 5, "10.0.0.1");
    CHECK_INT(parse(&m, 4, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE);    /* id */
    CHECK_INT(parse(&m, 3, "y.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE);    /* name */
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_AAAA, &a, &why), TORII_DNS_IGNORE); /* type */
    m.b[2] &= 0x7f;                                                                /* a query, not an answer */
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE);
    m.b[2] |= 0x80;
    m.b[5] = 2; /* two questions */
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE);
    m.b[5] = 1;
    CHECK_INT(torii_dns_parse(m.b, 11, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE); /* short */
    CHECK_INT(torii_dns_parse(m.b, 20, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_IGNORE); /* cut question */
    /* an answer owned by another name does not count */
    answer_start(&m, 3, "x.test", TORII_DNS_A, 0, false, 1);
    rr_a(&m, -1, "evil.test", 5, "10.6.6.6");
    CHECK_INT(parse(&m, 3, "x.test", TORII_DNS_A, &a, &why), TORII_DNS_NODATA);
}

TEST(truncated_answers)
{
    msg_t m;
    torii_dns_answer_t a;
    const char *why;
    size_t full;
    answer_start(&m, 5, "t.test", TORII_DNS_A, 0, true, 3);
    rr_a(&m, 12, NULL, 5, "10.0.0.1");
    full = m.n;
    rr_a(&m, 12, NULL, 5, "10.0.0.2");
    /* TC and cut inside the second record: the first is used */
    CHECK_INT(torii_dns_parse(m.b, full + 5, 5, "t.test", TORII_DNS_A, &a, &why), TORII_DNS_FOUND);
    CHECK_INT(a.naddrs, 1);
    /* TC and no complete address */
    CHECK_INT(torii_dns_parse(m.b, full - 2, 5, "t.test", TORII_DNS_A, &a, &why), TORII_DNS_TRUNCATED);
    /* cut without TC: malformed */
    m.b[2] &= (uint8_t)~0x02;
    CHECK_INT(torii_dns_parse(m.b, full + 5, 5, "t.test", TORII_DNS_A, &a, &why), TORII_DNS_FAILED);
    CHECK_STR(why, "malformed answer");
}

TEST(name_compression_is_bounded)
{
    msg_t m;
    char out[256];
    size_t next;
    torii_dns_answer_t a;
    const char *why;
    /* a pointer to itself, a forward pointer, a pointer loop through a label */
    memset(&m, 0, sizeof m);
    m.n = 12;
    put16(&m, 0xc00c);
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    m.n = 12;
    put16(&m, 0xc00e);
    put8(&m, 0);
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    m.n = 12;
    put8(&m, 1);
    put8(&m, 'a');
    put16(&m, 0xc00c); /* "a" then back to "a"... */
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    /* out of bounds, extended label types, a dot inside a label */
    m.n = 12;
    put8(&m, 5);
    put8(&m, 'a');
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    m.n = 12;
    put8(&m, 0x41);
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    m.n = 12;
    put8(&m, 3);
    put8(&m, 'a');
    put8(&m, '.');
    put8(&m, 'b');
    put8(&m, 0);
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    /* a good one, with a pointer: next is just after the pointer */
    m.n = 12;
    put_name(&m, "a.test");
    put8(&m, 3);
    memcpy(m.b + m.n, "www", 3);
    m.n += 3;
    put16(&m, 0xc00c);
    CHECK(torii_dns_read_name(m.b, m.n, 20, out, sizeof out, &next));
    CHECK_STR(out, "www.a.test");
    CHECK_INT(next, m.n);
    /* longer than 255 bytes on the wire */
    m.n = 12;
    for (int i = 0; i < 4; i++) {
        put8(&m, 63);
        memset(m.b + m.n, 'x', 63);
        m.n += 63;
    }
    put8(&m, 0);
    CHECK(!torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    m.b[12 + 3 * 64] = 0; /* three labels fit */
    CHECK(torii_dns_read_name(m.b, m.n, 12, out, sizeof out, &next));
    /* an owner name that loops makes the whole answer malformed */
    answer_start(&m, 2, "l.test", TORII_DNS_A, 0, false, 1);
    put16(&m, 0xc000 | (unsigned)m.n);
    CHECK_INT(parse(&m, 2, "l.test", TORII_DNS_A, &a, &why), TORII_DNS_FAILED);
}

/* ---- /etc/hosts and resolv.conf ------------------------------------------ */

TEST(hosts_file)
{
    torii_dns_ip_t ips[4];
    const char *text = "# comment\n127.0.0.1 localhost\n10.0.0.5\tapi.internal api # the API\n"
                       "fd00::5 api.internal\nnot-an-ip other\n10.0.0.6 API.Internal.\n";
    CHECK_INT(torii_dns_hosts_find(text, "api.internal", ips, 4), 3);
    CHECK_INT(ips[0].family, AF_INET);
    CHECK_INT(ips[1].family, AF_INET6);
    CHECK_INT(torii_dns_hosts_find(text, "API", ips, 4), 1);
    CHECK_INT(torii_dns_hosts_find(text, "other", ips, 4), 0);
    CHECK_INT(torii_dns_hosts_find(text, "the", ips, 4), 0);
    CHECK_INT(torii_dns_hosts_find(text, "api.internal", ips, 1), 1);
    CHECK_INT(torii_dns_hosts_find("", "x", ips, 4), 0);
}

TEST(resolv_conf)
{
    torii_addr_t ns[3];
    char text[64];
    const char *conf = "search example.com\nnameserver 10.0.0.2\n# nameserver 10.9.9.9\n"
                       "options ndots:2\nnameserver  ::1 \nnameserver fe80::1%eth0\nnameserver\n"
                       "nameserver 10.0.0.3\nnameserver 10.0.0.4\n";
    CHECK_INT(torii_dns_resolv_nameservers(conf, ns, 3), 3);
    torii_addr_format((struct sockaddr *)&ns[0].sa, text, sizeof text);
    CHECK_STR(text, "10.0.0.2:53");
    torii_addr_format((struct sockaddr *)&ns[1].sa, text, sizeof text);
    CHECK_STR(text, "[::1]:53");
    torii_addr_format((struct sockaddr *)&ns[2].sa, text, sizeof text);
    CHECK_STR(text, "10.0.0.3:53");
}

/* ---- the client, against a server socket in this process ------------------ */

typedef struct {
    int fd;
    int mode; /* 0: a wrong id then the answer; 1: SERVFAIL; 2: silence */
    int got;  /* queries received */
} server_t;

typedef struct {
    int calls;
    torii_dns_result_t rc;
    uint32_t naddrs;
} outcome_t;

static void on_server(torii_loop_t *loop, torii_io_t *io, int revents)
{
    server_t *s = io->data;
    uint8_t q[512];
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(s->fd, q, sizeof q, 0, (struct sockaddr *)&peer, &plen);
    msg_t m;
    uint16_t id;
    (void)loop, (void)revents;
    if (n < 12)
        return;
    s->got++;
    id = (uint16_t)(q[0] << 8 | q[1]);
    if (s->mode == 2)
        return;
    if (s->mode == 1) {
        answer_start(&m, id, "c.test", TORII_DNS_A, 2, false, 0);
        sendto(s->fd, m.b, m.n, 0, (struct sockaddr *)&peer, plen);
        return;
    }
    answer_start(&m, (uint16_t)(id + 1), "c.test", TORII_DNS_A, 0, false, 1); /* forged: wrong id */
    rr_a(&m, 12, NULL, 5, "10.6.6.6");
    sendto(s->fd, m.b, m.n, 0, (struct sockaddr *)&peer, plen);
    answer_start(&m, id, "c.test", TORII_DNS_A, 0, false, 1);
    rr_a(&m, 12, NULL, 5, "10.0.0.1");
    sendto(s->fd, m.b, m.n, 0, (struct sockaddr *)&peer, plen);
}

static void on_outcome(void *data, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why)
{
    outcome_t *o = data;
    (void)why;
    o->calls++;
    o->rc = rc;
    o->naddrs = ans ? ans->naddrs : 0;
}

/* One query of c.test against a server in the given mode. */
static void client_run(int mode, outcome_t *o, server_t *s)
{
    torii_loop_t *loop = torii_loop_new_private();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    torii_dns_servers_t servers = {.timeout_ms = 100, .retries = 1, .nns = 1};
    torii_dns_client_t *c;
    torii_io_t io;
    const char *why;
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    s->mode = mode;
    s->got = 0;
    bind(s->fd, (struct sockaddr *)&sin, sizeof sin);
    getsockname(s->fd, (struct sockaddr *)&sin, &len);
    torii_addr_literal("127.0.0.1", 9, ntohs(sin.sin_port), &servers.ns[0]);
    torii_io_init(&io, on_server, s->fd, TORII_EV_READ);
    io.data = s;
    torii_io_start(loop, &io);
    c = torii_dns_client_new(loop, &servers);
    memset(o, 0, sizeof *o);
    CHECK(torii_dns_query(c, "c.test", TORII_DNS_A, on_outcome, o, &why) != NULL);
    CHECK_INT(torii_dns_client_pending(c), 1);
    for (int i = 0; i < 200 && o->calls == 0; i++)
        torii_loop_run_once(loop);
    CHECK_INT(torii_dns_client_pending(c), 0);
    torii_io_stop(loop, &io);
    close(s->fd);
    torii_dns_client_free(c);
    torii_loop_destroy(loop);
}

TEST(client_answers_and_retries)
{
    outcome_t o;
    server_t s;
    client_run(0, &o, &s); /* the forged answer is skipped, the real one taken */
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.rc, TORII_DNS_FOUND);
    CHECK_INT(o.naddrs, 1);
    CHECK_INT(s.got, 1);
    client_run(1, &o, &s); /* SERVFAIL: tried again, then failed */
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.rc, TORII_DNS_FAILED);
    CHECK_INT(s.got, 2);
    client_run(2, &o, &s); /* silence: two tries time out */
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.rc, TORII_DNS_FAILED);
    CHECK_INT(s.got, 2);
}

TEST(client_cancel_and_queue)
{
    torii_loop_t *loop = torii_loop_new_private();
    torii_dns_servers_t servers = {.timeout_ms = 1000, .retries = 0, .nns = 1};
    torii_dns_client_t *c;
    torii_dns_query_t *q[100];
    outcome_t o = {0};
    const char *why;
    torii_addr_literal("127.0.0.1", 9, 9, &servers.ns[0]); /* discard: nobody answers */
    c = torii_dns_client_new(loop, &servers);
    for (int i = 0; i < 100; i++)
        q[i] = torii_dns_query(c, "q.test", TORII_DNS_A, on_outcome, &o, &why);
    CHECK_INT(torii_dns_client_pending(c), 100);
    torii_dns_query_cancel(q[0]);  /* in flight: a waiting one starts */
    torii_dns_query_cancel(q[99]); /* waiting */
    CHECK_INT(torii_dns_client_pending(c), 98);
    CHECK(torii_dns_query(c, "bad..name", TORII_DNS_A, on_outcome, &o, &why) == NULL);
    torii_dns_client_free(c); /* the rest, without callbacks */
    CHECK_INT(o.calls, 0);
    torii_loop_destroy(loop);
}

int main(void)
{
    RUN(names_fit_for_questions);
    RUN(query_building);
    RUN(a_records);
    RUN(aaaa_records_and_nodata);
    RUN(cname_chains);
    RUN(error_codes);
    RUN(answers_to_other_queries_are_ignored);
    RUN(truncated_answers);
    RUN(name_compression_is_bounded);
    RUN(hosts_file);
    RUN(resolv_conf);
    RUN(client_answers_and_retries);
    RUN(client_cancel_and_queue);
    return unit_report("test_dns");
}
