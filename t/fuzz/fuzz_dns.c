/*
 * fuzz_dns.c — libFuzzer target for reading DNS answers: any bytes, read
 * as the answer to an A and to an AAAA question for svc.test (the id is
 * the message's own, so that parsing goes past the header), and every
 * offset read as a (compressed) name.
 *
 * Besides "no crash, no sanitizer report": a FOUND answer has 1 to
 * TORII_DNS_MAX_ADDRS addresses of the family asked; a name read is
 * NUL-terminated, at most 253 characters, and ends inside the message.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "event/dns.h"

static void answer(const uint8_t *data, size_t size, uint16_t qtype)
{
    torii_dns_answer_t ans;
    const char *why = NULL;
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    torii_dns_result_t rc = torii_dns_parse(data, size, id, "svc.test", qtype, &ans, &why);
    if (rc == TORII_DNS_FOUND) {
        assert(ans.naddrs >= 1 && ans.naddrs <= TORII_DNS_MAX_ADDRS);
        for (uint32_t i = 0; i < ans.naddrs; i++)
            assert(ans.addrs[i].family == (qtype == TORII_DNS_A ? AF_INET : AF_INET6));
    } else {
        assert(why != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[256];
    answer(data, size, TORII_DNS_A);
    answer(data, size, TORII_DNS_AAAA);
    for (size_t off = 0; off < size && off < 600; off++) {
        size_t next = 0;
        if (torii_dns_read_name(data, size, off, name, sizeof name, &next)) {
            assert(strlen(name) <= 253 && next > off && next <= size);
        }
    }
    return 0;
}
