/* spin [N]: burn CPU forever, in this process and in N forked children.
 * Prints `spinning` once every process has started (or `fork errno=NAME`). */
#include "common.h"

static void burn(void)
{
    volatile unsigned long n = 0;
    for (;;)
        n++;
}

int main(int argc, char **argv)
{
    int kids = argc > 1 ? atoi(argv[1]) : 0;
    for (int i = 0; i < kids; i++) {
        pid_t p = fork();
        if (p == 0)
            burn();
        if (p < 0) {
            say_errno("fork");
            break;
        }
    }
    say("spinning\n");
    burn();
}
