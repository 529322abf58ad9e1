/* unix_connect ADDR: connect a stream Unix socket to ADDR (`@name` =
 * abstract). Prints `socket errno=NAME`, `connect ok` or `connect errno=NAME`.
 * On success also sends `hello from the cell\n`. */
#include "unix_addr.h"

int main(int argc, char **argv)
{
    need_args(argc, 1, "unix_connect ADDR");
    struct sockaddr_un a;
    socklen_t len = unix_addr(argv[1], &a);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        say_errno("socket");
        return 0;
    }
    if (connect(s, (struct sockaddr *)&a, len) < 0) {
        say_errno("connect");
        return 0;
    }
    say("connect ok\n");
    static const char msg[] = "hello from the cell\n";
    if (write(s, msg, sizeof msg - 1) < 0)
        say_errno("write");
    return 0;
}
