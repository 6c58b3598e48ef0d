/* accesslog.h — one access-log line per request. */
#ifndef TORII_ACCESSLOG_H
#define TORII_ACCESSLOG_H

#include "proxy/conn.h"

/* Log c->req: client, time, request line, status, bytes sent, upstream
 * address, upstream time, total time, route and request id. */
void torii_access_log(const torii_client_t *c);

#endif
