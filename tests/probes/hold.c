/* hold KEY: create cell-local state another cell must not see, then hold it
 * until stdin reaches EOF:
 *   SysV shm, msg queue and semaphore set with key KEY, and /tmp/warren-marker
 *   (when /tmp exists).
 * Prints `shm ok|errno=NAME`, `msg ...`, `sem ...`, `tmp ...`, then `holding`;
 * after EOF on stdin removes everything and prints `done`. */
#include "common.h"
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    need_args(argc, 1, "hold KEY");
    key_t key = (key_t)strtol(argv[1], NULL, 10);
    int flags = IPC_CREAT | IPC_EXCL | 0666;
    int shm = shmget(key, 4096, flags);
    if (shm < 0) say_errno("shm"); else say("shm ok\n");
    int msg = msgget(key, flags);
    if (msg < 0) say_errno("msg"); else say("msg ok\n");
    int sem = semget(key, 1, flags);
    if (sem < 0) say_errno("sem"); else say("sem ok\n");
    int fd = open("/tmp/warren-marker", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        say_errno("tmp");
    } else {
        if (write(fd, "marker\n", 7) != 7)
            say_errno("tmp_write");
        else
            say("tmp ok\n");
        close(fd);
    }
    say("holding\n");
    char buf[64];
    while (read(0, buf, sizeof buf) > 0)
        ;
    if (shm >= 0) shmctl(shm, IPC_RMID, NULL);
    if (msg >= 0) msgctl(msg, IPC_RMID, NULL);
    if (sem >= 0) semctl(sem, 0, IPC_RMID);
    say("done\n");
    return 0;
}
