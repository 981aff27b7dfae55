//! Executing trace calls on the model: one trace line, one method call.

use std::collections::HashMap;
use std::sync::Arc;
use vmaspace::fault::FaultSignal;
use vmaspace::{AddressSpace, Errno, Settings, Vfs};
use vmaspace_trace::{Call, Line, Outcome, Scope, Signal, Trace};

/// Why a trace cannot run on the model (exit status 2).
#[derive(Debug)]
pub struct Unusable {
    pub line: usize,
    /// The column of the argument at fault, where one is.
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {c}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// The 1-based column of a call's path argument in its source line, found as the quoted string.
fn path_column(source: Option<&str>, lineno: usize, call: &Call) -> Option<usize> {
    let path = match call {
        Call::Openat { path, .. } | Call::Open { path, .. } | Call::Unlink { path } => path,
        _ => return None,
    };
    let line = source?.lines().nth(lineno.checked_sub(1)?)?;
    let quoted = format!("\"{}\"", String::from_utf8_lossy(path));
    line.find(&quoted).map(|i| line[..i].chars().count() + 1)
}

/// Calls the model does not do yet, given the absolute mount points it has besides `/dev/shm`.
/// The kernel side refuses nothing itself (it runs confined: see `vmaspace_oracle::jail`),
/// so `check`, `record` and `fuzz` refuse these before it runs, and both sides stay on the
/// files the model has.
pub fn not_implemented(call: &Call, mounts: &[ModelMount]) -> Option<&'static str> {
    match call {
        Call::Openat { path, .. } | Call::Open { path, .. } | Call::Unlink { path } if has_dotdot(path) => {
            Some("paths with `..` components")
        }
        Call::Openat { path, .. } | Call::Open { path, .. } | Call::Unlink { path }
            if outside_model_fs(path, mounts) =>
        {
            Some("paths outside the working directory other than /dev/zero, /dev/null and files in /dev/shm or a mount")
        }
        Call::Unlink { path } if path == b"/dev/zero" || path == b"/dev/null" => Some("unlinking a device"),
        _ => None,
    }
}

/// Whether a path has a `..` component (it could leave the working directory or a mount).
fn has_dotdot(path: &[u8]) -> bool {
    path.split(|b| *b == b'/').any(|c| c == b"..")
}

/// Absolute paths the model has: the devices, and files directly in `/dev/shm` (tmpfs) or in
/// a mount point.
fn outside_model_fs(path: &[u8], mounts: &[ModelMount]) -> bool {
    let in_mount = |m: &ModelMount| {
        path.strip_prefix(m.dir.as_slice())
            .and_then(|rest| rest.strip_prefix(b"/"))
            .is_some_and(|name| !name.is_empty() && !name.contains(&b'/') && name != b".." && name != b".")
    };
    path.first() == Some(&b'/')
        && path != b"/dev/zero"
        && path != b"/dev/null"
        && !is_dev_shm_file(path)
        && !mounts.iter().any(in_mount)
}

/// A file directly in `/dev/shm` (no further directories, no `..`).
pub fn is_dev_shm_file(path: &[u8]) -> bool {
    path.strip_prefix(b"/dev/shm/")
        .is_some_and(|name| !name.is_empty() && !name.contains(&b'/') && name != b".." && name != b".")
}

/// Checks a trace before anything runs: calls the model does not do, `[pid N]` lines for
/// processes no fork created, lines for processes that have exited.
pub fn check_runnable(trace: &Trace, mounts: &[ModelMount], source: Option<&str>) -> Result<(), Unusable> {
    let labels = trace.fork_labels();
    let mut forks = labels.iter();
    let mut alive: Vec<Option<u32>> = vec![None];
    for line in &trace.lines {
        let bad = |m: String| Err(Unusable { line: line.lineno, column: None, message: m });
        if let Some(what) = not_implemented(&line.call, mounts) {
            return Err(Unusable {
                line: line.lineno,
                column: path_column(source, line.lineno, &line.call),
                message: format!("not implemented in the model yet: {what}"),
            });
        }
        if !alive.contains(&line.pid) {
            return match line.pid {
                Some(p) if labels.contains(&p) => bad(format!("[pid {p}] runs before its fork or after it exited")),
                Some(p) => bad(format!("[pid {p}] names no process a fork created")),
                None => bad("the first process has exited".into()),
            };
        }
        match line.call {
            Call::Fork { .. } => alive.push(forks.next().copied()),
            Call::ExitGroup { .. } => alive.retain(|p| *p != line.pid),
            _ => {}
        }
    }
    if labels.len() > vmaspace_oracle::MAX_FORKS {
        return Err(Unusable {
            line: 0,
            column: None,
            message: format!("a trace may fork at most {} times", vmaspace_oracle::MAX_FORKS),
        });
    }
    Ok(())
}

/// A mount the model is given: an absolute directory, a built-in file system type
/// (`vmaspace::drivers::file_system`) and the device its files show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMount {
    pub dir: Vec<u8>,
    pub fs: &'static str,
    pub dev: (u32, u32),
}

/// The model's mount for an absolute `DIR=FSTYPE`. Device numbers are distinct per mount and
/// above those the model uses itself; comparisons only see their equality.
pub fn model_mount(spec: &vmaspace_trace::MountSpec) -> ModelMount {
    use vmaspace_trace::MountFs;
    let minor = 0x40 + (spec.dir.bytes().map(u32::from).sum::<u32>() % 0x40);
    let major = if spec.fs == MountFs::Ext4 { 7 } else { 0 };
    ModelMount { dir: spec.dir.as_bytes().to_vec(), fs: spec.fs.name(), dev: (major, minor) }
}

/// The processes of one run of a trace.
#[derive(Debug)]
pub struct Model {
    pub procs: HashMap<Option<u32>, AddressSpace>,
    /// The labels of the children forks will create, in order.
    pub fork_labels: std::collections::VecDeque<u32>,
}

/// How to start the model.
#[derive(Debug, Clone, Default)]
pub struct ModelOptions {
    pub cwd: String,
    pub initial_maps: Option<String>,
    pub brk: Option<u64>,
    /// Extra mounts (`--mount DIR=tmpfs`).
    pub mounts: Vec<ModelMount>,
    /// Protection keys on or off; None: as on this machine.
    pub pkeys: Option<bool>,
    /// The huge page pools (`# hugepages:`); None: empty, as `nr_hugepages` is by default.
    pub hugepages: Option<vmaspace_trace::HugePagePools>,
    /// Files of a recording that existed before the program ran (read-only, with their real
    /// identity and size).
    pub outside_files: Vec<vmaspace_oracle::tracer::OutsideFile>,
    /// Directories besides the working directory that files may be created in (a recording's).
    pub directories: Vec<String>,
    /// The trace does not show every access (a recording's: see
    /// `Settings::accesses_visible`).
    pub hidden_accesses: bool,
    /// The trace will run on the kernel too: the model refuses first what the kernel could not
    /// hold or walk ([`KERNEL_PAGE_LIMIT`]).
    pub kernel_limits: bool,
}

/// The most pages (4 GiB of 4 KiB pages) a trace that runs on the kernel too may make present
/// in a process and its forks, or walk in one call (`Settings::max_present_pages`,
/// `Settings::max_call_pages`). The model alone needs no such limit for anonymous memory: it
/// keeps a range of like pages as one run.
pub const KERNEL_PAGE_LIMIT: u64 = 1 << 20;

impl Model {
    pub fn new(opts: &ModelOptions) -> Result<Model, String> {
        let vfs = Arc::new(Vfs::with_root_read_ahead(opts.cwd.as_bytes(), root_read_ahead_pages()));
        for m in &opts.mounts {
            vfs.mount_builtin(&m.dir, m.fs, m.dev).ok_or_else(|| format!("no file system type `{}`", m.fs))?;
        }
        for d in &opts.directories {
            vfs.add_directory(d.as_bytes());
        }
        for f in &opts.outside_files {
            use vmaspace::driver::{FileSystem, InodeState};
            let state = InodeState::linked(&f.real_path, f.size);
            let inode = vmaspace::drivers::regular::Ext4::default().new_inode(f.ino, f.dev, state);
            // Its pages were cached (and mapped by other processes) before the program ran.
            inode.forget_page_cache();
            vfs.add_device(&f.path, Arc::new(inode));
        }
        if let Some(p) = opts.hugepages {
            vfs.hugepages().set_nr_hugepages(vmaspace::hugetlb::HugeSize::Pmd, p.pages_2m);
            vfs.hugepages().set_nr_hugepages(vmaspace::hugetlb::HugeSize::Pud, p.pages_1g);
        }
        let mut settings = settings_of_this_machine();
        settings.pkeys = opts.pkeys.unwrap_or(settings.pkeys);
        settings.accesses_visible = !opts.hidden_accesses;
        if opts.kernel_limits {
            settings.max_present_pages = KERNEL_PAGE_LIMIT;
            settings.max_call_pages = KERNEL_PAGE_LIMIT;
        }
        let mut mm = AddressSpace::with_settings(settings, vfs);
        if let Some(text) = &opts.initial_maps {
            let text = text.replace("@CWD@", &opts.cwd);
            mm.seed_from_maps(&text).map_err(|e| format!("initial maps: {e}"))?;
        }
        if let Some(b) = opts.brk {
            mm.set_brk(b);
        }
        let mut procs = HashMap::new();
        procs.insert(None, mm);
        Ok(Model { procs, fork_labels: Default::default() })
    }

    /// Checks every process's invariants (`AddressSpace::validate`).
    pub fn validate(&self) -> Result<(), String> {
        self.procs.values().try_for_each(|mm| mm.validate())
    }

    /// Why the model stopped being faithful (a page budget limit), if it did.
    pub fn limit_exceeded(&self) -> Option<String> {
        self.procs.values().find_map(|mm| mm.limit_exceeded())
    }

    /// Runs one line; None for checkpoints.
    pub fn apply(&mut self, line: &Line) -> Option<Outcome> {
        if let Call::Execve { image, fds, brk, .. } = &line.call {
            let mm = self.procs.get_mut(&line.pid)?;
            return Some(match mm.exec(image) {
                Ok(mut new) => {
                    if let Some(b) = brk {
                        new.set_brk(*b);
                    }
                    if let Some(keep) = fds {
                        new.keep_only_fds(keep);
                    }
                    mm.exit_mmap();
                    *mm = new;
                    Outcome::Value(0)
                }
                Err(_) => Outcome::Error(Errno::ENOEXEC.number() as u16),
            });
        }
        if let Call::Fork { .. } = line.call {
            let label = self.fork_labels.pop_front()?;
            let child = self.procs.get_mut(&line.pid)?.fork();
            return Some(match child {
                Ok(child) => {
                    self.procs.insert(Some(label), child);
                    Outcome::Value(u64::from(label))
                }
                Err(e) => Outcome::Error(e.number() as u16),
            });
        }
        let mm = self.procs.get_mut(&line.pid)?;
        if line.call.is_checkpoint() {
            return None;
        }
        let out = apply(mm, &line.call);
        if let Call::ExitGroup { .. } = line.call {
            self.procs.remove(&line.pid);
        }
        Some(out)
    }

    /// The checkpoint text of a line's process.
    pub fn checkpoint(&self, line: &Line, scope: Option<Scope>) -> String {
        let Some(mm) = self.procs.get(&line.pid) else {
            return String::new();
        };
        let smaps = matches!(line.call, Call::Smaps);
        match (scope, smaps) {
            (Some(Scope::Window { start, end }), false) => mm.maps_window(start, end),
            (Some(Scope::Window { start, end }), true) => mm.smaps_window(start, end),
            (_, false) => mm.maps(),
            (_, true) => mm.smaps(),
        }
    }
}

/// The settings of the machines this project runs on, with overcommit sized from this
/// machine's memory and `vm.max_map_count` / `vm.mmap_min_addr` read from it when they can be.
pub fn settings_of_this_machine() -> Settings {
    let mut s = Settings::default();
    if let Some(pages) = ram_and_swap_pages() {
        s.overcommit = vmaspace::Overcommit::Guess { ram_and_swap_pages: pages };
    }
    let sysctl = |name: &str| std::fs::read_to_string(format!("/proc/sys/vm/{name}")).ok()?.trim().parse::<u64>().ok();
    if let Some(n) = sysctl("max_map_count") {
        s.max_map_count = n as usize;
    }
    if let Some(n) = sysctl("mmap_min_addr") {
        s.mmap_min_addr = n;
    }
    s.pkeys = machine_has_pkeys();
    s
}

/// The read-ahead window, in pages, of the device the oracle's runs live on (the root file
/// system of the model: `/sys/class/bdi/MAJ:MIN/read_ahead_kb` of `/var/lib`'s device).
pub fn root_read_ahead_pages() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let default = vmaspace::driver::SuperBlock::VM_READAHEAD_PAGES;
    let Ok(meta) = std::fs::metadata("/var/lib").or_else(|_| std::fs::metadata("/")) else { return default };
    let dev = meta.dev();
    let path = format!("/sys/class/bdi/{}:{}/read_ahead_kb", libc::major(dev), libc::minor(dev));
    std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<u64>().ok()).map_or(default, |kb| kb / 4)
}

/// Whether this machine's CPU has protection keys enabled by the kernel (`ospke` in
/// `/proc/cpuinfo`).
/// Read once: the CPU does not change while the program runs.
pub fn machine_has_pkeys() -> bool {
    static PKEYS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PKEYS.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        info.lines().find(|l| l.starts_with("flags")).is_some_and(|l| l.split_whitespace().any(|f| f == "ospke"))
    })
}

fn ram_and_swap_pages() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let l = text.lines().find(|l| l.starts_with(name))?;
        l.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    Some((field("MemTotal:")? + field("SwapTotal:").unwrap_or(0)) / 4)
}

fn outcome(r: Result<u64, Errno>) -> Outcome {
    match r {
        // The syscall ABI: a value in the last page reads as an error number, whatever made it
        // (mmap passes such an address through: see `AddressSpace::mmap`).
        Ok(v) => Outcome::from_raw(v as i64),
        Err(e) => Outcome::Error(e.number() as u16),
    }
}

fn fault(r: Result<(), FaultSignal>) -> Outcome {
    match r {
        Ok(()) => Outcome::Value(0),
        Err(FaultSignal::Sigsegv) => Outcome::Signal(Signal::Sigsegv),
        Err(FaultSignal::Sigbus) => Outcome::Signal(Signal::Sigbus),
    }
}

/// One call on one address space.
pub fn apply(mm: &mut AddressSpace, call: &Call) -> Outcome {
    match call {
        Call::Mmap { addr, len, prot, flags, fd, offset } => outcome(mm.mmap(*addr, *len, *prot, *flags, *fd, *offset)),
        Call::Munmap { addr, len } => outcome(mm.munmap(*addr, *len)),
        Call::Mprotect { addr, len, prot } => outcome(mm.mprotect(*addr, *len, *prot)),
        Call::PkeyMprotect { addr, len, prot, pkey } => outcome(mm.pkey_mprotect(*addr, *len, *prot, *pkey)),
        Call::PkeyAlloc { flags, access_rights } => outcome(mm.pkey_alloc(*flags, *access_rights)),
        Call::PkeyFree { pkey } => outcome(mm.pkey_free(*pkey)),
        Call::Mremap { old_addr, old_len, new_len, flags, new_addr, .. } => {
            outcome(mm.mremap(*old_addr, *old_len, *new_len, *flags, *new_addr))
        }
        Call::Madvise { addr, len, advice } => outcome(mm.madvise(*addr, *len, *advice)),
        Call::Mlock { addr, len } => outcome(mm.mlock(*addr, *len)),
        Call::Mlock2 { addr, len, flags } => outcome(mm.mlock2(*addr, *len, *flags)),
        Call::Munlock { addr, len } => outcome(mm.munlock(*addr, *len)),
        Call::Mlockall { flags } => outcome(mm.mlockall(*flags)),
        Call::Munlockall => outcome(mm.munlockall()),
        Call::Mseal { addr, len, flags } => outcome(mm.mseal(*addr, *len, *flags)),
        Call::Brk { addr } => outcome(mm.brk(*addr)),
        Call::PrctlSetVmaAnonName { addr, len, name } => {
            outcome(mm.prctl_set_vma_anon_name(*addr, *len, name.as_deref()))
        }
        Call::Touch { addr, len } => fault(mm.touch(*addr, *len)),
        Call::Peek { addr, len } => fault(mm.peek(*addr, *len)),
        Call::Openat { dirfd, path, flags, mode } => outcome(mm.openat(*dirfd, path, *flags, *mode)),
        Call::Open { path, flags, mode } => outcome(mm.open(path, *flags, *mode)),
        Call::Close { fd } => outcome(mm.close(*fd)),
        Call::Dup { fd } => outcome(mm.dup(*fd)),
        Call::Dup2 { old, new } => outcome(mm.dup2(*old, *new)),
        Call::Dup3 { old, new, flags } => outcome(mm.dup3(*old, *new, *flags)),
        Call::Ftruncate { fd, len } => outcome(mm.ftruncate(*fd, *len)),
        Call::Unlink { path } => outcome(mm.unlink(path)),
        Call::MemfdCreate { name, flags } => outcome(mm.memfd_create(name, *flags)),
        Call::MemfdSecret { flags } => outcome(mm.memfd_secret(*flags)),
        Call::FcntlAddSeals { fd, seals } => outcome(mm.fcntl_add_seals(*fd, *seals)),
        Call::FcntlGetSeals { fd } => outcome(mm.fcntl_get_seals(*fd)),
        Call::ExitGroup { .. } => {
            mm.exit_mmap();
            Outcome::NoReturn
        }
        Call::Maps | Call::Smaps => Outcome::Value(0),
        Call::Placeholder { fd, what } => outcome(mm.install_placeholder(*fd, what)),
        Call::Resize { fd, size } => outcome(mm.resize_file(*fd, *size)),
        // Refused by check_runnable().
        _ => Outcome::Error(Errno::ENOSYS.number() as u16),
    }
}
