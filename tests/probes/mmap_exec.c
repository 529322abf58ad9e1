/* mmap_exec: write a file into /tmp and try to map it executable.
 * Prints, in order:
 *   `mmap_read ok` | `mmap_read errno=NAME`      (PROT_READ mapping: control)
 *   `mmap_exec ok` | `mmap_exec errno=NAME`      (PROT_READ|PROT_EXEC mapping)
 *   `mprotect_exec ok` | `mprotect_exec errno=NAME` (upgrade the read mapping) */
#include "common.h"
#include <fcntl.h>
#include <sys/mman.h>

int main(void)
{
    const char *path = "/tmp/blob";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0) {
        say_errno("open");
        return 0;
    }
    unsigned char page[4096];
    memset(page, 0xc3, sizeof page); /* x86 `ret` */
    if (write(fd, page, sizeof page) != (ssize_t)sizeof page) {
        say_errno("write");
        return 0;
    }
    void *r = mmap(NULL, sizeof page, PROT_READ, MAP_PRIVATE, fd, 0);
    if (r == MAP_FAILED) {
        say_errno("mmap_read");
    } else {
        say("mmap_read ok\n");
    }
    void *x = mmap(NULL, sizeof page, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    if (x == MAP_FAILED) {
        say_errno("mmap_exec");
    } else {
        say("mmap_exec ok\n");
    }
    if (r != MAP_FAILED) {
        if (mprotect(r, sizeof page, PROT_READ | PROT_EXEC) < 0) {
            say_errno("mprotect_exec");
        } else {
            say("mprotect_exec ok\n");
        }
    }
    return 0;
}
