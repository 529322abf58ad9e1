/* write_file PATH: create/truncate PATH and write one line into it.
 * Prints `ok`, `open errno=NAME` or `write errno=NAME`. */
#include "common.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "write_file PATH");
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        say_errno("open");
        return 0;
    }
    static const char line[] = "pwned by warren escape test\n";
    if (write(fd, line, sizeof line - 1) < 0) {
        say_errno("write");
        return 0;
    }
    say("ok\n");
    return 0;
}
