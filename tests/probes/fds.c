/* fds: report which file descriptors are open.
 * Prints `stdio=<list>` for fds 0..2 that are open and `extra=<list>` for
 * open fds from 3 up to the kernel's maximum fd number (fs.nr_open default,
 * 1048576), whatever RLIMIT_NOFILE says (`none` when the list is empty). */
#include "common.h"
#include <fcntl.h>

static void report(const char *label, int from, int to)
{
    char buf[8192];
    size_t len = 0;
    buf[0] = 0;
    for (int fd = from; fd < to; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            if (errno != EBADF)
                say("fd %d: fcntl errno=%s\n", fd, errno_name(errno));
            continue;
        }
        int w = snprintf(buf + len, sizeof buf - len, "%s%d", len ? "," : "", fd);
        if (w < 0 || (size_t)w >= sizeof buf - len)
            break;
        len += (size_t)w;
    }
    say("%s=%s\n", label, len ? buf : "none");
}

int main(void)
{
    report("stdio", 0, 3);
    report("extra", 3, 1 << 20);
    return 0;
}
