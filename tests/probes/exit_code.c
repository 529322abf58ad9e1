/* exit_code N: exit with status N. */
#include "common.h"

int main(int argc, char **argv)
{
    need_args(argc, 1, "exit_code N");
    return atoi(argv[1]);
}
