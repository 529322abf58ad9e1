//! Hostile escape tests for `warren-jail run`.
//!
//! Each test runs one probe program from `tests/probes/` in a cell and asserts
//! the exact outcome the jail contract promises: the exit code, the errno the
//! probe printed, and, for a killed cell, the single `warren-jail: ` reason line.
//! Where the attack targets something on the host (a file, a socket, a process,
//! an IPC object, an environment variable, a leaked fd) the test also checks
//! the host side: the target exists and is reachable without the jail, and is
//! untouched afterwards.
//!
//! These tests need root, gcc and a built `warren-jail`
//! (`cargo build --workspace --bins`); anything missing fails them, nothing skips.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::Path;
use std::process::{Child, Command};

use warren::{jail_run, probe, random_u64, unique_name, Jail, Outcome};

// ---------------------------------------------------------------------------
// helpers

/// Runs probe `name` with `args` in a cell with default flags.
fn run(name: &str, args: &[&str]) -> Outcome {
    Jail::new().run(probe(name), args)
}

/// The probe ran to completion: exit 0, exactly `stdout`, and nothing on stderr
/// (in particular no `warren-jail: ` line).
#[track_caller]
fn assert_completed(out: &Outcome, stdout: &str) {
    assert_eq!(out.exit_code(), 0, "probe did not complete:\n{out}");
    assert_eq!(out.stdout, stdout, "unexpected probe output:\n{out}");
    assert_eq!(out.stderr, "", "unexpected stderr:\n{out}");
}

/// The cell was killed with exit `code` and exactly one `warren-jail: ` line
/// containing `reason`.
#[track_caller]
fn assert_killed(out: &Outcome, code: i32, reason: &str) {
    assert_eq!(out.exit_code(), code, "wrong exit code:\n{out}");
    let line = out.reason();
    assert!(
        line.contains(reason),
        "reason line {line:?} does not mention {reason:?}:\n{out}"
    );
}

/// The cell was killed by seccomp for `syscall` (exit 159 = 128 + SIGSYS), the
/// reason line names exactly that syscall, and the probe got as far as `stdout`.
#[track_caller]
fn assert_seccomp_kill(out: &Outcome, syscall: &str, stdout: &str) {
    assert_killed(out, 159, "seccomp violation: ");
    let line = out.reason();
    let named = line
        .split("seccomp violation: ")
        .nth(1)
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
        })
        .unwrap_or("");
    assert_eq!(
        named, syscall,
        "seccomp kill names the wrong syscall:\n{out}"
    );
    assert_eq!(out.stdout, stdout, "probe output before the kill:\n{out}");
}

/// `sys ATTEMPT` must be killed by seccomp naming `syscall`.
#[track_caller]
fn assert_sys_killed(attempt: &str, syscall: &str) {
    let out = run("sys", &[attempt]);
    assert_seccomp_kill(&out, syscall, &format!("trying {attempt}\n"));
}

/// `sys ATTEMPT` must return, printing `result` (e.g. `errno=ENOSYS`, `ret=0`).
#[track_caller]
fn assert_sys_returns(attempt: &str, result: &str) {
    let out = run("sys", &[attempt]);
    assert_completed(&out, &format!("trying {attempt}\n{attempt} {result}\n"));
}

/// A host process that is killed when the test ends, however it ends.
struct HostProcess(Child);

impl HostProcess {
    fn sleep() -> Self {
        let child = Command::new("/bin/sleep")
            .arg("300")
            .env_clear()
            .spawn()
            .expect("cannot start /bin/sleep on the host");
        Self(child)
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }

    #[track_caller]
    fn assert_alive(&mut self) {
        match self.0.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!("host process {} died: {status}", self.0.id()),
            Err(e) => panic!("cannot check host process {}: {e}", self.0.id()),
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the host's `/lib` or `/lib64` is, in `list_dir` notation.
fn host_root_entry(name: &str) -> String {
    let path = Path::new("/").join(name);
    match std::fs::read_link(&path) {
        Ok(target) => format!("l {name} -> {}", target.display()),
        Err(_) => format!("d {name}"),
    }
}

// ---------------------------------------------------------------------------
// host filesystem

#[test]
fn read_etc_shadow_is_enoent() {
    assert!(Path::new("/etc/shadow").exists(), "host has no /etc/shadow");
    assert_completed(&run("read_file", &["/etc/shadow"]), "open errno=ENOENT\n");
}

#[test]
fn read_etc_passwd_is_enoent() {
    assert!(Path::new("/etc/passwd").exists(), "host has no /etc/passwd");
    assert_completed(&run("read_file", &["/etc/passwd"]), "open errno=ENOENT\n");
}

#[test]
fn read_etc_passwd_via_dotdot_is_enoent() {
    assert_completed(
        &run("read_file", &["/usr/lib/../../etc/passwd"]),
        "open errno=ENOENT\n",
    );
}

#[test]
fn read_proc_is_enoent() {
    assert_completed(
        &run("read_file", &["/proc/self/environ"]),
        "open errno=ENOENT\n",
    );
}

#[test]
fn read_sys_is_enoent() {
    assert_completed(
        &run("read_file", &["/sys/kernel/notes"]),
        "open errno=ENOENT\n",
    );
}

#[test]
fn write_root_home_is_enoent() {
    // No /root in the cell: the parent lookup fails before any write check.
    assert_completed(&run("write_file", &["/root/x"]), "open errno=ENOENT\n");
    assert!(!Path::new("/root/x").exists(), "host /root/x was created");
}

#[test]
fn write_etc_is_enoent() {
    // No /etc in the cell either.
    assert_completed(&run("write_file", &["/etc/x"]), "open errno=ENOENT\n");
    assert!(!Path::new("/etc/x").exists(), "host /etc/x was created");
}

#[test]
fn write_cell_root_is_erofs() {
    // `/` exists in the cell and is a read-only tmpfs.
    assert_completed(&run("write_file", &["/x"]), "open errno=EROFS\n");
}

#[test]
fn write_dev_is_erofs() {
    assert_completed(&run("write_file", &["/dev/x"]), "open errno=EROFS\n");
}

#[test]
fn create_in_usr_lib_is_erofs() {
    let name = unique_name("warren-escape");
    let path = format!("/usr/lib/{name}");
    assert_completed(&run("write_file", &[&path]), "open errno=EROFS\n");
    assert!(!Path::new(&path).exists(), "host {path} was created");
}

#[test]
fn truncate_host_system_file_is_erofs() {
    let target = "/usr/lib/os-release";
    let before = std::fs::read(target).expect("host has no /usr/lib/os-release");
    assert_completed(&run("write_file", &[target]), "open errno=EROFS\n");
    assert_eq!(
        std::fs::read(target).expect("read host file"),
        before,
        "host file changed"
    );
}

#[test]
fn write_tmp_without_tmp_flag_is_enoent() {
    assert_completed(&run("write_file", &["/tmp/x"]), "open errno=ENOENT\n");
}

#[test]
fn cell_root_holds_only_dev_and_libs() {
    let out = run("list_dir", &["/"]);
    let expected = format!(
        "d dev\n{}\n{}\nd usr\n",
        host_root_entry("lib"),
        host_root_entry("lib64")
    );
    assert_completed(&out, &expected);
    for forbidden in ["proc", "etc", "home", "tmp", "bin", "root", "sys"] {
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.ends_with(&format!(" {forbidden}"))),
            "/{forbidden} visible in the cell:\n{out}"
        );
    }
}

#[test]
fn cell_root_with_tmp_adds_only_tmp() {
    let out = Jail::new()
        .flags(["--tmp", "1M"])
        .run(probe("list_dir"), &["/"]);
    let expected = format!(
        "d dev\n{}\n{}\nd tmp\nd usr\n",
        host_root_entry("lib"),
        host_root_entry("lib64")
    );
    assert_completed(&out, &expected);
}

#[test]
fn cell_dev_holds_only_null_zero_urandom() {
    assert_completed(&run("list_dir", &["/dev"]), "c null\nc urandom\nc zero\n");
}

#[test]
fn cell_usr_holds_only_lib_dirs() {
    assert_completed(&run("list_dir", &["/usr"]), "d lib\nd lib64\n");
}

// ---------------------------------------------------------------------------
// exec

#[test]
fn exec_bin_sh_is_killed() {
    let out = run("exec", &["/bin/sh"]);
    assert_seccomp_kill(&out, "execve", "trying execve /bin/sh\n");
}

#[test]
fn exec_dynamic_loader_is_killed() {
    let out = run("exec", &["/lib64/ld-linux-x86-64.so.2"]);
    assert_seccomp_kill(
        &out,
        "execve",
        "trying execve /lib64/ld-linux-x86-64.so.2\n",
    );
}

#[test]
fn exec_dropped_tmp_file_is_killed() {
    let out = Jail::new()
        .flags(["--tmp", "1M"])
        .run(probe("drop_exec"), &[]);
    assert_seccomp_kill(&out, "execve", "dropped\ntrying execve /tmp/dropped\n");
}

#[test]
fn mmap_exec_of_tmp_file_is_eperm() {
    // /tmp is noexec: PROT_EXEC file mappings fail with EPERM (do_mmap), and a
    // read-only mapping of it loses VM_MAYEXEC, so mprotect(PROT_EXEC) is EACCES.
    let out = Jail::new()
        .flags(["--tmp", "1M"])
        .run(probe("mmap_exec"), &[]);
    assert_completed(
        &out,
        "mmap_read ok\nmmap_exec errno=EPERM\nmprotect_exec errno=EACCES\n",
    );
}

#[test]
fn execveat_of_own_memfd_is_killed() {
    assert_sys_killed("execveat_memfd", "execveat");
}

#[test]
fn execveat_absolute_path_is_killed() {
    // Even with the program fd number and AT_EMPTY_PATH, an absolute path makes
    // the kernel ignore the dirfd: this would run the dynamic loader (the one file
    // Landlock lets execute) and through it any ELF file the cell can read. The
    // supervisor lets exactly one exec through (the program's start); any later
    // execveat kills the cell.
    let fd = warren_jail::seccomp::PROGRAM_FD.to_string();
    let out = run("sys", &["execveat_abs_program_fd", &fd]);
    assert_seccomp_kill(&out, "execveat", "trying execveat_abs_program_fd\n");
}

#[test]
fn execveat_absolute_path_from_dynamic_guest_is_killed() {
    // Same attack from a dynamically linked guest, whose Landlock rules let
    // its ELF interpreter execute: if the filter lets the call through, the
    // loader really runs (and prints its version).
    let fd = warren_jail::seccomp::PROGRAM_FD.to_string();
    let out = Jail::new().run(probe("sys_dynamic"), &["execveat_abs_program_fd", &fd]);
    assert_seccomp_kill(&out, "execveat", "trying execveat_abs_program_fd\n");
}

#[test]
fn guest_cannot_hold_the_program_fd() {
    // Defence in depth behind the exec-once rule: the guest can never own a
    // descriptor with the number the program is executed from.
    let fd = warren_jail::seccomp::PROGRAM_FD.to_string();
    let out = run("program_fd", &[&fd]);
    assert_completed(
        &out,
        "raise_nofile errno=EPERM\ndup2 errno=EBADF\ndupfd errno=EINVAL\n",
    );
}

#[test]
fn dynamically_linked_program_runs() {
    assert_completed(&run("dyn_hello_dynamic", &[]), "hello\n");
}

#[test]
fn static_program_runs() {
    assert_completed(&run("dyn_hello", &[]), "hello\n");
}

// ---------------------------------------------------------------------------
// network

#[test]
fn tcp_to_host_listener_is_eafnosupport() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind host TCP listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener
        .local_addr()
        .expect("local addr")
        .port()
        .to_string();
    let out = run("tcp_connect", &[&port]);
    assert_completed(&out, "socket errno=EAFNOSUPPORT\n");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("host TCP listener got a connection from {peer}"),
        Err(e) => panic!("accept on host listener: {e}"),
    }
}

#[test]
fn host_abstract_unix_socket_is_econnrefused() {
    // Abstract Unix names live in the network namespace. The cell's empty
    // netns has no socket of this name, so the lookup fails with ECONNREFUSED
    // before Landlock's abstract-socket scope is consulted (that would be
    // EPERM, and only matters for sockets in the same netns).
    let name = unique_name("warren-escape");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract addr");
    let listener = UnixListener::bind_addr(&addr).expect("bind host abstract socket");
    listener.set_nonblocking(true).expect("nonblocking");
    // Control: the name is reachable from the host.
    let control = Jail::new().run_unjailed(probe("unix_connect"), &[&format!("@{name}")]);
    assert_eq!(control.stdout, "connect ok\n", "control failed:\n{control}");
    let _ = listener.accept().expect("control connection");

    let out = run("unix_connect", &[&format!("@{name}")]);
    assert_completed(&out, "connect errno=ECONNREFUSED\n");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(_) => panic!("host abstract socket got a connection from the cell"),
        Err(e) => panic!("accept on host abstract socket: {e}"),
    }
}

/// A host Unix socket in a fresh world-traversable temp dir, connectable by anyone.
fn host_unix_socket() -> (tempfile::TempDir, UnixListener, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let path = dir.path().join("sock");
    let listener = UnixListener::bind(&path).expect("bind host unix socket");
    // World-connectable, like /run/dbus/system_bus_socket: only isolation can stop the cell.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod socket");
    listener.set_nonblocking(true).expect("nonblocking");
    let path = path.to_str().expect("utf-8 temp path").to_owned();
    (dir, listener, path)
}

#[track_caller]
fn assert_no_connection(listener: &UnixListener, out: &Outcome) {
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(_) => panic!("host unix socket got a connection from the cell:\n{out}"),
        Err(e) => panic!("accept on host unix socket: {e}"),
    }
}

#[test]
fn host_unix_socket_path_is_enoent() {
    let (_dir, listener, path) = host_unix_socket();
    let out = run("unix_connect", &[&path]);
    assert_completed(&out, "connect errno=ENOENT\n");
    assert_no_connection(&listener, &out);
}

#[test]
fn host_unix_socket_through_ro_bind_is_refused() {
    // Named Unix sockets are found by inode, not by network namespace; a read-only
    // mount does not stop connect() (EROFS only covers files, dirs and symlinks);
    // DAC allows a world-writable socket; and Landlock below ABI 9 cannot restrict
    // connecting to a named socket. So the jail refuses to bind a tree that holds a
    // socket at all: the run fails before any cell exists (125) and names it.
    let (dir, listener, _path) = host_unix_socket();
    let bind = format!("{}:/hostsock", dir.path().display());
    let out = Jail::new()
        .flags(["--ro-bind", &bind])
        .run(probe("unix_connect"), &["/hostsock/sock"]);
    assert_no_connection(&listener, &out);
    assert_eq!(out.exit_code(), 125, "{out}");
    assert!(out.stdout_lines().is_empty(), "{out}");
    let lines = out.jail_lines();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("sock") && lines[0].contains("Unix socket"),
        "{out}"
    );
}

#[test]
fn other_cells_abstract_unix_socket_is_econnrefused() {
    // Each `warren-jail run` builds its own jail, and with it its own empty
    // network namespace, so another runner's cell and its abstract names are
    // in a different netns: the lookup fails with ECONNREFUSED. (Cells of one
    // jail, as in the daemon, share a netns; there Landlock's abstract-socket
    // scope answers EPERM instead. That cannot be reached through the runner.)
    let name = format!("@{}", unique_name("warren-escape"));
    let mut listener_cell = Jail::new()
        .flags(["--timeout", "60s"])
        .spawn(probe("unix_listen"), &[&name]);
    let mut stdout = BufReader::new(listener_cell.stdout.take().expect("stdout piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read listener cell");
    let out = (first == "listening\n").then(|| run("unix_connect", &[&name]));
    // Let the listener cell finish: EOF on its stdin.
    drop(listener_cell.stdin.take());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read listener cell");
    let status = listener_cell.wait().expect("wait listener cell");
    assert_eq!(
        first, "listening\n",
        "listener cell did not listen (then: {rest:?})"
    );
    assert_eq!(
        rest, "done\n",
        "listener cell saw a connection or failed ({status})"
    );
    assert!(status.success(), "listener cell: {status}");
    let out = out.expect("connector ran");
    assert_completed(&out, "connect errno=ECONNREFUSED\n");
}

#[test]
fn socket_inet6_is_eafnosupport() {
    assert_sys_returns("socket_inet6", "errno=EAFNOSUPPORT");
}

#[test]
fn socket_netlink_is_eafnosupport() {
    assert_sys_returns("socket_netlink", "errno=EAFNOSUPPORT");
}

#[test]
fn socket_packet_is_eafnosupport() {
    assert_sys_returns("socket_packet", "errno=EAFNOSUPPORT");
}

#[test]
fn socketpair_inet_is_eafnosupport() {
    // Without the jail this is EOPNOTSUPP; the filter answers EAFNOSUPPORT.
    assert_sys_returns("socketpair_inet", "errno=EAFNOSUPPORT");
}

#[test]
fn socket_unix_is_allowed() {
    assert_sys_returns("socket_unix", "ret=0");
}

#[test]
fn socketpair_unix_is_allowed() {
    assert_sys_returns("socketpair_unix", "ret=0");
}

// ---------------------------------------------------------------------------
// host processes

#[test]
fn kill_host_process_is_esrch() {
    let mut host = HostProcess::sleep();
    let out = run("sys", &["kill", &host.pid()]);
    assert_completed(&out, "trying kill\nkill errno=ESRCH\n");
    host.assert_alive();
}

#[test]
fn ptrace_host_process_is_killed() {
    let mut host = HostProcess::sleep();
    let out = run("sys", &["ptrace_attach", &host.pid()]);
    assert_seccomp_kill(&out, "ptrace", "trying ptrace_attach\n");
    host.assert_alive();
}

#[test]
fn detached_grandchild_dies_with_the_cell() {
    // If the daemonized grandchild survived, it would keep the output pipes
    // open and the test's collector would report it.
    let out = run("daemonize", &[]);
    assert_completed(&out, "daemon started\nparent exiting\n");
}

// ---------------------------------------------------------------------------
// seccomp: calls that kill the cell

macro_rules! killed {
    ($($test:ident: $attempt:literal => $syscall:literal;)*) => {$(
        #[test]
        fn $test() {
            assert_sys_killed($attempt, $syscall);
        }
    )*};
}

killed! {
    mount_is_killed: "mount" => "mount";
    umount2_is_killed: "umount2" => "umount2";
    unshare_newuser_is_killed: "unshare" => "unshare";
    setns_is_killed: "setns" => "setns";
    chroot_is_killed: "chroot" => "chroot";
    pivot_root_is_killed: "pivot_root" => "pivot_root";
    fsopen_is_killed: "fsopen" => "fsopen";
    open_tree_is_killed: "open_tree" => "open_tree";
    move_mount_is_killed: "move_mount" => "move_mount";
    bpf_is_killed: "bpf" => "bpf";
    perf_event_open_is_killed: "perf_event_open" => "perf_event_open";
    userfaultfd_is_killed: "userfaultfd" => "userfaultfd";
    io_uring_setup_is_killed: "io_uring_setup" => "io_uring_setup";
    keyctl_is_killed: "keyctl" => "keyctl";
    add_key_is_killed: "add_key" => "add_key";
    request_key_is_killed: "request_key" => "request_key";
    open_by_handle_at_is_killed: "open_by_handle_at" => "open_by_handle_at";
    name_to_handle_at_is_killed: "name_to_handle_at" => "name_to_handle_at";
    seccomp_is_killed: "seccomp" => "seccomp";
    process_vm_readv_is_killed: "process_vm_readv" => "process_vm_readv";
    process_vm_writev_is_killed: "process_vm_writev" => "process_vm_writev";
    kexec_load_is_killed: "kexec_load" => "kexec_load";
    init_module_is_killed: "init_module" => "init_module";
    finit_module_is_killed: "finit_module" => "finit_module";
    reboot_is_killed: "reboot" => "reboot";
    swapon_is_killed: "swapon" => "swapon";
    acct_is_killed: "acct" => "acct";
    quotactl_is_killed: "quotactl" => "quotactl";
    syslog_is_killed: "syslog" => "syslog";
    personality_is_killed: "personality" => "personality";
    prctl_set_mm_is_killed: "prctl_set_mm" => "prctl";
    clone_newuser_is_killed: "clone_newuser" => "clone";
    clone_newns_is_killed: "clone_newns" => "clone";
    clone_newnet_is_killed: "clone_newnet" => "clone";
    clone_newpid_is_killed: "clone_newpid" => "clone";
    ioctl_tiocsti_is_killed: "tiocsti" => "ioctl";
    mknod_is_killed: "mknod" => "mknod";
}

// ---------------------------------------------------------------------------
// seccomp: calls that return

#[test]
fn clone3_is_enosys() {
    assert_sys_returns("clone3", "errno=ENOSYS");
}

#[test]
fn plain_fork_is_allowed() {
    assert_sys_returns("fork", "ret=0");
}

#[test]
fn prctl_set_name_is_allowed() {
    assert_sys_returns("prctl_set_name", "ret=0");
}

#[test]
fn ioctl_fionread_is_allowed() {
    assert_sys_returns("ioctl_fionread", "ret=0");
}

// ---------------------------------------------------------------------------
// resource limits

#[test]
fn fork_bomb_hits_pids_limit() {
    let out = Jail::new()
        .flags(["--pids", "16"])
        .run(probe("fork_bomb"), &[]);
    assert_eq!(
        out.exit_code(),
        0,
        "fork bomb did not exit normally:\n{out}"
    );
    let line = out.stdout.trim_end();
    let rest = line
        .strip_prefix("forks=")
        .unwrap_or_else(|| panic!("unexpected output:\n{out}"));
    let (count, errno) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("fork never failed:\n{out}"));
    let count: u32 = count.parse().expect("fork count");
    assert!(
        count < 16,
        "{count} forks succeeded under --pids 16:\n{out}"
    );
    assert_eq!(errno, "errno=EAGAIN", "{out}");
    assert!(
        out.reason().contains("pids limit"),
        "stderr does not mention the pids limit:\n{out}"
    );
}

#[test]
fn memory_bomb_is_killed_at_memory_limit() {
    let out = Jail::new()
        .flags(["--memory", "32M"])
        .run(probe("mem_bomb"), &[]);
    assert_killed(&out, 137, "memory limit");
    assert_eq!(out.stdout, "", "{out}");
}

#[test]
fn cpu_spin_is_killed_at_timeout() {
    let out = Jail::new()
        .flags(["--timeout", "1s"])
        .run(probe("spin"), &[]);
    assert_killed(&out, 137, "timeout");
    assert_eq!(out.stdout, "spinning\n", "{out}");
}

#[test]
fn timeout_kills_every_process_of_the_cell() {
    // Four forked spinners besides the main one: if any survived the kill, it
    // would hold the output pipes open and the collector would fail the test.
    let out = Jail::new()
        .flags(["--timeout", "1s", "--pids", "16"])
        .run(probe("spin"), &["4"]);
    assert_killed(&out, 137, "timeout");
    assert_eq!(out.stdout, "spinning\n", "{out}");
}

#[test]
fn filling_tmp_stops_at_its_size() {
    let out = Jail::new()
        .flags(["--tmp", "1M"])
        .run(probe("fill_tmp"), &[]);
    assert_eq!(out.exit_code(), 0, "{out}");
    assert_eq!(out.stderr, "", "{out}");
    let rest = out
        .stdout
        .trim_end()
        .strip_prefix("written=")
        .unwrap_or_else(|| panic!("unexpected output:\n{out}"));
    let (bytes, errno) = rest
        .split_once(' ')
        .unwrap_or_else(|| panic!("the write never failed:\n{out}"));
    let bytes: u64 = bytes.parse().expect("byte count");
    assert_eq!(errno, "errno=ENOSPC", "{out}");
    assert!(
        bytes <= 1 << 20,
        "wrote {bytes} bytes into a 1 MiB /tmp:\n{out}"
    );
    assert!(
        bytes >= 1 << 19,
        "only {bytes} bytes fit into a 1 MiB /tmp:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// what the cell inherits

#[test]
fn leaked_fds_are_closed() {
    let leak = || {
        let a = tempfile::tempfile().expect("tempfile");
        let b = std::fs::File::open("/etc/passwd").expect("open /etc/passwd");
        Jail::new().inherit_fd(a, 5).inherit_fd(b, 9)
    };
    // Control: without the jail, fds 5 and 9 do reach the program.
    let control = leak().run_unjailed(probe("fds"), &[]);
    let extra: Vec<&str> = control
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("extra="))
        .unwrap_or_else(|| panic!("control printed no fd list:\n{control}"))
        .split(',')
        .collect();
    assert!(
        extra.contains(&"5") && extra.contains(&"9"),
        "control run did not see the leaked fds:\n{control}"
    );
    let out = leak().run(probe("fds"), &[]);
    assert_completed(&out, "stdio=0,1,2\nextra=none\n");
}

#[test]
fn host_environment_is_not_passed() {
    let secret = || Jail::new().host_env("WARREN_SECRET", "hunter2");
    let control = secret().run_unjailed(probe("environ"), &[]);
    assert_eq!(
        control.stdout, "count=1\nWARREN_SECRET=hunter2\n",
        "control:\n{control}"
    );
    let out = secret().run(probe("environ"), &[]);
    assert_completed(&out, "count=0\n");
}

#[test]
fn env_flag_is_the_only_environment() {
    let out = Jail::new()
        .host_env("WARREN_SECRET", "hunter2")
        .flags(["--env", "A=1"])
        .run(probe("environ"), &[]);
    assert_completed(&out, "count=1\nA=1\n");
}

/// SysV IPC objects created on the host, removed on drop.
struct HostIpc {
    key: libc::key_t,
    shm: libc::c_int,
    msg: libc::c_int,
    sem: libc::c_int,
}

impl HostIpc {
    fn create() -> Self {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o666;
        for _ in 0..100 {
            let [a, b, c, d, ..] = random_u64().to_ne_bytes();
            let key = libc::key_t::from_ne_bytes([a, b, c, d]);
            if key == libc::IPC_PRIVATE {
                continue;
            }
            // SAFETY: shmget takes no pointers; it only creates a segment.
            let shm = unsafe { libc::shmget(key, 4096, flags) };
            if shm < 0 {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "shmget: {err}");
                continue; // key taken: pick another
            }
            // SAFETY: msgget takes no pointers.
            let msg = unsafe { libc::msgget(key, flags) };
            // SAFETY: semget takes no pointers.
            let sem = unsafe { libc::semget(key, 1, flags) };
            let ipc = Self { key, shm, msg, sem };
            assert!(
                msg >= 0 && sem >= 0,
                "cannot create host SysV objects: {}",
                std::io::Error::last_os_error()
            );
            return ipc;
        }
        panic!("no free SysV IPC key found");
    }
}

impl Drop for HostIpc {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is fine.
        unsafe { libc::shmctl(self.shm, libc::IPC_RMID, std::ptr::null_mut()) };
        if self.msg >= 0 {
            // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is fine.
            unsafe { libc::msgctl(self.msg, libc::IPC_RMID, std::ptr::null_mut()) };
        }
        if self.sem >= 0 {
            // SAFETY: IPC_RMID takes no fourth argument.
            unsafe { libc::semctl(self.sem, 0, libc::IPC_RMID) };
        }
    }
}

#[test]
fn host_sysv_ipc_is_invisible() {
    let ipc = HostIpc::create();
    let key = ipc.key.to_string();
    let control = Jail::new().run_unjailed(probe("ipc"), &[&key]);
    assert_eq!(
        control.stdout, "shmget ok\nmsgget ok\nsemget ok\n",
        "control:\n{control}"
    );
    let out = run("ipc", &[&key]);
    assert_completed(
        &out,
        "shmget errno=ENOENT\nmsgget errno=ENOENT\nsemget errno=ENOENT\n",
    );
}

/// Runs `check` while another cell holds SysV objects with `key` and a file
/// `/tmp/warren-marker` in its own `/tmp`.
fn while_another_cell_holds<T>(key: &str, check: impl FnOnce() -> T) -> T {
    const HELD: &str = "shm ok\nmsg ok\nsem ok\ntmp ok\nholding\n";
    let mut holder = Jail::new()
        .flags(["--tmp", "1M", "--timeout", "60s"])
        .spawn(probe("hold"), &[key]);
    let mut stdout = BufReader::new(holder.stdout.take().expect("stdout piped"));
    let mut head = String::new();
    while !head.ends_with("holding\n") {
        let before = head.len();
        stdout.read_line(&mut head).expect("read holder cell");
        if head.len() == before {
            break; // EOF: the holder died
        }
    }
    let result = (head == HELD).then(check);
    drop(holder.stdin.take()); // EOF: the holder cleans up and exits
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read holder cell");
    let status = holder.wait().expect("wait holder cell");
    assert_eq!(
        head, HELD,
        "holder cell did not set up ({status}, then {rest:?})"
    );
    assert_eq!(rest, "done\n", "holder cell ({status})");
    assert!(status.success(), "holder cell: {status}");
    result.expect("check ran")
}

fn random_ipc_key() -> String {
    let [a, b, c, d, ..] = random_u64().to_ne_bytes();
    let key = libc::key_t::from_ne_bytes([a, b, c, d]);
    // IPC_PRIVATE (0) is not a key.
    if key == libc::IPC_PRIVATE { 1 } else { key }.to_string()
}

#[test]
fn other_cells_sysv_ipc_is_invisible() {
    let key = random_ipc_key();
    let out = while_another_cell_holds(&key, || run("ipc", &[&key]));
    assert_completed(
        &out,
        "shmget errno=ENOENT\nmsgget errno=ENOENT\nsemget errno=ENOENT\n",
    );
}

#[test]
fn other_cells_tmp_is_invisible() {
    let key = random_ipc_key();
    let out = while_another_cell_holds(&key, || {
        Jail::new()
            .flags(["--tmp", "1M"])
            .run(probe("read_file"), &["/tmp/warren-marker"])
    });
    assert_completed(&out, "open errno=ENOENT\n");
}

#[test]
fn runs_as_uid_0_without_capabilities_and_with_no_new_privs() {
    assert_completed(
        &run("ident", &[]),
        "uid=0/0/0 gid=0/0/0\nno_new_privs=1\ncap_eff=0 cap_prm=0 cap_inh=0\n",
    );
}

// ---------------------------------------------------------------------------
// --ro-bind

fn ro_bind_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "warren-ro-bind-ok").expect("write file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod file");
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd-link")).expect("symlink");
    dir
}

fn with_ro_bind(dir: &tempfile::TempDir) -> Jail {
    Jail::new().flags(["--ro-bind", &format!("{}:/data", dir.path().display())])
}

#[test]
fn ro_bind_is_readable() {
    let dir = ro_bind_dir();
    let out = with_ro_bind(&dir).run(probe("read_file"), &["/data/secret.txt"]);
    assert_completed(&out, "ok content=warren-ro-bind-ok\n");
}

#[test]
fn ro_bind_file_write_is_erofs() {
    let dir = ro_bind_dir();
    let out = with_ro_bind(&dir).run(probe("write_file"), &["/data/secret.txt"]);
    assert_completed(&out, "open errno=EROFS\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("secret.txt")).expect("read"),
        "warren-ro-bind-ok"
    );
}

#[test]
fn ro_bind_create_is_erofs() {
    let dir = ro_bind_dir();
    let out = with_ro_bind(&dir).run(probe("write_file"), &["/data/new"]);
    assert_completed(&out, "open errno=EROFS\n");
    assert!(!dir.path().join("new").exists(), "file created on the host");
}

#[test]
fn ro_bind_symlink_does_not_escape() {
    // The symlink resolves inside the cell, where there is no /etc.
    let dir = ro_bind_dir();
    let out = with_ro_bind(&dir).run(probe("read_file"), &["/data/passwd-link"]);
    assert_completed(&out, "open errno=ENOENT\n");
}

// ---------------------------------------------------------------------------
// devices

#[test]
fn dev_nodes_work() {
    assert_completed(
        &run("devices", &[]),
        "null_read=0 null_write=5\nzero_read=16 zero_allzero=1\nurandom_read=16\n",
    );
}

// ---------------------------------------------------------------------------
// exit codes and signals

#[test]
fn exit_code_is_passed_through() {
    let out = run("exit_code", &["42"]);
    assert_eq!(out.exit_code(), 42, "{out}");
    assert_eq!(out.stdout, "", "{out}");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn segfault_is_128_plus_sigsegv() {
    let out = run("segv", &[]);
    assert_killed(&out, 139, "SIGSEGV");
    assert_eq!(out.stdout, "dereferencing null\n", "{out}");
}

#[test]
fn abort_is_128_plus_sigabrt() {
    let out = run("abort", &[]);
    assert_killed(&out, 134, "SIGABRT");
    assert_eq!(out.stdout, "aborting\n", "{out}");
}

// ---------------------------------------------------------------------------
// CLI errors

#[track_caller]
fn assert_cli_error(out: &Outcome, mention: &str) {
    let code = out.exit_code();
    assert_ne!(code, 0, "CLI error exited 0:\n{out}");
    assert!(
        out.stderr.contains(mention),
        "stderr does not mention {mention:?}:\n{out}"
    );
    assert_eq!(out.stdout, "", "{out}");
}

/// One clear stderr line mentioning `mention`, non-zero exit.
#[track_caller]
fn assert_one_line_error(out: &Outcome, mention: &str) {
    assert_cli_error(out, mention);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected one stderr line:\n{out}");
}

#[test]
fn cli_no_program_is_an_error() {
    let out = jail_run(&[]);
    assert_ne!(out.exit_code(), 0, "{out}");
    assert!(
        out.stderr.to_lowercase().contains("program"),
        "stderr does not mention the missing program:\n{out}"
    );
}

#[test]
fn cli_nothing_after_dashdash_is_an_error() {
    let out = jail_run(&["--"]);
    assert_ne!(out.exit_code(), 0, "{out}");
    assert!(
        out.stderr.to_lowercase().contains("program"),
        "stderr does not mention the missing program:\n{out}"
    );
}

#[test]
fn cli_missing_program_file_is_an_error() {
    let path = format!("/nonexistent/{}", unique_name("warren-escape"));
    let out = jail_run(&["--", &path]);
    assert_one_line_error(&out, &path);
}

#[test]
fn cli_non_elf_program_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.sh");
    {
        let mut f = std::fs::File::create(&path).expect("create script");
        f.write_all(b"#!/bin/sh\necho escaped\n")
            .expect("write script");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = path.to_str().expect("utf-8 temp path");
    let out = jail_run(&["--", path]);
    assert_one_line_error(&out, path);
    assert!(!out.stdout.contains("escaped"), "{out}");
}

#[test]
fn cli_bad_memory_size_names_the_flag() {
    let exit = probe("exit_code");
    let exit = exit.to_str().expect("utf-8 probe path");
    let out = jail_run(&["--memory", "12Q", "--", exit, "0"]);
    assert_cli_error(&out, "--memory");
}

#[test]
fn cli_bad_timeout_names_the_flag() {
    let exit = probe("exit_code");
    let exit = exit.to_str().expect("utf-8 probe path");
    let out = jail_run(&["--timeout", "soon", "--", exit, "0"]);
    assert_cli_error(&out, "--timeout");
}
