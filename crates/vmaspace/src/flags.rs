//! Flag words: `VmFlags` with Linux's bit values, and the constants of the call arguments.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not};

/// A VMA's `vm_flags`, with Linux 6.18's bit values on x86_64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct VmFlags(pub u64);

macro_rules! vm_flags {
    ($($name:ident = $bit:expr;)*) => {
        impl VmFlags {
            $(
                #[doc = concat!("`VM_", stringify!($name), "` (bit ", stringify!($bit), ").")]
                pub const $name: VmFlags = VmFlags(1 << $bit);
            )*
            /// Every named flag with its `VM_` name, in bit order.
            const NAMED: &[(&'static str, VmFlags)] = &[$((concat!("VM_", stringify!($name)), VmFlags(1 << $bit)),)*];
        }
    };
}

vm_flags! {
    READ = 0; WRITE = 1; EXEC = 2; SHARED = 3;
    MAYREAD = 4; MAYWRITE = 5; MAYEXEC = 6; MAYSHARE = 7;
    GROWSDOWN = 8; UFFD_MISSING = 9; PFNMAP = 10; MAYBE_GUARD = 11;
    UFFD_WP = 12; LOCKED = 13; IO = 14; SEQ_READ = 15; RAND_READ = 16;
    DONTCOPY = 17; DONTEXPAND = 18; LOCKONFAULT = 19; ACCOUNT = 20;
    NORESERVE = 21; HUGETLB = 22; SYNC = 23; ARCH_1 = 24; WIPEONFORK = 25;
    DONTDUMP = 26; SOFTDIRTY = 27; MIXEDMAP = 28; HUGEPAGE = 29;
    NOHUGEPAGE = 30; MERGEABLE = 31;
    PKEY_BIT0 = 32; PKEY_BIT1 = 33; PKEY_BIT2 = 34; PKEY_BIT3 = 35;
    SHADOW_STACK = 37; DROPPABLE = 40; UFFD_MINOR = 41; SEALED = 42;
}

impl VmFlags {
    /// No flag.
    pub const NONE: VmFlags = VmFlags(0);
    /// `VM_READ | VM_WRITE | VM_EXEC`.
    pub const ACCESS_FLAGS: VmFlags = VmFlags(0x7);
    /// `VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP`: never merged.
    pub const SPECIAL: VmFlags = VmFlags(0x1004_4400);
    /// What `remap_pfn_range` sets.
    pub const REMAP_FLAGS: VmFlags = VmFlags((1 << 14) | (1 << 10) | (1 << 18) | (1 << 26));
    /// `VM_LOCKED_MASK`: `VM_LOCKED | VM_LOCKONFAULT`.
    pub const LOCKED_MASK: VmFlags = VmFlags((1 << 13) | (1 << 19));
    /// The four protection key bits (`VM_PKEY_BIT0..3`).
    pub const PKEY_MASK: VmFlags = VmFlags(0xf << 32);
    /// `VM_GROWSDOWN | VM_SHADOW_STACK`: VMAs with a guard gap below them.
    pub const STARTGAP_FLAGS: VmFlags = VmFlags((1 << 8) | (1 << 37));
    /// `VM_INIT_DEF_MASK`: the only def_flags a fork keeps.
    pub const INIT_DEF_MASK: VmFlags = VmFlags(1 << 30);
    /// Flags a VMA keeps through merges and splits: soft-dirty and the guard-region mark.
    /// (Linux 6.18.2 has only `VM_SOFTDIRTY`; the 6.18.44 kernel of these machines has
    /// `VM_MAYBE_GUARD` as 6.19 does: `live-kernel.md` §7.)
    pub const STICKY: VmFlags = VmFlags((1 << 27) | (1 << 11));
    /// Bits ignored when deciding whether two VMAs can merge (`VM_IGNORE_MERGE` = the sticky
    /// flags).
    pub const IGNORE_MERGE: VmFlags = VmFlags((1 << 27) | (1 << 11));

    /// The raw `vm_flags` value.
    pub fn bits(self) -> u64 {
        self.0
    }
    /// Whether every flag of `other` is set.
    pub fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Whether any flag of `other` is set.
    pub fn intersects(self, other: VmFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: VmFlags) {
        self.0 |= other.0;
    }
    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: VmFlags) {
        self.0 &= !other.0;
    }
    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The protection key in the pkey bits.
    pub fn pkey(self) -> u32 {
        ((self.0 >> 32) & 0xf) as u32
    }
    /// `vma_is_accessible`: any of read, write, exec.
    pub fn is_accessible(self) -> bool {
        self.intersects(VmFlags::ACCESS_FLAGS)
    }
    /// `is_shared_maywrite`: `VM_SHARED` and `VM_MAYWRITE` both set.
    pub fn is_shared_maywrite(self) -> bool {
        self.contains(VmFlags::SHARED | VmFlags::MAYWRITE)
    }
    /// `is_data_mapping`: writable, private, not stack.
    pub fn is_data(self) -> bool {
        self.0 & (VmFlags::WRITE | VmFlags::SHARED | VmFlags::GROWSDOWN).0 == VmFlags::WRITE.0
    }
    /// `is_exec_mapping`: executable, not writable, not stack.
    pub fn is_exec(self) -> bool {
        self.0 & (VmFlags::EXEC | VmFlags::WRITE | VmFlags::GROWSDOWN).0 == VmFlags::EXEC.0
    }
    /// `is_stack_mapping`.
    pub fn is_stack(self) -> bool {
        self.intersects(VmFlags::GROWSDOWN | VmFlags::SHADOW_STACK)
    }

    /// The flags by their kernel names, `VM_READ|VM_WRITE`, in bit order; bits without a name
    /// as one hex number at the end.
    pub fn names(self) -> String {
        let mut parts: Vec<String> =
            VmFlags::NAMED.iter().filter(|(_, f)| self.contains(*f)).map(|(n, _)| (*n).to_string()).collect();
        let named = VmFlags::NAMED.iter().fold(0, |acc, (_, f)| acc | f.0);
        if self.0 & !named != 0 {
            parts.push(format!("{:#x}", self.0 & !named));
        }
        if parts.is_empty() { "0".into() } else { parts.join("|") }
    }

    /// The `VmFlags:` line's mnemonics, in bit order, each followed by a space
    /// (Linux: `show_smap_vma_flags()`; pkey bits print nothing).
    pub fn mnemonics(self) -> String {
        let mut s = String::with_capacity(64);
        for bit in 0..64u32 {
            if self.0 & (1 << bit) == 0 {
                continue;
            }
            let m = MNEMONICS.get(bit as usize).copied().unwrap_or("??");
            if m.is_empty() {
                continue;
            }
            s.push_str(m);
            s.push(' ');
        }
        s
    }
}

/// Bit → mnemonic (fs/proc/task_mmu.c). Empty strings print nothing; `??` marks unnamed bits.
const MNEMONICS: [&str; 43] = [
    "rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "um", "pf", "gu", "uw", "lo", "io", "sr", "rr", "dc", "de",
    "lf", "ac", "nr", "ht", "sf", "ar", "wf", "dd", "sd", "mm", "hg", "nh", "mg", "", "", "", "", "??", "ss", "??",
    "??", "dp", "ui", "sl",
];

impl BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, o: VmFlags) -> VmFlags {
        VmFlags(self.0 | o.0)
    }
}
impl BitOrAssign for VmFlags {
    fn bitor_assign(&mut self, o: VmFlags) {
        self.0 |= o.0;
    }
}
impl BitAnd for VmFlags {
    type Output = VmFlags;
    fn bitand(self, o: VmFlags) -> VmFlags {
        VmFlags(self.0 & o.0)
    }
}
impl BitAndAssign for VmFlags {
    fn bitand_assign(&mut self, o: VmFlags) {
        self.0 &= o.0;
    }
}
impl Not for VmFlags {
    type Output = VmFlags;
    fn not(self) -> VmFlags {
        VmFlags(!self.0)
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmFlags({:#x}: {})", self.0, self.mnemonics().trim_end())
    }
}

/// `PROT_*` values.
pub mod prot {
    /// `PROT_NONE`: no access.
    pub const NONE: u64 = 0;
    /// `PROT_READ`.
    pub const READ: u64 = 0x1;
    /// `PROT_WRITE`.
    pub const WRITE: u64 = 0x2;
    /// `PROT_EXEC`.
    pub const EXEC: u64 = 0x4;
    /// `PROT_SEM`.
    pub const SEM: u64 = 0x8;
    /// `PROT_GROWSDOWN`.
    pub const GROWSDOWN: u64 = 0x0100_0000;
    /// `PROT_GROWSUP`.
    pub const GROWSUP: u64 = 0x0200_0000;
}

/// `MAP_*` values.
pub mod map {
    /// `MAP_SHARED`.
    pub const SHARED: u64 = 0x1;
    /// `MAP_PRIVATE`.
    pub const PRIVATE: u64 = 0x2;
    /// `MAP_SHARED_VALIDATE`.
    pub const SHARED_VALIDATE: u64 = 0x3;
    /// `MAP_DROPPABLE`.
    pub const DROPPABLE: u64 = 0x8;
    /// `MAP_TYPE`: the bits that say shared, private, shared-validate or droppable.
    pub const TYPE: u64 = 0xf;
    /// `MAP_FIXED`.
    pub const FIXED: u64 = 0x10;
    /// `MAP_ANONYMOUS`.
    pub const ANONYMOUS: u64 = 0x20;
    /// `MAP_32BIT`.
    pub const _32BIT: u64 = 0x40;
    /// `MAP_ABOVE4G`.
    pub const ABOVE4G: u64 = 0x80;
    /// `MAP_GROWSDOWN`.
    pub const GROWSDOWN: u64 = 0x100;
    /// `MAP_DENYWRITE`.
    pub const DENYWRITE: u64 = 0x800;
    /// `MAP_EXECUTABLE`.
    pub const EXECUTABLE: u64 = 0x1000;
    /// `MAP_LOCKED`.
    pub const LOCKED: u64 = 0x2000;
    /// `MAP_NORESERVE`.
    pub const NORESERVE: u64 = 0x4000;
    /// `MAP_POPULATE`.
    pub const POPULATE: u64 = 0x8000;
    /// `MAP_NONBLOCK`.
    pub const NONBLOCK: u64 = 0x10000;
    /// `MAP_STACK`.
    pub const STACK: u64 = 0x20000;
    /// `MAP_HUGETLB`.
    pub const HUGETLB: u64 = 0x40000;
    /// `MAP_SYNC`.
    pub const SYNC: u64 = 0x80000;
    /// `MAP_FIXED_NOREPLACE`.
    pub const FIXED_NOREPLACE: u64 = 0x100000;
    /// `MAP_UNINITIALIZED`.
    pub const UNINITIALIZED: u64 = 0x400_0000;
    /// `MAP_HUGE_SHIFT`: where the log2 of the huge page size starts in the flags.
    pub const HUGE_SHIFT: u32 = 26;
    /// `MAP_HUGE_MASK`: the width of that field.
    pub const HUGE_MASK: u64 = 0x3f;
    /// `MAP_HUGE_64KB` (log2 of the size in the `MAP_HUGE_SHIFT` field; also `MFD_HUGE_*`).
    pub const HUGE_64KB: u64 = 16 << HUGE_SHIFT;
    /// `MAP_HUGE_512KB`.
    pub const HUGE_512KB: u64 = 19 << HUGE_SHIFT;
    /// `MAP_HUGE_1MB`.
    pub const HUGE_1MB: u64 = 20 << HUGE_SHIFT;
    /// `MAP_HUGE_2MB`.
    pub const HUGE_2MB: u64 = 21 << HUGE_SHIFT;
    /// `MAP_HUGE_8MB`.
    pub const HUGE_8MB: u64 = 23 << HUGE_SHIFT;
    /// `MAP_HUGE_16MB`.
    pub const HUGE_16MB: u64 = 24 << HUGE_SHIFT;
    /// `MAP_HUGE_32MB`.
    pub const HUGE_32MB: u64 = 25 << HUGE_SHIFT;
    /// `MAP_HUGE_256MB`.
    pub const HUGE_256MB: u64 = 28 << HUGE_SHIFT;
    /// `MAP_HUGE_512MB`.
    pub const HUGE_512MB: u64 = 29 << HUGE_SHIFT;
    /// `MAP_HUGE_1GB`.
    pub const HUGE_1GB: u64 = 30 << HUGE_SHIFT;
    /// `MAP_HUGE_2GB`.
    pub const HUGE_2GB: u64 = 31 << HUGE_SHIFT;
    /// `MAP_HUGE_16GB`.
    pub const HUGE_16GB: u64 = 34 << HUGE_SHIFT;
    /// `LEGACY_MAP_MASK`: the flags `MAP_SHARED` silently accepts on a file.
    pub const LEGACY_MASK: u64 = SHARED
        | PRIVATE
        | FIXED
        | ANONYMOUS
        | DENYWRITE
        | EXECUTABLE
        | UNINITIALIZED
        | GROWSDOWN
        | LOCKED
        | NORESERVE
        | POPULATE
        | NONBLOCK
        | STACK
        | HUGETLB
        | _32BIT
        | ABOVE4G
        | (HUGE_MASK << HUGE_SHIFT);
}

/// `O_*` open flags (the subset the model interprets).
pub mod open {
    /// `O_ACCMODE`: the access mode bits.
    pub const ACCMODE: u64 = 0o3;
    /// `O_RDONLY`.
    pub const RDONLY: u64 = 0;
    /// `O_WRONLY`.
    pub const WRONLY: u64 = 1;
    /// `O_RDWR`.
    pub const RDWR: u64 = 2;
    /// `O_CREAT`.
    pub const CREAT: u64 = 0o100;
    /// `O_EXCL`.
    pub const EXCL: u64 = 0o200;
    /// `O_NOCTTY`.
    pub const NOCTTY: u64 = 0o400;
    /// `O_TRUNC`.
    pub const TRUNC: u64 = 0o1000;
    /// `O_APPEND`.
    pub const APPEND: u64 = 0o2000;
    /// `O_NONBLOCK`.
    pub const NONBLOCK: u64 = 0o4000;
    /// `O_DSYNC`.
    pub const DSYNC: u64 = 0o10000;
    /// `O_DIRECT`.
    pub const DIRECT: u64 = 0o40000;
    /// `O_LARGEFILE`.
    pub const LARGEFILE: u64 = 0o100000;
    /// `O_DIRECTORY`.
    pub const DIRECTORY: u64 = 0o200000;
    /// `O_NOFOLLOW`.
    pub const NOFOLLOW: u64 = 0o400000;
    /// `O_NOATIME`.
    pub const NOATIME: u64 = 0o1000000;
    /// `O_CLOEXEC`.
    pub const CLOEXEC: u64 = 0o2000000;
    /// `O_SYNC`.
    pub const SYNC: u64 = 0o4010000;
    /// `O_PATH`.
    pub const PATH: u64 = 0o10000000;
    /// `O_TMPFILE`.
    pub const TMPFILE: u64 = 0o20200000;
}

/// `MFD_*` flags of `memfd_create`.
pub mod mfd {
    /// `MFD_CLOEXEC`.
    pub const CLOEXEC: u64 = 1;
    /// `MFD_ALLOW_SEALING`.
    pub const ALLOW_SEALING: u64 = 2;
    /// `MFD_HUGETLB`.
    pub const HUGETLB: u64 = 4;
    /// `MFD_NOEXEC_SEAL`.
    pub const NOEXEC_SEAL: u64 = 8;
    /// `MFD_EXEC`.
    pub const EXEC: u64 = 0x10;
}

/// `F_SEAL_*` flags.
pub mod seal {
    /// `F_SEAL_SEAL`.
    pub const SEAL: u64 = 1;
    /// `F_SEAL_SHRINK`.
    pub const SHRINK: u64 = 2;
    /// `F_SEAL_GROW`.
    pub const GROW: u64 = 4;
    /// `F_SEAL_WRITE`.
    pub const WRITE: u64 = 8;
    /// `F_SEAL_FUTURE_WRITE`.
    pub const FUTURE_WRITE: u64 = 0x10;
    /// `F_SEAL_EXEC`.
    pub const EXEC: u64 = 0x20;
}

/// `MADV_*` values.
pub mod advice {
    /// `MADV_HWPOISON` (refused here: `CONFIG_MEMORY_FAILURE` is off).
    pub const HWPOISON: u64 = 100;
    /// `MADV_SOFT_OFFLINE` (refused here, as `MADV_HWPOISON`).
    pub const SOFT_OFFLINE: u64 = 101;
    /// `MADV_NORMAL`.
    pub const NORMAL: u64 = 0;
    /// `MADV_RANDOM`.
    pub const RANDOM: u64 = 1;
    /// `MADV_SEQUENTIAL`.
    pub const SEQUENTIAL: u64 = 2;
    /// `MADV_WILLNEED`.
    pub const WILLNEED: u64 = 3;
    /// `MADV_DONTNEED`.
    pub const DONTNEED: u64 = 4;
    /// `MADV_FREE`.
    pub const FREE: u64 = 8;
    /// `MADV_REMOVE`.
    pub const REMOVE: u64 = 9;
    /// `MADV_DONTFORK`.
    pub const DONTFORK: u64 = 10;
    /// `MADV_DOFORK`.
    pub const DOFORK: u64 = 11;
    /// `MADV_MERGEABLE`.
    pub const MERGEABLE: u64 = 12;
    /// `MADV_UNMERGEABLE`.
    pub const UNMERGEABLE: u64 = 13;
    /// `MADV_HUGEPAGE`.
    pub const HUGEPAGE: u64 = 14;
    /// `MADV_NOHUGEPAGE`.
    pub const NOHUGEPAGE: u64 = 15;
    /// `MADV_DONTDUMP`.
    pub const DONTDUMP: u64 = 16;
    /// `MADV_DODUMP`.
    pub const DODUMP: u64 = 17;
    /// `MADV_WIPEONFORK`.
    pub const WIPEONFORK: u64 = 18;
    /// `MADV_KEEPONFORK`.
    pub const KEEPONFORK: u64 = 19;
    /// `MADV_COLD`.
    pub const COLD: u64 = 20;
    /// `MADV_PAGEOUT`.
    pub const PAGEOUT: u64 = 21;
    /// `MADV_POPULATE_READ`.
    pub const POPULATE_READ: u64 = 22;
    /// `MADV_POPULATE_WRITE`.
    pub const POPULATE_WRITE: u64 = 23;
    /// `MADV_DONTNEED_LOCKED`.
    pub const DONTNEED_LOCKED: u64 = 24;
    /// `MADV_COLLAPSE`.
    pub const COLLAPSE: u64 = 25;
    /// `MADV_GUARD_INSTALL`.
    pub const GUARD_INSTALL: u64 = 102;
    /// `MADV_GUARD_REMOVE`.
    pub const GUARD_REMOVE: u64 = 103;
}

/// `MLOCK_*` flags of `mlock2`.
pub mod mlock {
    /// `MLOCK_ONFAULT`.
    pub const ONFAULT: u64 = 1;
}

/// `MLOCK_ONFAULT` (also [`mlock::ONFAULT`]).
pub const MLOCK_ONFAULT: u64 = mlock::ONFAULT;

/// `MCL_*`.
pub mod mcl {
    /// `MCL_CURRENT`.
    pub const CURRENT: u64 = 1;
    /// `MCL_FUTURE`.
    pub const FUTURE: u64 = 2;
    /// `MCL_ONFAULT`.
    pub const ONFAULT: u64 = 4;
}

/// `MREMAP_*`.
pub mod mremap {
    /// `MREMAP_MAYMOVE`.
    pub const MAYMOVE: u64 = 1;
    /// `MREMAP_FIXED`.
    pub const FIXED: u64 = 2;
    /// `MREMAP_DONTUNMAP`.
    pub const DONTUNMAP: u64 = 4;
}

/// `F_*` commands of `fcntl` that traces name.
pub mod fcntl {
    /// `F_DUPFD`.
    pub const DUPFD: u64 = 0;
    /// `F_GETFD`.
    pub const GETFD: u64 = 1;
    /// `F_SETFD`.
    pub const SETFD: u64 = 2;
    /// `F_GETFL`.
    pub const GETFL: u64 = 3;
    /// `F_SETFL`.
    pub const SETFL: u64 = 4;
    /// `F_DUPFD_CLOEXEC`.
    pub const DUPFD_CLOEXEC: u64 = 1030;
    /// `F_ADD_SEALS`.
    pub const ADD_SEALS: u64 = 1033;
    /// `F_GET_SEALS`.
    pub const GET_SEALS: u64 = 1034;
}

/// `AT_FDCWD`: a `dirfd` meaning the working directory.
pub const AT_FDCWD: i64 = -100;

/// `prctl` options that traces name.
pub mod prctl {
    /// `PR_SET_VMA`.
    pub const SET_VMA: u64 = 0x5356_4d41;
    /// `PR_SET_VMA_ANON_NAME`.
    pub const SET_VMA_ANON_NAME: u64 = 0;
}

/// `PKEY_*` access rights of `pkey_alloc`.
pub mod pkey {
    /// `PKEY_DISABLE_ACCESS`.
    pub const DISABLE_ACCESS: u64 = 1;
    /// `PKEY_DISABLE_WRITE`.
    pub const DISABLE_WRITE: u64 = 2;
}

/// `CLONE_*` flags (and the exit signal) a `clone` line may carry.
pub mod clone {
    /// `CLONE_VM`.
    pub const VM: u64 = 0x100;
    /// `CLONE_FS`.
    pub const FS: u64 = 0x200;
    /// `CLONE_FILES`.
    pub const FILES: u64 = 0x400;
    /// `CLONE_SIGHAND`.
    pub const SIGHAND: u64 = 0x800;
    /// `CLONE_PIDFD`.
    pub const PIDFD: u64 = 0x1000;
    /// `CLONE_PTRACE`.
    pub const PTRACE: u64 = 0x2000;
    /// `CLONE_VFORK`.
    pub const VFORK: u64 = 0x4000;
    /// `CLONE_PARENT`.
    pub const PARENT: u64 = 0x8000;
    /// `CLONE_THREAD`.
    pub const THREAD: u64 = 0x10000;
    /// `CLONE_NEWNS`.
    pub const NEWNS: u64 = 0x20000;
    /// `CLONE_SYSVSEM`.
    pub const SYSVSEM: u64 = 0x40000;
    /// `CLONE_SETTLS`.
    pub const SETTLS: u64 = 0x80000;
    /// `CLONE_PARENT_SETTID`.
    pub const PARENT_SETTID: u64 = 0x100000;
    /// `CLONE_CHILD_CLEARTID`.
    pub const CHILD_CLEARTID: u64 = 0x200000;
    /// `CLONE_DETACHED`.
    pub const DETACHED: u64 = 0x400000;
    /// `CLONE_UNTRACED`.
    pub const UNTRACED: u64 = 0x800000;
    /// `CLONE_CHILD_SETTID`.
    pub const CHILD_SETTID: u64 = 0x1000000;
    /// `SIGCHLD`, the exit signal in the low byte.
    pub const SIGCHLD: u64 = 17;
}

/// Every ABI constant with the name strace prints for it, in strace's printing order: the one
/// table a trace format reads and writes with (the `vmaspace-trace` crate uses these; the values
/// are the constants above, defined once).
pub mod names {
    use super::{advice, clone, fcntl, map, mcl, mfd, mlock, mremap, open, pkey, prctl, prot, seal};

    /// One named value of a flag set or an enumeration.
    pub type Sym = (&'static str, u64);

    /// `PROT_*` bits.
    pub const PROT: &[Sym] = &[
        ("PROT_READ", prot::READ),
        ("PROT_WRITE", prot::WRITE),
        ("PROT_EXEC", prot::EXEC),
        ("PROT_SEM", prot::SEM),
        ("PROT_GROWSDOWN", prot::GROWSDOWN),
        ("PROT_GROWSUP", prot::GROWSUP),
    ];
    /// The `MAP_TYPE` field (low four bits).
    pub const MAP_TYPE: &[Sym] = &[
        ("MAP_SHARED", map::SHARED),
        ("MAP_PRIVATE", map::PRIVATE),
        ("MAP_SHARED_VALIDATE", map::SHARED_VALIDATE),
        ("MAP_DROPPABLE", map::DROPPABLE),
    ];
    /// `MAP_*` bits above the type.
    pub const MAP_BITS: &[Sym] = &[
        ("MAP_FIXED", map::FIXED),
        ("MAP_ANONYMOUS", map::ANONYMOUS),
        ("MAP_32BIT", map::_32BIT),
        ("MAP_ABOVE4G", map::ABOVE4G),
        ("MAP_GROWSDOWN", map::GROWSDOWN),
        ("MAP_DENYWRITE", map::DENYWRITE),
        ("MAP_EXECUTABLE", map::EXECUTABLE),
        ("MAP_LOCKED", map::LOCKED),
        ("MAP_NORESERVE", map::NORESERVE),
        ("MAP_POPULATE", map::POPULATE),
        ("MAP_NONBLOCK", map::NONBLOCK),
        ("MAP_STACK", map::STACK),
        ("MAP_HUGETLB", map::HUGETLB),
        ("MAP_SYNC", map::SYNC),
        ("MAP_FIXED_NOREPLACE", map::FIXED_NOREPLACE),
        ("MAP_UNINITIALIZED", map::UNINITIALIZED),
    ];
    /// `MAP_HUGE_*` sizes (also `MFD_HUGE_*`).
    pub const MAP_HUGE: &[Sym] = &[
        ("MAP_HUGE_64KB", map::HUGE_64KB),
        ("MAP_HUGE_512KB", map::HUGE_512KB),
        ("MAP_HUGE_1MB", map::HUGE_1MB),
        ("MAP_HUGE_2MB", map::HUGE_2MB),
        ("MAP_HUGE_8MB", map::HUGE_8MB),
        ("MAP_HUGE_16MB", map::HUGE_16MB),
        ("MAP_HUGE_32MB", map::HUGE_32MB),
        ("MAP_HUGE_256MB", map::HUGE_256MB),
        ("MAP_HUGE_512MB", map::HUGE_512MB),
        ("MAP_HUGE_1GB", map::HUGE_1GB),
        ("MAP_HUGE_2GB", map::HUGE_2GB),
        ("MAP_HUGE_16GB", map::HUGE_16GB),
    ];
    /// `MREMAP_*` bits.
    pub const MREMAP: &[Sym] = &[
        ("MREMAP_MAYMOVE", mremap::MAYMOVE),
        ("MREMAP_FIXED", mremap::FIXED),
        ("MREMAP_DONTUNMAP", mremap::DONTUNMAP),
    ];
    /// `MADV_*` values.
    pub const MADV: &[Sym] = &[
        ("MADV_NORMAL", advice::NORMAL),
        ("MADV_RANDOM", advice::RANDOM),
        ("MADV_SEQUENTIAL", advice::SEQUENTIAL),
        ("MADV_WILLNEED", advice::WILLNEED),
        ("MADV_DONTNEED", advice::DONTNEED),
        ("MADV_FREE", advice::FREE),
        ("MADV_REMOVE", advice::REMOVE),
        ("MADV_DONTFORK", advice::DONTFORK),
        ("MADV_DOFORK", advice::DOFORK),
        ("MADV_MERGEABLE", advice::MERGEABLE),
        ("MADV_UNMERGEABLE", advice::UNMERGEABLE),
        ("MADV_HUGEPAGE", advice::HUGEPAGE),
        ("MADV_NOHUGEPAGE", advice::NOHUGEPAGE),
        ("MADV_DONTDUMP", advice::DONTDUMP),
        ("MADV_DODUMP", advice::DODUMP),
        ("MADV_WIPEONFORK", advice::WIPEONFORK),
        ("MADV_KEEPONFORK", advice::KEEPONFORK),
        ("MADV_COLD", advice::COLD),
        ("MADV_PAGEOUT", advice::PAGEOUT),
        ("MADV_POPULATE_READ", advice::POPULATE_READ),
        ("MADV_POPULATE_WRITE", advice::POPULATE_WRITE),
        ("MADV_DONTNEED_LOCKED", advice::DONTNEED_LOCKED),
        ("MADV_COLLAPSE", advice::COLLAPSE),
        ("MADV_HWPOISON", advice::HWPOISON),
        ("MADV_SOFT_OFFLINE", advice::SOFT_OFFLINE),
        ("MADV_GUARD_INSTALL", advice::GUARD_INSTALL),
        ("MADV_GUARD_REMOVE", advice::GUARD_REMOVE),
    ];
    /// `MLOCK_*` bits of `mlock2`.
    pub const MLOCK2: &[Sym] = &[("MLOCK_ONFAULT", mlock::ONFAULT)];
    /// `MCL_*` bits.
    pub const MCL: &[Sym] =
        &[("MCL_CURRENT", mcl::CURRENT), ("MCL_FUTURE", mcl::FUTURE), ("MCL_ONFAULT", mcl::ONFAULT)];
    /// The access-mode field of open flags (`O_ACCMODE`).
    pub const O_ACCMODE: &[Sym] = &[("O_RDONLY", open::RDONLY), ("O_WRONLY", open::WRONLY), ("O_RDWR", open::RDWR)];
    /// `O_*` bits.
    pub const O_BITS: &[Sym] = &[
        ("O_CREAT", open::CREAT),
        ("O_EXCL", open::EXCL),
        ("O_NOCTTY", open::NOCTTY),
        ("O_TRUNC", open::TRUNC),
        ("O_APPEND", open::APPEND),
        ("O_NONBLOCK", open::NONBLOCK),
        ("O_DSYNC", open::DSYNC),
        ("O_DIRECT", open::DIRECT),
        ("O_LARGEFILE", open::LARGEFILE),
        ("O_DIRECTORY", open::DIRECTORY),
        ("O_NOFOLLOW", open::NOFOLLOW),
        ("O_NOATIME", open::NOATIME),
        ("O_CLOEXEC", open::CLOEXEC),
        ("O_SYNC", open::SYNC),
        ("O_PATH", open::PATH),
        ("O_TMPFILE", open::TMPFILE),
    ];
    /// `MFD_*` bits.
    pub const MFD: &[Sym] = &[
        ("MFD_CLOEXEC", mfd::CLOEXEC),
        ("MFD_ALLOW_SEALING", mfd::ALLOW_SEALING),
        ("MFD_HUGETLB", mfd::HUGETLB),
        ("MFD_NOEXEC_SEAL", mfd::NOEXEC_SEAL),
        ("MFD_EXEC", mfd::EXEC),
    ];
    /// `F_*` commands.
    pub const FCNTL: &[Sym] = &[
        ("F_DUPFD", fcntl::DUPFD),
        ("F_GETFD", fcntl::GETFD),
        ("F_SETFD", fcntl::SETFD),
        ("F_GETFL", fcntl::GETFL),
        ("F_SETFL", fcntl::SETFL),
        ("F_DUPFD_CLOEXEC", fcntl::DUPFD_CLOEXEC),
        ("F_ADD_SEALS", fcntl::ADD_SEALS),
        ("F_GET_SEALS", fcntl::GET_SEALS),
    ];
    /// `F_SEAL_*` bits.
    pub const SEALS: &[Sym] = &[
        ("F_SEAL_SEAL", seal::SEAL),
        ("F_SEAL_SHRINK", seal::SHRINK),
        ("F_SEAL_GROW", seal::GROW),
        ("F_SEAL_WRITE", seal::WRITE),
        ("F_SEAL_FUTURE_WRITE", seal::FUTURE_WRITE),
        ("F_SEAL_EXEC", seal::EXEC),
    ];
    /// `AT_FDCWD`.
    pub const DIRFD: &[Sym] = &[("AT_FDCWD", super::AT_FDCWD as u64)];
    /// `prctl` options.
    pub const PRCTL: &[Sym] = &[("PR_SET_VMA", prctl::SET_VMA)];
    /// `PR_SET_VMA` sub-options.
    pub const PR_SET_VMA_OPTS: &[Sym] = &[("PR_SET_VMA_ANON_NAME", prctl::SET_VMA_ANON_NAME)];
    /// `PKEY_*` access rights.
    pub const PKEY: &[Sym] =
        &[("PKEY_DISABLE_ACCESS", pkey::DISABLE_ACCESS), ("PKEY_DISABLE_WRITE", pkey::DISABLE_WRITE)];
    /// `CLONE_*` flags and the exit signal.
    pub const CLONE: &[Sym] = &[
        ("CLONE_VM", clone::VM),
        ("CLONE_FS", clone::FS),
        ("CLONE_FILES", clone::FILES),
        ("CLONE_SIGHAND", clone::SIGHAND),
        ("CLONE_PIDFD", clone::PIDFD),
        ("CLONE_PTRACE", clone::PTRACE),
        ("CLONE_VFORK", clone::VFORK),
        ("CLONE_PARENT", clone::PARENT),
        ("CLONE_THREAD", clone::THREAD),
        ("CLONE_NEWNS", clone::NEWNS),
        ("CLONE_SYSVSEM", clone::SYSVSEM),
        ("CLONE_SETTLS", clone::SETTLS),
        ("CLONE_PARENT_SETTID", clone::PARENT_SETTID),
        ("CLONE_CHILD_CLEARTID", clone::CHILD_CLEARTID),
        ("CLONE_DETACHED", clone::DETACHED),
        ("CLONE_UNTRACED", clone::UNTRACED),
        ("CLONE_CHILD_SETTID", clone::CHILD_SETTID),
        ("SIGCHLD", clone::SIGCHLD),
    ];
}
