/* hook-resolve.c - name resolution for provider hosts, and the way back.
 *
 * getaddrinfo answers a provider host by asking the real getaddrinfo for the
 * numeric literal of its synthetic address, so libc allocates the result
 * and its own freeaddrinfo releases it (no freeaddrinfo hook). Names that
 * are not providers cost one length-filtered scan of the table and go to
 * libc untouched; no DNS is needed for provider names.
 */
#include "shim.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- getaddrinfo ---- */

/* The real getaddrinfo's answer for the slot's literal in `family`. */
static int real_literal(unsigned slot, int family, const char *service, const struct addrinfo *h,
                        struct addrinfo **res)
{
    char literal[INET6_ADDRSTRLEN];
    if (!lw_shim_slot_literal(&lw_cfg.net, slot, family, literal, sizeof literal))
        return EAI_FAMILY;
    struct addrinfo fh = *h;
    fh.ai_family = family;
    return LW_REAL(getaddrinfo)(literal, service, &fh, res);
}

static int answer_getaddrinfo(unsigned slot, const char *service, const struct addrinfo *hints,
                              struct addrinfo **res)
{
    /* NULL hints mean AF_UNSPEC with glibc's default flags. */
    int flags = hints != NULL ? hints->ai_flags : AI_V4MAPPED | AI_ADDRCONFIG;
    int family = hints != NULL ? hints->ai_family : AF_UNSPEC;

    /* The caller asked libc not to resolve names: a host name fails. */
    if (flags & AI_NUMERICHOST)
        return EAI_NONAME;

    /* AI_ADDRCONFIG could filter a loopback answer out in a namespace
     * without other addresses; AI_CANONNAME would name the literal. */
    struct addrinfo h = {
        .ai_flags = (flags & (AI_NUMERICSERV | AI_PASSIVE)) | AI_NUMERICHOST,
        .ai_socktype = hints != NULL ? hints->ai_socktype : 0,
        .ai_protocol = hints != NULL ? hints->ai_protocol : 0,
    };
    /* An IPv6-only query gets the v4-mapped form, which a dual-stack
     * socket connects to the IPv4 listener. AF_UNSPEC gets both, IPv4
     * first, as for a provider host with A and AAAA records: Happy
     * Eyeballs clients connect over IPv4 at once, and clients that keep
     * only the IPv6 answers (curl -6) still find one. */
    int rc = real_literal(slot, family == AF_UNSPEC ? AF_INET : family, service, &h, res);
    if (rc != 0)
        return rc;
    struct addrinfo *v6 = NULL;
    if (family == AF_UNSPEC && real_literal(slot, AF_INET6, service, &h, &v6) == 0) {
        /* glibc's freeaddrinfo frees entry by entry, so one list can
         * hold the entries of two answers. */
        struct addrinfo *last = *res;
        while (last->ai_next != NULL)
            last = last->ai_next;
        last->ai_next = v6;
    }
    if (!(flags & AI_CANONNAME))
        return 0;

    /* glibc's freeaddrinfo frees ai_canonname separately, so the canonical
     * name can be swapped for the provider host. */
    char *canon = strdup(lw_shim_slot_host(&lw_cfg, slot));
    if (canon == NULL) {
        freeaddrinfo(*res);
        *res = NULL;
        return EAI_MEMORY;
    }
    free((*res)->ai_canonname);
    (*res)->ai_canonname = canon;
    return 0;
}

LW_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res)
{
    if (lw_active && node != NULL) {
        unsigned slot = lw_shim_host_slot(&lw_cfg, node);
        if (slot != 0)
            return answer_getaddrinfo(slot, service, hints, res);
    }
    return LW_REAL(getaddrinfo)(node, service, hints, res);
}

/* ---- gethostbyname family ---- */

/* Per-thread storage for the non-reentrant variants: at least as
 * thread-safe as glibc's static buffers. Holds the longest host name. */
static __thread struct {
    struct hostent he;
    char buf[LW_SHIM_MAX_HOST_LEN + 1 + 3 * sizeof(char *) + 16 + sizeof(char *)];
} tls_hostent;

/* Fills ret/buf for a provider host; af is AF_INET or AF_INET6. */
static int fill_provider(unsigned slot, int af, struct hostent *ret, char *buf, size_t buflen)
{
    uint8_t addr[16];
    lw_shim_slot_addr(&lw_cfg.net, slot, af, addr);
    return lw_shim_hostent_fill(ret, buf, buflen, lw_shim_slot_host(&lw_cfg, slot), af, addr);
}

/* Slot of a provider name asked for in family af, or 0 to pass through. */
static unsigned provider_slot(const char *name, int af)
{
    if (!lw_active || (af != AF_INET && af != AF_INET6))
        return 0;
    return lw_shim_host_slot(&lw_cfg, name);
}

static int reentrant_result(int rc, struct hostent *ret, struct hostent **result, int *h_errnop)
{
    if (rc != 0) {
        *result = NULL;
        if (h_errnop != NULL)
            *h_errnop = NETDB_INTERNAL;
        errno = rc;
        return rc;
    }
    *result = ret;
    if (h_errnop != NULL)
        *h_errnop = NETDB_SUCCESS;
    return 0;
}

LW_EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                               size_t buflen, struct hostent **result, int *h_errnop)
{
    unsigned slot = provider_slot(name, af);
    if (slot == 0)
        return LW_REAL(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
    return reentrant_result(fill_provider(slot, af, ret, buf, buflen), ret, result, h_errnop);
}

LW_EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                              struct hostent **result, int *h_errnop)
{
    unsigned slot = provider_slot(name, AF_INET);
    if (slot == 0)
        return LW_REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
    return reentrant_result(fill_provider(slot, AF_INET, ret, buf, buflen), ret, result, h_errnop);
}

LW_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    unsigned slot = provider_slot(name, af);
    if (slot == 0)
        return LW_REAL(gethostbyname2)(name, af);
    if (fill_provider(slot, af, &tls_hostent.he, tls_hostent.buf, sizeof tls_hostent.buf) != 0)
        return NULL;
    return &tls_hostent.he;
}

LW_EXPORT struct hostent *gethostbyname(const char *name)
{
    unsigned slot = provider_slot(name, AF_INET);
    if (slot == 0)
        return LW_REAL(gethostbyname)(name);
    if (fill_provider(slot, AF_INET, &tls_hostent.he, tls_hostent.buf, sizeof tls_hostent.buf))
        return NULL;
    return &tls_hostent.he;
}

/* ---- the way back: synthetic address -> provider host ---- */

/* Slot of a raw address as gethostbyaddr takes it, or 0. */
static unsigned raw_addr_slot(const void *addr, socklen_t len, int type)
{
    if (!lw_active || addr == NULL)
        return 0;
    uint32_t v4;
    if (type == AF_INET && len == 4) {
        memcpy(&v4, addr, 4);
    } else if (type == AF_INET6 && len == 16 &&
               IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
        memcpy(&v4, (const uint8_t *)addr + 12, 4);
    } else {
        return 0;
    }
    return lw_shim_v4_slot(&lw_cfg.net, ntohl(v4));
}

LW_EXPORT int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret,
                              char *buf, size_t buflen, struct hostent **result, int *h_errnop)
{
    unsigned slot = raw_addr_slot(addr, len, type);
    if (slot == 0)
        return LW_REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
    int rc = lw_shim_hostent_fill(ret, buf, buflen, lw_shim_slot_host(&lw_cfg, slot), type, addr);
    return reentrant_result(rc, ret, result, h_errnop);
}

LW_EXPORT struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
    unsigned slot = raw_addr_slot(addr, len, type);
    if (slot == 0)
        return LW_REAL(gethostbyaddr)(addr, len, type);
    if (lw_shim_hostent_fill(&tls_hostent.he, tls_hostent.buf, sizeof tls_hostent.buf,
                             lw_shim_slot_host(&lw_cfg, slot), type, addr) != 0)
        return NULL;
    return &tls_hostent.he;
}

LW_EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                          char *serv, socklen_t servlen, int flags)
{
    unsigned slot = 0;
    if (lw_active && host != NULL && hostlen > 0 && !(flags & NI_NUMERICHOST))
        slot = lw_shim_sockaddr_slot(&lw_cfg.net, sa, salen);
    if (slot == 0)
        return LW_REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);

    const char *name = lw_shim_slot_host(&lw_cfg, slot);
    size_t n = strlen(name);
    if (n >= hostlen)
        return EAI_OVERFLOW;
    if (serv != NULL && servlen > 0) {
        int rc = LW_REAL(getnameinfo)(sa, salen, NULL, 0, serv, servlen, flags);
        if (rc != 0)
            return rc;
    }
    memcpy(host, name, n + 1);
    return 0;
}
