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
    /// `O_TRUNC`.
    pub const TRUNC: u64 = 0o1000;
    /// `O_APPEND`.
    pub const APPEND: u64 = 0o2000;
    /// `O_DIRECTORY`.
    pub const DIRECTORY: u64 = 0o200000;
    /// `O_CLOEXEC`.
    pub const CLOEXEC: u64 = 0o2000000;
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
