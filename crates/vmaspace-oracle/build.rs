//! Builds the no-libc executor the oracle runs traces in (see executor/executor.c).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let exe = out.join("vmaspace-executor");
    let src = "executor/executor.c";
    println!("cargo:rerun-if-changed={src}");
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
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the executor with {cc} failed ({s}); vmaspace-oracle needs gcc for x86_64"),
        Err(e) => {
            panic!("cannot run {cc} to build the executor: {e}; install gcc (apt-get install gcc)")
        }
    }
}
