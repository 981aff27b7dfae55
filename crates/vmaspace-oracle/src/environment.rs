//! The environment a trace's header asks for, made real for one kernel run: file systems
//! mounted in the scratch working directory and the huge page pools set to the asked sizes.
//! Everything is undone when the guards drop, also when the run fails.
//!
//! The pools are global: a run that sets them holds an exclusive lock on [`HUGEPAGES_LOCK`]
//! (every other run holds it shared), so no two runs see each other's pages. Mounts are
//! private to the run's scratch directory and need no lock.

use crate::{OracleError, Scratch};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use vmaspace_trace::{HugePagePools, MountFs, Setup};

/// The lock file that serialises changes of the huge page pools.
pub const HUGEPAGES_LOCK: &str = "/tmp/vmaspace/hugepages.lock";

/// The sysfs directory of the pool of one page size.
fn pool_dir(kib: u64) -> PathBuf {
    PathBuf::from(format!("/sys/kernel/mm/hugepages/hugepages-{kib}kB"))
}

fn read_count(path: &Path) -> Result<u64, OracleError> {
    let text = fs::read_to_string(path).map_err(|e| OracleError::Io(format!("{}: {e}", path.display())))?;
    text.trim().parse().map_err(|_| OracleError::Io(format!("{}: `{}` is not a number", path.display(), text.trim())))
}

fn write_count(path: &Path, n: u64) -> Result<(), OracleError> {
    fs::write(path, format!("{n}\n")).map_err(|e| {
        OracleError::Io(format!("cannot set {} to {n}: {e} (the oracle must run as root)", path.display()))
    })
}

/// The huge page pools as a run found them; restored on drop.
#[derive(Debug)]
pub struct HugePageGuard {
    _lock: File,
    saved: Vec<(PathBuf, u64)>,
}

impl HugePageGuard {
    /// Takes the pool lock: exclusive and with the pools set to `pools` when given, shared
    /// otherwise.
    pub fn new(pools: Option<HugePagePools>) -> Result<HugePageGuard, OracleError> {
        fs::create_dir_all("/tmp/vmaspace").map_err(|e| OracleError::Io(format!("/tmp/vmaspace: {e}")))?;
        let lock = File::create(HUGEPAGES_LOCK).map_err(|e| OracleError::Io(format!("{HUGEPAGES_LOCK}: {e}")))?;
        let locked = if pools.is_some() { lock.lock() } else { lock.lock_shared() };
        locked.map_err(|e| OracleError::Io(format!("locking {HUGEPAGES_LOCK}: {e}")))?;
        let mut guard = HugePageGuard { _lock: lock, saved: Vec::new() };
        if let Some(p) = pools {
            guard.set(2048, p.pages_2m)?;
            guard.set(1 << 20, p.pages_1g)?;
        }
        Ok(guard)
    }

    /// Sets the pool of `kib` pages to `n` and checks that the kernel gave all of them, free.
    fn set(&mut self, kib: u64, n: u64) -> Result<(), OracleError> {
        let dir = pool_dir(kib);
        let nr = dir.join("nr_hugepages");
        if !nr.exists() {
            return Err(OracleError::Io(format!(
                "this kernel has no pool of {kib} KiB huge pages ({})",
                dir.display()
            )));
        }
        // The persistent pool: pages a process still holds past an earlier restore show up in
        // nr_hugepages as surplus, and must not become the size to restore.
        let old = read_count(&nr)?.saturating_sub(read_count(&dir.join("surplus_hugepages"))?);
        self.saved.push((nr.clone(), old));
        write_count(&nr, n)?;
        let (got, free, resv) =
            (read_count(&nr)?, read_count(&dir.join("free_hugepages"))?, read_count(&dir.join("resv_hugepages"))?);
        if got != n {
            return Err(OracleError::Io(format!(
                "the kernel reserved {got} of the {n} huge pages of {kib} KiB asked for"
            )));
        }
        if free != n || resv != 0 {
            return Err(OracleError::Io(format!(
                "{kib} KiB huge pages are in use by other processes ({free} of {n} free, {resv} reserved)"
            )));
        }
        Ok(())
    }
}

impl Drop for HugePageGuard {
    fn drop(&mut self) {
        for (path, old) in self.saved.iter().rev() {
            if let Err(e) = write_count(path, *old) {
                eprintln!("vmaspace oracle: could not restore {}: {e}", path.display());
            }
        }
    }
}

/// The file systems mounted for one run; unmounted (lazily, so mappings still held by a dying
/// executor do not block it) on drop, before the scratch directories go.
#[derive(Debug)]
pub struct MountGuard {
    mounted: Vec<PathBuf>,
    /// Overlay layers and ext4 images, outside the working directory.
    layers: Option<Scratch>,
}

fn run_command(cmd: &mut Command, what: &str) -> Result<(), OracleError> {
    let out = cmd.output().map_err(|e| OracleError::Io(format!("{what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(OracleError::Io(format!("{what}: {} ({})", stderr.trim(), out.status)))
}

impl MountGuard {
    /// Mounts every file system `setup` names below `cwd`.
    pub fn new(setup: &Setup, cwd: &Path) -> Result<MountGuard, OracleError> {
        let mut guard = MountGuard { mounted: Vec::new(), layers: None };
        for (i, spec) in setup.mounts.iter().enumerate() {
            spec.check_relative().map_err(OracleError::Io)?;
            let dir = cwd.join(&spec.dir);
            fs::create_dir_all(&dir).map_err(|e| OracleError::Io(format!("{}: {e}", dir.display())))?;
            let what = format!("cannot mount {spec} (the oracle must run as root)");
            let mut cmd = Command::new("mount");
            match spec.fs {
                MountFs::Tmpfs => cmd.args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"]),
                MountFs::Hugetlbfs => cmd.args(["-t", "hugetlbfs", "none"]),
                MountFs::Ext4 => {
                    let image = guard.ext4_image(i)?;
                    cmd.args(["-t", "ext4", "-o", "loop"]).arg(image)
                }
                MountFs::Overlay => {
                    let opts = guard.overlay_layers(i)?;
                    cmd.args(["-t", "overlay", "overlay", "-o"]).arg(opts)
                }
            };
            run_command(cmd.arg(&dir), &what)?;
            guard.mounted.push(dir);
        }
        Ok(guard)
    }

    fn layers(&mut self) -> Result<PathBuf, OracleError> {
        if self.layers.is_none() {
            self.layers = Some(Scratch::new()?);
        }
        Ok(self.layers.as_ref().map(|s| s.0.clone()).unwrap_or_default())
    }

    /// A fresh 32 MiB ext4 image.
    fn ext4_image(&mut self, i: usize) -> Result<PathBuf, OracleError> {
        let image = self.layers()?.join(format!("ext4-{i}.img"));
        let f = File::create(&image).map_err(|e| OracleError::Io(format!("{}: {e}", image.display())))?;
        f.set_len(32 << 20).map_err(|e| OracleError::Io(format!("{}: {e}", image.display())))?;
        run_command(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image), "mkfs.ext4 (package e2fsprogs)")?;
        Ok(image)
    }

    /// Empty lower, upper and work directories; returns the mount options naming them.
    fn overlay_layers(&mut self, i: usize) -> Result<String, OracleError> {
        let base = self.layers()?.join(format!("overlay-{i}"));
        let mut opts = Vec::new();
        for layer in ["lower", "upper", "work"] {
            let d = base.join(layer);
            fs::create_dir_all(&d).map_err(|e| OracleError::Io(format!("{}: {e}", d.display())))?;
            opts.push(format!("{layer}dir={}", d.display()));
        }
        Ok(opts.join(","))
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        for dir in self.mounted.iter().rev() {
            if let Err(e) = run_command(Command::new("umount").arg("-l").arg(dir), "umount") {
                eprintln!("vmaspace oracle: could not unmount {}: {e}", dir.display());
            }
        }
        self.mounted.clear();
        drop(self.layers.take());
    }
}
