//! Symbolic constants of the trace language (x86_64 values), as strace prints them.

/// One named value of a flag set or an enumeration.
pub type Sym = (&'static str, u64);

/// How a numeric argument is printed and which names it may be written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Plain number printed in decimal.
    Dec,
    /// Plain number printed in hex (addresses).
    Hex,
    /// Octal (file modes).
    Oct,
    /// A file descriptor (signed, may carry `<path>`).
    Fd,
    Prot,
    Map,
    Mremap,
    Madv,
    Mlock2,
    Mcl,
    Open,
    Mfd,
    Fcntl,
    Seals,
    Dirfd,
    Prctl,
    PrSetVma,
    Pkey,
}

pub const PROT: &[Sym] = &[
    ("PROT_READ", 0x1),
    ("PROT_WRITE", 0x2),
    ("PROT_EXEC", 0x4),
    ("PROT_SEM", 0x8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
];

/// The MAP_TYPE field (low four bits) names.
pub const MAP_TYPE: &[Sym] =
    &[("MAP_SHARED", 0x1), ("MAP_PRIVATE", 0x2), ("MAP_SHARED_VALIDATE", 0x3), ("MAP_DROPPABLE", 0x8)];

pub const MAP_BITS: &[Sym] = &[
    ("MAP_FIXED", 0x10),
    ("MAP_ANONYMOUS", 0x20),
    ("MAP_32BIT", 0x40),
    ("MAP_ABOVE4G", 0x80),
    ("MAP_GROWSDOWN", 0x100),
    ("MAP_DENYWRITE", 0x800),
    ("MAP_EXECUTABLE", 0x1000),
    ("MAP_LOCKED", 0x2000),
    ("MAP_NORESERVE", 0x4000),
    ("MAP_POPULATE", 0x8000),
    ("MAP_NONBLOCK", 0x10000),
    ("MAP_STACK", 0x20000),
    ("MAP_HUGETLB", 0x40000),
    ("MAP_SYNC", 0x80000),
    ("MAP_FIXED_NOREPLACE", 0x100000),
    ("MAP_UNINITIALIZED", 0x400_0000),
];

/// `MAP_HUGE_*` / `MFD_HUGE_*` values live in bits 26..32.
pub const HUGE_SHIFT: u32 = 26;
pub const HUGE_MASK: u64 = 0x3f << HUGE_SHIFT;
pub const MAP_HUGE: &[Sym] = &[
    ("MAP_HUGE_64KB", 16 << 26),
    ("MAP_HUGE_512KB", 19 << 26),
    ("MAP_HUGE_1MB", 20 << 26),
    ("MAP_HUGE_2MB", 21 << 26),
    ("MAP_HUGE_8MB", 23 << 26),
    ("MAP_HUGE_16MB", 24 << 26),
    ("MAP_HUGE_32MB", 25 << 26),
    ("MAP_HUGE_256MB", 28 << 26),
    ("MAP_HUGE_512MB", 29 << 26),
    ("MAP_HUGE_1GB", 30 << 26),
    ("MAP_HUGE_2GB", 31 << 26),
    ("MAP_HUGE_16GB", 34 << 26),
];

pub const MREMAP: &[Sym] = &[("MREMAP_MAYMOVE", 1), ("MREMAP_FIXED", 2), ("MREMAP_DONTUNMAP", 4)];

pub const MADV: &[Sym] = &[
    ("MADV_NORMAL", 0),
    ("MADV_RANDOM", 1),
    ("MADV_SEQUENTIAL", 2),
    ("MADV_WILLNEED", 3),
    ("MADV_DONTNEED", 4),
    ("MADV_FREE", 8),
    ("MADV_REMOVE", 9),
    ("MADV_DONTFORK", 10),
    ("MADV_DOFORK", 11),
    ("MADV_MERGEABLE", 12),
    ("MADV_UNMERGEABLE", 13),
    ("MADV_HUGEPAGE", 14),
    ("MADV_NOHUGEPAGE", 15),
    ("MADV_DONTDUMP", 16),
    ("MADV_DODUMP", 17),
    ("MADV_WIPEONFORK", 18),
    ("MADV_KEEPONFORK", 19),
    ("MADV_COLD", 20),
    ("MADV_PAGEOUT", 21),
    ("MADV_POPULATE_READ", 22),
    ("MADV_POPULATE_WRITE", 23),
    ("MADV_DONTNEED_LOCKED", 24),
    ("MADV_COLLAPSE", 25),
    ("MADV_HWPOISON", 100),
    ("MADV_SOFT_OFFLINE", 101),
    ("MADV_GUARD_INSTALL", 102),
    ("MADV_GUARD_REMOVE", 103),
];

pub const MLOCK2: &[Sym] = &[("MLOCK_ONFAULT", 1)];
pub const MCL: &[Sym] = &[("MCL_CURRENT", 1), ("MCL_FUTURE", 2), ("MCL_ONFAULT", 4)];

/// The access-mode field of open flags (O_ACCMODE = 3).
pub const O_ACCMODE: &[Sym] = &[("O_RDONLY", 0), ("O_WRONLY", 1), ("O_RDWR", 2)];
pub const O_BITS: &[Sym] = &[
    ("O_CREAT", 0o100),
    ("O_EXCL", 0o200),
    ("O_NOCTTY", 0o400),
    ("O_TRUNC", 0o1000),
    ("O_APPEND", 0o2000),
    ("O_NONBLOCK", 0o4000),
    ("O_DSYNC", 0o10000),
    ("O_DIRECT", 0o40000),
    ("O_LARGEFILE", 0o100000),
    ("O_DIRECTORY", 0o200000),
    ("O_NOFOLLOW", 0o400000),
    ("O_NOATIME", 0o1000000),
    ("O_CLOEXEC", 0o2000000),
    ("O_SYNC", 0o4010000),
    ("O_PATH", 0o10000000),
    ("O_TMPFILE", 0o20200000),
];

pub const MFD: &[Sym] =
    &[("MFD_CLOEXEC", 1), ("MFD_ALLOW_SEALING", 2), ("MFD_HUGETLB", 4), ("MFD_NOEXEC_SEAL", 8), ("MFD_EXEC", 0x10)];

pub const FCNTL: &[Sym] = &[
    ("F_DUPFD", 0),
    ("F_GETFD", 1),
    ("F_SETFD", 2),
    ("F_GETFL", 3),
    ("F_SETFL", 4),
    ("F_DUPFD_CLOEXEC", 1030),
    ("F_ADD_SEALS", 1033),
    ("F_GET_SEALS", 1034),
];

pub const SEALS: &[Sym] = &[
    ("F_SEAL_SEAL", 1),
    ("F_SEAL_SHRINK", 2),
    ("F_SEAL_GROW", 4),
    ("F_SEAL_WRITE", 8),
    ("F_SEAL_FUTURE_WRITE", 0x10),
    ("F_SEAL_EXEC", 0x20),
];

pub const AT_FDCWD: i64 = -100;
pub const DIRFD: &[Sym] = &[("AT_FDCWD", AT_FDCWD as u64)];

pub const PR_SET_VMA: u64 = 0x5356_4d41;
pub const PRCTL: &[Sym] = &[("PR_SET_VMA", PR_SET_VMA)];
pub const PR_SET_VMA_ANON_NAME: u64 = 0;
pub const PR_SET_VMA_OPTS: &[Sym] = &[("PR_SET_VMA_ANON_NAME", PR_SET_VMA_ANON_NAME)];

pub const PKEY: &[Sym] = &[("PKEY_DISABLE_ACCESS", 1), ("PKEY_DISABLE_WRITE", 2)];

pub const CLONE: &[Sym] = &[
    ("CLONE_VM", 0x100),
    ("CLONE_FS", 0x200),
    ("CLONE_FILES", 0x400),
    ("CLONE_SIGHAND", 0x800),
    ("CLONE_PIDFD", 0x1000),
    ("CLONE_PTRACE", 0x2000),
    ("CLONE_VFORK", 0x4000),
    ("CLONE_PARENT", 0x8000),
    ("CLONE_THREAD", 0x10000),
    ("CLONE_NEWNS", 0x20000),
    ("CLONE_SYSVSEM", 0x40000),
    ("CLONE_SETTLS", 0x80000),
    ("CLONE_PARENT_SETTID", 0x100000),
    ("CLONE_CHILD_CLEARTID", 0x200000),
    ("CLONE_DETACHED", 0x400000),
    ("CLONE_UNTRACED", 0x800000),
    ("CLONE_CHILD_SETTID", 0x1000000),
    ("SIGCHLD", 17),
];

/// Linux errno names, indexed by number (x86_64 / asm-generic).
pub const ERRNO_NAMES: &[&str] = &[
    "",
    "EPERM",
    "ENOENT",
    "ESRCH",
    "EINTR",
    "EIO",
    "ENXIO",
    "E2BIG",
    "ENOEXEC",
    "EBADF",
    "ECHILD",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "ENOTBLK",
    "EBUSY",
    "EEXIST",
    "EXDEV",
    "ENODEV",
    "ENOTDIR",
    "EISDIR",
    "EINVAL",
    "ENFILE",
    "EMFILE",
    "ENOTTY",
    "ETXTBSY",
    "EFBIG",
    "ENOSPC",
    "ESPIPE",
    "EROFS",
    "EMLINK",
    "EPIPE",
    "EDOM",
    "ERANGE",
    "EDEADLK",
    "ENAMETOOLONG",
    "ENOLCK",
    "ENOSYS",
    "ENOTEMPTY",
    "ELOOP",
    "",
    "ENOMSG",
    "EIDRM",
    "ECHRNG",
    "EL2NSYNC",
    "EL3HLT",
    "EL3RST",
    "ELNRNG",
    "EUNATCH",
    "ENOCSI",
    "EL2HLT",
    "EBADE",
    "EBADR",
    "EXFULL",
    "ENOANO",
    "EBADRQC",
    "EBADSLT",
    "",
    "EBFONT",
    "ENOSTR",
    "ENODATA",
    "ETIME",
    "ENOSR",
    "ENONET",
    "ENOPKG",
    "EREMOTE",
    "ENOLINK",
    "EADV",
    "ESRMNT",
    "ECOMM",
    "EPROTO",
    "EMULTIHOP",
    "EDOTDOT",
    "EBADMSG",
    "EOVERFLOW",
    "ENOTUNIQ",
    "EBADFD",
    "EREMCHG",
    "ELIBACC",
    "ELIBBAD",
    "ELIBSCN",
    "ELIBMAX",
    "ELIBEXEC",
    "EILSEQ",
    "ERESTART",
    "ESTRPIPE",
    "EUSERS",
    "ENOTSOCK",
    "EDESTADDRREQ",
    "EMSGSIZE",
    "EPROTOTYPE",
    "ENOPROTOOPT",
    "EPROTONOSUPPORT",
    "ESOCKTNOSUPPORT",
    "EOPNOTSUPP",
];

/// The number of an errno name (`"ENOMEM"` → 12); `EWOULDBLOCK` and `ENOTSUP` are aliases.
pub fn errno_number(name: &str) -> Option<u16> {
    match name {
        "EWOULDBLOCK" => return Some(11),
        "ENOTSUP" => return Some(95),
        "" => return None,
        _ => {}
    }
    ERRNO_NAMES.iter().position(|n| *n == name).map(|i| i as u16)
}

/// The name of an errno number, if it has one.
pub fn errno_name(n: u16) -> Option<&'static str> {
    ERRNO_NAMES.get(n as usize).copied().filter(|s| !s.is_empty())
}

/// Every symbol a table accepts when parsing, in printing order.
pub fn symbols(table: Table) -> &'static [&'static [Sym]] {
    match table {
        Table::Dec | Table::Hex | Table::Oct | Table::Fd => &[],
        Table::Prot => &[PROT],
        Table::Map => &[MAP_TYPE, MAP_BITS, MAP_HUGE],
        Table::Mremap => &[MREMAP],
        Table::Madv => &[MADV],
        Table::Mlock2 => &[MLOCK2],
        Table::Mcl => &[MCL],
        Table::Open => &[O_ACCMODE, O_BITS],
        Table::Mfd => &[MFD, MAP_HUGE],
        Table::Fcntl => &[FCNTL],
        Table::Seals => &[SEALS],
        Table::Dirfd => &[DIRFD],
        Table::Prctl => &[PRCTL],
        Table::PrSetVma => &[PR_SET_VMA_OPTS],
        Table::Pkey => &[PKEY],
    }
}

/// Looks a symbol up in a table. `MFD_HUGE_*` are accepted as the `MAP_HUGE_*` values.
pub fn lookup(table: Table, name: &str) -> Option<u64> {
    let name = match (table, name.strip_prefix("MFD_HUGE_")) {
        (Table::Mfd, Some(rest)) => return lookup(Table::Map, &format!("MAP_HUGE_{rest}")),
        _ => name,
    };
    symbols(table).iter().flat_map(|t| t.iter()).find(|(n, _)| *n == name).map(|(_, v)| *v)
}
