/* fork_bomb: fork children (which just wait) until fork fails or 256 succeed.
 * Prints `forks=N errno=NAME` when fork fails after N successful forks, or
 * `forks=256` if it never failed. Kills and reaps its children before
 * exiting 0. */
#include "common.h"
#include <signal.h>
#include <sys/wait.h>

int main(void)
{
    static pid_t kids[256];
    size_t n = 0;
    int err = 0;
    for (; n < sizeof kids / sizeof kids[0]; n++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            err = errno;
            break;
        }
        kids[n] = p;
    }
    if (err)
        say("forks=%zu errno=%s\n", n, errno_name(err));
    else
        say("forks=%zu\n", n);
    for (size_t i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (size_t i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
    return 0;
}
