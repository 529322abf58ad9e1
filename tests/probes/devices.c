/* devices: exercise the three device nodes a cell has.
 *   null_read=N null_write=N   (bytes read from / written to /dev/null)
 *   zero_read=N zero_allzero=0|1
 *   urandom_read=N
 * A failing step prints `<step> errno=NAME` instead. */
#include "common.h"
#include <fcntl.h>

static int open_or_say(const char *path, int flags, const char *step)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        say_errno(step);
    return fd;
}

int main(void)
{
    char buf[64];
    int fd = open_or_say("/dev/null", O_RDWR, "null_open");
    if (fd >= 0) {
        ssize_t r = read(fd, buf, sizeof buf);
        ssize_t w = write(fd, "hello", 5);
        if (r < 0 || w < 0)
            say_errno("null_io");
        else
            say("null_read=%zd null_write=%zd\n", r, w);
        close(fd);
    }
    fd = open_or_say("/dev/zero", O_RDONLY, "zero_open");
    if (fd >= 0) {
        memset(buf, 1, sizeof buf);
        ssize_t r = read(fd, buf, 16);
        if (r < 0) {
            say_errno("zero_read");
        } else {
            int allzero = 1;
            for (ssize_t i = 0; i < r; i++)
                allzero &= buf[i] == 0;
            say("zero_read=%zd zero_allzero=%d\n", r, allzero);
        }
        close(fd);
    }
    fd = open_or_say("/dev/urandom", O_RDONLY, "urandom_open");
    if (fd >= 0) {
        ssize_t r = read(fd, buf, 16);
        if (r < 0)
            say_errno("urandom_read");
        else
            say("urandom_read=%zd\n", r);
        close(fd);
    }
    return 0;
}
