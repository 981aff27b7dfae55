//! `vmaspace` is safe to run as root: tried as an attacker and as an impatient user would.
//!
//! - Escapes: traces naming files outside the run (absolute paths, `../`, `/proc/*/root`,
//!   `/dev/shm` names, mount points) against `check`, `record` and `fuzz`, with a canary
//!   directory and a canary `/dev/shm` file that must stay byte for byte untouched. (The trace
//!   language has no call that makes a symlink; the kernel side's confinement itself is tested
//!   without the CLI in `vmaspace-oracle/tests/confinement.rs`.)
//! - The `/tmp` race: an unprivileged user prepares `/tmp/vmaspace` (a symlinked lock, a fake
//!   executor) in a private mount namespace with its own `/tmp`; root then runs `check`.
//! - Signals: SIGINT, SIGTERM and SIGKILL sent to a `check` of a trace with `# mount:` and
//!   `# hugepages:` headers at several moments; the machine is as before (at once, or after the
//!   next run for SIGKILL).
//! - Resources: each case of a tiny trace asking for a huge amount of work finishes in under
//!   10 s and 1 GB, or is refused with a message naming the limit.
//!
//! Tests that look at the machine's global state hold [`MACHINE`] so that they do not see each
//! other's runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static MACHINE: Mutex<()> = Mutex::new(());

fn machine() -> std::sync::MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|p| p.into_inner())
}

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

/// Root on Linux 6.18.x: the kernel side can run.
fn kernel_usable(what: &str) -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let root = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !release.starts_with("6.18.") || !root {
        eprintln!("\n!!!!! SKIPPED {what}: needs root on Linux 6.18.x (this is {}) !!!!!\n", release.trim());
        return false;
    }
    true
}

/// A directory of this test's own under the target directory (never the machine's `/tmp`,
/// which one test hides behind a private mount).
fn work_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("safety-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CANARY: &[u8] = b"canary: must stay byte for byte\n";

/// A canary directory with one file, and a canary file in the real /dev/shm.
struct Canaries {
    dir: PathBuf,
    shm: PathBuf,
}

impl Canaries {
    fn new(name: &str) -> Canaries {
        let dir = std::env::temp_dir().join(format!("vmaspace-canary-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("target"), CANARY).unwrap();
        let shm = PathBuf::from(format!("/dev/shm/vmaspace-canary-{name}-{}", std::process::id()));
        fs::write(&shm, CANARY).unwrap();
        Canaries { dir, shm }
    }
    fn target(&self) -> String {
        self.dir.join("target").display().to_string()
    }
    fn shm_name(&self) -> String {
        self.shm.file_name().unwrap().to_string_lossy().into_owned()
    }
    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("target")], "files appeared in {}", self.dir.display());
        assert_eq!(fs::read(self.dir.join("target")).unwrap(), CANARY);
        assert_eq!(fs::read(&self.shm).unwrap(), CANARY, "{} changed", self.shm.display());
    }
}

impl Drop for Canaries {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_file(&self.shm);
    }
}

/// Traces that name files the model does not have: each must be refused by `check` and
/// `record` before anything runs, naming its line and column.
fn escape_traces(c: &Canaries) -> Vec<(String, usize, usize)> {
    let t = c.target();
    let d = c.dir.display().to_string();
    let up = "../".repeat(8) + d.trim_start_matches('/');
    let map = "mmap(0x100000000000, 0x1000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n";
    vec![
        (format!("{map}unlink(\"{t}\")\n"), 2, 8),
        (format!("{map}openat(AT_FDCWD, \"{t}\", O_RDWR|O_TRUNC)\n"), 2, 18),
        (format!("{map}open(\"{d}/new\", O_RDWR|O_CREAT, 0600)\n"), 2, 6),
        (format!("{map}openat(AT_FDCWD, \"../new\", O_RDWR|O_CREAT, 0600)\n"), 2, 18),
        (format!("{map}unlink(\"{up}/target\")\n"), 2, 8),
        (format!("{map}openat(AT_FDCWD, \"/proc/self/root{t}\", O_RDWR|O_TRUNC)\n"), 2, 18),
        (format!("{map}openat(AT_FDCWD, \"/dev/shm/../../{up}/target\", O_RDWR|O_TRUNC)\n"), 2, 18),
        (format!("# mount: m=tmpfs\n{map}openat(AT_FDCWD, \"m/../../x\", O_RDWR|O_CREAT, 0600)\n"), 3, 18),
        (format!("{map}unlink(\"/dev/null\")\n"), 2, 8),
    ]
}

#[test]
fn check_and_record_refuse_escapes_before_anything_runs() {
    if !kernel_usable("escape tests") {
        return;
    }
    let _m = machine();
    let c = Canaries::new("escape");
    let dir = work_dir("escape");
    for (i, (text, line, col)) in escape_traces(&c).into_iter().enumerate() {
        let path = write(&dir, &format!("e{i}.trace"), &text);
        for cmd in ["check", "record"] {
            let out = vmaspace().arg(cmd).arg(&path).output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd} {text}: {err}");
            assert!(
                err.contains(&format!("line {line}, column {col}: not implemented in the model")),
                "{cmd} {text}: {err}"
            );
            c.assert_untouched();
        }
        // record refused: the trace is as it was, and no expected file was written.
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(!path.with_extension("expected").exists());
    }
    // A mount point that would leave the working directory is refused by the parser.
    let path = write(&dir, "mount.trace", "# mount: ../../x=tmpfs\nmaps()\n");
    let out = vmaspace().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 1, column 1: mount point `../../x` is not a plain path"), "{}", stderr(&out));
    // A /dev/shm file the trace creates and unlinks is the run's own: the machine's file of that
    // name stays.
    let name = c.shm_name();
    let text = format!(
        "# window: 100000000000-100000010000\n\
         openat(AT_FDCWD, \"/dev/shm/{name}\", O_RDWR|O_CREAT|O_TRUNC, 0600)\n\
         ftruncate(3, 0x1000)\nunlink(\"/dev/shm/{name}\")\n\
         mmap(0x100000000000, 0x1000, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, 3, 0)\nmaps()\n"
    );
    let path = write(&dir, "shm.trace", &text);
    let out = vmaspace().arg("check").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    c.assert_untouched();
    let out = vmaspace().arg("record").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    c.assert_untouched();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fuzz_leaves_files_outside_its_runs_alone() {
    if !kernel_usable("fuzz confinement test") {
        return;
    }
    let _m = machine();
    let c = Canaries::new("fuzz");
    let dir = work_dir("fuzz");
    let out = vmaspace()
        .args(["fuzz", "--seed", "4242", "--cases", "40", "--ops", "40", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    c.assert_untouched();
    fs::remove_dir_all(&dir).unwrap();
}

/// What a run may change on the machine, as seen from outside.
#[derive(Debug, PartialEq, Eq, Clone)]
struct MachineState {
    mounts: String,
    loops: String,
    hugepages: Vec<String>,
    max_map_count: String,
    runs: Vec<String>,
    journal: bool,
}

fn machine_state() -> MachineState {
    let pools = ["hugepages-2048kB", "hugepages-1048576kB"];
    let loops = Command::new("losetup").arg("-a").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let mut runs: Vec<String> = fs::read_dir("/var/lib/vmaspace/runs")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    runs.sort();
    MachineState {
        mounts: fs::read_to_string("/proc/self/mounts").unwrap(),
        loops: loops.unwrap_or_default(),
        hugepages: pools
            .iter()
            .map(|p| fs::read_to_string(format!("/sys/kernel/mm/hugepages/{p}/nr_hugepages")).unwrap_or_default())
            .collect(),
        max_map_count: fs::read_to_string("/proc/sys/vm/max_map_count").unwrap(),
        runs,
        journal: Path::new("/var/lib/vmaspace/journal").exists(),
    }
}

/// Waits (up to 10 s) for the machine to be as `before` (loop devices clear themselves a little
/// after the last process of a run's mount namespace is gone).
fn assert_restored(before: &MachineState, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut now = machine_state();
    while &now != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        now = machine_state();
    }
    assert_eq!(&now, before, "{what}: the machine is not as it was");
}

/// A trace that mounts every file system, sets the pools and then runs for several seconds.
fn long_trace() -> String {
    let mut t = String::from(
        "# hugepages: 2M=2\n# mount: e=ext4\n# mount: o=overlay\n# mount: t=tmpfs\n# mount: h=hugetlbfs\n\
         # window: 100000000000-200000000000\n\
         openat(AT_FDCWD, \"e/f\", O_RDWR|O_CREAT, 0600)\n\
         mmap(0x110000000000, 0x200000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_FIXED, -1, 0)\n\
         touch(0x110000000000, 0x200000)\n",
    );
    for _ in 0..150 {
        t.push_str(
            "mmap(0x100000000000, 0x1000000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n\
             touch(0x100000000000, 0x1000000)\nmunmap(0x100000000000, 0x1000000)\n",
        );
    }
    t.push_str("maps()\n");
    t
}

/// Starts `vmaspace check` of the long trace and waits for the given moment: as soon as it can
/// be interrupted (its signal handlers are in place), once it has set the pools, or a second
/// after that.
fn start_and_wait(trace: &Path, moment: &str) -> std::process::Child {
    let child = vmaspace().arg("check").arg(trace).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let pools_set =
        || fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").is_ok_and(|s| s.trim() == "2");
    // Whether the program handles SIGINT and SIGTERM yet (bits 2 and 15 of SigCgt).
    let handles_signals = || {
        let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(|h| h.trim().to_string());
        caught.and_then(|h| u64::from_str_radix(&h, 16).ok()).is_some_and(|m| m & (1 << 1) != 0 && m & (1 << 14) != 0)
    };
    while !handles_signals() {
        assert!(Instant::now() < deadline, "the program never installed its signal handlers");
        std::thread::sleep(Duration::from_micros(200));
    }
    match moment {
        "at start" => {}
        "pools set" | "pools set + 1 s" => {
            while !pools_set() {
                assert!(Instant::now() < deadline, "the run never set the pools");
                std::thread::sleep(Duration::from_millis(1));
            }
            if moment == "pools set + 1 s" {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        _ => unreachable!(),
    }
    child
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn interrupted_runs_leave_the_machine_as_it_was() {
    if !kernel_usable("signal tests") {
        return;
    }
    let _m = machine();
    let dir = work_dir("signals");
    let trace = write(&dir, "long.trace", &long_trace());
    let before = machine_state();
    assert!(!before.journal, "a journal is left from before the test");
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        for moment in ["at start", "pools set", "pools set + 1 s"] {
            let child = start_and_wait(&trace, moment);
            signal(&child, sig);
            let out = child.wait_with_output().unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "SIG{sig} {moment}: {err}");
            assert_restored(&before, &format!("SIG{sig} {moment}"));
        }
    }
    for moment in ["at start", "pools set", "pools set + 1 s"] {
        let mut child = start_and_wait(&trace, moment);
        signal(&child, "KILL");
        let _ = child.wait();
        // The next run finds what the killed one left, restores it and says so.
        let probe = write(&dir, "probe.trace", "# window: 100000000000-100000010000\nmaps()\n");
        let out = vmaspace().arg("check").arg(&probe).output().unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        // Killed right after it set the pools, the run left them and its directory.
        if moment == "pools set" {
            assert!(err.contains("restored settings an earlier run left changed"), "SIGKILL {moment}: {err}");
            assert!(err.contains("left by an earlier run that was stopped"), "SIGKILL {moment}: {err}");
        }
        assert_restored(&before, &format!("SIGKILL {moment}, then a run"));
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unprivileged_user_cannot_prepare_tmp_for_root() {
    if !kernel_usable("/tmp race test") {
        return;
    }
    // The test mounts a tmpfs of its own over /tmp: a checkout under /tmp would vanish with it.
    if Path::new(env!("CARGO_MANIFEST_DIR")).starts_with("/tmp") {
        eprintln!("\n!!!!! SKIPPED /tmp race test: the checkout is under /tmp, which the test mounts over !!!!!\n");
        return;
    }
    let _m = machine();
    let dir = work_dir("tmprace");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    for name in ["hugetlb_anon_map", "anon_merge_adjacent"] {
        for ext in ["trace", "expected", "initial-maps"] {
            let from = scenarios.join(format!("{name}.{ext}"));
            if from.exists() {
                fs::copy(&from, dir.join(format!("{name}.{ext}"))).unwrap();
            }
        }
    }
    // In a private mount namespace with a /tmp of its own: root makes a canary there, user
    // nobody plants the paths older versions used (a lock symlinked to the canary, a fake
    // executor that records who ran it), then root runs check.
    let script = format!(
        "set -e\n\
         mount -t tmpfs tmpfs /tmp\n\
         printf 'canary\\n' > /tmp/canary\n\
         setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '\
           mkdir -p /tmp/vmaspace && \
           ln -s /tmp/canary /tmp/vmaspace/hugepages.lock && \
           ln -s /tmp/canary /tmp/vmaspace-global-settings.lock && \
           printf \"#!/bin/sh\\nid > /tmp/pwned\\n\" > /tmp/vmaspace/executor && \
           chmod 755 /tmp/vmaspace/executor'\n\
         set +e\n\
         {exe} check {d}/hugetlb_anon_map.trace {d}/anon_merge_adjacent.trace\n\
         echo \"status=$?\"\n\
         echo \"canary=$(cat /tmp/canary)\"\n\
         ls /tmp/pwned 2>/dev/null && echo PWNED\n\
         echo \"tmp=$(ls -A /tmp | tr '\\n' ' ')\"\n",
        exe = env!("CARGO_BIN_EXE_vmaspace"),
        d = dir.display()
    );
    let out =
        Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status=0"), "{text}\n{}", stderr(&out));
    assert!(text.contains("canary=canary\n"), "{text}");
    assert!(!text.contains("PWNED"), "{text}");
    // Nothing of the run went to /tmp: only what the test put there.
    assert!(text.contains("tmp=canary vmaspace vmaspace-global-settings.lock \n"), "{text}");
    fs::remove_dir_all(&dir).unwrap();
}

/// Runs a command, measuring its wall time and peak memory (GNU time's `%M`, in KiB).
fn measured(cmd: Command, out_dir: &Path) -> (Output, Duration, u64) {
    let stats = out_dir.join("time.out");
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%M").arg("-o").arg(&stats).arg(cmd.get_program()).args(cmd.get_args());
    let start = Instant::now();
    let out = timed.output().unwrap();
    let elapsed = start.elapsed();
    let kib = fs::read_to_string(&stats).unwrap_or_default().lines().last().and_then(|l| l.trim().parse().ok());
    (out, elapsed, kib.expect("GNU time (package time) reports the peak memory"))
}

const TIB_MAP: &str = "mmap(0x100000000000, 0x400000000000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_NORESERVE, -1, 0)\n";

/// Tiny traces that ask for a huge amount of work (64 TiB ranges): what `run` (the model alone)
/// says of each, `None` when it must do it (cheaply: anonymous memory is kept as runs), and the
/// message `check` must refuse it with before the kernel side starts.
fn resource_cases() -> Vec<(&'static str, String, Option<&'static str>, &'static str)> {
    let mut forks = String::from(
        "mmap(0x100000000000, 0x40000000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n\
         touch(0x100000000000, 0x40000000)\n",
    );
    for i in 0..200 {
        forks.push_str(&format!("fork() = {}\n", 1001 + i));
    }
    let range = "0x100000000000, 0x400000000000";
    let shared = "mmap(0x100000000000, 0x400000000000, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED|MAP_NORESERVE, -1, 0)\n";
    let walk = "max_call_pages";
    vec![
        ("touch a TiB range", format!("{TIB_MAP}touch({range})\n"), None, walk),
        ("mlock a TiB range", format!("{TIB_MAP}mlock({range})\n"), None, walk),
        ("mlockall", format!("{TIB_MAP}mlockall(MCL_CURRENT)\n"), None, walk),
        ("MADV_POPULATE_WRITE a TiB range", format!("{TIB_MAP}madvise({range}, MADV_POPULATE_WRITE)\n"), None, walk),
        ("guard a TiB range", format!("{TIB_MAP}madvise({range}, MADV_GUARD_INSTALL)\n"), None, walk),
        ("1 GiB touched, then 200 forks", forks, None, "max_present_pages"),
        // Shared memory is page cache, kept a page at a time: the model's own limit.
        (
            "touch a TiB of shared memory",
            format!("{shared}touch({range})\n"),
            Some("max_pages_per_call"),
            "max_pages_per_call",
        ),
        (
            "an absurd pool size",
            "# hugepages: 2M=18446744073709551615\nmaps()\n".into(),
            Some("more than 1024 GiB is refused"),
            "more than 1024 GiB is refused",
        ),
        (
            "50,000 nested name= arguments",
            format!("clone({}1) = 1001\n", "a=".repeat(50_000)),
            Some("cannot be another `name=`"),
            "cannot be another `name=`",
        ),
    ]
}

#[test]
fn huge_requests_are_cheap_or_refused_by_the_model() {
    let dir = work_dir("resources");
    for (what, text, message, _) in resource_cases() {
        let path = write(&dir, "case.trace", &text);
        let mut cmd = vmaspace();
        cmd.arg("run").arg(&path);
        let (out, elapsed, kib) = measured(cmd, &dir);
        let err = stderr(&out);
        match message {
            Some(message) => {
                assert_eq!(out.status.code(), Some(2), "{what}: {err}");
                assert!(err.contains(message), "{what}: {err}");
                assert!(elapsed < Duration::from_secs(10), "{what}: took {elapsed:?}");
            }
            None => {
                assert_eq!(out.status.code(), Some(0), "{what}: {err}");
                // As cheap as a page: well under a second, and a few MiB.
                assert!(elapsed < Duration::from_secs(1), "{what}: took {elapsed:?}");
                assert!(kib < 64 << 10, "{what}: used {kib} KiB");
            }
        }
        assert!(kib < 1 << 20, "{what}: used {kib} KiB");
    }
    // Input without end is read up to a limit.
    let mut cmd = vmaspace();
    cmd.args(["run", "/dev/zero"]);
    let (out, elapsed, kib) = measured(cmd, &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("larger than 64 MiB"), "{}", stderr(&out));
    assert!(elapsed < Duration::from_secs(10) && kib < 1 << 20, "{elapsed:?} {kib} KiB");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn huge_requests_are_stopped_on_the_kernel_side() {
    if !kernel_usable("kernel-side limit tests") {
        return;
    }
    let _m = machine();
    let dir = work_dir("kernel-limits");
    let before = machine_state();
    // Each is refused before the kernel side runs: by the parser, or by the model's page budget
    // (the model walks what the kernel would walk), so the kernel never starts the work.
    for (what, text, _, message) in resource_cases() {
        let path = write(&dir, "case.trace", &format!("# window: 100000000000-500000000000\n{text}"));
        let start = Instant::now();
        let out = vmaspace().arg("check").arg(&path).output().unwrap();
        let elapsed = start.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(message), "{what}: {err}");
        assert!(elapsed < Duration::from_secs(10), "{what}: took {elapsed:?}");
        assert_restored(&before, what);
    }
    // Within the model's budget but past the kernel side's memory: 2 GiB touched.
    let text = "# window: 100000000000-500000000000\n\
                mmap(0x100000000000, 0x80000000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n\
                touch(0x100000000000, 0x80000000)\n";
    let path = write(&dir, "case.trace", text);
    let start = Instant::now();
    let out = vmaspace().arg("check").arg(&path).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("kernel side stopped: kernel side exceeded 1024 MB"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_restored(&before, "2 GiB touched");
    fs::remove_dir_all(&dir).unwrap();
}

/// `vmaspace run` on mutated scenarios (bytes flipped, inserted and deleted, lines duplicated
/// and dropped, with a fixed seed): every run ends by itself within 10 s with 0, 1 or 2,
/// never a panic or an abort.
#[test]
fn run_survives_mutated_traces() {
    let dir = work_dir("mutated");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let mut texts: Vec<(String, String)> = fs::read_dir(&scenarios)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), fs::read_to_string(&p).unwrap()))
        .collect();
    texts.sort();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    for case in 0..64 {
        let (name, text) = &texts[next(texts.len())];
        let mut b = text.as_bytes().to_vec();
        for _ in 0..1 + next(4) {
            let k = next(b.len() + 1);
            match next(5) {
                0 if k < b.len() => b[k] ^= 1 << next(8),
                1 => b.insert(k, b"(,|\"=\xff"[next(6)]),
                2 if k < b.len() => {
                    b.drain(k..(k + 1 + next(30)).min(b.len()));
                }
                3 => {
                    let line = text.lines().nth(next(text.lines().count())).unwrap_or("").to_string();
                    b.extend(format!("{line}\n").repeat(1 + next(300)).into_bytes());
                }
                _ => {
                    let lines: Vec<&str> = text.lines().collect();
                    let drop_at = next(lines.len());
                    b = lines
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != drop_at)
                        .map(|(_, l)| format!("{l}\n"))
                        .collect::<String>()
                        .into_bytes();
                }
            }
        }
        // The scenario's siblings come along, so whole-space traces find their initial maps.
        let path = dir.join(format!("{name}.trace"));
        fs::write(&path, &b).unwrap();
        if let Ok(init) = fs::read(scenarios.join(format!("{name}.initial-maps"))) {
            fs::write(dir.join(format!("{name}.initial-maps")), init).unwrap();
        }
        let mut child = vmaspace().arg("run").arg(&path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("case {case} ({name}): run did not finish in 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(matches!(status.code(), Some(0..=2)), "case {case} ({name}): {status}: {err}");
        assert!(!err.contains("panicked"), "case {case} ({name}): {err}");
    }
    fs::remove_dir_all(&dir).unwrap();
}
