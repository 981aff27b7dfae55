//! The typed API: bit-flag types that still carry unknown bits (a syscall model must pass
//! whatever a program passes), one descriptor type, an address type, and calls that return
//! what Linux means in Rust's terms (`Result<(), Errno>` where Linux returns 0, an [`Addr`]
//! where it returns an address, an [`Fd`] where it returns a descriptor).
//!
//! Each typed call is a thin layer over the raw, syscall-shaped one of the same family
//! (`mmap`, `mprotect`, ...), which the trace runner uses with the numbers a trace names; both
//! do exactly the same thing.
//!
//! ```
//! use vmaspace::{AddressSpace, typed::{MapFlags, Prot}};
//! let mut mm = AddressSpace::new();
//! let a = mm.map(0x1000_0000_0000, 0x4000, Prot::READ | Prot::WRITE,
//!                MapFlags::PRIVATE | MapFlags::ANONYMOUS | MapFlags::FIXED, None, 0).unwrap();
//! mm.protect(a, 0x1000, Prot::READ).unwrap();
//! assert_eq!(mm.maps().lines().count(), 2);
//! ```

use crate::AddressSpace;
use crate::driver::OpenFile;
use crate::errno::Errno;
use crate::flags::{advice, map, mcl, mfd, mlock, mremap, names, open, prot, seal};
use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};
use std::sync::Arc;

macro_rules! flag_type {
    ($(#[$doc:meta])* $name:ident, $table:expr, { $($(#[$cdoc:meta])* $c:ident = $v:expr;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u64);

        impl $name {
            $($(#[$cdoc])* pub const $c: $name = $name($v);)*
            /// No flag.
            pub const EMPTY: $name = $name(0);

            /// The value as given, unknown bits included.
            pub const fn from_bits_retain(bits: u64) -> $name {
                $name(bits)
            }
            /// The raw value.
            pub const fn bits(self) -> u64 {
                self.0
            }
            /// Whether every bit of `other` is set.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            /// Whether any bit of `other` is set.
            pub const fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }
            /// The bits no named constant has (which Linux may refuse, or ignore).
            pub fn unknown_bits(self) -> u64 {
                self.0 & !$table.iter().fold(0, |a, (_, v)| a | v)
            }
        }

        impl BitOr for $name {
            type Output = $name;
            fn bitor(self, o: $name) -> $name {
                $name(self.0 | o.0)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, o: $name) {
                self.0 |= o.0;
            }
        }

        impl BitAnd for $name {
            type Output = $name;
            fn bitand(self, o: $name) -> $name {
                $name(self.0 & o.0)
            }
        }

        impl From<$name> for u64 {
            fn from(f: $name) -> u64 {
                f.0
            }
        }

        impl fmt::Debug for $name {
            /// strace's spelling: `PROT_READ|PROT_WRITE`, unknown bits in hex.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut parts: Vec<String> =
                    $table.iter().filter(|(_, v)| *v != 0 && self.0 & v == *v).map(|(n, _)| n.to_string()).collect();
                if self.unknown_bits() != 0 {
                    parts.push(format!("{:#x}", self.unknown_bits()));
                }
                if parts.is_empty() {
                    return write!(f, "0");
                }
                write!(f, "{}", parts.join("|"))
            }
        }
    };
}

const MAP_NAMES: [&[names::Sym]; 3] = [names::MAP_TYPE, names::MAP_BITS, names::MAP_HUGE];

/// All of `MAP_*`'s names, flattened.
fn map_names() -> impl Iterator<Item = &'static names::Sym> {
    MAP_NAMES.iter().flat_map(|t| t.iter())
}

/// The named `MAP_*` values, for [`MapFlags::unknown_bits`].
struct MapTable;
impl MapTable {
    fn iter(&self) -> impl Iterator<Item = &'static names::Sym> {
        map_names()
    }
}

flag_type!(
    /// `PROT_*`: what `mmap` and `mprotect` allow.
    Prot, names::PROT, {
        /// `PROT_NONE`.
        NONE = prot::NONE;
        /// `PROT_READ`.
        READ = prot::READ;
        /// `PROT_WRITE`.
        WRITE = prot::WRITE;
        /// `PROT_EXEC`.
        EXEC = prot::EXEC;
        /// `PROT_GROWSDOWN`.
        GROWSDOWN = prot::GROWSDOWN;
    }
);

flag_type!(
    /// `MAP_*`: the type (shared, private, ...) and the flags of `mmap`.
    MapFlags, MapTable, {
        /// `MAP_SHARED`.
        SHARED = map::SHARED;
        /// `MAP_PRIVATE`.
        PRIVATE = map::PRIVATE;
        /// `MAP_SHARED_VALIDATE`.
        SHARED_VALIDATE = map::SHARED_VALIDATE;
        /// `MAP_DROPPABLE`.
        DROPPABLE = map::DROPPABLE;
        /// `MAP_FIXED`.
        FIXED = map::FIXED;
        /// `MAP_ANONYMOUS`.
        ANONYMOUS = map::ANONYMOUS;
        /// `MAP_32BIT`.
        BIT32 = map::_32BIT;
        /// `MAP_GROWSDOWN`.
        GROWSDOWN = map::GROWSDOWN;
        /// `MAP_LOCKED`.
        LOCKED = map::LOCKED;
        /// `MAP_NORESERVE`.
        NORESERVE = map::NORESERVE;
        /// `MAP_POPULATE`.
        POPULATE = map::POPULATE;
        /// `MAP_STACK`.
        STACK = map::STACK;
        /// `MAP_HUGETLB`.
        HUGETLB = map::HUGETLB;
        /// `MAP_SYNC`.
        SYNC = map::SYNC;
        /// `MAP_FIXED_NOREPLACE`.
        FIXED_NOREPLACE = map::FIXED_NOREPLACE;
        /// `MAP_HUGE_2MB`.
        HUGE_2MB = map::HUGE_2MB;
        /// `MAP_HUGE_1GB`.
        HUGE_1GB = map::HUGE_1GB;
    }
);

flag_type!(
    /// `MREMAP_*`.
    MremapFlags, names::MREMAP, {
        /// `MREMAP_MAYMOVE`.
        MAYMOVE = mremap::MAYMOVE;
        /// `MREMAP_FIXED`.
        FIXED = mremap::FIXED;
        /// `MREMAP_DONTUNMAP`.
        DONTUNMAP = mremap::DONTUNMAP;
    }
);

flag_type!(
    /// `MLOCK_*` of `mlock2`.
    MlockFlags, names::MLOCK2, {
        /// `MLOCK_ONFAULT`.
        ONFAULT = mlock::ONFAULT;
    }
);

flag_type!(
    /// `MCL_*` of `mlockall`.
    MclFlags, names::MCL, {
        /// `MCL_CURRENT`.
        CURRENT = mcl::CURRENT;
        /// `MCL_FUTURE`.
        FUTURE = mcl::FUTURE;
        /// `MCL_ONFAULT`.
        ONFAULT = mcl::ONFAULT;
    }
);

flag_type!(
    /// `F_SEAL_*`.
    SealFlags, names::SEALS, {
        /// `F_SEAL_SEAL`.
        SEAL = seal::SEAL;
        /// `F_SEAL_SHRINK`.
        SHRINK = seal::SHRINK;
        /// `F_SEAL_GROW`.
        GROW = seal::GROW;
        /// `F_SEAL_WRITE`.
        WRITE = seal::WRITE;
        /// `F_SEAL_FUTURE_WRITE`.
        FUTURE_WRITE = seal::FUTURE_WRITE;
        /// `F_SEAL_EXEC`.
        EXEC = seal::EXEC;
    }
);

flag_type!(
    /// `O_*` of `open`: the access mode and the flags.
    OpenFlags, names::O_BITS, {
        /// `O_RDONLY`.
        RDONLY = open::RDONLY;
        /// `O_WRONLY`.
        WRONLY = open::WRONLY;
        /// `O_RDWR`.
        RDWR = open::RDWR;
        /// `O_CREAT`.
        CREAT = open::CREAT;
        /// `O_EXCL`.
        EXCL = open::EXCL;
        /// `O_TRUNC`.
        TRUNC = open::TRUNC;
        /// `O_CLOEXEC`.
        CLOEXEC = open::CLOEXEC;
    }
);

flag_type!(
    /// `MFD_*` of `memfd_create`.
    MfdFlags, names::MFD, {
        /// `MFD_CLOEXEC`.
        CLOEXEC = mfd::CLOEXEC;
        /// `MFD_ALLOW_SEALING`.
        ALLOW_SEALING = mfd::ALLOW_SEALING;
        /// `MFD_HUGETLB`.
        HUGETLB = mfd::HUGETLB;
        /// `MFD_NOEXEC_SEAL`.
        NOEXEC_SEAL = mfd::NOEXEC_SEAL;
        /// `MFD_EXEC`.
        EXEC = mfd::EXEC;
    }
);

/// `MADV_*`: one advice (a value, not bits), any number accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Advice(u64);

impl Advice {
    /// `MADV_NORMAL`.
    pub const NORMAL: Advice = Advice(advice::NORMAL);
    /// `MADV_DONTNEED`.
    pub const DONTNEED: Advice = Advice(advice::DONTNEED);
    /// `MADV_FREE`.
    pub const FREE: Advice = Advice(advice::FREE);
    /// `MADV_REMOVE`.
    pub const REMOVE: Advice = Advice(advice::REMOVE);
    /// `MADV_DONTFORK`.
    pub const DONTFORK: Advice = Advice(advice::DONTFORK);
    /// `MADV_DOFORK`.
    pub const DOFORK: Advice = Advice(advice::DOFORK);
    /// `MADV_DONTDUMP`.
    pub const DONTDUMP: Advice = Advice(advice::DONTDUMP);
    /// `MADV_WIPEONFORK`.
    pub const WIPEONFORK: Advice = Advice(advice::WIPEONFORK);
    /// `MADV_POPULATE_READ`.
    pub const POPULATE_READ: Advice = Advice(advice::POPULATE_READ);
    /// `MADV_POPULATE_WRITE`.
    pub const POPULATE_WRITE: Advice = Advice(advice::POPULATE_WRITE);
    /// `MADV_GUARD_INSTALL`.
    pub const GUARD_INSTALL: Advice = Advice(advice::GUARD_INSTALL);
    /// `MADV_GUARD_REMOVE`.
    pub const GUARD_REMOVE: Advice = Advice(advice::GUARD_REMOVE);

    /// Any advice number.
    pub const fn from_raw(n: u64) -> Advice {
        Advice(n)
    }
    /// The advice number.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match names::MADV.iter().find(|(_, v)| *v == self.0) {
            Some((n, _)) => write!(f, "{n}"),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// A file descriptor of the process an address space models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub i32);

impl Fd {
    /// The number as the raw calls take it.
    pub fn raw(self) -> i64 {
        i64::from(self.0)
    }
    fn from_result(r: u64) -> Fd {
        // Descriptors are below RLIMIT_NOFILE, far below i32::MAX.
        Fd(i32::try_from(r).unwrap_or(i32::MAX))
    }
}

impl fmt::Display for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A user address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub u64);

impl Addr {
    /// The address as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<Addr> for u64 {
    fn from(a: Addr) -> u64 {
        a.0
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

fn unit(r: Result<u64, Errno>) -> Result<(), Errno> {
    r.map(|_| ())
}

/// The typed calls (each the raw call of its family, with typed arguments and results).
impl AddressSpace {
    /// `mmap`: maps `len` bytes at `addr` (a hint, or the address with `MAP_FIXED`) of `file`
    /// from `offset`, or anonymous memory with `None` (and `MAP_ANONYMOUS`). Like the raw call,
    /// a `MAP_FIXED` address in the last page of the 64-bit space comes back unchanged with
    /// nothing mapped (Linux returns it, and the syscall ABI reads it as an error number that
    /// is no errno).
    pub fn map(
        &mut self,
        addr: u64,
        len: u64,
        prot: Prot,
        flags: MapFlags,
        file: Option<Fd>,
        offset: u64,
    ) -> Result<Addr, Errno> {
        self.mmap(addr, len, prot.bits(), flags.bits(), file.map_or(-1, Fd::raw), offset).map(Addr)
    }
    /// `munmap`.
    pub fn unmap(&mut self, addr: Addr, len: u64) -> Result<(), Errno> {
        unit(self.munmap(addr.0, len))
    }
    /// `mprotect`.
    pub fn protect(&mut self, addr: Addr, len: u64, prot: Prot) -> Result<(), Errno> {
        unit(self.mprotect(addr.0, len, prot.bits()))
    }
    /// `mremap`: `new_addr` is used with `MREMAP_FIXED`.
    pub fn remap(
        &mut self,
        addr: Addr,
        old_len: u64,
        new_len: u64,
        flags: MremapFlags,
        new_addr: Addr,
    ) -> Result<Addr, Errno> {
        self.mremap(addr.0, old_len, new_len, flags.bits(), new_addr.0).map(Addr)
    }
    /// `madvise`.
    pub fn advise(&mut self, addr: Addr, len: u64, advice: Advice) -> Result<(), Errno> {
        unit(self.madvise(addr.0, len, advice.raw()))
    }
    /// `mlock2` (`mlock` with no flags).
    pub fn lock(&mut self, addr: Addr, len: u64, flags: MlockFlags) -> Result<(), Errno> {
        unit(self.mlock2(addr.0, len, flags.bits()))
    }
    /// `munlock`.
    pub fn unlock(&mut self, addr: Addr, len: u64) -> Result<(), Errno> {
        unit(self.munlock(addr.0, len))
    }
    /// `mlockall`.
    pub fn lock_all(&mut self, flags: MclFlags) -> Result<(), Errno> {
        unit(self.mlockall(flags.bits()))
    }
    /// `munlockall`.
    pub fn unlock_all(&mut self) -> Result<(), Errno> {
        unit(self.munlockall())
    }
    /// `mseal` (no flags exist yet).
    pub fn seal(&mut self, addr: Addr, len: u64) -> Result<(), Errno> {
        unit(self.mseal(addr.0, len, 0))
    }
    /// `brk`: the new break (or the current one when `addr` is refused), as Linux returns it.
    pub fn set_break(&mut self, addr: Addr) -> Addr {
        Addr(self.brk(addr.0).unwrap_or(0))
    }
    /// `open`.
    pub fn open_path(&mut self, path: &[u8], flags: OpenFlags) -> Result<Fd, Errno> {
        self.open(path, flags.bits(), 0o600).map(Fd::from_result)
    }
    /// `close`.
    pub fn close_fd(&mut self, fd: Fd) -> Result<(), Errno> {
        unit(self.close(fd.raw()))
    }
    /// `ftruncate`.
    pub fn truncate(&mut self, fd: Fd, len: u64) -> Result<(), Errno> {
        unit(self.ftruncate(fd.raw(), len))
    }
    /// `memfd_create`.
    pub fn memfd(&mut self, name: &[u8], flags: MfdFlags) -> Result<Fd, Errno> {
        self.memfd_create(name, flags.bits()).map(Fd::from_result)
    }
    /// `fcntl(F_ADD_SEALS)`.
    pub fn add_seals(&mut self, fd: Fd, seals: SealFlags) -> Result<(), Errno> {
        unit(self.fcntl_add_seals(fd.raw(), seals.bits()))
    }
    /// `fcntl(F_GET_SEALS)`.
    pub fn seals(&mut self, fd: Fd) -> Result<SealFlags, Errno> {
        self.fcntl_get_seals(fd.raw()).map(SealFlags::from_bits_retain)
    }
    /// Puts an open file (a driver's) in the lowest free descriptor.
    pub fn install(&mut self, file: Arc<OpenFile>) -> Result<Fd, Errno> {
        self.install_file(file).map(Fd::from_result)
    }
}
