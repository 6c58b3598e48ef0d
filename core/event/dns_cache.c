/* dns_cache.c — host names, resolved at load and refreshed on their TTL
 * (see dns_cache.h). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/list.h"
#include "base/log.h"
#include "event/dns_cache.h"
#include "event/dns_sys.h"

#define BACKOFF_FIRST 1.0  /* seconds before a failed refresh is tried again... */
#define BACKOFF_MAX   30.0 /* ...doubling up to this */

typedef void (*done_fn)(torii_dns_name_t *e, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why);

struct torii_dns_name_s {
    torii_list_t link; /* in names */
    char host[TORII_DNS_NAME_MAX + 2];
    uint32_t refs;
    bool fixed; /* from /etc/hosts: never asked for */
    torii_dns_ip_t ips[TORII_DNS_MAX_ADDRS];
    uint32_t nips, turn;
    double expires;  /* monotonic seconds: the answer's TTL ends */
    uint64_t source; /* the nameservers that answered (servers_sig) */
    uint32_t failures;
    torii_timer_t timer;
    torii_dns_query_t *query;
    torii_dns_client_t *client; /* of the query */
    uint16_t qtype;
    done_fn done;
    bool in_batch;        /* asked for by the load under way */
    const char *load_why; /* ... and why it failed */
};

static torii_list_t names = {&names, &names};
static torii_loop_t *rt_loop; /* the worker's loop, once attached */
static torii_dns_client_t *rt_client;
static torii_dns_policy_t rt_policy;
static const torii_dns_policy_t *batch_policy; /* the load under way */
static uint32_t batch_left;

static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents);

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Which nameservers a policy asks (FNV-1a over their addresses). */
static uint64_t servers_sig(const torii_dns_servers_t *s)
{
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < s->nns; i++) {
        const uint8_t *p = (const uint8_t *)&s->ns[i].sa;
        for (socklen_t k = 0; k < s->ns[i].len; k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

static void format_ips(const torii_dns_ip_t *ips, uint32_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n && len + INET6_ADDRSTRLEN + 2 < cap; i++) {
        if (i)
            out[len++] = ' ';
        inet_ntop(ips[i].family, ips[i].ip, out + len, (socklen_t)(cap - len));
        len += strlen(out + len);
    }
    if (n == 0)
        snprintf(out, cap, "none");
}

/* ---- lookups: A, then AAAA when the name has no A record ---------------- */

static void on_answer(void *data, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why);

static bool lookup(torii_dns_name_t *e, torii_dns_client_t *c, uint16_t qtype, done_fn done, const char **why)
{
    e->qtype = qtype;
    e->client = c;
    e->done = done;
    e->query = torii_dns_query(c, e->host, qtype, on_answer, e, why);
    return e->query != NULL;
}

static void on_answer(void *data, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why)
{
    torii_dns_name_t *e = data;
    e->query = NULL;
    if (rc == TORII_DNS_NODATA && e->qtype == TORII_DNS_A) {
        if (lookup(e, e->client, TORII_DNS_AAAA, e->done, &why))
            return;
        rc = TORII_DNS_FAILED;
    } else if (rc == TORII_DNS_NODATA) {
        why = "no A or AAAA record";
    }
    e->done(e, rc, ans, why);
}

/* ---- the addresses of a name ------------------------------------------- */

static bool same_set(const torii_dns_name_t *e, const torii_dns_answer_t *ans)
{
    if (e->nips != ans->naddrs)
        return false;
    for (uint32_t i = 0; i < ans->naddrs; i++) {
        bool found = false;
        for (uint32_t k = 0; k < e->nips && !found; k++)
            found = memcmp(&e->ips[k], &ans->addrs[i], sizeof e->ips[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* A good answer: its addresses, until its TTL (clamped, or `valid`) ends.
 * A set that only changed order is kept as it is: servers rotate their
 * records, and our own turns would start over for nothing. */
static void apply(torii_dns_name_t *e, const torii_dns_answer_t *ans, const torii_dns_policy_t *p)
{
    uint64_t ttl_ms = p->valid_ms ? p->valid_ms : (uint64_t)ans->ttl * 1000;
    if (ttl_ms < p->min_ttl_ms)
        ttl_ms = p->min_ttl_ms;
    if (ttl_ms > p->max_ttl_ms)
        ttl_ms = p->max_ttl_ms;
    if (!same_set(e, ans)) {
        char was[512], now[512];
        format_ips(e->ips, e->nips, was, sizeof was);
        format_ips(ans->addrs, ans->naddrs, now, sizeof now);
        if (e->nips || e->failures)
            torii_log_notice("upstream host %s: addresses now %s (were %s)", e->host, now, was);
        memset(e->ips, 0, sizeof e->ips);
        memcpy(e->ips, ans->addrs, sizeof ans->addrs[0] * ans->naddrs);
        e->nips = ans->naddrs;
        e->turn = 0;
    } else if (e->failures) {
        torii_log_notice("upstream host %s resolves again", e->host);
    }
    e->expires = mono_now() + (double)ttl_ms / 1000;
    e->source = servers_sig(&p->servers);
    e->failures = 0;
}

bool torii_dns_name_addr(torii_dns_name_t *e, uint16_t port, torii_addr_t *out)
{
    const torii_dns_ip_t *ip;
    if (e->nips == 0)
        return false;
    ip = &e->ips[e->turn++ % e->nips];
    memset(out, 0, sizeof *out);
    if (ip->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        memcpy(&sin->sin_addr, ip->ip, 4);
        out->len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        memcpy(&sin6->sin6_addr, ip->ip, 16);
        out->len = sizeof *sin6;
    }
    return true;
}

/* ---- refreshes in a worker --------------------------------------------- */

/* Arm the name's timer: at its expiry, or after a back-off while its
 * refreshes fail. */
static void schedule(torii_dns_name_t *e)
{
    double after;
    if (!rt_loop || e->fixed || e->query)
        return;
    if (e->failures) {
        after = BACKOFF_FIRST;
        for (uint32_t i = 1; i < e->failures && after < BACKOFF_MAX; i++)
            after *= 2;
        after = after < BACKOFF_MAX ? after : BACKOFF_MAX;
    } else {
        after = e->expires - mono_now();
        after = after > 0 ? after : 0;
    }
    torii_timer_arm(rt_loop, &e->timer, after);
}

/* A refresh failed: keep the last good addresses within the stale window. */
static void refresh_failed(torii_dns_name_t *e, const char *why)
{
    double left = e->expires + rt_policy.stale_ms / 1000.0 - mono_now();
    char ips[512];
    e->failures++;
    format_ips(e->ips, e->nips, ips, sizeof ips);
    if (e->nips && left > 0) {
        torii_log_warn("upstream host %s: %s; its last addresses (%s) stay in use for up to %.0fs more", e->host, why,
                       ips, left);
    } else if (e->nips) {
        torii_log_error("upstream host %s: %s; its last addresses (%s) are older than resolver.stale: dropped, its "
                        "node fails until the name resolves",
                        e->host, why, ips);
        e->nips = 0;
    } else {
        torii_log_error("upstream host %s still does not resolve: %s", e->host, why);
    }
}

static void on_refreshed(torii_dns_name_t *e, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why)
{
    if (rc == TORII_DNS_FOUND) {
        apply(e, ans, &rt_policy);
        torii_log_debug("upstream host %s refreshed", e->host);
    } else {
        refresh_failed(e, why);
    }
    schedule(e);
}

static void on_timer(torii_loop_t *loop, torii_timer_t *t, int revents)
{
    torii_dns_name_t *e = t->data;
    const char *why;
    (void)loop, (void)revents;
    if (!rt_client || e->query)
        return;
    if (!lookup(e, rt_client, TORII_DNS_A, on_refreshed, &why)) {
        refresh_failed(e, why);
        schedule(e);
    }
}

void torii_dns_cache_attach(torii_loop_t *loop, const torii_dns_policy_t *p)
{
    rt_loop = loop;
    rt_policy = *p;
    rt_client = torii_dns_client_new(loop, &p->servers);
    for (torii_list_t *n = names.next; n != &names; n = n->next)
        schedule(torii_list_entry(n, torii_dns_name_t, link));
}

void torii_dns_cache_configure(const torii_dns_policy_t *p)
{
    /* A configuration without host names never looked for nameservers:
     * names a retired generation still uses keep the ones they had. */
    if (p->servers.nns == 0)
        return;
    rt_policy = *p;
    if (rt_client)
        torii_dns_client_set(rt_client, &p->servers);
}

static void stop(torii_dns_name_t *e)
{
    if (rt_loop)
        torii_timer_stop(rt_loop, &e->timer);
    if (e->query)
        torii_dns_query_cancel(e->query);
    e->query = NULL;
}

void torii_dns_cache_detach(void)
{
    for (torii_list_t *n = names.next; n != &names; n = n->next)
        stop(torii_list_entry(n, torii_dns_name_t, link));
    torii_dns_client_free(rt_client);
    rt_client = NULL;
    rt_loop = NULL;
}

/* ---- names, and resolving a configuration's ---------------------------- */

void torii_dns_name_ref(torii_dns_name_t *e)
{
    e->refs++;
}

void torii_dns_name_release(torii_dns_name_t *e)
{
    if (!e || --e->refs > 0)
        return;
    stop(e);
    torii_list_remove(&e->link);
    free(e);
}

/* The cached entry of host (lowercased, no final dot), made if new: fixed
 * when /etc/hosts (read once per load, into *hosts) has it. */
static torii_dns_name_t *find_or_add(const char *host, char **hosts, bool *hosts_read)
{
    char key[TORII_DNS_NAME_MAX + 2];
    size_t n = strlen(host);
    torii_dns_name_t *e;
    if (n && host[n - 1] == '.')
        n--;
    n = n < sizeof key - 1 ? n : sizeof key - 1;
    for (size_t i = 0; i < n; i++)
        key[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
    key[n] = '\0';
    for (torii_list_t *l = names.next; l != &names; l = l->next) {
        e = torii_list_entry(l, torii_dns_name_t, link);
        if (strcmp(e->host, key) == 0) {
            e->refs++;
            return e;
        }
    }
    if (!(e = calloc(1, sizeof *e)))
        abort();
    memcpy(e->host, key, n + 1);
    e->refs = 1;
    torii_timer_init(&e->timer, on_timer, 0., 0.);
    e->timer.data = e;
    torii_list_init(&e->link);
    torii_list_push(&names, &e->link);
    if (!*hosts_read) {
        *hosts = torii_dns_read_file(TORII_DNS_HOSTS);
        *hosts_read = true;
    }
    if (*hosts && (e->nips = (uint32_t)torii_dns_hosts_find(*hosts, key, e->ips, TORII_DNS_MAX_ADDRS)) > 0)
        e->fixed = true;
    return e;
}

static void on_loaded(torii_dns_name_t *e, torii_dns_result_t rc, const torii_dns_answer_t *ans, const char *why)
{
    batch_left--;
    if (rc == TORII_DNS_FOUND)
        apply(e, ans, batch_policy);
    else
        e->load_why = why;
}

/* Ask for the names of the batch that need it, on a loop of our own (the
 * worker's may not run here: it would serve requests in the middle of a
 * reload). */
static void ask(const torii_dns_policy_t *p, torii_dns_want_t *w, size_t n)
{
    double now = mono_now();
    uint64_t sig = servers_sig(&p->servers);
    torii_loop_t *loop = NULL;
    torii_dns_client_t *c = NULL;
    const char *why;
    for (size_t i = 0; i < n; i++) {
        torii_dns_name_t *e = w[i].name;
        if (e->fixed || e->in_batch || (e->nips && now < e->expires && e->source == sig))
            continue;
        e->in_batch = true;
        e->load_why = NULL;
        stop(e); /* a refresh under way: this load's answer does for it */
        if (!loop && (loop = torii_loop_new_private()) != NULL)
            c = torii_dns_client_new(loop, &p->servers);
        if (!loop)
            e->load_why = "cannot make an event loop";
        else if (lookup(e, c, TORII_DNS_A, on_loaded, &why))
            batch_left++;
        else
            e->load_why = why;
    }
    if (!loop)
        return;
    batch_policy = p;
    torii_loop_run(loop); /* returns when no query is left */
    torii_dns_client_free(c);
    torii_loop_destroy(loop);
    batch_policy = NULL;
    batch_left = 0;
}

bool torii_dns_cache_resolve(const torii_dns_policy_t *p, torii_dns_want_t *w, size_t n)
{
    char *hosts = NULL;
    bool hosts_read = false, ok = true;
    double now;
    for (size_t i = 0; i < n; i++) {
        w[i].name = find_or_add(w[i].host, &hosts, &hosts_read);
        w[i].why = NULL;
    }
    free(hosts);
    ask(p, w, n);
    now = mono_now();
    for (size_t i = 0; i < n; i++) {
        torii_dns_name_t *e = w[i].name;
        if (!e->in_batch || !e->load_why)
            continue;
        if (e->nips && now < e->expires + p->stale_ms / 1000.0) {
            /* Known from before: a reload does not fail on a DNS outage. */
            torii_log_warn("upstream host %s: %s; its last addresses stay in use", e->host, e->load_why);
            e->load_why = NULL;
            e->failures++;
            continue;
        }
        w[i].why = e->load_why;
        ok = false;
    }
    for (size_t i = 0; i < n; i++) {
        w[i].name->in_batch = false;
        schedule(w[i].name);
    }
    return ok;
}
