//! The huge page pools a trace's header asks for, set for one kernel run and restored
//! afterwards (mounts are made inside the run's own mount namespace: see [`crate::jail`]).
//!
//! The pools are global: a run that sets them holds the global-settings lock exclusively
//! (every other run holds it shared), so no two runs see each other's pages. Each change is
//! journaled before it is made ([`crate::safety::set_setting`]), so a run that is killed is
//! undone by the next one.

use crate::OracleError;
use crate::safety::{SettingsLock, restore_settings, set_setting, settings_lock};
use std::fs;
use std::path::{Path, PathBuf};
use vmaspace_trace::HugePagePools;

/// The sysfs directory of the pool of one page size.
fn pool_dir(kib: u64) -> PathBuf {
    PathBuf::from(format!("/sys/kernel/mm/hugepages/hugepages-{kib}kB"))
}

fn read_count(path: &Path) -> Result<u64, OracleError> {
    let text = fs::read_to_string(path).map_err(|e| OracleError::Io(format!("{}: {e}", path.display())))?;
    text.trim().parse().map_err(|_| OracleError::Io(format!("{}: `{}` is not a number", path.display(), text.trim())))
}

/// The machine's memory (`MemAvailable` of /proc/meminfo) in KiB.
fn mem_available_kib() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Memory a run's pools may take: the machine's available memory less 2 GiB for everything else.
const HEADROOM_KIB: u64 = 2 << 20;

/// The huge page pools as a run found them; restored on drop. Holds the global-settings lock.
#[derive(Debug)]
pub struct HugePageGuard {
    _lock: SettingsLock,
    changed: bool,
}

impl HugePageGuard {
    /// Takes the global-settings lock: exclusive and with the pools set to `pools` when given,
    /// shared otherwise. Pools larger than the machine's available memory allows are refused
    /// before anything changes.
    pub fn new(pools: Option<HugePagePools>) -> Result<HugePageGuard, OracleError> {
        if let Some(p) = pools {
            let want = p.pages_2m.saturating_mul(2048).saturating_add(p.pages_1g.saturating_mul(1 << 20));
            let avail = mem_available_kib().unwrap_or(0);
            if want > avail.saturating_sub(HEADROOM_KIB) {
                return Err(OracleError::Io(format!(
                    "`# hugepages:` asks for {} MiB of huge pages; this machine has {} MiB available and keeps {} MiB for itself",
                    want >> 10,
                    avail >> 10,
                    HEADROOM_KIB >> 10
                )));
            }
        }
        let lock = settings_lock(pools.is_some())?;
        let mut guard = HugePageGuard { _lock: lock, changed: false };
        if let Some(p) = pools {
            guard.changed = true;
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
        set_setting(&nr, &old.to_string(), &n.to_string())?;
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
        if self.changed {
            restore_settings();
        }
    }
}
