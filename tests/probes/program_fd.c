/* program_fd FD: try to get hold of descriptor number FD (the jail executes
 * the program from a fixed fd number it keeps out of the guest's reach).
 * Prints, in order:
 *   `raise_nofile ok` | `raise_nofile errno=NAME`  (lift RLIMIT_NOFILE to FD+1)
 *   `dup2 ok` | `dup2 errno=NAME`                  (dup2(memfd, FD))
 *   `dupfd ok` | `dupfd errno=NAME`                (fcntl(memfd, F_DUPFD, FD)) */
#include "common.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "program_fd FD");
    int target = atoi(argv[1]);
    int fd = memfd_create("payload", 0);
    if (fd < 0) {
        say_errno("memfd_create");
        return 0;
    }
    struct rlimit rl = { (rlim_t)target + 1, (rlim_t)target + 1 };
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        say_errno("raise_nofile");
    else
        say("raise_nofile ok\n");
    if (dup2(fd, target) < 0)
        say_errno("dup2");
    else
        say("dup2 ok\n");
    if (fcntl(fd, F_DUPFD, target) < 0)
        say_errno("dupfd");
    else
        say("dupfd ok\n");
    return 0;
}
