/* sys ATTEMPT [ARG]: make exactly one hostile (or control) system call.
 *
 * Prints `trying ATTEMPT` before the call, then `ATTEMPT ret=N` or
 * `ATTEMPT errno=NAME` if the call returns. A cell killed by seccomp leaves
 * only the `trying` line. All arguments are chosen so the call is harmless
 * even if it were allowed (nonexistent paths, bad magic numbers, queries),
 * because these probes run as root on the test host. Calls go through
 * syscall(2) so glibc cannot short-circuit them.
 */
#include "common.h"
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>

#define NOWHERE "/nonexistent-warren-escape"

static const char *arg;

static long pid_arg(void)
{
    if (!arg) {
        dprintf(2, "this attempt needs a pid argument\n");
        exit(2);
    }
    return strtol(arg, NULL, 10);
}

/* For clone-like calls: a child that got created must go away at once. */
static long reap(long r)
{
    if (r == 0)
        _exit(0);
    if (r > 0) {
        int st;
        waitpid((pid_t)r, &st, 0);
        return 0;
    }
    return r;
}

/* For fd-returning calls: close the fd so the output does not depend on fd numbers. */
static long closed(long r)
{
    if (r >= 0) {
        close((int)r);
        return 0;
    }
    return r;
}

static long clone_with(unsigned long flags)
{
    return reap(syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0));
}

static long a_mount(void) { return syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0, NULL); }
static long a_umount2(void) { return syscall(SYS_umount2, NOWHERE, MNT_DETACH); }
static long a_unshare(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long a_setns(void) { return syscall(SYS_setns, 0, CLONE_NEWNET); }
static long a_chroot(void) { return syscall(SYS_chroot, "/"); }
static long a_pivot_root(void) { return syscall(SYS_pivot_root, NOWHERE, NOWHERE); }
static long a_fsopen(void) { return closed(syscall(SYS_fsopen, "tmpfs", 0)); }
static long a_open_tree(void) { return closed(syscall(SYS_open_tree, AT_FDCWD, NOWHERE, 0)); }
static long a_move_mount(void)
{
    return syscall(SYS_move_mount, AT_FDCWD, NOWHERE, AT_FDCWD, NOWHERE, 0);
}

static long a_mknod(void)
{
    return syscall(SYS_mknod, NOWHERE "/null", S_IFCHR | 0666, makedev(1, 3));
}

static long a_bpf(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    return closed(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

static long a_perf_event_open(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    return closed(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

static long a_userfaultfd(void) { return closed(syscall(SYS_userfaultfd, O_CLOEXEC)); }

static long a_io_uring_setup(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    return closed(syscall(SYS_io_uring_setup, 1, &p));
}

static long a_keyctl(void)
{
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
}
static long a_add_key(void)
{
    return syscall(SYS_add_key, "user", "warren-escape", "x", 1, KEY_SPEC_PROCESS_KEYRING);
}
static long a_request_key(void)
{
    return syscall(SYS_request_key, "user", "warren-escape", NULL, 0);
}

static long a_open_by_handle_at(void)
{
    struct { unsigned int bytes; int type; unsigned char h[64]; } fh;
    memset(&fh, 0, sizeof fh);
    fh.bytes = 8;
    fh.type = 1;
    return closed(syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY));
}
static long a_name_to_handle_at(void)
{
    struct { unsigned int bytes; int type; unsigned char h[128]; } fh;
    memset(&fh, 0, sizeof fh);
    fh.bytes = 128;
    int mount_id;
    return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh, &mount_id, 0);
}

static long a_seccomp(void)
{
    uint32_t action = SECCOMP_RET_KILL_PROCESS;
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
}

static long vm_rw(long nr)
{
    char src[8] = "abcdefg", dst[8];
    struct iovec local = { dst, sizeof dst };
    struct iovec remote = { src, sizeof src };
    if (nr == SYS_process_vm_writev) {
        local.iov_base = src;
        remote.iov_base = dst;
    }
    return syscall(nr, getpid(), &local, 1, &remote, 1, 0);
}
static long a_process_vm_readv(void) { return vm_rw(SYS_process_vm_readv); }
static long a_process_vm_writev(void) { return vm_rw(SYS_process_vm_writev); }

/* Invalid flags: rejected before anything is (un)loaded even for real root. */
static long a_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL); }
static long a_init_module(void) { return syscall(SYS_init_module, NULL, 0, ""); }
static long a_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
/* Bad magic: rejected before any action. */
static long a_reboot(void) { return syscall(SYS_reboot, 0, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL); }
static long a_swapon(void) { return syscall(SYS_swapon, NOWHERE, 0); }
static long a_acct(void) { return syscall(SYS_acct, NOWHERE); }
static long a_quotactl(void) { return syscall(SYS_quotactl, 0, NOWHERE, 0, NULL); }
static long a_syslog(void) { return syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0); }
static long a_personality(void) { return syscall(SYS_personality, 0xffffffffUL); }

static long a_ptrace_attach(void) { return syscall(SYS_ptrace, PTRACE_ATTACH, pid_arg(), 0, 0); }
static long a_kill(void) { return syscall(SYS_kill, pid_arg(), SIGKILL); }

static long a_prctl_set_mm(void)
{
    return syscall(SYS_prctl, PR_SET_MM, PR_SET_MM_EXE_FILE, -1, 0, 0);
}
static long a_prctl_set_name(void) { return syscall(SYS_prctl, PR_SET_NAME, "warren-probe", 0, 0, 0); }
static long a_prctl_get_no_new_privs(void) { return syscall(SYS_prctl, PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }

static long a_clone3(void)
{
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.exit_signal = SIGCHLD;
    return reap(syscall(SYS_clone3, &ca, sizeof ca));
}
static long a_clone_newuser(void) { return clone_with(CLONE_NEWUSER); }
static long a_clone_newns(void) { return clone_with(CLONE_NEWNS); }
static long a_clone_newnet(void) { return clone_with(CLONE_NEWNET); }
static long a_clone_newpid(void) { return clone_with(CLONE_NEWPID); }
static long a_fork(void) { return clone_with(0); }

static long a_socket_unix(void) { return closed(syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0)); }
static long a_socket_inet(void) { return closed(syscall(SYS_socket, AF_INET, SOCK_STREAM, 0)); }
static long a_socket_inet6(void) { return closed(syscall(SYS_socket, AF_INET6, SOCK_DGRAM, 0)); }
static long a_socket_netlink(void) { return closed(syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0)); }
static long a_socket_packet(void) { return closed(syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0)); }
static long a_socketpair_unix(void)
{
    int sv[2];
    long r = syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sv);
    if (r == 0) {
        close(sv[0]);
        close(sv[1]);
    }
    return r;
}
static long a_socketpair_inet(void)
{
    int sv[2];
    long r = syscall(SYS_socketpair, AF_INET, SOCK_STREAM, 0, sv);
    if (r == 0) {
        close(sv[0]);
        close(sv[1]);
    }
    return r;
}

static long a_tiocsti(void)
{
    char c = 'x';
    return syscall(SYS_ioctl, 0, TIOCSTI, &c);
}
static long a_ioctl_fionread(void)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    int n = -1;
    long r = syscall(SYS_ioctl, p[0], FIONREAD, &n);
    close(p[0]);
    close(p[1]);
    return r < 0 ? r : n;
}

static long a_execveat_memfd(void)
{
    int fd = (int)syscall(SYS_memfd_create, "payload", 0);
    if (fd < 0)
        return -1;
    static const char script[] = "#!/bin/sh\necho escaped\n";
    if (write(fd, script, sizeof script - 1) < 0)
        return -1;
    char *args[] = { "payload", NULL };
    char *env[] = { NULL };
    return syscall(SYS_execveat, fd, "", args, env, AT_EMPTY_PATH);
}

/* The jail allows execveat only on its program fd with AT_EMPTY_PATH. With an
 * absolute path the kernel ignores the dirfd, so the guest does not need to
 * hold that fd: this runs the dynamic loader (which prints its version). */
static long a_execveat_abs_program_fd(void)
{
    if (!arg) {
        dprintf(2, "this attempt needs the program fd number\n");
        exit(2);
    }
    char *args[] = { "ld.so", "--version", NULL };
    char *env[] = { NULL };
    return syscall(SYS_execveat, atoi(arg), "/lib64/ld-linux-x86-64.so.2", args, env,
                   AT_EMPTY_PATH);
}

struct attempt {
    const char *name;
    long (*fn)(void);
};

#define A(n) { #n, a_##n }
static const struct attempt attempts[] = {
    A(mount), A(umount2), A(unshare), A(setns), A(chroot), A(pivot_root),
    A(fsopen), A(open_tree), A(move_mount), A(mknod),
    A(bpf), A(perf_event_open), A(userfaultfd), A(io_uring_setup),
    A(keyctl), A(add_key), A(request_key),
    A(open_by_handle_at), A(name_to_handle_at), A(seccomp),
    A(process_vm_readv), A(process_vm_writev),
    A(kexec_load), A(init_module), A(finit_module), A(reboot), A(swapon),
    A(acct), A(quotactl), A(syslog), A(personality),
    A(ptrace_attach), A(kill),
    A(prctl_set_mm), A(prctl_set_name), A(prctl_get_no_new_privs),
    A(clone3), A(clone_newuser), A(clone_newns), A(clone_newnet), A(clone_newpid), A(fork),
    A(socket_unix), A(socket_inet), A(socket_inet6), A(socket_netlink), A(socket_packet),
    A(socketpair_unix), A(socketpair_inet),
    A(tiocsti), A(ioctl_fionread),
    A(execveat_memfd), A(execveat_abs_program_fd),
};
#undef A

int main(int argc, char **argv)
{
    need_args(argc, 1, "sys ATTEMPT [ARG]");
    arg = argc > 2 ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        if (strcmp(attempts[i].name, argv[1]) != 0)
            continue;
        say("trying %s\n", attempts[i].name);
        errno = 0;
        long r = attempts[i].fn();
        if (r < 0)
            say("%s errno=%s\n", attempts[i].name, errno_name(errno));
        else
            say("%s ret=%ld\n", attempts[i].name, r);
        return 0;
    }
    dprintf(2, "sys: unknown attempt %s\n", argv[1]);
    return 2;
}
