//! Printing typed calls back as trace text (strace syntax).

use crate::call::{Call, Line, Outcome};
use crate::consts::{self, Sym, Table};
use std::fmt::Write;

/// Formats a number with the names of `table`, as strace would print it.
pub fn format_value(v: u64, table: Table) -> String {
    match table {
        Table::Dec => v.to_string(),
        Table::Hex if v == 0 => "NULL".into(),
        Table::Hex => format!("{v:#x}"),
        Table::Oct if v == 0 => "0".into(),
        Table::Oct => format!("0{v:o}"),
        Table::Fd => (v as i64).to_string(),
        Table::Dirfd if v as i64 == consts::AT_FDCWD => "AT_FDCWD".into(),
        Table::Dirfd => (v as i64).to_string(),
        Table::Prot => flag_set(v, &[], consts::PROT, &[], "PROT_NONE"),
        Table::Map => flag_set(v, &field(v, 0xf, consts::MAP_TYPE), consts::MAP_BITS, &huge(v, consts::MAP_HUGE), "0"),
        Table::Open => flag_set(v, &field(v, 3, consts::O_ACCMODE), consts::O_BITS, &[], "0"),
        Table::Mfd => flag_set(v, &[], consts::MFD, &huge(v, consts::MAP_HUGE), "0").replace("MAP_HUGE_", "MFD_HUGE_"),
        Table::Mremap => flag_set(v, &[], consts::MREMAP, &[], "0"),
        Table::Mlock2 => flag_set(v, &[], consts::MLOCK2, &[], "0"),
        Table::Mcl => flag_set(v, &[], consts::MCL, &[], "0"),
        Table::Seals => flag_set(v, &[], consts::SEALS, &[], "0"),
        Table::Pkey => flag_set(v, &[], consts::PKEY, &[], "0"),
        Table::Madv => enum_value(v, consts::MADV),
        Table::Fcntl => enum_value(v, consts::FCNTL),
        Table::Prctl => enum_value(v, consts::PRCTL),
        Table::PrSetVma => enum_value(v, consts::PR_SET_VMA_OPTS),
    }
}

/// The symbol of a multi-bit field (`mask`), when its value has one.
fn field(v: u64, mask: u64, syms: &[Sym]) -> Vec<Sym> {
    syms.iter().filter(|(_, s)| *s == v & mask).copied().take(1).collect()
}

fn huge(v: u64, syms: &[Sym]) -> Vec<Sym> {
    field(v, consts::HUGE_MASK, syms)
}

fn enum_value(v: u64, syms: &[Sym]) -> String {
    match syms.iter().find(|(_, s)| *s == v) {
        Some((n, _)) => (*n).to_string(),
        None => v.to_string(),
    }
}

/// `A|B|0x..`: leading fields, then single or multi-bit flags, then trailing fields, then
/// whatever is left in hex.
fn flag_set(v: u64, lead: &[Sym], bits: &[Sym], trail: &[Sym], zero: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = v;
    for (n, s) in lead {
        parts.push(*n);
        rest &= !s;
    }
    // Multi-bit symbols (O_SYNC) first, so their bits are not claimed by single-bit ones.
    let mut ordered: Vec<&Sym> = bits.iter().collect();
    ordered.sort_by_key(|(_, s)| std::cmp::Reverse(s.count_ones()));
    let mut named: Vec<&Sym> = Vec::new();
    for sym in ordered {
        if sym.1 != 0 && rest & sym.1 == sym.1 {
            rest &= !sym.1;
            named.push(sym);
        }
    }
    named.sort_by_key(|(_, s)| bits.iter().position(|b| b.1 == *s));
    parts.extend(named.iter().map(|(n, _)| *n));
    for (n, s) in trail {
        parts.push(*n);
        rest &= !s;
    }
    let mut out = parts.join("|");
    if rest != 0 || out.is_empty() {
        if !out.is_empty() {
            out.push('|');
        }
        if rest == 0 {
            out.push_str(zero);
        } else {
            let _ = write!(out, "{rest:#x}");
        }
    }
    out
}

/// A C string literal with strace's escapes.
pub fn format_string(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// The call as trace text, without pid prefix or result.
pub fn format_call(call: &Call) -> String {
    use Table::*;
    let v = format_value;
    let fd = |x: i64| x.to_string();
    let args: Vec<String> = match call {
        Call::Mmap { addr, len, prot, flags, fd: f, offset } => {
            vec![
                v(*addr, Hex),
                v(*len, Dec),
                v(*prot, Prot),
                v(*flags, Map),
                fd(*f),
                v(*offset, Hex).replace("NULL", "0"),
            ]
        }
        Call::Munmap { addr, len } | Call::Mlock { addr, len } | Call::Munlock { addr, len } => {
            vec![v(*addr, Hex), v(*len, Dec)]
        }
        Call::Touch { addr, len } | Call::Peek { addr, len } => vec![v(*addr, Hex), v(*len, Dec)],
        Call::Mprotect { addr, len, prot } => vec![v(*addr, Hex), v(*len, Dec), v(*prot, Prot)],
        Call::PkeyAlloc { flags, access_rights } => vec![v(*flags, Hex).replace("NULL", "0"), v(*access_rights, Pkey)],
        Call::PkeyFree { pkey } => vec![pkey.to_string()],
        Call::PkeyMprotect { addr, len, prot, pkey } => {
            vec![v(*addr, Hex), v(*len, Dec), v(*prot, Prot), pkey.to_string()]
        }
        Call::Mremap { old_addr, old_len, new_len, flags, new_addr, explicit_new_addr } => {
            let mut a = vec![v(*old_addr, Hex), v(*old_len, Dec), v(*new_len, Dec), v(*flags, Mremap)];
            if *explicit_new_addr {
                a.push(v(*new_addr, Hex));
            }
            a
        }
        Call::Madvise { addr, len, advice } => vec![v(*addr, Hex), v(*len, Dec), v(*advice, Madv)],
        Call::Mlock2 { addr, len, flags } => vec![v(*addr, Hex), v(*len, Dec), v(*flags, Mlock2)],
        Call::Mlockall { flags } => vec![v(*flags, Mcl)],
        Call::Munlockall | Call::Maps | Call::Smaps => vec![],
        Call::Mseal { addr, len, flags } => {
            vec![v(*addr, Hex), v(*len, Dec), format!("{flags:#x}").replace("0x0", "0")]
        }
        Call::Brk { addr } => vec![v(*addr, Hex)],
        Call::PrctlSetVmaAnonName { addr, len, name } => vec![
            "PR_SET_VMA".into(),
            "PR_SET_VMA_ANON_NAME".into(),
            v(*addr, Hex),
            v(*len, Dec),
            name.as_deref().map_or("NULL".into(), format_string),
        ],
        Call::Openat { dirfd, path, flags, mode } => {
            let mut a = vec![v(*dirfd as u64, Dirfd), format_string(path), v(*flags, Open)];
            if *mode != 0 {
                a.push(v(*mode, Oct));
            }
            a
        }
        Call::Open { path, flags, mode } => {
            let mut a = vec![format_string(path), v(*flags, Open)];
            if *mode != 0 {
                a.push(v(*mode, Oct));
            }
            a
        }
        Call::Close { fd: f } | Call::Dup { fd: f } | Call::FcntlGetSeals { fd: f } => {
            let mut a = vec![fd(*f)];
            if matches!(call, Call::FcntlGetSeals { .. }) {
                a.push("F_GET_SEALS".into());
            }
            a
        }
        Call::Dup2 { old, new } => vec![fd(*old), fd(*new)],
        Call::Dup3 { old, new, flags } => vec![fd(*old), fd(*new), v(*flags, Open)],
        Call::Ftruncate { fd: f, len } => vec![fd(*f), v(*len, Dec)],
        Call::Execve { path, .. } => vec![format_string(path)],
        Call::Placeholder { fd: f, what } => vec![fd(*f), format_string(what)],
        Call::Resize { fd: f, size } => vec![fd(*f), v(*size, Dec)],
        Call::Unlink { path } => vec![format_string(path)],
        Call::MemfdCreate { name, flags } => vec![format_string(name), v(*flags, Mfd)],
        Call::MemfdSecret { flags } => vec![format!("{flags:#x}").replace("0x0", "0")],
        Call::FcntlAddSeals { fd: f, seals } => {
            vec![fd(*f), "F_ADD_SEALS".into(), v(*seals, Seals)]
        }
        Call::Fork { clone_flags: None } => vec![],
        Call::Fork { clone_flags: Some(f) } => vec!["child_stack=NULL".into(), format!("flags={}", clone_flags(*f))],
        Call::ExitGroup { status } => vec![status.to_string()],
    };
    format!("{}({})", call.name(), args.join(", "))
}

fn clone_flags(v: u64) -> String {
    let signal = v & 0xff;
    let mut s = flag_set(v & !0xff, &[], &consts::CLONE[..consts::CLONE.len() - 1], &[], "0");
    if signal == 17 {
        s = if v & !0xff == 0 { "SIGCHLD".into() } else { format!("{s}|SIGCHLD") };
    } else if signal != 0 {
        s = format!("{s}|{signal}");
    }
    s
}

/// A result as strace prints it (`0x1000`, `0`, `-1 ENOMEM (Cannot allocate memory)`, `SIGSEGV`).
pub fn format_outcome(o: Outcome, hex: bool) -> String {
    match o {
        Outcome::Value(v) if hex => format!("{v:#x}"),
        Outcome::Value(v) => v.to_string(),
        Outcome::Error(e) => match consts::errno_name(e) {
            Some(n) => format!("-1 {n}"),
            None => format!("-1 E{e}"),
        },
        Outcome::Signal(s) => s.name().to_string(),
        Outcome::NoReturn => "?".into(),
    }
}

/// Whether a call's successful result is an address (printed in hex).
pub fn returns_address(call: &Call) -> bool {
    matches!(call, Call::Mmap { .. } | Call::Mremap { .. } | Call::Brk { .. })
}

/// A whole line: `[pid N] call(args) = result`.
pub fn format_line(line: &Line) -> String {
    let mut s = String::new();
    if let Some(pid) = line.pid {
        let _ = write!(s, "[pid {pid}] ");
    }
    s.push_str(&format_call(&line.call));
    if let Some(r) = line.result {
        let _ = write!(s, " = {}", format_outcome(r, returns_address(&line.call)));
    }
    s
}
