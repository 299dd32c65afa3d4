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

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4mapped(const uint8_t a[16])
{
    return memcmp(a, v4mapped_prefix, sizeof v4mapped_prefix) == 0;
}

bool lw_shim_listen_match(const LwShimListen *listen, const struct sockaddr *sa, socklen_t len)
{
    uint8_t addr[16];
    uint16_t port;
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return false;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(addr, v4mapped_prefix, sizeof v4mapped_prefix);
        memcpy(addr + 12, &sin->sin_addr, 4);
        port = sin->sin_port;
    } else if (sa->sa_family == AF_INET6 &&
               len >= (socklen_t)offsetof(struct sockaddr_in6, sin6_scope_id)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(addr, &sin6->sin6_addr, 16);
        port = sin6->sin6_port;
    } else {
        return false;
    }
    static const uint8_t unspecified[16] = {0};
    static const uint8_t loopback6[16] = {[15] = 1};
    bool v4 = is_v4mapped(addr);
    /* Linux connects the unspecified address to loopback. */
    if (v4 && memcmp(addr + 12, unspecified, 4) == 0) {
        addr[12] = 127;
        addr[15] = 1;
    } else if (memcmp(addr, unspecified, 16) == 0) {
        addr[15] = 1;
    }
    bool loopback = v4 ? addr[12] == 127 : memcmp(addr, loopback6, 16) == 0;
    for (unsigned i = 0; i < listen->count; i++) {
        const LwShimListenAddr *l = &listen->addrs[i];
        if (l->port != port)
            continue;
        if (l->any ? loopback && is_v4mapped(l->addr) == v4 : memcmp(l->addr, addr, 16) == 0)
            return true;
    }
    return false;
}
