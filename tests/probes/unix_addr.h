/* Parse a Unix socket address argument: `@name` is abstract, anything else a path. */
#ifndef WARREN_PROBE_UNIX_ADDR_H
#define WARREN_PROBE_UNIX_ADDR_H
#include "common.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static inline socklen_t unix_addr(const char *arg, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t len = strlen(arg);
    if (len >= sizeof a->sun_path) {
        dprintf(2, "socket address too long\n");
        exit(2);
    }
    memcpy(a->sun_path, arg, len);
    if (arg[0] == '@') {
        a->sun_path[0] = 0; /* abstract: no trailing NUL counted */
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}
#endif
