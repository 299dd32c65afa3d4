/* preload-early.c - reports what early-ctor.c's constructor saw, then
 * connects to a provider once the shim is initialised. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern int lw_early_connect_errno;
extern int lw_early_gai_rc;
extern int lw_early_ran;

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "verify_asan_link_order=0:detect_leaks=0";
}

int main(void)
{
    printf("early_ran=%d\nearly_gai=%d\nearly_connect=%s\n", lw_early_ran, lw_early_gai_rc,
           lw_early_connect_errno == 0              ? "0"
           : lw_early_connect_errno == ECONNREFUSED ? "ECONNREFUSED"
                                                    : strerror(lw_early_connect_errno));
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo("api.openai.com", "443", &hints, &res);
    if (rc != 0) {
        printf("late_gai=%d\n", rc);
        return 1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    printf("late_connect=%s\n",
           connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? "0" : strerror(errno));
    close(fd);
    freeaddrinfo(res);
    return 0;
}
