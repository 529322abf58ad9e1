/*
 * Shared helpers for the escape-test probes.
 *
 * Every probe prints its observations on stdout with unbuffered writes
 * (dprintf on fd 1), so that a probe killed mid-way by the jail still leaves
 * everything it printed before the fatal call. Errors are printed as
 * `errno=NAME` with the symbolic name, so tests can assert exact outcomes.
 */
#ifndef WARREN_PROBE_COMMON_H
#define WARREN_PROBE_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline const char *errno_name(int e)
{
    switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG)
    E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES)
    E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
    E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK)
    E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK)
    E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(EIDRM) E(ENOSTR)
    E(ENODATA) E(ETIME) E(ENOSR) E(EREMOTE) E(ENOLINK) E(EPROTO)
    E(EBADMSG) E(EOVERFLOW) E(EILSEQ) E(EUSERS) E(ENOTSOCK)
    E(EDESTADDRREQ) E(EMSGSIZE) E(EPROTOTYPE) E(ENOPROTOOPT)
    E(EPROTONOSUPPORT) E(ESOCKTNOSUPPORT) E(EOPNOTSUPP) E(EPFNOSUPPORT)
    E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN)
    E(ENETUNREACH) E(ENETRESET) E(ECONNABORTED) E(ECONNRESET)
    E(ENOBUFS) E(EISCONN) E(ENOTCONN) E(ESHUTDOWN) E(ETOOMANYREFS)
    E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTDOWN) E(EHOSTUNREACH)
    E(EALREADY) E(EINPROGRESS) E(ESTALE) E(EDQUOT) E(ECANCELED)
    E(ENOKEY) E(EKEYEXPIRED) E(EKEYREVOKED) E(EKEYREJECTED)
    E(EOWNERDEAD) E(ENOTRECOVERABLE) E(ERFKILL) E(EHWPOISON)
#undef E
    default: return "E_UNKNOWN";
    }
}

/* Unbuffered print to stdout: survives the probe being killed right after. */
__attribute__((format(printf, 1, 2)))
static inline void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdprintf(1, fmt, ap);
    va_end(ap);
}

/* Prints `<what> errno=<NAME>` for the current errno. */
static inline void say_errno(const char *what)
{
    say("%s errno=%s\n", what, errno_name(errno));
}

/* Exits with 2 and a usage line on stderr when the probe got bad arguments. */
static inline void need_args(int argc, int n, const char *usage)
{
    if (argc < n + 1) {
        dprintf(2, "usage: %s\n", usage);
        exit(2);
    }
}

#endif
