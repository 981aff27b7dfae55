//! `Errno`: the error numbers Linux's memory-mapping calls return.

use std::fmt;

/// A Linux errno, with Linux's x86_64 numbers.
///
/// Closed: every value a call of this crate returns is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted (1).
    EPERM = 1,
    /// No such file or directory (2).
    ENOENT = 2,
    /// Interrupted system call (4).
    EINTR = 4,
    /// Input/output error (5).
    EIO = 5,
    /// Exec format error (8).
    ENOEXEC = 8,
    /// Bad file descriptor (9).
    EBADF = 9,
    /// Resource temporarily unavailable (11).
    EAGAIN = 11,
    /// Cannot allocate memory (12).
    ENOMEM = 12,
    /// Permission denied (13).
    EACCES = 13,
    /// Bad address (14).
    EFAULT = 14,
    /// Device or resource busy (16).
    EBUSY = 16,
    /// File exists (17).
    EEXIST = 17,
    /// No such device (19).
    ENODEV = 19,
    /// Not a directory (20).
    ENOTDIR = 20,
    /// Is a directory (21).
    EISDIR = 21,
    /// Invalid argument (22).
    EINVAL = 22,
    /// Too many open files (24).
    EMFILE = 24,
    /// Text file busy (26).
    ETXTBSY = 26,
    /// File too large (27).
    EFBIG = 27,
    /// No space left on device (28).
    ENOSPC = 28,
    /// Read-only file system (30).
    EROFS = 30,
    /// File name too long (36).
    ENAMETOOLONG = 36,
    /// Function not implemented (38).
    ENOSYS = 38,
    /// Value too large for defined data type (75).
    EOVERFLOW = 75,
    /// Operation not supported (95).
    EOPNOTSUPP = 95,
}

impl Errno {
    /// Linux's number for this errno.
    pub fn number(self) -> i32 {
        self as i32
    }

    /// The symbolic name, as strace prints it (`"ENOMEM"`).
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::ENOTDIR => "ENOTDIR",
            Errno::EISDIR => "EISDIR",
            Errno::EINVAL => "EINVAL",
            Errno::EMFILE => "EMFILE",
            Errno::ETXTBSY => "ETXTBSY",
            Errno::EFBIG => "EFBIG",
            Errno::ENOSPC => "ENOSPC",
            Errno::EROFS => "EROFS",
            Errno::ENAMETOOLONG => "ENAMETOOLONG",
            Errno::ENOSYS => "ENOSYS",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.number())
    }
}

impl std::error::Error for Errno {}

/// The result of a call: Linux's return value or its errno.
pub type SysResult = Result<u64, Errno>;
