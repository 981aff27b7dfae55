//! The limits of one kernel run, enforced from outside while the oracle waits for an answer:
//! the resident memory of the run's processes, the run's wall-clock time and the machine's
//! available memory. Past a limit, the executor's process group is killed. (RLIMIT_AS or
//! RLIMIT_DATA would change what mmap returns; the executor's CPU time is limited by
//! RLIMIT_CPU.) No thread is involved, so a run under a tiny `vm.max_map_count` still works.

use crate::{Limits, OracleError};
use std::time::Instant;

/// Below this much available memory on the machine, the run is stopped whatever its own size.
const MACHINE_FLOOR_MIB: u64 = 512;

/// The limits of one run and the processes they cover.
#[derive(Debug)]
pub(crate) struct Watchdog {
    pgid: i32,
    pids: Vec<u32>,
    limits: Limits,
    start: Instant,
    checks: u64,
}

/// A `Name:  N kB` field of `/proc/PID/status` (or smaps_rollup), 0 when absent.
fn kib_field(text: &str, name: &str) -> u64 {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

/// Memory a process holds, in KiB: its resident pages and its page tables (a guard install or
/// populate over a huge range costs page tables the resident size does not show), 0 when it
/// is gone.
fn held_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    kib_field(&status, "VmRSS:") + kib_field(&status, "VmPTE:")
}

/// Page tables of a process, in KiB.
fn page_tables_kib(pid: u32) -> u64 {
    kib_field(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(), "VmPTE:")
}

/// Proportional set size of a process in KiB (`/proc/PID/smaps_rollup`): shared pages (a
/// fork's copy-on-write memory) counted once across the processes that share them.
fn pss_kib(pid: u32) -> u64 {
    kib_field(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default(), "Pss:")
}

fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib >> 10)
}

impl Watchdog {
    /// Watches process group `pgid`, whose first process is `pid`.
    pub fn new(pgid: i32, pid: u32, limits: Limits) -> Watchdog {
        Watchdog { pgid, pids: vec![pid], limits, start: Instant::now(), checks: 0 }
    }

    /// Watches a forked process too.
    pub fn add(&mut self, pid: u32) {
        self.pids.push(pid);
    }

    /// Checks the limits (called while an answer is slow to come); past one, kills the run's
    /// processes and says why.
    pub fn check(&mut self) -> Result<(), OracleError> {
        self.checks += 1;
        let mut rss_mib = self.pids.iter().map(|&p| held_kib(p)).sum::<u64>() >> 10;
        if rss_mib > self.limits.memory_mib {
            // Resident sizes count a fork's shared pages in every process: count them once.
            rss_mib = self.pids.iter().map(|&p| pss_kib(p) + page_tables_kib(p)).sum::<u64>() >> 10;
        }
        let why = if let Some(sig) = crate::safety::interrupted() {
            Some(format!("interrupted by signal {sig}"))
        } else if rss_mib > self.limits.memory_mib {
            Some(format!("kernel side exceeded {} MB (its processes held {rss_mib} MB)", self.limits.memory_mib))
        } else if self.start.elapsed().as_secs() > self.limits.seconds {
            Some(format!("kernel side exceeded its time limit of {} s", self.limits.seconds))
        } else if self.checks.is_multiple_of(8)
            && let Some(avail) = mem_available_mib()
            && avail < MACHINE_FLOOR_MIB
        {
            Some(format!("the machine is down to {avail} MB of available memory (the kernel side held {rss_mib} MB)"))
        } else {
            None
        };
        match why {
            Some(why) => {
                // SAFETY: kill has no memory preconditions.
                unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
                Err(OracleError::Limit(why))
            }
            None => Ok(()),
        }
    }
}
