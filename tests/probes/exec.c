/* exec PATH: try to execve(PATH). Prints `trying execve PATH` first; if
 * execve returns, prints `execve errno=NAME`. */
#include "common.h"

int main(int argc, char **argv)
{
    need_args(argc, 1, "exec PATH");
    char *args[] = { argv[1], NULL };
    char *env[] = { NULL };
    say("trying execve %s\n", argv[1]);
    execve(argv[1], args, env);
    say_errno("execve");
    return 0;
}
