/* unix_listen ADDR: listen on a stream Unix socket at ADDR (`@name` =
 * abstract), print `listening`, then report every accepted connection as
 * `accepted` until stdin reaches EOF, then print `done`.
 * Failures print `<step> errno=NAME`. */
#include "unix_addr.h"
#include <poll.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "unix_listen ADDR");
    struct sockaddr_un a;
    socklen_t len = unix_addr(argv[1], &a);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        say_errno("socket");
        return 0;
    }
    if (bind(s, (struct sockaddr *)&a, len) < 0) {
        say_errno("bind");
        return 0;
    }
    if (listen(s, 16) < 0) {
        say_errno("listen");
        return 0;
    }
    say("listening\n");
    for (;;) {
        struct pollfd p[2] = { { s, POLLIN, 0 }, { 0, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            say_errno("poll");
            return 0;
        }
        if (p[0].revents & POLLIN) {
            int c = accept(s, NULL, NULL);
            if (c < 0) {
                say_errno("accept");
            } else {
                say("accepted\n");
                close(c);
            }
        }
        if (p[1].revents) {
            char buf[64];
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0) {
                say("done\n");
                return 0;
            }
        }
    }
}
