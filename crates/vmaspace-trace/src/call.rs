//! Typed calls of the trace language.

/// One call a trace line makes. Integer arguments keep the full 64-bit register value, as the
/// kernel receives it; file descriptors and other signed arguments are sign-extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mmap {
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: i64,
        offset: u64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u64,
    },
    PkeyAlloc {
        flags: u64,
        access_rights: u64,
    },
    PkeyFree {
        pkey: i64,
    },
    PkeyMprotect {
        addr: u64,
        len: u64,
        prot: u64,
        pkey: i64,
    },
    /// `mremap` with four arguments is read with `new_addr` 0, as the kernel sees it when the
    /// caller clears the register; `explicit_new_addr` records whether a fifth was written.
    Mremap {
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
        explicit_new_addr: bool,
    },
    Madvise {
        addr: u64,
        len: u64,
        advice: u64,
    },
    Mlock {
        addr: u64,
        len: u64,
    },
    Mlock2 {
        addr: u64,
        len: u64,
        flags: u64,
    },
    Munlock {
        addr: u64,
        len: u64,
    },
    Mlockall {
        flags: u64,
    },
    Munlockall,
    Mseal {
        addr: u64,
        len: u64,
        flags: u64,
    },
    Brk {
        addr: u64,
    },
    /// `prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, addr, len, name)`; `name` None is NULL.
    PrctlSetVmaAnonName {
        addr: u64,
        len: u64,
        name: Option<Vec<u8>>,
    },
    Openat {
        dirfd: i64,
        path: Vec<u8>,
        flags: u64,
        mode: u64,
    },
    Open {
        path: Vec<u8>,
        flags: u64,
        mode: u64,
    },
    Close {
        fd: i64,
    },
    Dup {
        fd: i64,
    },
    Dup2 {
        old: i64,
        new: i64,
    },
    Dup3 {
        old: i64,
        new: i64,
        flags: u64,
    },
    Ftruncate {
        fd: i64,
        len: u64,
    },
    Unlink {
        path: Vec<u8>,
    },
    MemfdCreate {
        name: Vec<u8>,
        flags: u64,
    },
    MemfdSecret {
        flags: u64,
    },
    FcntlAddSeals {
        fd: i64,
        seals: u64,
    },
    FcntlGetSeals {
        fd: i64,
    },
    /// `fork()`, or `clone()` without `CLONE_VM` (`clone_flags` is then `Some`).
    Fork {
        clone_flags: Option<u64>,
    },
    ExitGroup {
        status: i64,
    },
    Touch {
        addr: u64,
        len: u64,
    },
    Peek {
        addr: u64,
        len: u64,
    },
    Maps,
    Smaps,
    /// `execve(path)` in a recording: the process's address space becomes `image` (the maps
    /// the kernel showed right after the exec, written as `#| ` lines after the call), and its
    /// descriptors those of `fds` (the ones open right after the exec, written as a `#fds:`
    /// line: close-on-exec ones are gone). None keeps every descriptor. `brk` is the program
    /// break the exec set (a `#brk:` line; with address-space randomisation it is not the end
    /// of the image's bss); None derives it from the image.
    Execve {
        path: Vec<u8>,
        image: String,
        fds: Option<Vec<i64>>,
        brk: Option<u64>,
    },
    /// `placeholder(fd, what)` in a recording: a descriptor the program got from a call the
    /// model has no file for (a socket, a pipe); it can be closed and duplicated, not mapped.
    Placeholder {
        fd: i64,
        what: Vec<u8>,
    },
    /// `resize(fd, size)` in a recording: the file grew to `size` by a write past its end.
    Resize {
        fd: i64,
        size: u64,
    },
}

impl Call {
    /// The name the call has in a trace.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Mmap { .. } => "mmap",
            Call::Munmap { .. } => "munmap",
            Call::Mprotect { .. } => "mprotect",
            Call::PkeyAlloc { .. } => "pkey_alloc",
            Call::PkeyFree { .. } => "pkey_free",
            Call::PkeyMprotect { .. } => "pkey_mprotect",
            Call::Mremap { .. } => "mremap",
            Call::Madvise { .. } => "madvise",
            Call::Mlock { .. } => "mlock",
            Call::Mlock2 { .. } => "mlock2",
            Call::Munlock { .. } => "munlock",
            Call::Mlockall { .. } => "mlockall",
            Call::Munlockall => "munlockall",
            Call::Mseal { .. } => "mseal",
            Call::Brk { .. } => "brk",
            Call::PrctlSetVmaAnonName { .. } => "prctl",
            Call::Openat { .. } => "openat",
            Call::Open { .. } => "open",
            Call::Close { .. } => "close",
            Call::Dup { .. } => "dup",
            Call::Dup2 { .. } => "dup2",
            Call::Dup3 { .. } => "dup3",
            Call::Ftruncate { .. } => "ftruncate",
            Call::Unlink { .. } => "unlink",
            Call::MemfdCreate { .. } => "memfd_create",
            Call::MemfdSecret { .. } => "memfd_secret",
            Call::FcntlAddSeals { .. } | Call::FcntlGetSeals { .. } => "fcntl",
            Call::Fork { clone_flags: None } => "fork",
            Call::Fork { clone_flags: Some(_) } => "clone",
            Call::ExitGroup { .. } => "exit_group",
            Call::Touch { .. } => "touch",
            Call::Peek { .. } => "peek",
            Call::Maps => "maps",
            Call::Smaps => "smaps",
            Call::Execve { .. } => "execve",
            Call::Placeholder { .. } => "placeholder",
            Call::Resize { .. } => "resize",
        }
    }

    /// Whether the call is a checkpoint (`maps()` / `smaps()`), which has no result.
    pub fn is_checkpoint(&self) -> bool {
        matches!(self, Call::Maps | Call::Smaps)
    }

    /// Whether the call exists only in recordings of real programs (`vmaspace trace`): the
    /// kernel side cannot run it from a trace.
    pub fn is_recording_only(&self) -> bool {
        matches!(self, Call::Execve { .. } | Call::Placeholder { .. } | Call::Resize { .. })
    }
}

/// A signal that stopped a `touch` or `peek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Sigsegv,
    Sigbus,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Sigsegv => "SIGSEGV",
            Signal::Sigbus => "SIGBUS",
        }
    }
    /// The signal's number on x86_64.
    pub fn number(self) -> i32 {
        match self {
            Signal::Sigsegv => 11,
            Signal::Sigbus => 7,
        }
    }
    pub fn from_number(n: i32) -> Option<Signal> {
        match n {
            11 => Some(Signal::Sigsegv),
            7 => Some(Signal::Sigbus),
            _ => None,
        }
    }
}

/// What a call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A non-negative return value.
    Value(u64),
    /// `-1 ENAME`: the errno number.
    Error(u16),
    /// `touch`/`peek` stopped by a signal.
    Signal(Signal),
    /// `?`: the call did not return (`exit_group`).
    NoReturn,
}

impl Outcome {
    /// The outcome of a raw syscall return value (negative errno convention).
    pub fn from_raw(ret: i64) -> Outcome {
        if (-4095..0).contains(&ret) { Outcome::Error((-ret) as u16) } else { Outcome::Value(ret as u64) }
    }
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the source text.
    pub lineno: usize,
    /// `[pid N]`: the process the call runs in; None is the first process.
    pub pid: Option<u32>,
    pub call: Call,
    /// The result written in the trace, if any.
    pub result: Option<Outcome>,
}

/// Which part of the address space a scenario compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `# window: START-END`: only VMAs intersecting `[start, end)`.
    Window { start: u64, end: u64 },
    /// `# whole-space`: every line, with the model seeded from `NAME.initial-maps`.
    WholeSpace,
}

/// The default comparison window of a scenario without a header.
pub const DEFAULT_WINDOW: Scope = Scope::Window { start: 0x0ff0_0000_0000, end: 0x1010_0000_0000 };

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// The scope named by a `# window:` or `# whole-space` header comment, if any.
    pub scope: Option<Scope>,
    /// Comment lines before the first call, kept so `record` can write them back.
    pub header: Vec<String>,
    /// The mounts and huge page pools the header asks for.
    pub setup: crate::setup::Setup,
    pub lines: Vec<Line>,
}

impl Trace {
    /// Whether the kernel's results depend on the CPU having protection keys: pkey calls, and
    /// execute-only protections (which take the execute-only key).
    pub fn results_depend_on_pkeys(&self) -> bool {
        const EXEC_ONLY: u64 = 4; // PROT_EXEC alone
        self.lines.iter().any(|l| match l.call {
            Call::PkeyAlloc { .. } | Call::PkeyFree { .. } | Call::PkeyMprotect { .. } => true,
            Call::Mmap { prot, .. } | Call::Mprotect { prot, .. } => prot == EXEC_ONLY,
            _ => false,
        })
    }

    /// Whether the kernel's output depends on the CPU having protection keys: its results, or
    /// smaps text (which has a `ProtectionKey` line only with them).
    pub fn depends_on_pkeys(&self) -> bool {
        self.results_depend_on_pkeys() || self.lines.iter().any(|l| matches!(l.call, Call::Smaps))
    }

    /// The scope to compare: the header's, else the default window.
    pub fn effective_scope(&self) -> Scope {
        self.scope.unwrap_or(DEFAULT_WINDOW)
    }
}

impl Trace {
    /// The label of each `fork` line's child, in trace order: the result written in the trace,
    /// or 1001, 1002, ... (always above any label already taken).
    pub fn fork_labels(&self) -> Vec<u32> {
        let mut next = 1001u32;
        let mut labels = Vec::new();
        for line in &self.lines {
            if let Call::Fork { .. } = line.call {
                let label = match line.result {
                    Some(Outcome::Value(v)) if v <= u64::from(u32::MAX) => v as u32,
                    _ => next,
                };
                next = next.max(label).saturating_add(1);
                labels.push(label);
            }
        }
        labels
    }
}
