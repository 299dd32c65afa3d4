/* fds.c - reserving the standard descriptors. */
#include "fds.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

gboolean lw_fds_ensure_std(void)
{
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* Those below fd are open by now, so fd is the lowest free
         * descriptor: open() returns it. */
        if (open("/dev/null", O_RDWR | O_CLOEXEC) < 0)
            return FALSE;
    }
    return TRUE;
}
