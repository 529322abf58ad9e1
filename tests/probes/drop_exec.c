/* drop_exec: drop a script into /tmp, make it executable, then try to
 * execve it.
 * Prints `dropped` after the file is written and chmod-ed, then
 * `trying execve /tmp/dropped`; if execve returns, `execve errno=NAME`. */
#include "common.h"
#include <fcntl.h>
#include <sys/stat.h>

int main(void)
{
    const char *path = "/tmp/dropped";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0) {
        say_errno("open");
        return 0;
    }
    static const char script[] = "#!/bin/sh\necho escaped\n";
    if (write(fd, script, sizeof script - 1) < 0) {
        say_errno("write");
        return 0;
    }
    close(fd);
    if (chmod(path, 0755) < 0) {
        say_errno("chmod");
        return 0;
    }
    say("dropped\n");
    char *args[] = { (char *)path, NULL };
    char *env[] = { NULL };
    say("trying execve %s\n", path);
    execve(path, args, env);
    say_errno("execve");
    return 0;
}
