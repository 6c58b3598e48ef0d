/*
 * dns_sys.h — what the system says about names: /etc/hosts (names found
 * there are fixed) and the nameservers of /etc/resolv.conf. Small parsers
 * over text, plus the files' paths, so that tests feed them any text.
 *
 * Only `nameserver` lines are read from resolv.conf: names are looked up
 * as written (no `search` domains, no `ndots`), as nginx's resolver does.
 */
#ifndef TORII_DNS_SYS_H
#define TORII_DNS_SYS_H

#include <stddef.h>

#include "base/addr.h"
#include "event/dns.h"

#define TORII_DNS_HOSTS       "/etc/hosts"
#define TORII_DNS_RESOLV_CONF "/etc/resolv.conf"
#define TORII_DNS_MAX_NS      8 /* nameservers used */

/* The addresses /etc/hosts-style text gives name (case-insensitive, a
 * final dot ignored), up to cap; how many. Comments (#) and malformed
 * lines are skipped. */
size_t torii_dns_hosts_find(const char *text, const char *name, torii_dns_ip_t *out, size_t cap);

/* The `nameserver` addresses of resolv.conf-style text (port 53), up to
 * cap; how many. */
size_t torii_dns_resolv_nameservers(const char *text, torii_addr_t *out, size_t cap);

/* A whole small file as a NUL-terminated string (free it), or NULL. */
char *torii_dns_read_file(const char *path);

#endif
