//! Build script of the root `warren` package: compiles the escape-test probes.
//!
//! Every `tests/probes/*.c` is compiled with `gcc -static -O2 -Wall -Werror`
//! into `$OUT_DIR/probes/<stem>`; the probes in [`ALSO_DYNAMIC`] are additionally
//! compiled as dynamically linked executables, `$OUT_DIR/probes/<stem>_dynamic`
//! (a dynamic guest gets more from the jail: its ELF interpreter may execute).
//! The directory is exported to the crate as `WARREN_PROBE_DIR`.
//!
//! A missing compiler or a failing compile panics: the escape tests must fail
//! loudly, never skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Probes also built dynamically linked: `dyn_hello` proves dynamic guests run,
/// `sys` repeats syscall attacks with the dynamic loader executable.
const ALSO_DYNAMIC: &[&str] = &["dyn_hello", "sys"];

/// The C compiler: `gcc`, or `WARREN_PROBE_CC` when set.
fn compiler() -> String {
    std::env::var("WARREN_PROBE_CC").unwrap_or_else(|_| "gcc".to_owned())
}

struct Job {
    source: PathBuf,
    output: PathBuf,
    child: Child,
}

fn spawn(cc: &str, source: &Path, output: &Path, static_link: bool) -> Job {
    let mut cmd = Command::new(cc);
    if static_link {
        cmd.arg("-static");
    }
    cmd.args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(output)
        .arg(source)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run the C compiler `{cc}` to build escape-test probe {}: {e}; \
             install gcc with static glibc (Debian: `apt-get install gcc libc6-dev`)",
            source.display()
        )
    });
    Job {
        source: source.to_owned(),
        output: output.to_owned(),
        child,
    }
}

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let probe_src = manifest_dir.join("tests").join("probes");
    let probe_out = out_dir.join("probes");
    std::fs::create_dir_all(&probe_out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", probe_out.display()));

    println!("cargo:rerun-if-changed={}", probe_src.display());
    println!("cargo:rerun-if-env-changed=WARREN_PROBE_CC");

    let mut entries: Vec<PathBuf> = std::fs::read_dir(&probe_src)
        .unwrap_or_else(|e| panic!("cannot read probe directory {}: {e}", probe_src.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", probe_src.display()))
                .path()
        })
        .collect();
    entries.sort();

    let cc = compiler();
    let mut jobs = Vec::new();
    for path in &entries {
        // Headers are inputs too: a change must rebuild the probes.
        println!("cargo:rerun-if-changed={}", path.display());
        if path.extension().and_then(|e| e.to_str()) != Some("c") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| panic!("probe file name is not UTF-8: {}", path.display()));
        jobs.push(spawn(&cc, path, &probe_out.join(stem), true));
        if ALSO_DYNAMIC.contains(&stem) {
            jobs.push(spawn(
                &cc,
                path,
                &probe_out.join(format!("{stem}_dynamic")),
                false,
            ));
        }
    }
    for stem in ALSO_DYNAMIC {
        assert!(
            jobs.iter()
                .any(|j| j.output.ends_with(format!("{stem}_dynamic"))),
            "tests/probes/{stem}.c is missing: the escape tests need it"
        );
    }

    let mut failures = Vec::new();
    for job in jobs {
        let out = job
            .child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for `{cc}` failed: {e}"));
        if !out.status.success() {
            failures.push(format!(
                "`{cc}` failed ({}) building {} -> {}:\n{}{}",
                out.status,
                job.source.display(),
                job.output.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "escape-test probes failed to compile:\n{}",
        failures.join("\n")
    );

    println!("cargo:rustc-env=WARREN_PROBE_DIR={}", probe_out.display());

    compile_c_guest(&cc, &manifest_dir, &out_dir);
}

// ---- The C example guest (owned by the guest-SDK side; keep separate from the probes) ----

/// Compiles `examples/c/counter.c`, the counter guest written in C from
/// `docs/protocol.md` alone, with `gcc -O2 -Wall -Werror` (dynamically linked) into
/// `$OUT_DIR/examples/c_counter`, and exports its path as `WARREN_C_GUEST`
/// (see `warren::c_guest()`). A failing compile panics, like the probes.
fn compile_c_guest(cc: &str, manifest_dir: &Path, out_dir: &Path) {
    let source = manifest_dir.join("examples").join("c").join("counter.c");
    let out = out_dir.join("examples");
    std::fs::create_dir_all(&out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display()));
    let output = out.join("c_counter");
    println!("cargo:rerun-if-changed={}", source.display());
    let result = Command::new(cc)
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&output)
        .arg(&source)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler `{cc}` to build the C example guest {}: {e}; \
                 install gcc (Debian: `apt-get install gcc libc6-dev`)",
                source.display()
            )
        });
    assert!(
        result.status.success(),
        "`{cc}` failed ({}) building {} -> {}:\n{}{}",
        result.status,
        source.display(),
        output.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr),
    );
    println!("cargo:rustc-env=WARREN_C_GUEST={}", output.display());
}
