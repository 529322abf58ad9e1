/* list_dir DIR: print every entry of DIR except . and .., sorted, one per
 * line as `<type> <name>` where type is d (dir), f (file), l (symlink, then
 * ` -> <target>`), c (char dev), b (block dev), s (socket), p (fifo).
 * Prints `opendir errno=NAME` when DIR cannot be listed. */
#include "common.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    need_args(argc, 1, "list_dir DIR");
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        say_errno("opendir");
        return 0;
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        say_errno("fdopendir");
        return 0;
    }
    char *names[512];
    size_t count = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (count == sizeof names / sizeof names[0]) {
            say("too many entries\n");
            return 0;
        }
        names[count++] = strdup(e->d_name);
    }
    if (errno) {
        say_errno("readdir");
        return 0;
    }
    qsort(names, count, sizeof names[0], cmp);
    for (size_t i = 0; i < count; i++) {
        struct stat st;
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            say("? %s (lstat errno=%s)\n", names[i], errno_name(errno));
            continue;
        }
        char t = '?';
        if (S_ISDIR(st.st_mode)) t = 'd';
        else if (S_ISREG(st.st_mode)) t = 'f';
        else if (S_ISLNK(st.st_mode)) t = 'l';
        else if (S_ISCHR(st.st_mode)) t = 'c';
        else if (S_ISBLK(st.st_mode)) t = 'b';
        else if (S_ISSOCK(st.st_mode)) t = 's';
        else if (S_ISFIFO(st.st_mode)) t = 'p';
        if (t == 'l') {
            char target[4096];
            ssize_t n = readlinkat(dfd, names[i], target, sizeof target - 1);
            if (n < 0) {
                say("l %s -> (readlink errno=%s)\n", names[i], errno_name(errno));
                continue;
            }
            target[n] = 0;
            say("l %s -> %s\n", names[i], target);
        } else {
            say("%c %s\n", t, names[i]);
        }
    }
    return 0;
}
