//! Scenario files: `NAME.trace`, `NAME.expected`, `NAME.initial-maps` (DESIGN.md, "Scenario files").

use std::fs;
use std::path::{Path, PathBuf};
use vmaspace_trace::{Call, Line, Scope, Trace, parse_trace};

/// A trace loaded from disk, with the paths of its companion files.
#[derive(Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub text: String,
    pub trace: Trace,
    /// Set when the file is a strace log: what its import could not express.
    pub strace: Option<vmaspace_trace::strace::StraceImport>,
}

/// Why a scenario could not be used (exit status 2).
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most bytes an input file (trace, initial maps, expected output) may have.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Reads a text file of at most [`MAX_INPUT_BYTES`] (a device such as `/dev/zero` ends the
/// read there instead of filling memory).
/// `-` is standard input.
/// Loads a trace for `command`, or says on standard error why it cannot (then the error is the
/// exit status, 2).
pub fn load_for(command: &str, trace: &Path) -> Result<Scenario, i32> {
    Scenario::load(trace).map_err(|InputError(e)| {
        eprintln!("vmaspace {command}: {e}");
        2
    })
}

pub fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{}: larger than {} MiB: not a trace this tool reads",
            path.display(),
            MAX_INPUT_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!("{}: not UTF-8 text (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to())
    })
}

/// What a strace log cannot tell, said plainly; Err when the model cannot run it as it is.
pub fn strace_report(s: &Scenario, have_initial_maps: bool) -> Result<String, String> {
    let Some(i) = &s.strace else { return Ok(String::new()) };
    let skipped: usize = i.skipped.values().sum();
    let mut names: Vec<_> = i.skipped.iter().collect();
    names.sort_by(|a, b| b.1.cmp(a.1));
    let top: Vec<String> = names.iter().take(6).map(|(n, k)| format!("{n} ×{k}")).collect();
    let mut report = format!(
        "{}: a strace log: {} calls of the trace language; {skipped} calls that change neither memory nor descriptors left out ({}{})",
        s.path.display(),
        s.trace.lines.len(),
        top.join(", "),
        if names.len() > 6 { ", ..." } else { "" }
    );
    for l in &i.races {
        report.push_str(&format!("\n  line {l}: memory calls of two threads overlap here; their order is not known"));
    }
    report.push_str("\n  unknown to a strace log: the page faults the program made (they decide anon_vma identity and smaps), and the identity of files outside the working directory");
    // The first call of a log of `strace PROG` is the execve that loaded PROG: with the maps
    // it left (`--initial-maps`), the rest can run.
    let first_call = s.text.lines().position(|l| !l.trim().is_empty()).map(|i| i + 1);
    let blocking: Vec<_> = i
        .unexpressible
        .iter()
        .filter(|(l, n, _)| !(have_initial_maps && n == "execve" && Some(*l) == first_call))
        .collect();
    if blocking.is_empty() {
        return Ok(report);
    }
    for (l, n, why) in blocking.iter().take(8) {
        report.push_str(&format!("\n  line {l}: {n}: {why}"));
    }
    if blocking.len() > 8 {
        report.push_str(&format!("\n  ... and {} more", blocking.len() - 8));
    }
    if blocking.iter().any(|(_, n, _)| n == "execve") {
        report.push_str("\n  the image an execve loads is not in the log: give its maps with --initial-maps (for the first execve), or record the program with the oracle");
    }
    Err(report)
}

impl Scenario {
    /// A scenario held in memory (fuzz cases); `name` stands in for its path in messages.
    pub fn from_trace(name: &str, trace: Trace) -> Scenario {
        let text: String = trace.lines.iter().map(|l| vmaspace_trace::format_line(l) + "\n").collect();
        Scenario { path: PathBuf::from(name), text, trace, strace: None }
    }

    pub fn load(path: &Path) -> Result<Scenario, InputError> {
        let text = read_limited(path).map_err(InputError)?;
        if vmaspace_trace::strace::looks_like_strace(&text) {
            let mut import = vmaspace_trace::strace::import_strace(&text)
                .map_err(|e| InputError(format!("{} (a strace log): {e}", path.display())))?;
            let trace = std::mem::take(&mut import.trace);
            return Ok(Scenario { path: path.to_path_buf(), text, trace, strace: Some(import) });
        }
        let trace = parse_trace(&text).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
        if trace.lines.is_empty() {
            // Else it would "agree" with anything.
            return Err(InputError(format!("{}: an empty trace: no call to run", path.display())));
        }
        Ok(Scenario { path: path.to_path_buf(), text, trace, strace: None })
    }

    fn sibling(&self, ext: &str) -> PathBuf {
        self.path.with_extension(ext)
    }
    pub fn expected_path(&self) -> PathBuf {
        self.sibling("expected")
    }
    pub fn initial_maps_path(&self) -> PathBuf {
        self.sibling("initial-maps")
    }

    /// The trace as it runs: with a final `maps()` of the first process when it has no
    /// checkpoint, since `run` then prints the maps once at the end.
    pub fn runnable(&self) -> Trace {
        let mut t = self.trace.clone();
        if !t.lines.iter().any(|l| l.call.is_checkpoint()) {
            let lineno = t.lines.last().map_or(1, |l| l.lineno + 1);
            t.lines.push(Line { lineno, pid: None, call: Call::Maps, result: None });
        }
        t
    }

    pub fn is_whole_space(&self) -> bool {
        self.trace.scope == Some(Scope::WholeSpace)
    }
}

/// Applies a scope to checkpoint text.
pub fn apply_scope(text: &str, scope: Scope) -> String {
    match scope {
        Scope::Window { start, end } => vmaspace_trace::maps::filter_window(text, start, end),
        Scope::WholeSpace => text.to_string(),
    }
}

/// Rewrites trace text with new results: call lines are printed again (keeping any trailing
/// comment), every other line is kept as it was.
pub fn rewrite_results(text: &str, trace: &Trace, results: &[Option<vmaspace_trace::Outcome>]) -> String {
    let mut by_line = std::collections::HashMap::new();
    for (line, result) in trace.lines.iter().zip(results) {
        by_line.insert(line.lineno, (line, *result));
    }
    let mut out = String::new();
    for (i, raw) in text.lines().enumerate() {
        match by_line.get(&(i + 1)) {
            Some((line, result)) => {
                let updated = Line { result: *result, ..(*line).clone() };
                // The user's spelling of the call is kept; only its result is written.
                match (call_end(raw), result) {
                    (Some(end), Some(r)) => {
                        let hex = vmaspace_trace::print::returns_address(&line.call);
                        out.push_str(&raw[..end]);
                        out.push_str(" = ");
                        out.push_str(&vmaspace_trace::format_outcome(*r, hex));
                    }
                    (Some(end), None) => out.push_str(&raw[..end]),
                    (None, _) => out.push_str(&vmaspace_trace::format_line(&updated)),
                }
                if let Some(c) = trailing_comment(raw) {
                    out.push_str("  ");
                    out.push_str(c);
                }
            }
            None => out.push_str(raw),
        }
        out.push('\n');
    }
    out
}

/// The byte just past the `)` that closes a call line's argument list (string literals and
/// nested parentheses skipped), or None when the line has none.
fn call_end(raw: &str) -> Option<usize> {
    let open = raw.find('(')?;
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for (i, c) in raw.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Sets a `# KEY: VALUE` header line: replaces the one there is, or adds one at the top.
pub fn set_header(text: &str, key: &str, value: &str) -> String {
    let line = format!("# {key}: {value}");
    let prefix = format!("{key}:");
    let mut out = String::new();
    let mut found = false;
    let mut in_header = true;
    for raw in text.lines() {
        let t = raw.trim();
        in_header &= t.is_empty() || t.starts_with('#');
        let is_key = t.strip_prefix('#').is_some_and(|c| c.trim_start().starts_with(&prefix));
        if in_header && is_key {
            found = true;
            out.push_str(&line);
        } else {
            out.push_str(raw);
        }
        out.push('\n');
    }
    if found { out } else { format!("{line}\n{out}") }
}

/// The `# ...` comment at the end of a call line, outside string literals.
fn trailing_comment(raw: &str) -> Option<&str> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '#' if !in_str => return Some(&raw[i..]),
            _ => {}
        }
    }
    None
}
