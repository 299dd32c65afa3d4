/* core-hosts.c - provider names and their synthetic addresses. */
#include "shim-core.h"

#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

unsigned lw_shim_host_slot(const LwShimConfig *cfg, const char *name)
{
    if (name == NULL || cfg->net.count == 0)
        return 0;
    size_t len = strnlen(name, LW_SHIM_MAX_HOST_LEN + 2);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > LW_SHIM_MAX_HOST_LEN)
        return 0;
    /* Length first: most names that reach getaddrinfo are not providers and
     * differ in length from all of them, so no string compare runs. */
    for (unsigned i = 0; i < cfg->net.count; i++) {
        if (cfg->host_len[i] == len && strncasecmp(cfg->hosts[i], name, len) == 0)
            return i + 1;
    }
    return 0;
}

const char *lw_shim_slot_host(const LwShimConfig *cfg, unsigned slot)
{
    if (slot == 0 || slot > cfg->net.count)
        return NULL;
    return cfg->hosts[slot - 1];
}

bool lw_shim_slot_literal(const LwShimNet *net, unsigned slot, int family, char *buf, size_t cap)
{
    const char *prefix;
    if (family == AF_INET)
        prefix = "";
    else if (family == AF_INET6)
        prefix = "::ffff:";
    else
        return false;
    int n = snprintf(buf, cap, "%s%u.%u.0.%u", prefix, (unsigned)(net->base >> 24),
                     (unsigned)((net->base >> 16) & 0xffu), slot);
    return n > 0 && (size_t)n < cap;
}

size_t lw_shim_slot_addr(const LwShimNet *net, unsigned slot, int family, uint8_t out[16])
{
    uint32_t v4 = htonl(net->base | (slot & 0xffu));
    if (family == AF_INET) {
        memcpy(out, &v4, 4);
        return 4;
    }
    if (family == AF_INET6) {
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return 16;
    }
    return 0;
}

int lw_shim_hostent_fill(struct hostent *ret, char *buf, size_t buflen, const char *name,
                         int family, const uint8_t *addr)
{
    size_t addr_len = family == AF_INET6 ? 16 : 4;
    size_t name_len = strlen(name) + 1;
    size_t pad = (alignof(char *) - (uintptr_t)buf % alignof(char *)) % alignof(char *);
    size_t need = pad + 3 * sizeof(char *) + addr_len + name_len;
    if (buf == NULL || buflen < need)
        return ERANGE;

    char **ptrs = (char **)(void *)(buf + pad);
    char *addr_copy = (char *)(ptrs + 3);
    char *name_copy = addr_copy + addr_len;
    memcpy(addr_copy, addr, addr_len);
    memcpy(name_copy, name, name_len);
    ptrs[0] = NULL; /* aliases */
    ptrs[1] = addr_copy;
    ptrs[2] = NULL;

    ret->h_name = name_copy;
    ret->h_aliases = &ptrs[0];
    ret->h_addrtype = family;
    ret->h_length = (int)addr_len;
    ret->h_addr_list = &ptrs[1];
    return 0;
}
