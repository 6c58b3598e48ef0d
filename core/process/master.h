/*
 * master.h — the master process: opens the listening sockets once, starts
 * the workers (which inherit them), restarts a worker that dies, and turns
 * signals into shutdowns:
 *   SIGQUIT          graceful: workers finish requests in flight, then exit
 *   SIGTERM, SIGINT  immediate
 *   SIGUSR1          reopen log files (after rotation)
 *   SIGHUP           reload (not supported yet: logged)
 */
#ifndef TORII_MASTER_H
#define TORII_MASTER_H

#include "config/config.h"

/* Run until stopped; returns the process exit status. Takes ownership of
 * conf. */
int torii_master_run(torii_config_t *conf);

#endif
