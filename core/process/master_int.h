/*
 * master_int.h — the master's state, shared by master.c (processes and
 * signals) and master_reload.c (the two-phase reload).
 */
#ifndef TORII_MASTER_INT_H
#define TORII_MASTER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/common.h"
#include "config/config.h"

#define RELOAD_CLIENTS 16 /* `torii -s reload` commands waiting at once */

typedef struct {
    pid_t pid;             /* 0: not running */
    double started;        /* when it was (re)started */
    double respawn_at;     /* when to start it again (0: no restart planned) */
    unsigned quick_deaths; /* deaths soon after start, for back-off */
    int ctl;               /* the master's end of its reload channel, -1: none */
    uint64_t awaiting;     /* generation it has yet to answer for (0: none) */
} slot_t;

typedef struct {
    bool running;
    bool committing;      /* prepare went well; commit sent */
    uint64_t id;          /* the generation being made */
    torii_config_t *conf; /* the master's copy of it, until commit */
    double t0, deadline;
    char err[1024]; /* the first failure */
    bool failed;
    const char *why; /* what asked for it, for the log */
    int clients[RELOAD_CLIENTS];
    uint32_t nclients;
    int next_clients[RELOAD_CLIENTS]; /* asked while one ran: for the next */
    uint32_t nnext;
    bool again;
    bool respawn; /* listen or workers changed: new workers replace the old */
} reload_t;

typedef struct {
    torii_config_t *conf; /* the current generation's */
    uint64_t gen_id;
    int *fds;
    uint32_t nfds;
    slot_t *slots;
    uint32_t nslots;
    int stopping;    /* 0, SIGQUIT or SIGTERM */
    double deadline; /* when stopping: SIGKILL what is left after this */
    pid_t pid;
    int sigfd; /* signalfd for the signals the master handles */
    int ctlfd; /* the control socket (-1: none) */
    reload_t rl;
    pid_t *draining; /* workers of an older process set, finishing their requests */
    uint32_t ndraining;
    struct torii_watch_s *watch; /* `watch: true`: the file watcher */
    double watch_due;            /* when to reload for the changes seen (0: none) */
} master_t;

/* Replace every worker by new ones for conf (listen addresses or the
 * number of workers changed): new sockets where needed, the old workers
 * drained. Takes conf over on success; TORII_ERROR with err otherwise
 * (nothing changed). The new workers' slots await gen_id. */
int torii_master_replace_workers(master_t *m, torii_config_t *conf, uint64_t gen_id, char *err, size_t errlen);

/* (Re)build the file watcher for the current configuration. */
void torii_master_rewatch(master_t *m);

double torii_master_now(void);

/* Begin a reload (or queue one when one is running). client: a control
 * connection waiting for the outcome, or -1. */
void torii_master_reload(master_t *m, const char *why, int client);

/* A message from worker slot i's reload channel. */
void torii_master_reload_message(master_t *m, uint32_t i, const char *msg);

/* Worker slot i exited or was started while a reload runs. */
void torii_master_reload_exited(master_t *m, uint32_t i);
void torii_master_reload_spawned(master_t *m, uint32_t i);

/* Deadlines; and abandon a running reload when the master stops. */
void torii_master_reload_tick(master_t *m);
void torii_master_reload_cancel(master_t *m, const char *why);

#endif
