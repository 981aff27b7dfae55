//! Builds the no-libc executor the oracle runs traces in (see executor/executor.c).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let exe = out.join("vmaspace-executor");
    let src = "executor/executor.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-static",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-pie",
            "-no-pie",
            "-fno-asynchronous-unwind-tables",
            "-fcf-protection=none",
            "-Wall",
            "-Werror",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&exe)
        .arg(src)
        .status();
    // Without a compiler the crate still builds (so that `vmaspace run` and `replay`, which
    // never touch the kernel, build anywhere); the kernel side then says what is missing.
    let why = match status {
        Ok(s) if s.success() => return,
        Ok(s) => format!("building the executor with {cc} failed ({s})"),
        Err(e) => format!("cannot run {cc} to build the executor: {e}"),
    };
    println!(
        "cargo:warning={why}; the kernel side (check, record, fuzz) will be unavailable: install gcc (apt-get install gcc libc6-dev) and rebuild"
    );
    std::fs::write(&exe, b"").expect("writing an empty executor");
}
