/* daemonize: leave a detached grandchild behind (double fork + setsid) that
 * keeps stdout open and waits forever, then exit 0 at once.
 * Prints `daemon started` (from the grandchild) and `parent exiting`.
 * The jail must not let the grandchild outlive the cell. */
#include "common.h"
#include <sys/wait.h>

int main(void)
{
    int ready[2];
    if (pipe(ready) < 0) {
        say_errno("pipe");
        return 0;
    }
    pid_t p = fork();
    if (p < 0) {
        say_errno("fork");
        return 0;
    }
    if (p == 0) {
        setsid();
        pid_t q = fork();
        if (q != 0)
            _exit(0);
        say("daemon started\n");
        close(ready[1]);
        for (;;)
            pause();
    }
    close(ready[1]);
    waitpid(p, NULL, 0);
    char c;
    /* EOF once the grandchild has printed and closed its end. */
    if (read(ready[0], &c, 1) < 0)
        say_errno("read");
    say("parent exiting\n");
    return 0;
}
