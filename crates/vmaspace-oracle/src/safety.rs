//! What keeps a root run of the oracle from harming the machine: a private state directory no
//! other user can touch, one lock around global settings, a journal of every global setting
//! changed (written before the change, so that the next run restores it after a crash or
//! SIGKILL), the sweep of run directories a killed run left behind, and SIGINT/SIGTERM handling
//! that stops the runs in progress so that they undo everything before the program exits.
//!
//! # Invariants
//!
//! - [`state_dir`] is a real directory (no symlink), owned by root, with no group or other
//!   access, below ancestors only root can write to; everything the oracle creates lies in it.
//! - A journal entry exists for a setting from before its first change until it is restored,
//!   and always holds the value from before the first change (a value a crashed run left is
//!   never taken for the original).
//! - Every run directory names its owner (pid and start time): a directory whose owner is gone
//!   is removed by the next run, never one of a live run.

use crate::OracleError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Where the oracle keeps its locks, journal and run directories. It lies on the root file
/// system (runs' working directories must be on it, as the scenarios were recorded there) and
/// below directories only root may write to, unlike `/tmp`.
pub const STATE_DIR: &str = "/var/lib/vmaspace";

fn io_err(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> OracleError {
    move |e| OracleError::Io(format!("{what}: {e}"))
}

/// Checks that `p` is a directory, no symlink, owned by root and writable by nobody else.
fn check_private(p: &Path, allow_world_readable: bool) -> Result<(), OracleError> {
    let m = fs::symlink_metadata(p).map_err(io_err(p.display()))?;
    let mask = if allow_world_readable { 0o022 } else { 0o077 };
    if !m.file_type().is_dir() || m.uid() != 0 || m.mode() & mask != 0 {
        return Err(OracleError::Io(format!(
            "{} is not a directory owned by root that only root can {} (mode {:o}, uid {}): refusing to use it",
            p.display(),
            if allow_world_readable { "write to" } else { "read" },
            m.mode() & 0o7777,
            m.uid()
        )));
    }
    Ok(())
}

/// Creates (mode 0700) or checks a private directory; never follows a symlink.
fn private_dir(p: &Path) -> Result<(), OracleError> {
    match fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => fs::set_permissions(p, fs::Permissions::from_mode(0o700)).map_err(io_err(p.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(OracleError::Io(format!("{}: {e}", p.display()))),
    }
    check_private(p, false)
}

/// The oracle's private state directory, created on first use. Fails unless this process is
/// root and every ancestor of [`STATE_DIR`] is writable by root only.
pub fn state_dir() -> Result<PathBuf, OracleError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(OracleError::Io(
            "the kernel side must run as root (it mounts, sets huge page pools and maps page 0)".into(),
        ));
    }
    let dir = PathBuf::from(STATE_DIR);
    for a in dir.ancestors().skip(1) {
        check_private(a, true)?;
    }
    private_dir(&dir)?;
    private_dir(&dir.join("runs"))?;
    Ok(dir)
}

/// Opens (creating, never truncating, never through a symlink) a file in the state directory.
fn state_file(name: &str) -> Result<File, OracleError> {
    let p = state_dir()?.join(name);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&p)
        .map_err(io_err(p.display()))
}

/// The lock every run takes around the machine's global settings (huge page pools,
/// `vm.max_map_count`): shared to run with the settings as they are, exclusive to change them.
/// Tests that change a setting take it too, through [`settings_lock`], and hand it to the
/// `vmaspace` they start with [`SettingsLock::hand_to`].
#[derive(Debug)]
pub struct SettingsLock {
    file: File,
    /// Copies of the lock's file descriptor handed to child processes.
    handed: Vec<std::os::fd::OwnedFd>,
}

/// The environment variable naming a descriptor of the global-settings lock that a parent
/// holding the lock handed down ([`SettingsLock::hand_to`]).
pub const LOCK_FD_ENV: &str = "VMASPACE_SETTINGS_LOCK_FD";

/// The lock a parent handed down, if the descriptor it names really is the lock file: the
/// parent holds the lock for this process, which must then neither take it again (that would
/// wait for the parent) nor replay the parent's journal.
fn inherited_lock() -> Option<File> {
    use std::os::fd::AsFd;
    let fd: i32 = std::env::var(LOCK_FD_ENV).ok()?.parse().ok()?;
    // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: `fd` is open; the borrow does not outlive this call and is only duplicated.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let file = File::from(borrowed.as_fd().try_clone_to_owned().ok()?);
    let ours = fs::metadata(Path::new(STATE_DIR).join("global-settings.lock")).ok()?;
    let theirs = file.metadata().ok()?;
    (ours.dev() == theirs.dev() && ours.ino() == theirs.ino()).then_some(file)
}

/// Takes the global-settings lock (blocking), shared or exclusive. A stale journal (left by a
/// run that was killed) is replayed first, under the exclusive lock.
pub fn settings_lock(exclusive: bool) -> Result<SettingsLock, OracleError> {
    if let Some(file) = inherited_lock() {
        return Ok(SettingsLock { file, handed: Vec::new() });
    }
    recover()?;
    let file = state_file("global-settings.lock")?;
    let r = if exclusive { file.lock() } else { file.lock_shared() };
    r.map_err(io_err("locking the global-settings lock"))?;
    Ok(SettingsLock { file, handed: Vec::new() })
}

impl SettingsLock {
    /// Lets a child process (a `vmaspace` a test starts while it holds the lock) run under this
    /// lock: it inherits a descriptor of it, named by [`LOCK_FD_ENV`].
    pub fn hand_to(&mut self, cmd: &mut std::process::Command) -> Result<(), OracleError> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: F_DUPFD makes a new descriptor without FD_CLOEXEC, owned from here on.
        let fd = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_DUPFD, 3) };
        if fd < 0 {
            return Err(OracleError::Io(format!("dup: {}", std::io::Error::last_os_error())));
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        self.handed.push(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        cmd.env(LOCK_FD_ENV, fd.to_string());
        Ok(())
    }
}

/// The name of the journal of changed settings in the state directory.
const JOURNAL: &str = "journal";

/// Process groups of running executors, for the signal handler to kill (a fixed table of
/// atomics: a signal handler may not lock or allocate). 0 is a free slot.
static GROUPS: [AtomicI32; 256] = [const { AtomicI32::new(0) }; 256];
/// The signal that interrupted this program, 0 if none.
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);
/// Serialises journal writes within this process.
static JOURNAL_LOCK: Mutex<()> = Mutex::new(());

fn journal_lock() -> MutexGuard<'static, ()> {
    JOURNAL_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers an executor process group, to be killed if the program is interrupted.
pub(crate) fn register_group(pgid: i32) {
    for slot in &GROUPS {
        if slot.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            break;
        }
    }
    if INTERRUPTED.load(Ordering::SeqCst) != 0 {
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Forgets a process group whose processes are gone.
pub(crate) fn unregister_group(pgid: i32) {
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The signal (SIGINT, SIGTERM or SIGHUP) that interrupted this program, if one did. A program
/// that called [`install_signal_handlers`] checks it between traces and exits with 128 + it
/// once its runs have returned (and so restored what they changed).
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(sig, Ordering::SeqCst);
    for slot in &GROUPS {
        let g = slot.load(Ordering::SeqCst);
        if g > 0 {
            // SAFETY: kill is async-signal-safe and has no memory preconditions.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
    }
}

/// Makes SIGINT, SIGTERM and SIGHUP stop the runs in progress: the handler kills their
/// executors, each run then fails and undoes what it changed (its mounts go with its mount
/// namespace, its settings are restored from the journal, its directory is removed), and the
/// program, seeing [`interrupted`], exits with 128 + the signal (130, 143, 129). No thread is
/// started.
pub fn install_signal_handlers() -> Result<(), OracleError> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: an all-zero sigaction is valid; the handler only stores to atomics and calls
        // kill, both async-signal-safe.
        let r = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if r != 0 {
            return Err(OracleError::Io(format!("sigaction: {}", std::io::Error::last_os_error())));
        }
    }
    Ok(())
}

/// Reads the journal: (path, original value) in the order they were changed.
fn read_journal(dir: &Path) -> Vec<(PathBuf, String)> {
    let text = fs::read_to_string(dir.join(JOURNAL)).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, path)| path.starts_with("/proc/sys/") || path.starts_with("/sys/kernel/mm/hugepages/"))
        .map(|(value, path)| (PathBuf::from(path), value.to_string()))
        .collect()
}

/// Sets a global setting (a sysctl or sysfs file), first writing its current value into the
/// journal unless the journal already holds one for it. The caller holds the exclusive
/// [`settings_lock`]. [`restore_settings`] undoes every change.
pub fn set_setting(path: &Path, original: &str, value: &str) -> Result<(), OracleError> {
    let dir = state_dir()?;
    let _g = journal_lock();
    if !read_journal(&dir).iter().any(|(p, _)| p == path) {
        let mut j = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(JOURNAL))
            .map_err(io_err("the settings journal"))?;
        writeln!(j, "{} {}", original.trim(), path.display()).map_err(io_err("the settings journal"))?;
        j.sync_all().map_err(io_err("the settings journal"))?;
    }
    fs::write(path, format!("{value}\n")).map_err(|e| {
        OracleError::Io(format!("cannot set {} to {value}: {e} (the oracle must run as root)", path.display()))
    })
}

/// Writes every journaled setting back (last changed first) and removes the journal. Returns
/// what was restored, as `path=value`.
pub fn restore_settings() -> Vec<String> {
    let Ok(dir) = state_dir() else { return Vec::new() };
    let _g = journal_lock();
    restore_locked(&dir)
}

fn restore_locked(dir: &Path) -> Vec<String> {
    let entries = read_journal(dir);
    let mut done = Vec::new();
    let mut failed = false;
    for (path, value) in entries.iter().rev() {
        match fs::write(path, format!("{value}\n")) {
            Ok(()) => done.push(format!("{}={value}", path.display())),
            Err(e) => {
                failed = true;
                eprintln!("vmaspace: could not restore {} to {value}: {e}", path.display());
            }
        }
    }
    if !failed {
        let _ = fs::remove_file(dir.join(JOURNAL));
    }
    done
}

/// The start time of a process (field 22 of its stat), to tell it from a later one with its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process, as run directories name their owner.
fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid} {}\n", start_time(pid).unwrap_or(0))
}

fn owner_alive(run: &Path) -> bool {
    let Ok(tag) = fs::read_to_string(run.join("owner")) else {
        // A run directory is created with its owner file in place; one without is being made
        // or is broken: leave it unless it is old.
        return fs::symlink_metadata(run)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() < 60));
    };
    let mut it = tag.split_whitespace().map(|w| w.parse::<u64>().ok());
    match (it.next().flatten(), it.next().flatten()) {
        (Some(pid), Some(start)) => start_time(pid as u32) == Some(start),
        _ => false,
    }
}

/// Removes a directory tree that this oracle made, never following a symlink and never
/// entering another file system (a mount point inside it is left alone, and reported).
pub(crate) fn remove_tree(top: &Path) -> Result<(), String> {
    let m = match fs::symlink_metadata(top) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", top.display())),
    };
    remove_on_device(top, m.dev())
}

fn remove_on_device(p: &Path, dev: u64) -> Result<(), String> {
    let m = fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if m.dev() != dev {
        return Err(format!("{} is on another file system (a mount point): left in place", p.display()));
    }
    if m.file_type().is_dir() {
        let entries = fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mut first_err = None;
        for e in entries.flatten() {
            if let Err(err) = remove_on_device(&e.path(), dev) {
                first_err.get_or_insert(err);
            }
        }
        if let Some(err) = first_err {
            return Err(err);
        }
        fs::remove_dir(p).map_err(|e| format!("{}: {e}", p.display()))
    } else {
        fs::remove_file(p).map_err(|e| format!("{}: {e}", p.display()))
    }
}

/// A run's private directory in the state directory, removed on drop (and by the next run if
/// this process is killed first).
#[derive(Debug)]
pub(crate) struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new() -> Result<RunDir, OracleError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let runs = state_dir()?.join("runs");
        loop {
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = runs.join(format!("{}-{n}-{nanos}", std::process::id()));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    // Written whole and renamed into place, so that a concurrent recover() never
                    // reads a partial owner (and takes a live run for a dead one).
                    let tmp = path.join(".owner");
                    fs::write(&tmp, owner_tag()).map_err(io_err(path.display()))?;
                    fs::rename(&tmp, path.join("owner")).map_err(io_err(path.display()))?;
                    return Ok(RunDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(OracleError::Io(format!("{}: {e}", path.display()))),
            }
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.path) {
            eprintln!("vmaspace oracle: could not remove run directory: {e}");
        }
    }
}

/// Undoes what runs that were killed left behind: restores the journaled settings (under the
/// exclusive settings lock) and removes run directories whose owner is gone, saying so on
/// stderr. Called before every run.
pub fn recover() -> Result<(), OracleError> {
    let dir = state_dir()?;
    if dir.join(JOURNAL).exists() && inherited_lock().is_none() {
        let lock = state_file("global-settings.lock")?;
        // The journal of a live run is under its exclusive lock: waiting for the lock waits for
        // that run to restore it itself.
        lock.lock().map_err(io_err("locking the global-settings lock"))?;
        if dir.join(JOURNAL).exists() {
            let done = {
                let _g = journal_lock();
                restore_locked(&dir)
            };
            if !done.is_empty() {
                eprintln!("vmaspace: restored settings an earlier run left changed: {}", done.join(", "));
            }
        }
    }
    let Ok(entries) = fs::read_dir(dir.join("runs")) else { return Ok(()) };
    let ours = format!("{}-", std::process::id());
    for e in entries.flatten() {
        let p = e.path();
        // This process's own runs remove themselves; another's only once its owner is gone.
        if e.file_name().to_string_lossy().starts_with(&ours) || owner_alive(&p) {
            continue;
        }
        match remove_tree(&p) {
            Ok(()) => eprintln!("vmaspace: removed {}, left by an earlier run that was stopped", p.display()),
            Err(err) => eprintln!("vmaspace: could not remove a stale run directory: {err}"),
        }
    }
    Ok(())
}

/// What a program must do before its first kernel run: SIGINT/SIGTERM handling
/// ([`install_signal_handlers`]) and the recovery of what killed runs left ([`recover`]).
pub fn prepare() -> Result<(), OracleError> {
    install_signal_handlers()?;
    recover()
}
