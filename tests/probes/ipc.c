/* ipc KEY: try to attach to host SysV IPC objects with the given key.
 * Prints `shmget ok|errno=NAME`, `msgget ok|errno=NAME`, `semget ok|errno=NAME`. */
#include "common.h"
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "ipc KEY");
    key_t key = (key_t)strtol(argv[1], NULL, 10);
    if (shmget(key, 0, 0) < 0)
        say_errno("shmget");
    else
        say("shmget ok\n");
    if (msgget(key, 0) < 0)
        say_errno("msgget");
    else
        say("msgget ok\n");
    if (semget(key, 0, 0) < 0)
        say_errno("semget");
    else
        say("semget ok\n");
    return 0;
}
