//! Runs vmaspace traces on the live kernel.
//!
//! Each trace runs in a freshly executed no-libc executor (`executor/executor.c`), started with
//! ASLR off (`personality(ADDR_NO_RANDOMIZE)` before exec), RLIMIT_STACK at 8 MiB and an empty
//! working directory, confined to a root of its own in a mount namespace of its own
//! ([`jail`]), under CPU, memory and time limits ([`Limits`]). The executor maps nothing of its
//! own once it runs, survives the SIGSEGV and SIGBUS of `touch`/`peek`, and forks for the
//! trace's `fork` lines. What this crate reports comes from the kernel only: it never calls the
//! model.
//!
//! What a run changes on the machine and how it is undone, also after a signal or a crash, is
//! in [`safety`].
//!
//! This is the only crate of the workspace with `unsafe` code: the `pre_exec` hook that confines
//! the executor and sets its personality, limits and command pipes, the loop device ioctls and
//! signal handling.

pub mod bench;
pub mod environment;
pub mod jail;
pub mod safety;
pub mod tracer;
mod watchdog;

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use vmaspace_trace::{Call, Outcome, Signal, Trace};

/// The executor binary, built by build.rs.
const EXECUTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vmaspace-executor"));

pub use jail::EXECUTOR_PATH;

/// First command fd of the executor; process k uses `FD_BASE + 2k` and `FD_BASE + 2k + 1`.
const FD_BASE: RawFd = 100;
/// Forks a trace may make (so the fds stay below 1024).
pub const MAX_FORKS: usize = 200;
/// CPU seconds an executor may use.
const EXECUTOR_CPU_SECONDS: u64 = 60;
/// Where the pipe ends are moved before they are put at their targets.
const MOVE_BASE: RawFd = 600;

const RLIMIT_STACK_BYTES: u64 = 8 << 20;
const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;

/// Why a trace could not be run on the kernel.
#[derive(Debug)]
pub enum OracleError {
    /// The machine's kernel is not one the oracle can check against.
    UnsupportedKernel(String),
    /// Setting up or talking to the executor failed.
    Io(String),
    /// The trace asks for something the kernel side cannot do (a line for an unknown process).
    BadTrace { line: usize, message: String },
    /// The kernel side went past one of its [`Limits`] and was stopped.
    Limit(String),
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OracleError::UnsupportedKernel(m) => write!(f, "the kernel cannot be used: {m}"),
            OracleError::Io(m) => write!(f, "oracle: {m}"),
            OracleError::BadTrace { line, message } => write!(f, "line {line}: {message}"),
            OracleError::Limit(m) => write!(f, "kernel side stopped: {m}"),
        }
    }
}

impl std::error::Error for OracleError {}

fn io(what: &str) -> impl Fn(std::io::Error) -> OracleError + '_ {
    move |e| OracleError::Io(format!("{what}: {e}"))
}

/// The release of the running kernel (`uname -r`).
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Checks that the running kernel is Linux 6.18.x on x86_64 (unless `any_kernel`).
pub fn check_kernel(any_kernel: bool) -> Result<(), OracleError> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Err(OracleError::UnsupportedKernel("not Linux on x86_64".into()));
    }
    let release = kernel_release();
    if !any_kernel && !release.starts_with("6.18.") && release != "6.18" {
        return Err(OracleError::UnsupportedKernel(format!(
            "this is Linux {release}, not 6.18.x (use --any-kernel to compare anyway)"
        )));
    }
    Ok(())
}

/// What to capture besides each call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Snapshots {
    /// Maps text only at the trace's checkpoints.
    #[default]
    Checkpoints,
    /// Also the maps text of the calling process after every call.
    EveryCall,
}

/// What the kernel side of one run may use before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Resident memory of all the run's processes together, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time of the whole run, in seconds.
    pub seconds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { memory_mib: 1024, seconds: 300 }
    }
}

/// Options of one kernel run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// What to capture besides each call's result.
    pub snapshots: Snapshots,
    /// The limits of the kernel side.
    pub limits: Limits,
}

/// What the kernel did with a trace.
#[derive(Debug, Clone)]
pub struct KernelRun {
    /// The executor's maps before the first call.
    pub initial_maps: String,
    /// Per trace line: its result (None for checkpoints).
    pub results: Vec<Option<Outcome>>,
    /// Per trace line: checkpoint text (maps or smaps), or with [`Snapshots::EveryCall`] the
    /// maps text of the calling process after the call.
    pub texts: Vec<Option<String>>,
    /// The working directory the trace ran in, as the executor saw it (its path inside the
    /// executor's root, [`jail::CWD`]).
    pub cwd: PathBuf,
    /// The labels forks were given (`fork() = 1001`), in trace order.
    pub fork_labels: Vec<u32>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), OracleError> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r != 0 {
        return Err(OracleError::Io(format!("pipe2: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The driver's ends of one executor process's pipes.
struct Proc {
    commands: File,
    results: File,
    alive: bool,
    /// The real pid, to notice a process that died: its pipes may stay open in the others.
    pid: Option<u32>,
}

/// Whether a process exists and is not a zombie.
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Waits (up to 5 s) until none of `pids` is a live process: each has exited and released its
/// memory.
fn wait_gone(pids: &[u32]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while pids.iter().any(|&pid| process_alive(pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Executor command kinds (see executor.c).
#[derive(Clone, Copy)]
enum Kind {
    Syscall = 1,
    Touch = 2,
    Peek = 3,
    Fork = 5,
    Exit = 6,
}

struct Command10 {
    kind: Kind,
    nr: u64,
    args: [u64; 6],
    string: Option<(usize, Vec<u8>)>,
}

impl Command10 {
    fn syscall(nr: u64, args: &[u64]) -> Command10 {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Command10 { kind: Kind::Syscall, nr, args: a, string: None }
    }
    fn with_string(mut self, index: usize, s: &[u8]) -> Command10 {
        self.string = Some((index, s.to_vec()));
        self
    }
    fn encode(&self) -> Vec<u8> {
        let (sidx, sbytes) = match &self.string {
            Some((i, s)) => (*i as u64, s.as_slice()),
            None => (u64::MAX, &[][..]),
        };
        let mut words = vec![self.kind as u64, self.nr];
        words.extend_from_slice(&self.args);
        words.extend_from_slice(&[sidx, sbytes.len() as u64]);
        let mut out: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        out.extend_from_slice(sbytes);
        out.resize(out.len().next_multiple_of(8), 0);
        out
    }
}

/// Strings longer than this are refused by the executor.
const MAX_STRING: usize = 4096;

/// The executor command for a trace call (checkpoints and forks are handled by the caller).
fn command_for(call: &Call) -> Command10 {
    use Command10 as C;
    let s = |x: i64| x as u64;
    match call {
        Call::Mmap { addr, len, prot, flags, fd, offset } => {
            C::syscall(9, &[*addr, *len, *prot, *flags, s(*fd), *offset])
        }
        Call::Munmap { addr, len } => C::syscall(11, &[*addr, *len]),
        Call::Mprotect { addr, len, prot } => C::syscall(10, &[*addr, *len, *prot]),
        Call::PkeyAlloc { flags, access_rights } => C::syscall(330, &[*flags, *access_rights]),
        Call::PkeyFree { pkey } => C::syscall(331, &[s(*pkey)]),
        Call::PkeyMprotect { addr, len, prot, pkey } => C::syscall(329, &[*addr, *len, *prot, s(*pkey)]),
        // Always five arguments: the fifth is explicit (0 when the trace wrote four).
        Call::Mremap { old_addr, old_len, new_len, flags, new_addr, .. } => {
            C::syscall(25, &[*old_addr, *old_len, *new_len, *flags, *new_addr])
        }
        Call::Madvise { addr, len, advice } => C::syscall(28, &[*addr, *len, *advice]),
        Call::Mlock { addr, len } => C::syscall(149, &[*addr, *len]),
        Call::Mlock2 { addr, len, flags } => C::syscall(325, &[*addr, *len, *flags]),
        Call::Munlock { addr, len } => C::syscall(150, &[*addr, *len]),
        Call::Mlockall { flags } => C::syscall(151, &[*flags]),
        Call::Munlockall => C::syscall(152, &[]),
        Call::Mseal { addr, len, flags } => C::syscall(462, &[*addr, *len, *flags]),
        Call::Brk { addr } => C::syscall(12, &[*addr]),
        Call::PrctlSetVmaAnonName { addr, len, name } => {
            let c = C::syscall(157, &[vmaspace_trace::consts::PR_SET_VMA, 0, *addr, *len, 0]);
            match name {
                Some(n) => c.with_string(4, n),
                None => c,
            }
        }
        Call::Openat { dirfd, path, flags, mode } => {
            C::syscall(257, &[s(*dirfd), 0, *flags, *mode]).with_string(1, path)
        }
        Call::Open { path, flags, mode } => C::syscall(2, &[0, *flags, *mode]).with_string(0, path),
        Call::Close { fd } => C::syscall(3, &[s(*fd)]),
        Call::Dup { fd } => C::syscall(32, &[s(*fd)]),
        Call::Dup2 { old, new } => C::syscall(33, &[s(*old), s(*new)]),
        Call::Dup3 { old, new, flags } => C::syscall(292, &[s(*old), s(*new), *flags]),
        Call::Ftruncate { fd, len } => C::syscall(77, &[s(*fd), *len]),
        Call::Unlink { path } => C::syscall(87, &[0]).with_string(0, path),
        Call::MemfdCreate { name, flags } => C::syscall(319, &[0, *flags]).with_string(0, name),
        Call::MemfdSecret { flags } => C::syscall(447, &[*flags]),
        Call::FcntlAddSeals { fd, seals } => C::syscall(72, &[s(*fd), 1033, *seals]),
        Call::FcntlGetSeals { fd } => C::syscall(72, &[s(*fd), 1034]),
        Call::Touch { addr, len } => C { kind: Kind::Touch, nr: 0, args: [*addr, *len, 0, 0, 0, 0], string: None },
        Call::Peek { addr, len } => C { kind: Kind::Peek, nr: 0, args: [*addr, *len, 0, 0, 0, 0], string: None },
        Call::ExitGroup { status } => C { kind: Kind::Exit, nr: 0, args: [s(*status), 0, 0, 0, 0, 0], string: None },
        // Read from outside the executor (`Proc::cat`), made by `Session::fork`, or refused by
        // `run` (calls of recordings): never sent.
        Call::Maps
        | Call::Smaps
        | Call::Fork { .. }
        | Call::Execve { .. }
        | Call::Placeholder { .. }
        | Call::Resize { .. } => C { kind: Kind::Fork, nr: 0, args: [0; 6], string: None },
    }
}

impl Proc {
    fn send(&mut self, c: &Command10) -> Result<(), OracleError> {
        self.commands.write_all(&c.encode()).map_err(io("sending a command to the executor"))
    }
    /// Waits until the results pipe has data, or the process is gone.
    fn wait_readable(&self, watch: &mut watchdog::Watchdog) -> Result<(), OracleError> {
        let fd = self.results.as_raw_fd();
        loop {
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: `pfd` is one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, 5) };
            if n > 0 {
                return Ok(());
            }
            if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return Err(OracleError::Io(format!("poll: {}", std::io::Error::last_os_error())));
            }
            watch.check()?;
            if let Some(pid) = self.pid
                && !process_alive(pid)
            {
                return Err(OracleError::Io(format!("executor process {pid} died (killed by a signal or a limit)")));
            }
        }
    }
    fn word(&mut self, watch: &mut watchdog::Watchdog) -> Result<u64, OracleError> {
        self.wait_readable(watch)?;
        let mut b = [0u8; 8];
        self.results
            .read_exact(&mut b)
            .map_err(|e| OracleError::Io(format!("the executor stopped answering ({e}); it may have been killed")))?;
        Ok(u64::from_le_bytes(b))
    }
    /// The maps (or smaps) text of this process, read from outside as `/proc/PID/maps` with the
    /// paths turned into what the process itself sees (`jail`'s root stripped). The process is
    /// waiting for its next command, so nothing changes while it is read.
    fn cat(&mut self, smaps: bool, jail: &jail::Jail) -> Result<String, OracleError> {
        let pid = self.pid.ok_or_else(|| OracleError::Io("a process without a pid".into()))?;
        let path = format!("/proc/{pid}/{}", if smaps { "smaps" } else { "maps" });
        let mut text = String::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| OracleError::Io(format!("{path}: {e}")))?;
        Ok(jail.inner_text(&text))
    }
}

/// Runs a trace on the live kernel, confined (see [`jail`]) and limited (see [`Limits`]).
pub fn run(trace: &Trace, opts: &RunOptions) -> Result<KernelRun, OracleError> {
    if EXECUTOR.is_empty() {
        return Err(OracleError::UnsupportedKernel(
            "this vmaspace was built without gcc, so it has no executor for the kernel side: install gcc and rebuild"
                .into(),
        ));
    }
    if let Some(l) = trace.lines.iter().find(|l| l.call.is_recording_only()) {
        return Err(OracleError::BadTrace {
            line: l.lineno,
            message: format!(
                "{} is a call of recordings of real programs, which replay on the model only",
                l.call.name()
            ),
        });
    }
    let hugepages = environment::HugePageGuard::new(trace.setup.hugepages)?;
    let result = run_confined(trace, opts);
    drop(hugepages);
    result
}

fn run_confined(trace: &Trace, opts: &RunOptions) -> Result<KernelRun, OracleError> {
    let labels = trace.fork_labels();
    if labels.len() > MAX_FORKS {
        return Err(OracleError::Io(format!("a trace may fork at most {MAX_FORKS} times")));
    }
    let mut jail = jail::Jail::new(&trace.setup, EXECUTOR)?;
    let nprocs = labels.len() + 1;
    let mut driver_ends = Vec::new();
    let mut exec_ends = Vec::new();
    for _ in 0..nprocs {
        let (cmd_r, cmd_w) = pipe()?;
        let (res_r, res_w) = pipe()?;
        driver_ends.push((cmd_w, res_r));
        exec_ends.push((cmd_r, res_w));
    }
    let child = spawn_executor(&jail, &exec_ends)?;
    jail.release_loops();
    drop(exec_ends);
    let pgid = child.id() as i32;
    safety::register_group(pgid);
    let watch = watchdog::Watchdog::new(pgid, child.id(), opts.limits);
    let mut procs: Vec<Proc> = driver_ends
        .into_iter()
        .map(|(w, r)| Proc { commands: File::from(w), results: File::from(r), alive: false, pid: None })
        .collect();
    procs[0].alive = true;
    procs[0].pid = Some(child.id());
    let mut session = Session { child, procs, pids: HashMap::new(), labels, next_fork: 0, jail, watch };
    let result = session.drive(trace, opts).map_err(|e| match e {
        // Say how the first executor ended, if it did: a signal, or an exit status of 128 + the
        // signal of a fault outside its probes.
        OracleError::Io(m) => match session.child.try_wait() {
            Ok(Some(status)) => OracleError::Io(format!("{m} (the executor ended: {status})")),
            _ => OracleError::Io(m),
        },
        e => e,
    });
    session.finish();
    safety::unregister_group(pgid);
    result
}

fn spawn_executor(jail: &jail::Jail, ends: &[(OwnedFd, OwnedFd)]) -> Result<Child, OracleError> {
    let mut raw: Vec<(RawFd, RawFd)> = ends.iter().map(|(r, w)| (r.as_raw_fd(), w.as_raw_fd())).collect();
    let first_unused = FD_BASE + 2 * raw.len() as RawFd;
    let entry = jail.entry.clone();
    // The path is resolved after the chroot: it is the executor inside the jail.
    let mut cmd = Command::new(EXECUTOR_PATH);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).env_clear();
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls (setpgid, prctl, unshare, mount, chroot, chdir, personality,
    // getrlimit/setrlimit, fcntl, dup2, close_range) on values computed before the fork; it
    // writes into `raw` in place and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Its own process group, so that an interrupted run can kill it and its forks.
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Dies with the thread that started it, even when that one is SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            entry.enter()?;
            if libc::personality(ADDR_NO_RANDOMIZE) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_STACK, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = RLIMIT_STACK_BYTES;
            lim.rlim_max = lim.rlim_max.max(RLIMIT_STACK_BYTES);
            if libc::setrlimit(libc::RLIMIT_STACK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A trace that makes the kernel work for ever (populating a huge locked mapping)
            // ends with the executor killed, not with a hung run.
            let cpu = libc::rlimit { rlim_cur: EXECUTOR_CPU_SECONDS, rlim_max: EXECUTOR_CPU_SECONDS };
            if libc::setrlimit(libc::RLIMIT_CPU, &cpu) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // No core files of a killed executor in the working directory.
            let core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::setrlimit(libc::RLIMIT_CORE, &core) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Move the pipe ends out of the way of their targets, then put them in place.
            for (r, w) in raw.iter_mut() {
                *r = libc::fcntl(*r, libc::F_DUPFD, MOVE_BASE);
                *w = libc::fcntl(*w, libc::F_DUPFD, MOVE_BASE);
                if *r < 0 || *w < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (k, (r, w)) in raw.iter().enumerate() {
                let base = FD_BASE + 2 * k as RawFd;
                if libc::dup2(*r, base) < 0 || libc::dup2(*w, base + 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // The trace's first open() must get fd 3: nothing else may stay open.
            if libc::syscall(libc::SYS_close_range, 3u32, (FD_BASE - 1) as u32, 0u32) != 0
                || libc::syscall(libc::SYS_close_range, first_unused as u32, u32::MAX, 0u32) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| OracleError::Io(jail.describe_failure(&e)))
}

struct Session {
    jail: jail::Jail,
    watch: watchdog::Watchdog,
    child: Child,
    procs: Vec<Proc>,
    /// Trace label → process index.
    pids: HashMap<u32, usize>,
    labels: Vec<u32>,
    next_fork: usize,
}

impl Session {
    fn cat(&mut self, p: usize, smaps: bool) -> Result<String, OracleError> {
        self.procs[p].cat(smaps, &self.jail)
    }

    fn drive(&mut self, trace: &Trace, opts: &RunOptions) -> Result<KernelRun, OracleError> {
        // Once it answers a first command (getpid, which changes nothing), the executor runs
        // its own image: before that, its maps may still be those of the exec in progress.
        self.procs[0].send(&Command10::syscall(39, &[]))?;
        self.procs[0].word(&mut self.watch)?;
        let initial_maps = self.cat(0, false)?;
        let mut results = Vec::with_capacity(trace.lines.len());
        let mut texts = Vec::with_capacity(trace.lines.len());
        for line in &trace.lines {
            let p = self.process_of(line.pid, line.lineno)?;
            let (result, text) = self.one(p, &line.call, line.lineno)?;
            let text = match (text, opts.snapshots, self.procs[p].alive) {
                (Some(t), _, _) => Some(t),
                (None, Snapshots::EveryCall, true) => Some(self.cat(p, false)?),
                _ => None,
            };
            results.push(result);
            texts.push(text);
        }
        Ok(KernelRun { initial_maps, results, texts, cwd: PathBuf::from(jail::CWD), fork_labels: self.labels.clone() })
    }

    fn process_of(&self, pid: Option<u32>, line: usize) -> Result<usize, OracleError> {
        let p = match pid {
            None => 0,
            Some(label) => *self.pids.get(&label).ok_or_else(|| OracleError::BadTrace {
                line,
                message: format!("[pid {label}] names no process a fork created"),
            })?,
        };
        if !self.procs[p].alive {
            return Err(OracleError::BadTrace { line, message: "the process of this line has exited".into() });
        }
        Ok(p)
    }

    fn one(&mut self, p: usize, call: &Call, line: usize) -> Result<(Option<Outcome>, Option<String>), OracleError> {
        match call {
            Call::Maps | Call::Smaps => {
                let text = self.cat(p, matches!(call, Call::Smaps))?;
                Ok((None, Some(text)))
            }
            Call::Fork { .. } => self.fork(p).map(|o| (Some(o), None)),
            Call::ExitGroup { .. } => {
                self.procs[p].send(&command_for(call))?;
                self.procs[p].alive = false;
                // The next line must see the process's memory released (exit_mm() runs before
                // it becomes a zombie), as the model does at once.
                if let Some(pid) = self.procs[p].pid {
                    wait_gone(&[pid]);
                }
                Ok((Some(Outcome::NoReturn), None))
            }
            _ => {
                let c = command_for(call);
                if c.string.as_ref().is_some_and(|(_, s)| s.len() > MAX_STRING) {
                    return Err(OracleError::BadTrace {
                        line,
                        message: format!("strings are limited to {MAX_STRING} bytes"),
                    });
                }
                self.procs[p].send(&c)?;
                let raw = self.procs[p].word(&mut self.watch)? as i64;
                let outcome = match call {
                    Call::Touch { .. } | Call::Peek { .. } => match raw {
                        0 => Outcome::Value(0),
                        sig => Outcome::Signal(
                            Signal::from_number(sig as i32)
                                .ok_or_else(|| OracleError::Io(format!("the executor reported signal {sig}")))?,
                        ),
                    },
                    _ => Outcome::from_raw(raw),
                };
                Ok((Some(outcome), None))
            }
        }
    }

    fn fork(&mut self, p: usize) -> Result<Outcome, OracleError> {
        self.next_fork += 1;
        let child = self.next_fork;
        let base = (FD_BASE + 2 * child as RawFd) as u64;
        let c = Command10 { kind: Kind::Fork, nr: 0, args: [base, base + 1, 0, 0, 0, 0], string: None };
        self.procs[p].send(&c)?;
        let raw = self.procs[p].word(&mut self.watch)? as i64;
        if raw < 0 {
            return Ok(Outcome::from_raw(raw));
        }
        let label = self.labels[child - 1];
        self.pids.insert(label, child);
        self.procs[child].alive = true;
        self.procs[child].pid = u32::try_from(raw).ok();
        if let Some(pid) = self.procs[child].pid {
            self.watch.add(pid);
        }
        Ok(Outcome::Value(label as u64))
    }

    fn finish(&mut self) {
        for p in self.procs.iter_mut().filter(|p| p.alive) {
            let _ = p.send(&command_for(&Call::ExitGroup { status: 0 }));
            p.alive = false;
        }
        // Closing our ends makes any process still reading see EOF and exit.
        let forked: Vec<u32> = self.procs.iter().skip(1).filter_map(|p| p.pid).collect();
        self.procs.clear();
        let _ = self.child.wait();
        // Forked executors exit on their own: wait for them too, so the next run finds their
        // memory (huge pages, mounts' files) released.
        wait_gone(&forked);
    }
}
