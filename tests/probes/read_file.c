/* read_file PATH: open PATH read-only and print its first bytes.
 * Prints `ok content=<bytes>` or `open errno=NAME` / `read errno=NAME`. */
#include "common.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "read_file PATH");
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say_errno("open");
        return 0;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
        say_errno("read");
        return 0;
    }
    say("ok content=%.*s\n", (int)n, buf);
    return 0;
}
