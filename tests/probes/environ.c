/* environ: print `count=N`, then every environment entry on its own line. */
#include "common.h"

extern char **environ;

int main(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    say("count=%zu\n", n);
    for (size_t i = 0; i < n; i++)
        say("%s\n", environ[i]);
    return 0;
}
