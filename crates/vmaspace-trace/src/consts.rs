//! Symbolic constants of the trace language, as strace prints them: the model's own tables
//! (`vmaspace::flags::names`, each value defined once there), and which table an argument uses.

/// One named value of a flag set or an enumeration.
pub use vmaspace::flags::names::Sym;

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

pub use vmaspace::flags::names::{
    CLONE, DIRFD, FCNTL, MADV, MAP_BITS, MAP_HUGE, MAP_TYPE, MCL, MFD, MLOCK2, MREMAP, O_ACCMODE, O_BITS, PKEY,
    PR_SET_VMA_OPTS, PRCTL, PROT, SEALS,
};

/// `MAP_HUGE_*` / `MFD_HUGE_*` values live in bits 26..32.
pub const HUGE_SHIFT: u32 = vmaspace::flags::map::HUGE_SHIFT;
/// The `MAP_HUGE_*` field.
pub const HUGE_MASK: u64 = vmaspace::flags::map::HUGE_MASK << HUGE_SHIFT;
/// `AT_FDCWD`.
pub const AT_FDCWD: i64 = vmaspace::flags::AT_FDCWD;
/// `PR_SET_VMA`.
pub const PR_SET_VMA: u64 = vmaspace::flags::prctl::SET_VMA;
/// `PR_SET_VMA_ANON_NAME`.
pub const PR_SET_VMA_ANON_NAME: u64 = vmaspace::flags::prctl::SET_VMA_ANON_NAME;

/// The number of an errno name (`"ENOMEM"` → 12); `EWOULDBLOCK`, `EDEADLOCK` and `ENOTSUP`
/// are aliases.
pub fn errno_number(name: &str) -> Option<u16> {
    vmaspace::Errno::from_name(name).map(|e| e.number() as u16)
}

/// The name of an errno number, if it has one.
pub fn errno_name(n: u16) -> Option<&'static str> {
    vmaspace::Errno::from_number(i32::from(n)).map(|e| e.name())
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
