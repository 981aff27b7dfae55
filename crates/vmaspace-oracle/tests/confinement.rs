//! The kernel side is confined by construction: whatever path a trace names, the executor
//! resolves it inside its own root, so it cannot create, write, truncate or delete anything
//! outside. These tests run escape attempts straight through the oracle (no model, no CLI
//! pre-check in the way) against a canary directory they create, and a canary file in the real
//! `/dev/shm`, and check both byte for byte afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use vmaspace_oracle::{RunOptions, run};
use vmaspace_trace::{Outcome, parse_trace};

/// Root on Linux: the oracle can run here.
fn usable() -> bool {
    let root = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if !root {
        eprintln!("\n!!!!! SKIPPED confinement test: not root, the oracle cannot run !!!!!\n");
    }
    root
}

/// A canary directory with one file, removed on drop.
struct Canary {
    dir: PathBuf,
}

const CONTENT: &[u8] = b"canary: must stay byte for byte\n";

impl Canary {
    fn new(name: &str) -> Canary {
        let dir = std::env::temp_dir().join(format!("vmaspace-canary-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("target"), CONTENT).unwrap();
        Canary { dir }
    }
    fn target(&self) -> String {
        self.dir.join("target").display().to_string()
    }
    /// The directory holds exactly its one file, unchanged.
    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("target")], "files appeared in {}", self.dir.display());
        assert_eq!(fs::read(self.dir.join("target")).unwrap(), CONTENT);
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A file in the real `/dev/shm` the test creates (and removes).
struct ShmCanary(PathBuf);

impl ShmCanary {
    fn new() -> ShmCanary {
        let p = PathBuf::from(format!("/dev/shm/vmaspace-canary-{}", std::process::id()));
        fs::write(&p, CONTENT).unwrap();
        ShmCanary(p)
    }
    fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for ShmCanary {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn run_trace(text: &str) -> Vec<Option<Outcome>> {
    let trace = parse_trace(text).unwrap();
    run(&trace, &RunOptions::default()).unwrap().results
}

const ENOENT: Outcome = Outcome::Error(2);

#[test]
fn absolute_relative_and_proc_paths_stay_inside_the_run() {
    if !usable() {
        return;
    }
    let canary = Canary::new("paths");
    let t = canary.target();
    let dir = canary.dir.display().to_string();
    let parent_hops = "../".repeat(Path::new(&dir).components().count() + 2);
    let text = format!(
        "unlink(\"{t}\")\n\
         openat(AT_FDCWD, \"{t}\", O_RDWR|O_TRUNC)\n\
         open(\"{t}\", O_WRONLY|O_TRUNC)\n\
         openat(AT_FDCWD, \"{dir}/new\", O_RDWR|O_CREAT, 0600)\n\
         openat(AT_FDCWD, \"{parent_hops}{}/new2\", O_RDWR|O_CREAT, 0600)\n\
         unlink(\"{parent_hops}{}/target\")\n\
         openat(AT_FDCWD, \"/proc/1/root{t}\", O_RDWR|O_TRUNC)\n\
         openat(AT_FDCWD, \"/proc/self/root{t}\", O_RDWR|O_TRUNC)\n\
         unlink(\"/dev/null\")\n\
         unlink(\"/dev/zero\")\n",
        dir.trim_start_matches('/'),
        dir.trim_start_matches('/'),
    );
    let results = run_trace(&text);
    canary.assert_untouched();
    // Every path named something the run's root does not have (the devices are mount points).
    assert_eq!(&results[..8], &[Some(ENOENT); 8], "{results:?}");
    assert_eq!(results[8], Some(Outcome::Error(16)), "unlink(/dev/null) is EBUSY: {results:?}");
    assert!(Path::new("/dev/null").exists() && Path::new("/dev/zero").exists());
}

#[test]
fn dev_shm_is_private_to_each_run() {
    if !usable() {
        return;
    }
    let shm = ShmCanary::new();
    let name = shm.name();
    // The run does not see the machine's file, may create its own of that name, and unlinks it.
    let text = format!(
        "openat(AT_FDCWD, \"/dev/shm/{name}\", O_RDWR)\n\
         openat(AT_FDCWD, \"/dev/shm/{name}\", O_RDWR|O_CREAT|O_TRUNC, 0600)\n\
         ftruncate(3, 0x1000)\n\
         unlink(\"/dev/shm/{name}\")\n"
    );
    let results = run_trace(&text);
    assert_eq!(results, vec![Some(ENOENT), Some(Outcome::Value(3)), Some(Outcome::Value(0)), Some(Outcome::Value(0))]);
    assert_eq!(fs::read(&shm.0).unwrap(), CONTENT, "the machine's /dev/shm file changed");
    // Two runs naming one file do not meet: each starts without it.
    assert_eq!(run_trace(&format!("openat(AT_FDCWD, \"/dev/shm/{name}\", O_RDWR)\n")), vec![Some(ENOENT)]);
}

#[test]
fn mounts_are_made_and_undone_inside_the_run() {
    if !usable() {
        return;
    }
    let mounts_before = fs::read_to_string("/proc/self/mounts").unwrap();
    let text = "# mount: e=ext4\n# mount: o=overlay\n# mount: t=tmpfs\n# mount: h=hugetlbfs\n\
                openat(AT_FDCWD, \"e/f\", O_RDWR|O_CREAT, 0600)\n\
                openat(AT_FDCWD, \"o/f\", O_RDWR|O_CREAT, 0600)\n\
                openat(AT_FDCWD, \"t/f\", O_RDWR|O_CREAT, 0600)\n\
                maps()\n";
    let results = run_trace(text);
    assert_eq!(&results[..3], &[Some(Outcome::Value(3)), Some(Outcome::Value(4)), Some(Outcome::Value(5))]);
    // Nothing of the run was ever mounted where this process can see it.
    assert_eq!(fs::read_to_string("/proc/self/mounts").unwrap(), mounts_before);
    // The run directory is gone once the run returns.
    let runs: Vec<_> = fs::read_dir("/var/lib/vmaspace/runs")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{}-", std::process::id())))
        .collect();
    assert!(runs.is_empty(), "run directories left: {runs:?}");
}

#[test]
fn maps_show_paths_as_the_executor_sees_them() {
    if !usable() {
        return;
    }
    let text = "openat(AT_FDCWD, \"f\", O_RDWR|O_CREAT, 0600)\nftruncate(3, 0x1000)\n\
                mmap(0x100000000000, 0x1000, PROT_READ, MAP_SHARED, 3, 0)\nmaps()\n";
    let trace = parse_trace(text).unwrap();
    let r = run(&trace, &RunOptions::default()).unwrap();
    let maps = r.texts[3].clone().unwrap();
    let cwd = r.cwd.display().to_string();
    assert!(maps.contains(&format!(" {cwd}/f\n")), "{maps}");
    assert!(maps.contains(&format!(" {}\n", vmaspace_oracle::EXECUTOR_PATH)), "{maps}");
    assert!(!maps.contains("/var/lib/vmaspace"), "{maps}");
}
