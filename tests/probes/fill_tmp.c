/* fill_tmp: write /tmp/fill in 64 KiB chunks until a write fails.
 * Prints `written=BYTES errno=NAME` (or `written=BYTES` after 64 MiB). */
#include "common.h"
#include <fcntl.h>

int main(void)
{
    int fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        say_errno("open");
        return 0;
    }
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    unsigned long long total = 0;
    while (total < 64ULL << 20) {
        ssize_t w = write(fd, chunk, sizeof chunk);
        if (w < 0) {
            say("written=%llu errno=%s\n", total, errno_name(errno));
            return 0;
        }
        total += (unsigned long long)w;
    }
    say("written=%llu\n", total);
    return 0;
}
