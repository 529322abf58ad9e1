/* tcp_connect PORT: try to reach a TCP listener on 127.0.0.1:PORT.
 * Prints `socket errno=NAME` if no AF_INET socket can be made, otherwise
 * `connect ok` or `connect errno=NAME`. */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "tcp_connect PORT");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        say_errno("socket");
        return 0;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0)
        say_errno("connect");
    else
        say("connect ok\n");
    return 0;
}
