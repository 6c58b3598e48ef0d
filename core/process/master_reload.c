/*
 * master_reload.c — the master's side of a reload.
 *
 * The master loads the configuration files (a file that does not parse or
 * check fails here, with the same `file:line: path: reason` as torii -t),
 * then asks every worker to prepare the new generation: each builds it in
 * full — plugins loaded fresh into a new Lua VM, plugin configurations
 * checked against their schemas, the router — while it keeps serving the
 * current one. Only when every worker is ready does the master say
 * commit; one failure and every worker drops what it built. The answer
 * goes back to `torii -s reload` once every worker has switched, so a
 * request sent after it returns is served by the new generation.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "process/master_int.h"
#include "process/pidfile.h"
#include "process/reload_msg.h"

#define RELOAD_TIMEOUT 60.0 /* seconds a worker may take to build a generation */

static void answer(int *clients, uint32_t *n, bool ok, const char *msg)
{
    char line[1100];
    int len = snprintf(line, sizeof line, "%s %s\n", ok ? "ok" : "error", msg);
    if (len >= (int)sizeof line)
        len = (int)sizeof line - 1;
    for (uint32_t i = 0; i < *n; i++) {
        if (write(clients[i], line, (size_t)len) < 0) {
            /* the command line gave up waiting: nothing to tell */
        }
        close(clients[i]);
    }
    *n = 0;
}

static void finish(master_t *m, bool ok, const char *msg)
{
    reload_t *rl = &m->rl;
    if (ok)
        torii_log_notice("reload (%s): %s", rl->why, msg);
    else
        torii_log_error("reload (%s) failed: %s; generation %llu stays current", rl->why, msg,
                        (unsigned long long)m->gen_id);
    answer(rl->clients, &rl->nclients, ok, msg);
    if (ok)
        torii_master_rewatch(m); /* the directories to watch may have changed */
    if (rl->conf && rl->conf != m->conf)
        torii_config_free(rl->conf);
    rl->conf = NULL;
    rl->running = rl->committing = rl->failed = rl->respawn = false;
    for (uint32_t i = 0; i < m->nslots; i++)
        m->slots[i].awaiting = 0;
    if (rl->again && !m->stopping) {
        rl->again = false;
        memcpy(rl->clients, rl->next_clients, rl->nnext * sizeof *rl->clients);
        rl->nclients = rl->nnext;
        rl->nnext = 0;
        torii_master_reload(m, "asked again while reloading", -1);
    }
}

static void fail(master_t *m, const char *msg)
{
    if (!m->rl.failed) {
        snprintf(m->rl.err, sizeof m->rl.err, "%s", msg);
        m->rl.failed = true;
    }
}

/* Settings that need new sockets or processes cannot change in place. */
static const char *needs_restart(const torii_config_t *old, const torii_config_t *conf)
{
    if (old->nlisten != conf->nlisten)
        return "listen";
    for (uint32_t i = 0; i < conf->nlisten; i++)
        if (strcmp(old->listen[i].text, conf->listen[i].text) != 0)
            return "listen";
    if (old->workers != conf->workers)
        return "workers";
    return NULL;
}

/* Send verb to every live worker; how many it went to. */
static uint32_t tell_all(master_t *m, const char *verb)
{
    bool answered = strcmp(verb, "abort") != 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nslots; i++) {
        slot_t *s = &m->slots[i];
        if (s->pid <= 0 || s->ctl < 0)
            continue;
        if (torii_reload_send(s->ctl, "%s %llu", verb, (unsigned long long)m->rl.id)) {
            s->awaiting = answered ? m->rl.id : 0;
            n++;
        }
    }
    return n;
}

static uint32_t awaited(const master_t *m)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->nslots; i++)
        n += m->slots[i].awaiting != 0;
    return n;
}

static void apply_master_settings(master_t *m, torii_config_t *old)
{
    char err[TORII_ERRLEN];
    torii_config_t *conf = m->conf;
    if (strcmp(old->error_log, conf->error_log) != 0 &&
        torii_log_open(conf->error_log, conf->log_level, err, sizeof err) != TORII_OK)
        torii_log_error("reload: %s; keeping the old error log", err);
    torii_log_level = conf->log_level;
    if (strcmp(old->pid_file, conf->pid_file) != 0) {
        if (torii_pidfile_write(conf->pid_file, err, sizeof err) == TORII_OK)
            torii_pidfile_remove(old->pid_file);
        else
            torii_log_error("reload: %s", err);
    }
}

static void step(master_t *m);

/* New sockets or another number of workers: the workers that checked
 * the generation drop it, and new workers start on it. */
static void commit_by_respawn(master_t *m)
{
    reload_t *rl = &m->rl;
    char err[512];
    torii_config_t *prev = m->conf;
    tell_all(m, "abort");
    if (torii_master_replace_workers(m, rl->conf, rl->id, err, sizeof err) != TORII_OK) {
        fail(m, err);
        finish(m, false, rl->err);
        return;
    }
    rl->committing = true;
    apply_master_settings(m, prev);
    torii_config_free(prev);
    step(m); /* done when every new worker says it serves */
}

static void commit(master_t *m)
{
    reload_t *rl = &m->rl;
    torii_config_t *old = m->conf;
    if (rl->respawn) {
        commit_by_respawn(m);
        return;
    }
    /* From here on, a worker that (re)starts starts on the new generation. */
    m->conf = rl->conf;
    m->gen_id = rl->id;
    rl->committing = true;
    if (tell_all(m, "commit") == 0) {
        apply_master_settings(m, old);
        torii_config_free(old);
        torii_master_reload_message(m, UINT32_MAX, NULL);
        return;
    }
    apply_master_settings(m, old); /* while the workers switch */
    torii_config_free(old);
}

/* Every worker has answered the current step: take the next one. */
static void step(master_t *m)
{
    reload_t *rl = &m->rl;
    char msg[128];
    if (!rl->running || awaited(m) > 0)
        return;
    if (rl->committing) {
        snprintf(msg, sizeof msg, "generation %llu is current in every worker (%.1f ms)", (unsigned long long)rl->id,
                 (torii_master_now() - rl->t0) * 1e3);
        finish(m, true, msg);
        return;
    }
    if (rl->failed) {
        tell_all(m, "abort");
        for (uint32_t i = 0; i < m->nslots; i++)
            m->slots[i].awaiting = 0;
        finish(m, false, rl->err);
        return;
    }
    commit(m);
}

void torii_master_reload(master_t *m, const char *why, int client)
{
    reload_t *rl = &m->rl;
    char err[1024];
    const char *what;
    if (m->stopping) {
        int c[1] = {client};
        uint32_t n = client >= 0;
        answer(c, &n, false, "torii is shutting down");
        return;
    }
    if (rl->running) { /* files may have changed since it began: one more after it */
        rl->again = true;
        if (client >= 0 && rl->nnext < RELOAD_CLIENTS)
            rl->next_clients[rl->nnext++] = client;
        else if (client >= 0)
            close(client);
        return;
    }
    if (client >= 0 && rl->nclients < RELOAD_CLIENTS)
        rl->clients[rl->nclients++] = client;
    else if (client >= 0)
        close(client);
    rl->running = true;
    rl->why = why;
    rl->id = m->gen_id + 1;
    rl->t0 = torii_master_now();
    rl->deadline = rl->t0 + RELOAD_TIMEOUT;
    torii_log_notice("reload (%s): building generation %llu", why, (unsigned long long)rl->id);
    /* Workers build while the master reads its own copy (for the workers
     * it will start later): the two loads overlap on separate cores. */
    tell_all(m, "prepare");
    rl->conf = torii_config_load(m->conf->path, m->conf->prefix, err, sizeof err);
    if (!rl->conf) {
        fail(m, err);
    } else if ((what = needs_restart(m->conf, rl->conf)) != NULL) {
        torii_log_notice("reload: %s changed: new workers will replace the running ones", what);
        rl->respawn = true;
    }
    step(m); /* goes on when every worker has answered (at once if none runs) */
}

void torii_master_reload_message(master_t *m, uint32_t i, const char *msg)
{
    reload_t *rl = &m->rl;
    const char *rest;
    size_t vlen;
    uint64_t id;
    if (!msg) { /* nothing to wait for */
        step(m);
        return;
    }
    if (!torii_reload_parse(msg, &vlen, &id, &rest)) {
        torii_log_error("reload channel of worker %u: malformed message \"%.64s\"", i + 1, msg);
        return;
    }
    if (!rl->running || id != rl->id || m->slots[i].awaiting != id)
        return; /* an answer to an abandoned reload */
    m->slots[i].awaiting = 0;
    if (vlen == 6 && memcmp(msg, "failed", 6) == 0)
        fail(m, rest);
    else if (vlen == 5 && memcmp(msg, "ready", 5) == 0)
        torii_log_info("reload: worker %u built generation %llu in %s ms", i + 1, (unsigned long long)id, rest);
    step(m);
}

void torii_master_reload_exited(master_t *m, uint32_t i)
{
    char why[128];
    slot_t *s = &m->slots[i];
    if (!m->rl.running || !s->awaiting)
        return;
    s->awaiting = 0;
    /* While committing, its replacement starts on the new generation. */
    if (!m->rl.committing) {
        snprintf(why, sizeof why, "worker %u exited while building generation %llu", i + 1,
                 (unsigned long long)m->rl.id);
        fail(m, why);
    }
    step(m);
}

void torii_master_reload_spawned(master_t *m, uint32_t i)
{
    slot_t *s = &m->slots[i];
    /* It starts on the current generation, which is the new one when
     * committing; while preparing it must build the new one too. */
    if (!m->rl.running || m->rl.committing || s->ctl < 0)
        return;
    if (torii_reload_send(s->ctl, "prepare %llu", (unsigned long long)m->rl.id))
        s->awaiting = m->rl.id;
}

void torii_master_reload_tick(master_t *m)
{
    char why[160];
    if (!m->rl.running || torii_master_now() < m->rl.deadline)
        return;
    for (uint32_t i = 0; i < m->nslots; i++) {
        if (m->slots[i].awaiting) {
            snprintf(why, sizeof why, "worker %u did not answer within %.0f s", i + 1, RELOAD_TIMEOUT);
            fail(m, why);
            m->slots[i].awaiting = 0;
        }
    }
    if (m->rl.committing) {
        finish(m, false, m->rl.err); /* already current where it could be */
        return;
    }
    step(m);
}

void torii_master_reload_cancel(master_t *m, const char *why)
{
    reload_t *rl = &m->rl;
    if (rl->running) {
        if (!rl->committing)
            tell_all(m, "abort");
        rl->again = false;
        finish(m, false, why);
    }
    answer(rl->next_clients, &rl->nnext, false, why);
}
