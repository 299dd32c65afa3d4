/* early-ctor.c - a library whose constructor uses the network before the
 * shim's constructor has run (ld.so initialises a program's libraries
 * before LD_PRELOAD objects). The shim must then be transparent: no crash,
 * no recursion, no redirect. preload-early.c prints what happened. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int lw_early_connect_errno = -1;
int lw_early_gai_rc = -1;
int lw_early_ran;

__attribute__((constructor)) static void early(void)
{
    const char *port = getenv("LW_EARLY_PORT");
    if (port == NULL)
        return;
    lw_early_ran = 1;

    struct addrinfo hints = {
        .ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    lw_early_gai_rc = getaddrinfo("127.241.0.1", port, &hints, &res);
    if (lw_early_gai_rc != 0)
        return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    lw_early_connect_errno = connect(fd, res->ai_addr, res->ai_addrlen) == 0 ? 0 : errno;
    close(fd);
    freeaddrinfo(res);
}
