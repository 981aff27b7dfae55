//! Parsing trace text into [`Trace`]s.

use crate::call::{Call, Line, Outcome, Scope, Signal, Trace};
use crate::consts::{self, Table};
use crate::setup::{HugePagePools, MountSpec, Setup};
use std::fmt;

/// A line the parser cannot read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// What the `#` annotation lines after an execve fill in.
struct ExecveAnnotations<'a> {
    image: &'a mut String,
    fds: &'a mut Option<Vec<i64>>,
    brk: &'a mut Option<u64>,
}

/// The execve an annotation line at `lineno` belongs to (the line before it), when the
/// annotation itself is `well_formed`; else the error saying what the annotation must be.
fn annotated_execve<'a>(
    lines: &'a mut [Line],
    lineno: usize,
    well_formed: bool,
    message: &str,
) -> Result<ExecveAnnotations<'a>, ParseError> {
    match lines.last_mut() {
        Some(Line { call: Call::Execve { image, fds, brk, .. }, .. }) if well_formed => {
            Ok(ExecveAnnotations { image, fds, brk })
        }
        _ => Err(ParseError { line: lineno, column: 1, message: message.into() }),
    }
}

/// Parses a whole trace.
pub fn parse_trace(text: &str) -> Result<Trace, ParseError> {
    // A UTF-8 byte order mark, as some editors write, is not part of the first line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut trace = Trace { scope: None, header: Vec::new(), setup: Default::default(), lines: Vec::new() };
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        // `#fds:` after an execve: the descriptors open after it.
        if let Some(list) = trimmed.strip_prefix("#fds:") {
            let fds: Option<Vec<i64>> = list.split_whitespace().map(|f| f.parse().ok()).collect();
            let ok = fds.is_some();
            let e = annotated_execve(&mut trace.lines, lineno, ok, "`#fds:` lists numbers after an execve")?;
            *e.fds = fds;
            continue;
        }
        // `#brk:` after an execve: the program break it set.
        if let Some(value) = trimmed.strip_prefix("#brk:") {
            let brk = value.trim().strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok());
            let ok = brk.is_some();
            let e = annotated_execve(&mut trace.lines, lineno, ok, "`#brk:` gives a hex address after an execve")?;
            *e.brk = brk;
            continue;
        }
        // `#| ` lines after an execve are the image it loaded.
        if let Some(maps_line) = trimmed.strip_prefix("#|") {
            let e = annotated_execve(&mut trace.lines, lineno, true, "`#|` image lines follow an execve")?;
            e.image.push_str(maps_line.strip_prefix(' ').unwrap_or(maps_line));
            e.image.push('\n');
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if trace.lines.is_empty() {
                trace.header.push(raw.to_string());
                if let Some(scope) = parse_scope(comment, lineno)? {
                    trace.scope = Some(scope);
                }
                parse_setup(comment, lineno, &mut trace.setup)?;
            }
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        trace.lines.push(parse_line(raw, lineno)?);
    }
    Ok(trace)
}

/// Reads a `# window: START-END` or `# whole-space` header comment.
fn parse_scope(comment: &str, lineno: usize) -> Result<Option<Scope>, ParseError> {
    let c = comment.trim();
    if c == "whole-space" {
        return Ok(Some(Scope::WholeSpace));
    }
    let Some(range) = c.strip_prefix("window:") else {
        return Ok(None);
    };
    let err = |m: &str| ParseError { line: lineno, column: 1, message: m.to_string() };
    let (s, e) = parse_window(range.trim()).map_err(|m| err(&m))?;
    Ok(Some(Scope::Window { start: s, end: e }))
}

/// Reads a `# mount: DIR=FSTYPE`, `# hugepages: ...` or `# pkeys: on|off` header comment into
/// `setup`.
fn parse_setup(comment: &str, lineno: usize, setup: &mut Setup) -> Result<(), ParseError> {
    let c = comment.trim();
    let err = |message: String| ParseError { line: lineno, column: 1, message };
    if let Some(m) = c.strip_prefix("mount:") {
        let spec = MountSpec::parse(m).map_err(err)?;
        spec.check_relative().map_err(err)?;
        if setup.mounts.iter().any(|x| x.dir == spec.dir) {
            return Err(err(format!("`{}` is mounted twice", spec.dir)));
        }
        setup.mounts.push(spec);
    } else if let Some(h) = c.strip_prefix("hugepages:") {
        if setup.hugepages.is_some() {
            return Err(err("a second `# hugepages:` header".into()));
        }
        setup.hugepages = Some(HugePagePools::parse(h).map_err(err)?);
    } else if let Some(v) = c.strip_prefix("pkeys:") {
        setup.pkeys = Some(crate::setup::parse_on_off(v).map_err(err)?);
    }
    Ok(())
}

/// Parses `START-END` in hex, with or without `0x`.
pub fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("window `{s}` is not START-END"))?;
    let hex = |x: &str| {
        let x = x.trim();
        let x = x.strip_prefix("0x").or_else(|| x.strip_prefix("0X")).unwrap_or(x);
        u64::from_str_radix(x, 16).map_err(|_| format!("`{x}` is not a hex address"))
    };
    let (start, end) = (hex(a)?, hex(b)?);
    if start >= end {
        return Err(format!("window {start:#x}-{end:#x} is empty"));
    }
    Ok((start, end))
}

/// Parses one non-blank, non-comment line.
pub fn parse_line(text: &str, lineno: usize) -> Result<Line, ParseError> {
    let mut p = Cursor { chars: text.char_indices().collect(), pos: 0, line: lineno };
    p.skip_ws();
    let pid = p.pid_prefix()?;
    p.skip_ws();
    let (name, name_col) = p.ident().ok_or_else(|| p.error("expected a call name"))?;
    p.skip_ws();
    p.expect('(')?;
    let args = p.args()?;
    p.skip_ws();
    let result = if p.eat('=') { Some(p.result()?) } else { None };
    // After a result, what strace prints there is ignored: an errno's text `(...)`, `-y`
    // paths and `-T` times `<...>`, flag decodings `(flags ...)`; then only a comment.
    p.skip_ws();
    if result.is_some() {
        p.skip_strace_annotations();
    }
    if !p.at_end() && p.peek() != Some('#') {
        let what = if result.is_some() { "the result" } else { "the call" };
        return Err(p.error(&format!("unexpected text after {what}")));
    }
    let call = build_call(&name, name_col, args, lineno)?;
    check_result_kind(&call, result, lineno)?;
    Ok(Line { lineno, pid, call, result })
}

fn check_result_kind(call: &Call, result: Option<Outcome>, line: usize) -> Result<(), ParseError> {
    let bad = |m: String| Err(ParseError { line, column: 1, message: m });
    match (call, result) {
        (c, Some(_)) if c.is_checkpoint() => bad(format!("{}() has no result", c.name())),
        (Call::Touch { .. } | Call::Peek { .. }, _) => Ok(()),
        (Call::ExitGroup { .. }, Some(Outcome::Value(_) | Outcome::Error(_) | Outcome::Signal(_))) => {
            bad("exit_group returns `?`".into())
        }
        (Call::ExitGroup { .. }, _) => Ok(()),
        (c, Some(Outcome::Signal(s))) => bad(format!("{} cannot return {}", c.name(), s.name())),
        (c, Some(Outcome::NoReturn)) => bad(format!("{} cannot return `?`", c.name())),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Term {
    Num(u64),
    Sym(String),
}

#[derive(Debug, Clone)]
enum ArgKind {
    Expr(Vec<(Term, usize)>),
    Str(Vec<u8>),
    Keyword(String, Box<Arg>),
}

#[derive(Debug, Clone)]
struct Arg {
    kind: ArgKind,
    col: usize,
}

struct Cursor {
    chars: Vec<(usize, char)>,
    pos: usize,
    line: usize,
}

impl Cursor {
    /// Skips `(...)` and `<...>` groups (nested ones too) and the blanks between them.
    fn skip_strace_annotations(&mut self) {
        while let Some(open) = self.peek().filter(|c| *c == '(' || *c == '<') {
            let close = if open == '(' { ')' } else { '>' };
            let mut depth = 0usize;
            while let Some(c) = self.peek() {
                self.pos += 1;
                if c == open {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            self.skip_ws();
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|c| c.1)
    }
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }
    fn col(&self) -> usize {
        self.pos + 1
    }
    fn error(&self, msg: &str) -> ParseError {
        ParseError { line: self.line, column: self.col(), message: msg.to_string() }
    }
    fn error_at(&self, col: usize, msg: String) -> ParseError {
        ParseError { line: self.line, column: col, message: msg }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(c) if c == ' ' || c == '\t') {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.eat(c) { Ok(()) } else { Err(self.error(&format!("expected `{c}`"))) }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let n = w.chars().count();
        let got: String = self.chars.iter().skip(self.pos).take(n).map(|c| c.1).collect();
        if got == w {
            self.pos += n;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<(String, usize)> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return None,
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        Some((self.chars[start..self.pos].iter().map(|c| c.1).collect(), start + 1))
    }
    fn pid_prefix(&mut self) -> Result<Option<u32>, ParseError> {
        if !self.eat('[') {
            return Ok(None);
        }
        self.skip_ws();
        if !self.eat_word("pid") {
            return Err(self.error("expected `pid` after `[`"));
        }
        self.skip_ws();
        let col = self.col();
        let n = self.number()?;
        let pid = u32::try_from(n).map_err(|_| self.error_at(col, format!("pid {n} is out of range")))?;
        self.skip_ws();
        self.expect(']')?;
        Ok(Some(pid))
    }
    /// An integer literal: decimal, `0x` hex or leading-`0` octal, optionally negative.
    fn number(&mut self) -> Result<u64, ParseError> {
        let col = self.col();
        let neg = self.eat('-');
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().map(|c| c.1).collect();
        let parsed = if let Some(h) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
            u64::from_str_radix(h, 16)
        } else if digits.len() > 1 && digits.starts_with('0') {
            u64::from_str_radix(&digits[1..], 8)
        } else {
            digits.parse::<u64>()
        };
        let v = parsed.map_err(|_| self.error_at(col, format!("`{digits}` is not a number")))?;
        if neg {
            if v > 1u64 << 63 {
                return Err(self.error_at(col, format!("-{digits} is out of range")));
            }
            return Ok(v.wrapping_neg());
        }
        Ok(v)
    }
    fn args(&mut self) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            args.push(self.arg()?);
            self.skip_ws();
            if self.eat(')') {
                return Ok(args);
            }
            if !self.eat(',') {
                return Err(self.error("expected `,` or `)`"));
            }
        }
    }
    fn arg(&mut self) -> Result<Arg, ParseError> {
        let col = self.col();
        if self.peek() == Some('"') {
            return Ok(Arg { kind: ArgKind::Str(self.string()?), col });
        }
        // `name=value` (clone's keyword arguments); the value is not a keyword argument itself,
        // so the parser never recurses more than once (`a=a=a=...` is an error, not a deep stack).
        let save = self.pos;
        if let Some((name, _)) = self.ident()
            && self.eat('=')
        {
            let vcol = self.col();
            let value = if self.peek() == Some('"') {
                Arg { kind: ArgKind::Str(self.string()?), col: vcol }
            } else {
                let inner = self.pos;
                if self.ident().is_some() && self.eat('=') {
                    return Err(self.error_at(vcol, "a `name=` argument's value cannot be another `name=`".into()));
                }
                self.pos = inner;
                self.expr_arg(vcol)?
            };
            return Ok(Arg { kind: ArgKind::Keyword(name, Box::new(value)), col });
        }
        self.pos = save;
        self.expr_arg(col)
    }
    /// An argument of `|`-joined numbers and names.
    fn expr_arg(&mut self, col: usize) -> Result<Arg, ParseError> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            let tcol = self.col();
            let term = match self.peek() {
                Some(c) if c.is_ascii_digit() || c == '-' => Term::Num(self.number()?),
                Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                    Term::Sym(self.ident().map(|i| i.0).unwrap_or_default())
                }
                Some('.') => return Err(self.error("`...`: a cut argument cannot be replayed")),
                _ => return Err(self.error("expected an argument")),
            };
            // strace -y: `3</path>`; the path is ignored.
            if matches!(term, Term::Num(_)) && self.peek() == Some('<') {
                self.skip_fd_path()?;
            }
            terms.push((term, tcol));
            self.skip_ws();
            if !self.eat('|') {
                break;
            }
        }
        Ok(Arg { kind: ArgKind::Expr(terms), col })
    }
    fn skip_fd_path(&mut self) -> Result<(), ParseError> {
        let col = self.col();
        self.pos += 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if c == '>' {
                return Ok(());
            }
        }
        Err(self.error_at(col, "unterminated `<path>` annotation".into()))
    }
    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        let col = self.col();
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(col, "unterminated string".into()));
            };
            self.pos += 1;
            match c {
                '"' => break,
                '\\' => out.push(self.escape()?),
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if self.eat_word("...") {
            return Err(self.error_at(col, "string cut by strace (`...`): its full value is unknown".into()));
        }
        Ok(out)
    }
    fn escape(&mut self) -> Result<u8, ParseError> {
        let col = self.col() - 1;
        let Some(c) = self.peek() else {
            return Err(self.error_at(col, "dangling `\\`".into()));
        };
        self.pos += 1;
        let simple = match c {
            'n' => Some(b'\n'),
            't' => Some(b'\t'),
            'r' => Some(b'\r'),
            'v' => Some(0x0b),
            'f' => Some(0x0c),
            'a' => Some(0x07),
            'b' => Some(0x08),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            '\'' => Some(b'\''),
            '?' => Some(b'?'),
            _ => None,
        };
        if let Some(b) = simple {
            return Ok(b);
        }
        let (radix, max) = match c {
            'x' => (16, 2),
            '0'..='7' => {
                self.pos -= 1;
                (8, 3)
            }
            _ => return Err(self.error_at(col, format!("unknown escape `\\{c}`"))),
        };
        let mut v: u32 = 0;
        let mut n = 0;
        while n < max {
            match self.peek().and_then(|d| d.to_digit(radix)) {
                Some(d) => {
                    v = v * radix + d;
                    self.pos += 1;
                    n += 1;
                }
                None => break,
            }
        }
        if n == 0 || v > 255 {
            return Err(self.error_at(col, "bad numeric escape".into()));
        }
        Ok(v as u8)
    }
    fn result(&mut self) -> Result<Outcome, ParseError> {
        self.skip_ws();
        let col = self.col();
        if self.eat('?') {
            return Ok(Outcome::NoReturn);
        }
        if let Some((name, _)) = self.ident() {
            return match name.as_str() {
                "SIGSEGV" => Ok(Outcome::Signal(Signal::Sigsegv)),
                "SIGBUS" => Ok(Outcome::Signal(Signal::Sigbus)),
                _ => Err(self.error_at(col, format!("`{name}` is not a result"))),
            };
        }
        let v = self.number()?;
        if v as i64 >= 0 {
            return Ok(Outcome::Value(v));
        }
        if v as i64 != -1 {
            return Err(self.error_at(col, format!("result {} is negative but not -1", v as i64)));
        }
        self.skip_ws();
        let ecol = self.col();
        let (name, _) = self.ident().ok_or_else(|| self.error("expected an errno name after -1"))?;
        // `E<number>`: an error number no errno names (as the printer writes it: a MAP_FIXED
        // address in the last page comes back from mmap as one).
        let numbered = name.strip_prefix('E').and_then(|d| d.parse::<u16>().ok()).filter(|n| (1..4096).contains(n));
        let n = consts::errno_number(&name)
            .or(numbered)
            .ok_or_else(|| self.error_at(ecol, format!("unknown errno `{name}`")))?;
        Ok(Outcome::Error(n))
    }
}

/// Reads typed arguments of one call in order.
struct Args {
    args: std::vec::IntoIter<Arg>,
    call: String,
    call_col: usize,
    count: usize,
    line: usize,
}

impl Args {
    fn err(&self, col: usize, m: String) -> ParseError {
        ParseError { line: self.line, column: col, message: m }
    }
    fn next(&mut self) -> Result<Arg, ParseError> {
        self.args.next().ok_or_else(|| self.err(self.call_col, missing_argument(&self.call, self.count)))
    }
    fn int(&mut self, table: Table) -> Result<u64, ParseError> {
        let arg = self.next()?;
        self.count += 1;
        eval(&arg, table, self.line)
    }
    fn signed(&mut self, table: Table) -> Result<i64, ParseError> {
        self.int(table).map(|v| v as i64)
    }
    fn string(&mut self) -> Result<Vec<u8>, ParseError> {
        let arg = self.next()?;
        self.count += 1;
        match arg.kind {
            ArgKind::Str(s) => Ok(s),
            _ => Err(self.err(arg.col, "expected a string".into())),
        }
    }
    fn string_or_null(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        let arg = self.next()?;
        self.count += 1;
        match arg.kind {
            ArgKind::Str(s) => Ok(Some(s)),
            _ => match eval(&arg, Table::Hex, self.line)? {
                0 => Ok(None),
                _ => Err(self.err(arg.col, "expected a string or NULL".into())),
            },
        }
    }
    fn has_more(&self) -> bool {
        self.args.len() > 0
    }
    fn finish(mut self) -> Result<(), ParseError> {
        match self.args.next() {
            None => Ok(()),
            Some(a) => Err(self.err(a.col, format!("too many arguments for {}", self.call))),
        }
    }
}

fn eval(arg: &Arg, table: Table, line: usize) -> Result<u64, ParseError> {
    let ArgKind::Expr(terms) = &arg.kind else {
        return Err(ParseError { line, column: arg.col, message: "expected a number or constant".into() });
    };
    let mut v = 0u64;
    for (term, col) in terms {
        v |= match term {
            Term::Num(n) => *n,
            Term::Sym(s) if s == "NULL" => 0,
            Term::Sym(s) if s == "PROT_NONE" && table == Table::Prot => 0,
            Term::Sym(s) => consts::lookup(table, s).ok_or_else(|| {
                let names = consts::symbols(table).iter().flat_map(|t| t.iter()).map(|(n, _)| *n);
                ParseError {
                    line,
                    column: *col,
                    message: format!("`{s}` is not a constant this argument takes{}", did_you_mean(s, names)),
                }
            })?,
        };
    }
    Ok(v)
}

fn build_call(name: &str, col: usize, args: Vec<Arg>, line: usize) -> Result<Call, ParseError> {
    if name == "clone" {
        return build_clone(args, col, line);
    }
    let mut a = Args { args: args.into_iter(), call: name.to_string(), call_col: col, count: 0, line };
    use Table::*;
    let call = match name {
        "mmap" => Call::Mmap {
            addr: a.int(Hex)?,
            len: a.int(Dec)?,
            prot: a.int(Prot)?,
            flags: a.int(Map)?,
            fd: a.signed(Fd)?,
            offset: a.int(Hex)?,
        },
        "munmap" => Call::Munmap { addr: a.int(Hex)?, len: a.int(Dec)? },
        "mprotect" => Call::Mprotect { addr: a.int(Hex)?, len: a.int(Dec)?, prot: a.int(Prot)? },
        "pkey_alloc" => Call::PkeyAlloc { flags: a.int(Hex)?, access_rights: a.int(Pkey)? },
        "pkey_free" => Call::PkeyFree { pkey: a.signed(Dec)? },
        "pkey_mprotect" => {
            Call::PkeyMprotect { addr: a.int(Hex)?, len: a.int(Dec)?, prot: a.int(Prot)?, pkey: a.signed(Dec)? }
        }
        "mremap" => {
            let (old_addr, old_len, new_len, flags) = (a.int(Hex)?, a.int(Dec)?, a.int(Dec)?, a.int(Mremap)?);
            let explicit_new_addr = a.has_more();
            let new_addr = if explicit_new_addr { a.int(Hex)? } else { 0 };
            Call::Mremap { old_addr, old_len, new_len, flags, new_addr, explicit_new_addr }
        }
        "madvise" => Call::Madvise { addr: a.int(Hex)?, len: a.int(Dec)?, advice: a.int(Madv)? },
        "mlock" => Call::Mlock { addr: a.int(Hex)?, len: a.int(Dec)? },
        "mlock2" => Call::Mlock2 { addr: a.int(Hex)?, len: a.int(Dec)?, flags: a.int(Mlock2)? },
        "munlock" => Call::Munlock { addr: a.int(Hex)?, len: a.int(Dec)? },
        "mlockall" => Call::Mlockall { flags: a.int(Mcl)? },
        "munlockall" => Call::Munlockall,
        "mseal" => Call::Mseal { addr: a.int(Hex)?, len: a.int(Dec)?, flags: a.int(Hex)? },
        "brk" => Call::Brk { addr: a.int(Hex)? },
        "prctl" => {
            let option = a.int(Prctl)?;
            let sub = a.int(PrSetVma)?;
            if option != consts::PR_SET_VMA || sub != consts::PR_SET_VMA_ANON_NAME {
                return Err(ParseError {
                    line,
                    column: col,
                    message: "only prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, ...) is a trace call".into(),
                });
            }
            Call::PrctlSetVmaAnonName { addr: a.int(Hex)?, len: a.int(Dec)?, name: a.string_or_null()? }
        }
        "openat" => {
            let (dirfd, path, flags) = (a.signed(Dirfd)?, a.string()?, a.int(Open)?);
            let mode = if a.has_more() { a.int(Oct)? } else { 0 };
            Call::Openat { dirfd, path, flags, mode }
        }
        "open" => {
            let (path, flags) = (a.string()?, a.int(Open)?);
            let mode = if a.has_more() { a.int(Oct)? } else { 0 };
            Call::Open { path, flags, mode }
        }
        "close" => Call::Close { fd: a.signed(Fd)? },
        "dup" => Call::Dup { fd: a.signed(Fd)? },
        "dup2" => Call::Dup2 { old: a.signed(Fd)?, new: a.signed(Fd)? },
        "dup3" => Call::Dup3 { old: a.signed(Fd)?, new: a.signed(Fd)?, flags: a.int(Open)? },
        "ftruncate" => Call::Ftruncate { fd: a.signed(Fd)?, len: a.int(Dec)? },
        "unlink" => Call::Unlink { path: a.string()? },
        "memfd_create" => Call::MemfdCreate { name: a.string()?, flags: a.int(Mfd)? },
        "memfd_secret" => Call::MemfdSecret { flags: a.int(Hex)? },
        "fcntl" => {
            let fd = a.signed(Fd)?;
            let cmd_col = a.args.as_slice().first().map_or(col, |x| x.col);
            match a.int(Fcntl)? {
                1033 => Call::FcntlAddSeals { fd, seals: a.int(Seals)? },
                1034 => Call::FcntlGetSeals { fd },
                other => {
                    return Err(ParseError {
                        line,
                        column: cmd_col,
                        message: format!("fcntl command {other} is not a trace call (only F_ADD_SEALS, F_GET_SEALS)"),
                    });
                }
            }
        }
        "fork" => Call::Fork { clone_flags: None },
        "vfork" => {
            return Err(ParseError {
                line,
                column: col,
                message: "vfork shares the address space; it is not supported".into(),
            });
        }
        "exit_group" => Call::ExitGroup { status: a.signed(Dec)? },
        "touch" => Call::Touch { addr: a.int(Hex)?, len: a.int(Dec)? },
        "peek" => Call::Peek { addr: a.int(Hex)?, len: a.int(Dec)? },
        "maps" => Call::Maps,
        "smaps" => Call::Smaps,
        "execve" => Call::Execve { path: a.string()?, image: String::new(), fds: None, brk: None },
        "placeholder" => Call::Placeholder { fd: a.signed(Fd)?, what: a.string()? },
        "resize" => Call::Resize { fd: a.signed(Fd)?, size: a.int(Dec)? },
        other => {
            let hint = did_you_mean(other, SIGNATURES.iter().map(|(name, _)| *name));
            return Err(ParseError {
                line,
                column: col,
                message: format!("`{other}` is not a call a trace can make{hint}"),
            });
        }
    };
    a.finish()?;
    Ok(call)
}

/// `clone(child_stack=NULL, flags=..., child_tidptr=...)`: a fork when CLONE_VM is absent.
fn build_clone(args: Vec<Arg>, col: usize, line: usize) -> Result<Call, ParseError> {
    let mut flags = None;
    for arg in args {
        if let ArgKind::Keyword(name, value) = &arg.kind
            && name == "flags"
        {
            flags = Some(eval(value, Table::Dec, line).or_else(|_| eval_clone_flags(value, line))?);
        }
    }
    let flags = flags.ok_or_else(|| ParseError { line, column: col, message: "clone without `flags=`".into() })?;
    if flags & 0x100 != 0 {
        return Err(ParseError {
            line,
            column: col,
            message: "clone with CLONE_VM shares the address space; not supported".into(),
        });
    }
    Ok(Call::Fork { clone_flags: Some(flags) })
}

fn eval_clone_flags(arg: &Arg, line: usize) -> Result<u64, ParseError> {
    let ArgKind::Expr(terms) = &arg.kind else {
        return Err(ParseError { line, column: arg.col, message: "bad clone flags".into() });
    };
    let mut v = 0;
    for (t, col) in terms {
        v |= match t {
            Term::Num(n) => *n,
            Term::Sym(s) => consts::CLONE.iter().find(|(n, _)| n == s).map(|x| x.1).ok_or_else(|| ParseError {
                line,
                column: *col,
                message: format!("`{s}` is not a clone flag"),
            })?,
        }
    }
    Ok(v)
}

/// `; did you mean `X`?` for the closest of `names` to `word` (at most a third of its letters
/// apart, case ignored), or nothing.
fn did_you_mean<'a>(word: &str, names: impl Iterator<Item = &'a str>) -> String {
    let w = word.to_ascii_lowercase();
    let best = names
        .map(|n| (edit_distance(&w, &n.to_ascii_lowercase()), n))
        .filter(|(d, _)| *d <= (w.len() / 3).max(1))
        .min_by_key(|(d, _)| *d);
    best.map_or_else(String::new, |(_, n)| format!("; did you mean `{n}`?"))
}

/// Levenshtein distance, with a transposition of two neighbours counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Every call a trace line may make, with its prototype as its man page names the arguments.
const SIGNATURES: &[(&str, &str)] = &[
    ("mmap", "addr, length, prot, flags, fd, offset"),
    ("munmap", "addr, length"),
    ("mprotect", "addr, length, prot"),
    ("pkey_alloc", "flags, access_rights"),
    ("pkey_free", "pkey"),
    ("pkey_mprotect", "addr, length, prot, pkey"),
    ("mremap", "old_address, old_size, new_size, flags[, new_address]"),
    ("madvise", "addr, length, advice"),
    ("mlock", "addr, length"),
    ("mlock2", "addr, length, flags"),
    ("munlock", "addr, length"),
    ("mlockall", "flags"),
    ("munlockall", ""),
    ("mseal", "addr, length, flags"),
    ("brk", "addr"),
    ("prctl", "option, arg2, arg3, arg4, arg5"),
    ("openat", "dirfd, pathname, flags[, mode]"),
    ("open", "pathname, flags[, mode]"),
    ("close", "fd"),
    ("dup", "oldfd"),
    ("dup2", "oldfd, newfd"),
    ("dup3", "oldfd, newfd, flags"),
    ("ftruncate", "fd, length"),
    ("unlink", "pathname"),
    ("memfd_create", "name, flags"),
    ("memfd_secret", "flags"),
    ("fcntl", "fd, op[, arg]"),
    ("fork", ""),
    ("clone", "child_stack=..., flags=..."),
    ("exit_group", "status"),
    ("touch", "addr, length"),
    ("peek", "addr, length"),
    ("maps", ""),
    ("smaps", ""),
    ("execve", "pathname"),
    ("placeholder", "fd, what"),
    ("resize", "fd, size"),
];

/// The error for a call line that ends before argument `given + 1`: which argument is missing,
/// and the call's prototype.
fn missing_argument(call: &str, given: usize) -> String {
    let Some((_, sig)) = SIGNATURES.iter().find(|(n, _)| *n == call) else {
        return format!("{call} needs more than {given} argument(s)");
    };
    let name = sig.split(", ").nth(given).unwrap_or("an argument").trim_matches(['[', ']']);
    format!("{call} is missing its argument `{name}` ({given} given): {call}({sig})")
}
