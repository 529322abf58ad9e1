/* mem_bomb: allocate and touch anonymous memory 1 MiB at a time, up to 4 GiB.
 * Prints `mmap errno=NAME after N MiB` if an allocation fails, or
 * `survived 4096 MiB` if nothing stopped it. */
#include "common.h"
#include <sys/mman.h>

int main(void)
{
    const size_t chunk = 1 << 20;
    for (size_t mib = 0; mib < 4096; mib++) {
        char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            say("mmap errno=%s after %zu MiB\n", errno_name(errno), mib);
            return 0;
        }
        memset(p, 0x5a, chunk);
    }
    say("survived 4096 MiB\n");
    return 0;
}
