//! Records a real program on the live kernel with ptrace (`vmaspace trace`): every system call
//! that changes or depends on the address space or the descriptor table, with its raw
//! arguments and the kernel's result (`PTRACE_GET_SYSCALL_INFO`, so every call is known, mseal
//! included); the maps at each exec and after each memory call; the page faults no call shows,
//! inferred from `/proc/PID/pagemap` before each memory call; the identity of every file the
//! program opens that existed before; and smaps at exit (a `PTRACE_EVENT_EXIT` stop, while the
//! mappings still exist). What it reports comes from the kernel only.
//!
//! The program runs where it is started, as the user who starts it, with ASLR off unless
//! asked (`personality(ADDR_NO_RANDOMIZE)`, as the model assumes).

use crate::OracleError;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The system calls a recording keeps, by number (x86_64).
pub mod nr {
    /// `read` and the other calls a recording needs by number.
    pub const WRITE: u64 = 1;
    /// `open`.
    pub const OPEN: u64 = 2;
    /// `close`.
    pub const CLOSE: u64 = 3;
    /// `mmap`.
    pub const MMAP: u64 = 9;
    /// `mprotect`.
    pub const MPROTECT: u64 = 10;
    /// `munmap`.
    pub const MUNMAP: u64 = 11;
    /// `brk`.
    pub const BRK: u64 = 12;
    /// `pwrite64`.
    pub const PWRITE64: u64 = 18;
    /// `writev`.
    pub const WRITEV: u64 = 20;
    /// `mremap`.
    pub const MREMAP: u64 = 25;
    /// `madvise`.
    pub const MADVISE: u64 = 28;
    /// `dup`.
    pub const DUP: u64 = 32;
    /// `dup2`.
    pub const DUP2: u64 = 33;
    /// `clone`.
    pub const CLONE: u64 = 56;
    /// `fork`.
    pub const FORK: u64 = 57;
    /// `vfork`.
    pub const VFORK: u64 = 58;
    /// `execve`.
    pub const EXECVE: u64 = 59;
    /// `exit`.
    pub const EXIT: u64 = 60;
    /// `fcntl`.
    pub const FCNTL: u64 = 72;
    /// `ftruncate`.
    pub const FTRUNCATE: u64 = 77;
    /// `unlink`.
    pub const UNLINK: u64 = 87;
    /// `mlock`.
    pub const MLOCK: u64 = 149;
    /// `munlock`.
    pub const MUNLOCK: u64 = 150;
    /// `mlockall`.
    pub const MLOCKALL: u64 = 151;
    /// `munlockall`.
    pub const MUNLOCKALL: u64 = 152;
    /// `prctl`.
    pub const PRCTL: u64 = 157;
    /// `exit_group`.
    pub const EXIT_GROUP: u64 = 231;
    /// `openat`.
    pub const OPENAT: u64 = 257;
    /// `unlinkat`.
    pub const UNLINKAT: u64 = 263;
    /// `fallocate`.
    pub const FALLOCATE: u64 = 285;
    /// `dup3`.
    pub const DUP3: u64 = 292;
    /// `pwritev`.
    pub const PWRITEV: u64 = 296;
    /// `execveat`.
    pub const EXECVEAT: u64 = 322;
    /// `memfd_create`.
    pub const MEMFD_CREATE: u64 = 319;
    /// `mlock2`.
    pub const MLOCK2: u64 = 325;
    /// `pkey_mprotect`.
    pub const PKEY_MPROTECT: u64 = 329;
    /// `pkey_alloc`.
    pub const PKEY_ALLOC: u64 = 330;
    /// `pkey_free`.
    pub const PKEY_FREE: u64 = 331;
    /// `clone3`.
    pub const CLONE3: u64 = 435;
    /// `close_range`.
    pub const CLOSE_RANGE: u64 = 436;
    /// `openat2`.
    pub const OPENAT2: u64 = 437;
    /// `memfd_secret`.
    pub const MEMFD_SECRET: u64 = 447;
    /// `mseal`.
    pub const MSEAL: u64 = 462;
}

/// `ioctl`.
const IOCTL: u64 = 16;

/// What a recorded call does, for the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Changes the address space (its maps are read after it).
    Memory,
    /// Creates, duplicates or closes descriptors, or names files.
    Files,
    /// fork, clone, exec, exit.
    Process,
    /// May grow a file (a write past its end): its size is read after it.
    Size,
    /// Makes a descriptor the model has no file for (a socket, a pipe, ...): the descriptor
    /// becomes a placeholder so that numbering stays aligned.
    Placeholder,
    /// Changes memory or descriptors in a way the trace language cannot say.
    Unexpressible,
}

/// How a recording treats a system call number (None: not recorded, it changes neither).
pub fn kind_of(n: u64) -> Option<Kind> {
    use nr::*;
    Some(match n {
        MMAP | MPROTECT | MUNMAP | BRK | MREMAP | MADVISE | MLOCK | MUNLOCK | MLOCKALL | MUNLOCKALL | MLOCK2
        | PKEY_MPROTECT | MSEAL => Kind::Memory,
        OPEN | OPENAT | CLOSE | DUP | DUP2 | DUP3 | FTRUNCATE | UNLINK | MEMFD_CREATE | MEMFD_SECRET | FCNTL
        | PKEY_ALLOC | PKEY_FREE | PRCTL => Kind::Files,
        CLONE | FORK | CLONE3 | EXECVE | EXECVEAT | EXIT_GROUP | EXIT => Kind::Process,
        WRITE | PWRITE64 | WRITEV | PWRITEV | FALLOCATE => Kind::Size,
        // socket, socketpair, pipe, pipe2, accept, accept4, eventfd2, epoll_create(1),
        // timerfd_create, signalfd4, inotify_init1, pidfd_open, userfaultfd, io_uring_setup,
        // perf_event_open.
        41 | 53 | 22 | 293 | 43 | 288 | 290 | 213 | 291 | 283 | 289 | 294 | 434 | 323 | 425 => Kind::Placeholder,
        VFORK => Kind::Process,
        // shmat/shmdt/shmget, process_madvise, remap_file_pages, openat2, close_range,
        // unlinkat.
        // perf_event_open: a uprobe writes breakpoints into the pages of mappings.
        29 | 30 | 67 | 440 | 216 | 298 | OPENAT2 | CLOSE_RANGE | UNLINKAT => Kind::Unexpressible,
        _ => return None,
    })
}

/// A page the program made present without a system call, as `/proc/PID/pagemap` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Written (an anonymous page, or a private copy of a file page).
    Write,
    /// Read (the zero page, or a page of the file).
    Read,
    /// A private copy in a VMA the program cannot write: made by the kernel (a uprobe,
    /// ptrace), not by a fault of the program.
    Foreign,
}

/// A file the program opened that existed before it: what the model needs to give it the same
/// identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideFile {
    /// The absolute path the program named it by.
    pub path: Vec<u8>,
    /// The path maps shows for it (symbolic links resolved).
    pub real_path: Vec<u8>,
    /// Its size when the program opened it.
    pub size: u64,
    /// Its device (major, minor) and inode number.
    pub dev: (u32, u32),
    /// Its inode number.
    pub ino: u64,
}

/// `mm->start_brk` of a process: field 47 of `/proc/PID/stat` (counted after the command's
/// closing parenthesis, since the command may hold spaces).
fn start_brk_of(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on follow the command: field 47 is the 45th of them.
    after.split_whitespace().nth(44)?.parse().ok()
}

/// One thing that happened, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// A process loaded a program image: its maps right after the exec.
    Exec {
        /// The process.
        pid: u32,
        /// The maps after the exec.
        maps: String,
        /// The descriptors open after the exec (close-on-exec ones are gone).
        fds: Vec<i64>,
        /// `mm->start_brk` after the exec (`/proc/PID/stat` field 47): with address-space
        /// randomisation on, the kernel moves it away from the end of the bss
        /// (`arch_randomize_brk()`), which the maps do not show.
        start_brk: Option<u64>,
    },
    /// A system call that finished (or, for exit calls, was made).
    Call {
        /// The process (the thread group's id).
        pid: u32,
        /// The thread that made it.
        tid: u32,
        /// Its number.
        nr: u64,
        /// Its six raw arguments.
        args: [u64; 6],
        /// The path or name a string argument named, by argument index.
        string: Option<(usize, Vec<u8>)>,
        /// The kernel's result (a negative errno on error), None for calls that do not return.
        ret: Option<i64>,
        /// The maps after a memory call.
        maps: Option<String>,
        /// For a size-changing call, the file's new size and its descriptor.
        size: Option<(i64, u64)>,
        /// For an open that returned a descriptor: whether it names something the model has
        /// no file for (a directory, a device other than `/dev/zero` and `/dev/null`).
        special: bool,
    },
    /// Pages that became present since the last look, with how they were touched.
    Faults {
        /// The process.
        pid: u32,
        /// (first page, bytes, how).
        ranges: Vec<(u64, u64, Fault)>,
    },
    /// Descriptors above 2 a process had when its first image was loaded (inherited from
    /// whoever started the program).
    Inherited {
        /// The process.
        pid: u32,
        /// (descriptor, what it names).
        fds: Vec<(i64, String)>,
    },
    /// A process's smaps as it exits.
    Exit {
        /// The process.
        pid: u32,
        /// Its smaps text.
        smaps: String,
    },
}

/// A recording of one program run.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The events in order.
    pub events: Vec<Event>,
    /// Files opened that existed before, by path.
    pub files: BTreeMap<Vec<u8>, OutsideFile>,
    /// The program's exit status (128 + signal if killed), as a shell reports it.
    pub status: i32,
    /// The working directory it ran in.
    pub cwd: PathBuf,
    /// Files the program created (never taken for files that existed before).
    pub created: std::collections::HashSet<Vec<u8>>,
    /// Per thread: the file an `open` with `O_CREAT` in progress would create.
    creating: HashMap<u32, Vec<u8>>,
    /// The program's first image is loaded (before, the process is the tracer's copy).
    started: bool,
}

/// Options of a recording.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// Keep address-space randomisation on.
    pub aslr: bool,
}

/// `struct ptrace_syscall_info` (88 bytes): op, flags, arch, ip, sp, then the entry, exit or
/// seccomp union as words.
#[repr(C)]
#[derive(Clone, Copy)]
struct SyscallInfo {
    op: u8,
    _pad: u8,
    _flags: u16,
    _arch: u32,
    _ip: u64,
    _sp: u64,
    data: [u64; 8],
}

const OP_ENTRY: u8 = 1;
const OP_EXIT: u8 = 2;

fn errno_err(what: &str) -> OracleError {
    OracleError::Io(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// The zero page's frame, found by reading a fresh anonymous page of this process.
fn zero_pfn() -> Option<u64> {
    // SAFETY: a private anonymous mapping of one page; it is read once and unmapped.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if p == libc::MAP_FAILED {
            return None;
        }
        let _ = std::ptr::read_volatile(p as *const u8);
        let entry = pagemap_entries(std::process::id(), p as u64, 1).and_then(|v| v.first().copied());
        libc::munmap(p, 4096);
        entry.filter(|e| e >> 63 & 1 == 1).map(|e| e & ((1 << 55) - 1))
    }
}

/// Raw pagemap entries of `pages` pages from `addr`.
fn pagemap_entries(pid: u32, addr: u64, pages: u64) -> Option<Vec<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
    f.seek(SeekFrom::Start((addr >> 12) * 8)).ok()?;
    let mut buf = vec![0u8; (pages * 8) as usize];
    f.read_exact(&mut buf).ok()?;
    Some(buf.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
}

/// One VMA of a maps text.
struct MapsVma {
    start: u64,
    end: u64,
    private: bool,
    file: bool,
    writable: bool,
}

fn parse_maps(text: &str) -> Vec<MapsVma> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (range, perms, _off, _dev, ino) = (w.next()?, w.next()?, w.next()?, w.next()?, w.next()?);
            let (s, e) = range.split_once('-')?;
            let start = u64::from_str_radix(s, 16).ok()?;
            let end = u64::from_str_radix(e, 16).ok()?;
            // [vsyscall] is not in the page tables.
            if start >= 0xffff_ffff_ff60_0000 {
                return None;
            }
            let p = perms.as_bytes();
            Some(MapsVma {
                start,
                end,
                private: p.get(3) == Some(&b'p'),
                file: ino != "0",
                writable: p.get(1) == Some(&b'w'),
            })
        })
        .collect()
}

/// What one traced process (thread group) has made present so far.
#[derive(Default)]
struct ProcState {
    /// Each present page: how it was faulted in, and its frame (a write that copies a page
    /// shared with a fork gives it a new one).
    present: HashMap<u64, (Fault, u64)>,
}

impl ProcState {
    /// The pages newly present (or newly written) since the last look, as ranges, lowest
    /// first; stack pages come highest first so that the model grows the stack downwards.
    fn new_faults(&mut self, pid: u32, zero: Option<u64>) -> Vec<(u64, u64, Fault)> {
        let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else { return Vec::new() };
        let mut pages: Vec<(u64, Fault)> = Vec::new();
        // Only what is present now: a page unmapped or zapped since and present again (a new
        // mapping at the same address) is a new fault.
        let mut now: HashMap<u64, (Fault, u64)> = HashMap::new();
        for v in parse_maps(&maps) {
            let n = (v.end - v.start) >> 12;
            let Some(entries) = pagemap_entries(pid, v.start, n) else { continue };
            for (i, e) in entries.iter().enumerate() {
                if e >> 63 & 1 == 0 {
                    continue;
                }
                let addr = v.start + ((i as u64) << 12);
                let file_page = e >> 61 & 1 == 1;
                let pfn = e & ((1 << 55) - 1);
                let how = if v.private && !file_page && Some(pfn) != zero && !v.writable {
                    Fault::Foreign
                } else if v.private && !file_page && Some(pfn) != zero {
                    Fault::Write
                } else if v.private && !v.file && Some(pfn) == zero {
                    Fault::Read
                } else if v.private && !file_page {
                    Fault::Write
                } else {
                    Fault::Read
                };
                let (old, old_pfn) = self.present.get(&addr).copied().unzip();
                // A page written earlier stays written (a later mprotect may make its VMA
                // read-only); only a new private copy in a read-only VMA is the kernel's.
                let how = if how == Fault::Foreign && old == Some(Fault::Write) { Fault::Write } else { how };
                now.insert(addr, (how, pfn));
                let copied = how == Fault::Write && old == Some(Fault::Write) && old_pfn != Some(pfn);
                if copied || (old != Some(how) && !(old == Some(Fault::Write) && how == Fault::Read)) {
                    pages.push((addr, how));
                }
            }
        }
        self.present = now;
        let mut ranges: Vec<(u64, u64, Fault)> = Vec::new();
        for (a, how) in pages {
            match ranges.last_mut() {
                Some((s, len, h)) if *s + *len == a && *h == how => *len += 4096,
                _ => ranges.push((a, 4096, how)),
            }
        }
        ranges
    }
}

/// Looks at `pid`'s pagemap and records what became present since the last look, if anything.
fn record_faults(procs: &mut HashMap<u32, ProcState>, rec: &mut Recording, pid: u32, zero: Option<u64>) {
    let faults = procs.entry(pid).or_default().new_faults(pid, zero);
    if !faults.is_empty() {
        rec.events.push(Event::Faults { pid, ranges: faults });
    }
}

/// `Event::Call::string` index of clone3's flags (8 bytes, little-endian).
pub const CLONE3_FLAGS: usize = 100;
/// `Event::Call::string` index of the two descriptors pipe/pipe2/socketpair returned (two
/// 4-byte ints).
pub const FD_PAIR: usize = 101;

/// Reads `n` bytes of the tracee's memory (fewer where it is not mapped).
fn read_bytes(pid: u32, addr: u64, n: usize) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(format!("/proc/{pid}/mem")) else { return Vec::new() };
    if f.seek(SeekFrom::Start(addr)).is_err() {
        return Vec::new();
    }
    let mut buf = vec![0u8; n];
    let got = f.read(&mut buf).unwrap_or(0);
    buf.truncate(got);
    buf
}

/// Reads a NUL-terminated string of the tracee (at most 4096 bytes).
fn read_string(pid: u32, addr: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(format!("/proc/{pid}/mem")) else { return Vec::new() };
    if f.seek(SeekFrom::Start(addr)).is_err() {
        return Vec::new();
    }
    let mut buf = vec![0u8; 4096];
    let n = f.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    if let Some(z) = buf.iter().position(|b| *b == 0) {
        buf.truncate(z);
    }
    buf
}

/// The string argument a call names, if any: (index, address).
fn string_arg(n: u64, args: &[u64; 6]) -> Option<(usize, u64)> {
    match n {
        nr::OPEN | nr::UNLINK | nr::EXECVE => Some((0, args[0])),
        nr::OPENAT | nr::MEMFD_CREATE => {
            Some((if n == nr::MEMFD_CREATE { 0 } else { 1 }, args[if n == nr::MEMFD_CREATE { 0 } else { 1 }]))
        }
        nr::PRCTL if args[0] == 0x5356_4d41 && args[4] != 0 => Some((4, args[4])),
        _ => None,
    }
}

/// The identity of a file a descriptor of `pid` names, if it is a regular file.
fn fd_identity(pid: u32, fd: i64) -> Option<OutsideFile> {
    let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    let target = fs::read_link(&link).ok()?;
    let m = fs::metadata(&link).ok()?;
    if !m.file_type().is_file() {
        return None;
    }
    let dev = m.dev();
    Some(OutsideFile {
        path: target.as_os_str().as_bytes().to_vec(),
        real_path: target.as_os_str().as_bytes().to_vec(),
        size: m.size(),
        dev: (libc::major(dev), libc::minor(dev)),
        ino: m.ino(),
    })
}

/// The descriptors above 2 a process has open, with what they name.
fn open_fds(pid: u32) -> Vec<(i64, String)> {
    let mut fds: Vec<(i64, String)> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n: i64 = e.file_name().to_string_lossy().parse().ok()?;
                    let what = fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default();
                    (n > 2).then_some((n, what))
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

/// A path with `.` and `..` components folded, as text (`Vfs::absolute` does the same).
fn lexical(p: &Path) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.as_os_str().as_bytes().split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The thread group of a thread.
fn tgid_of(tid: u32) -> u32 {
    fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(tid)
}

/// Records `program` with `args` in the current directory. The program's own output goes to
/// this process's standard streams.
pub fn trace(program: &Path, args: &[String], opts: &TraceOptions) -> Result<Recording, OracleError> {
    let prog =
        CString::new(program.as_os_str().as_bytes()).map_err(|_| OracleError::Io("NUL in the program".into()))?;
    let mut argv: Vec<CString> = vec![prog.clone()];
    for a in args {
        argv.push(CString::new(a.as_bytes()).map_err(|_| OracleError::Io("NUL in an argument".into()))?);
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let zero = zero_pfn();
    let aslr = opts.aslr;
    // SAFETY: fork; the child only makes async-signal-safe calls (ptrace, personality, raise,
    // execvp, _exit) on data prepared before the fork.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(errno_err("fork"));
    }
    if child == 0 {
        // SAFETY: in the child, before exec: see above.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            if !aslr {
                libc::personality(0x0040000);
            }
            libc::raise(libc::SIGSTOP);
            libc::execvp(prog.as_ptr(), argv_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let child = child as u32;
    let rec = Recording { cwd: std::env::current_dir().unwrap_or_default(), ..Recording::default() };
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid on our child with a valid status pointer.
    if unsafe { libc::waitpid(child as i32, &mut status, libc::__WALL) } < 0 {
        return Err(errno_err("waitpid"));
    }
    let opts = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEEXIT
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_EXITKILL;
    // SAFETY: the child is stopped and traced by us.
    unsafe {
        libc::ptrace(libc::PTRACE_SETOPTIONS, child, 0, opts);
        libc::ptrace(libc::PTRACE_SYSCALL, child, 0, 0);
    }
    let mut t = Tracer {
        rec,
        zero,
        procs: HashMap::new(),
        entries: HashMap::new(),
        exiting: HashMap::new(),
        inflight: HashMap::new(),
        held: HashMap::new(),
        known: std::collections::HashSet::new(),
        forked: std::collections::HashSet::new(),
    };
    let mut live = 1usize;
    let mut exit_code = 0;
    while live > 0 {
        let mut st: libc::c_int = 0;
        // SAFETY: waitpid for any traced child with a valid status pointer.
        let tid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if tid < 0 {
            break;
        }
        let tid = tid as u32;
        let mut signal = 0;
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            live = live.saturating_sub(1);
            if tid == child {
                exit_code = if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) };
            }
            // A thread that dies in a memory call (killed) lets the next one go.
            let gone: Vec<u32> = t.inflight.iter().filter(|(_, v)| **v == tid).map(|(k, _)| *k).collect();
            for pid in gone {
                t.inflight.remove(&pid);
                if let Some(next) = t.held.get_mut(&pid).and_then(|q| q.pop_front()) {
                    let _ = t.syscall_stop(next);
                    // SAFETY: `next` is a stopped tracee of ours.
                    unsafe { libc::ptrace(libc::PTRACE_SYSCALL, next, 0, 0) };
                }
            }
            continue;
        }
        if libc::WIFSTOPPED(st) {
            // A new process may stop before its parent's fork event is seen: its fork is
            // recorded at whichever comes first.
            if t.known.insert(tid) && tid != child && tgid_of(tid) == tid {
                let ppid = fs::read_to_string(format!("/proc/{tid}/status")).ok().and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix("PPid:").and_then(|v| v.trim().parse::<u32>().ok()))
                });
                let parent = t.entries.iter().find_map(|(ptid, (n, _, _))| {
                    (matches!(*n, nr::FORK | nr::VFORK | nr::CLONE | nr::CLONE3) && Some(tgid_of(*ptid)) == ppid)
                        .then_some(*ptid)
                });
                if let Some(ptid) = parent {
                    t.note_fork(ptid, tid);
                }
            }
            let sig = libc::WSTOPSIG(st);
            let event = (st >> 16) & 0xff;
            if sig == (libc::SIGTRAP | 0x80) {
                let (resume, also) = t.syscall_stop(tid);
                if let Some(next) = also {
                    // SAFETY: `next` is a stopped tracee of ours.
                    unsafe { libc::ptrace(libc::PTRACE_SYSCALL, next, 0, 0) };
                }
                if resume == Resume::Hold {
                    continue;
                }
            } else if sig == libc::SIGTRAP && event != 0 {
                match event {
                    libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                        live += 1;
                        let mut new: libc::c_ulong = 0;
                        // SAFETY: GETEVENTMSG writes one unsigned long.
                        unsafe { libc::ptrace(libc::PTRACE_GETEVENTMSG, tid, 0, &mut new as *mut libc::c_ulong) };
                        if event != libc::PTRACE_EVENT_CLONE {
                            t.note_fork(tid, new as u32);
                        }
                    }
                    libc::PTRACE_EVENT_EXEC => {
                        let pid = tgid_of(tid);
                        let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
                        t.procs.insert(pid, ProcState::default());
                        t.entries.remove(&tid);
                        let mut fds: Vec<i64> = open_fds(pid).into_iter().map(|(f, _)| f).collect();
                        fds.extend(
                            [0, 1, 2].into_iter().filter(|f| Path::new(&format!("/proc/{pid}/fd/{f}")).exists()),
                        );
                        fds.sort();
                        let start_brk = start_brk_of(pid);
                        t.rec.events.push(Event::Exec { pid, maps, fds, start_brk });
                        t.rec.started = true;
                        if pid == child && !t.rec.events.iter().any(|e| matches!(e, Event::Inherited { .. })) {
                            t.rec.events.push(Event::Inherited { pid, fds: open_fds(pid) });
                        }
                    }
                    libc::PTRACE_EVENT_EXIT => {
                        let pid = tgid_of(tid);
                        if pid == tid {
                            t.look_at_others(pid);
                            record_faults(&mut t.procs, &mut t.rec, pid, t.zero);
                            let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
                            if let Some(call) = t.exiting.remove(&pid) {
                                t.rec.events.push(call);
                            }
                            t.rec.events.push(Event::Exit { pid, smaps });
                        }
                    }
                    _ => {}
                }
            } else if sig == libc::SIGSTOP || sig == libc::SIGTRAP {
                // The first stop of a new thread or process, or the initial SIGSTOP.
            } else {
                signal = sig;
            }
        }
        // SAFETY: `tid` is a stopped tracee of ours.
        unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0, signal) };
    }
    let mut rec = t.rec;
    rec.status = exit_code;
    if !rec.started {
        return Err(OracleError::Io(format!("cannot run {} (exit status {exit_code})", program.display())));
    }
    Ok(rec)
}

/// A call's entry as a thread made it: number, arguments, the string an argument names.
type Entry = (u64, [u64; 6], Option<(usize, Vec<u8>)>);

/// Whether a stopped thread goes on now or waits.
#[derive(PartialEq, Eq)]
enum Resume {
    Now,
    /// Held at the entry of a memory call while another thread of its process is in one:
    /// memory calls of one address space run one at a time, so the recording's order is the
    /// order they took effect in and the maps read after each show only its own effect.
    Hold,
}

/// The state of a recording in progress.
struct Tracer {
    rec: Recording,
    zero: Option<u64>,
    procs: HashMap<u32, ProcState>,
    /// Per thread: the entry of the call in progress.
    entries: HashMap<u32, Entry>,
    /// Processes in exit_group: the call, written at their exit stop.
    exiting: HashMap<u32, Event>,
    /// Per process: the thread in a memory call.
    inflight: HashMap<u32, u32>,
    /// Per process: threads held at a memory call's entry.
    held: HashMap<u32, std::collections::VecDeque<u32>>,
    /// Threads seen stopped at least once.
    known: std::collections::HashSet<u32>,
    /// Processes whose fork is recorded.
    forked: std::collections::HashSet<u32>,
}

impl Tracer {
    /// A process forked by thread `parent`: its fork is recorded (once, before anything of the
    /// child: a vfork returns in the parent only after the child has exec'd or exited), and it
    /// starts with the pages fork gave it (read from its pagemap before it runs), so only what
    /// it faults in itself is new.
    fn note_fork(&mut self, parent: u32, child: u32) {
        if !self.forked.insert(child) {
            return;
        }
        let pid = tgid_of(parent);
        let parent_pages = &self.procs.entry(pid).or_default().present;
        // What the fork copied is what the child has now, before it runs: anonymous memory
        // and page tables fork copies, not the file pages it leaves to fault back in.
        let mut copied = ProcState::default();
        let _ = copied.new_faults(child, self.zero);
        // With the parent's frames: a page the child copied already (the kernel writes its tid
        // for CLONE_CHILD_SETTID before it first stops) shows as a new write at its next look.
        for (addr, entry) in copied.present.iter_mut() {
            if let Some(p) = parent_pages.get(addr) {
                *entry = *p;
            }
        }
        self.procs.insert(child, copied);
        if let Some((n, args, string)) = self.entries.remove(&parent) {
            self.rec.events.push(Event::Call {
                pid,
                tid: parent,
                nr: n,
                args,
                string,
                ret: Some(i64::from(child)),
                maps: None,
                size: None,
                special: false,
            });
        }
    }

    fn stop(&mut self, tid: u32) -> (Resume, u32, bool) {
        on_syscall_stop(
            tid,
            &mut self.exiting,
            &mut self.entries,
            &mut self.procs,
            &mut self.rec,
            self.zero,
            &mut self.inflight,
        )
    }

    /// Before `pid`'s smaps is read as it exits: the faults the other processes made since
    /// their last look, which may have copied pages they shared with it (a parent writing after
    /// a fork leaves the child's page private). A process in a memory call is left alone: what
    /// the call does shows after it.
    fn look_at_others(&mut self, pid: u32) {
        let others: Vec<u32> =
            self.procs.keys().copied().filter(|p| *p != pid && !self.inflight.contains_key(p)).collect();
        for other in others {
            record_faults(&mut self.procs, &mut self.rec, other, self.zero);
        }
    }

    /// The thread's system call stop; returns a held thread to resume as well, if one may go.
    fn syscall_stop(&mut self, tid: u32) -> (Resume, Option<u32>) {
        let (resume, pid, exited_memory) = self.stop(tid);
        if resume == Resume::Hold {
            self.held.entry(pid).or_default().push_back(tid);
            return (Resume::Hold, None);
        }
        if exited_memory {
            self.inflight.remove(&pid);
            if let Some(next) = self.held.get_mut(&pid).and_then(|q| q.pop_front()) {
                // It is still at its entry stop: record the entry now, in order.
                let (r, _, _) = self.stop(next);
                debug_assert!(r == Resume::Now);
                return (Resume::Now, Some(next));
            }
        }
        (Resume::Now, None)
    }
}

fn on_syscall_stop(
    tid: u32,
    exiting: &mut HashMap<u32, Event>,
    entries: &mut HashMap<u32, Entry>,
    procs: &mut HashMap<u32, ProcState>,
    rec: &mut Recording,
    zero: Option<u64>,
    inflight: &mut HashMap<u32, u32>,
) -> (Resume, u32, bool) {
    let mut info = SyscallInfo { op: 0, _pad: 0, _flags: 0, _arch: 0, _ip: 0, _sp: 0, data: [0; 8] };
    // SAFETY: `info` is a valid buffer of its size for the kernel to fill.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO as libc::c_uint,
            tid,
            std::mem::size_of::<SyscallInfo>(),
            &mut info as *mut SyscallInfo,
        )
    };
    let pid = tgid_of(tid);
    if r < 0 {
        return (Resume::Now, pid, false);
    }
    match info.op {
        OP_ENTRY => {
            let n = info.data[0];
            let mut args = [0u64; 6];
            args.copy_from_slice(&info.data[1..7]);
            // An ioctl on a userfaultfd registers ranges, changes VMA flags and resolves faults:
            // memory changes the trace language has no words for.
            if n == IOCTL {
                let link = fs::read_link(format!("/proc/{tid}/fd/{}", args[0] as i32)).unwrap_or_default();
                if link.to_string_lossy().contains("userfaultfd") {
                    rec.events.push(Event::Call {
                        pid,
                        tid,
                        nr: n,
                        args,
                        string: None,
                        ret: None,
                        maps: None,
                        size: None,
                        special: false,
                    });
                }
                return (Resume::Now, pid, false);
            }
            let Some(kind) = kind_of(n) else { return (Resume::Now, pid, false) };
            // Before the program's image exists the process is still the tracer's copy: only
            // the execve that loads the program belongs to the recording.
            if n != nr::EXECVE && !rec.started {
                return (Resume::Now, pid, false);
            }
            // What the parent faulted in before a fork is its own (the child gets copies).
            if matches!(n, nr::FORK | nr::VFORK | nr::CLONE | nr::CLONE3) {
                record_faults(procs, rec, pid, zero);
            }
            if kind == Kind::Memory {
                match inflight.get(&pid) {
                    Some(t) if *t != tid => return (Resume::Hold, pid, false),
                    _ => {
                        inflight.insert(pid, tid);
                    }
                }
                record_faults(procs, rec, pid, zero);
            }
            let mut string = string_arg(n, &args).map(|(i, a)| (i, read_string(tid, a)));
            if n == nr::CLONE3 {
                // struct clone_args starts with the flags.
                string = Some((CLONE3_FLAGS, read_bytes(tid, args[0], 8)));
            }
            if let (nr::OPEN | nr::OPENAT | nr::UNLINK, Some((_, path))) = (n, &string) {
                note_existing(rec, tid, n, &args, path);
            }
            if n == nr::EXIT_GROUP {
                // Written at the exit stop, after the last faults.
                exiting.insert(
                    pid,
                    Event::Call { pid, tid, nr: n, args, string, ret: None, maps: None, size: None, special: false },
                );
                return (Resume::Now, pid, false);
            }
            if matches!(n, nr::EXIT | nr::EXECVE) {
                // They do not return (an exec returns in a new image; exit never).
                rec.events.push(Event::Call {
                    pid,
                    tid,
                    nr: n,
                    args,
                    string,
                    ret: None,
                    maps: None,
                    size: None,
                    special: false,
                });
                return (Resume::Now, pid, false);
            }
            entries.insert(tid, (n, args, string));
            (Resume::Now, pid, false)
        }
        OP_EXIT => {
            let Some((n, args, mut string)) = entries.remove(&tid) else { return (Resume::Now, pid, false) };
            let ret = info.data[0] as i64;
            // ERESTARTSYS and its kin: the call is interrupted by a signal and made again (a
            // new entry follows); this exit is not a result.
            if (-516..=-512).contains(&ret) {
                if kind_of(n) == Some(Kind::Memory) {
                    return (Resume::Now, pid, true);
                }
                return (Resume::Now, pid, false);
            }
            if let Some(path) = rec.creating.remove(&tid)
                && ret >= 0
            {
                rec.created.insert(path);
            }
            // pipe, pipe2 and socketpair return their two descriptors in memory.
            let pair_at = match n {
                22 | 293 => Some(args[0]),
                53 => Some(args[3]),
                _ => None,
            };
            if let Some(at) = pair_at.filter(|_| ret == 0) {
                string = Some((FD_PAIR, read_bytes(tid, at, 8)));
            }
            let kind = kind_of(n);
            let maps = (kind == Some(Kind::Memory))
                .then(|| fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default());
            let size = match (kind, n) {
                (Some(Kind::Size), _) if ret >= 0 => {
                    let fd = args[0] as i64;
                    fd_identity(pid, fd).map(|f| (fd, f.size))
                }
                _ => None,
            };
            let special = matches!(n, nr::OPEN | nr::OPENAT) && ret >= 0 && {
                let link = format!("/proc/{pid}/fd/{ret}");
                let target = fs::read_link(&link).unwrap_or_default();
                let regular = fs::metadata(&link).is_ok_and(|m| m.file_type().is_file());
                !regular && target != Path::new("/dev/zero") && target != Path::new("/dev/null")
            };
            rec.events.push(Event::Call { pid, tid, nr: n, args, string, ret: Some(ret), maps, size, special });
            (Resume::Now, pid, kind == Some(Kind::Memory))
        }
        _ => (Resume::Now, pid, false),
    }
}

/// Before an open: if the path names a file that exists, note its identity (the model gives it
/// the same one). Relative paths resolve against the process's directory (or `dirfd`).
fn note_existing(rec: &mut Recording, tid: u32, n: u64, args: &[u64; 6], path: &[u8]) {
    let rel = Path::new(std::ffi::OsStr::from_bytes(path));
    let base = if rel.is_absolute() {
        PathBuf::new()
    } else if n == nr::OPENAT && args[0] as i32 != libc::AT_FDCWD {
        match fs::read_link(format!("/proc/{tid}/fd/{}", args[0] as i32)) {
            Ok(p) => p,
            Err(_) => return,
        }
    } else {
        match fs::read_link(format!("/proc/{tid}/cwd")) {
            Ok(p) => p,
            Err(_) => return,
        }
    };
    let full = base.join(rel);
    // Named as the model names it: `.` and `..` folded without looking at the disk.
    let abs = lexical(&full);
    let flags = match n {
        nr::OPENAT => args[2],
        nr::OPEN => args[1],
        _ => 0,
    };
    let Ok(m) = fs::metadata(&full) else {
        if flags & 0o100 != 0 {
            // O_CREAT of a file that does not exist: if it works, the program made it.
            rec.creating.insert(tid, abs);
        }
        return;
    };
    if rec.created.contains(&abs) {
        return;
    }
    if !m.file_type().is_file() {
        return;
    }
    let real = fs::canonicalize(&full).map(|p| p.as_os_str().as_bytes().to_vec()).unwrap_or_else(|_| abs.clone());
    let dev = m.dev();
    rec.files.entry(abs.clone()).or_insert(OutsideFile {
        path: abs,
        real_path: real,
        size: m.size(),
        dev: (libc::major(dev), libc::minor(dev)),
        ino: m.ino(),
    });
}
