//! Reading `/proc/PID/maps` and `smaps` text back, windowing it, and comparing two texts the way
//! TRACE-FORMAT.md prescribes ("Comparing with the kernel").

use std::collections::HashMap;

/// The fields of one maps line (or the header line of an smaps block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    /// The four permission characters, e.g. `rw-p`.
    pub perms: String,
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The name, without the padding before it; empty when there is none.
    pub name: String,
}

impl MapsLine {
    /// Parses one maps line; None when it is not one.
    pub fn parse(line: &str) -> Option<MapsLine> {
        let mut rest = line;
        let mut field = || -> Option<&str> {
            let t = rest.trim_start_matches(' ');
            let end = t.find(' ').unwrap_or(t.len());
            let (f, r) = t.split_at(end);
            rest = r;
            (!f.is_empty()).then_some(f)
        };
        let range = field()?;
        let perms = field()?;
        let offset = field()?;
        let dev = field()?;
        let inode = field()?;
        let (s, e) = range.split_once('-')?;
        let (maj, min) = dev.split_once(':')?;
        if perms.len() != 4 {
            return None;
        }
        let name = rest.strip_prefix(' ').unwrap_or(rest).trim_start_matches(' ').to_string();
        Some(MapsLine {
            start: u64::from_str_radix(s, 16).ok()?,
            end: u64::from_str_radix(e, 16).ok()?,
            perms: perms.to_string(),
            offset: u64::from_str_radix(offset, 16).ok()?,
            dev_major: u32::from_str_radix(maj, 16).ok()?,
            dev_minor: u32::from_str_radix(min, 16).ok()?,
            inode: inode.parse().ok()?,
            name,
        })
    }

    /// Whether the line names an object (file, shmem, device) rather than plain anonymous memory.
    pub fn has_object(&self) -> bool {
        self.inode != 0 || self.dev_major != 0 || self.dev_minor != 0
    }
}

/// Keeps only the entries (with their smaps lines) whose VMA intersects `[start, end)`.
pub fn filter_window(text: &str, start: u64, end: u64) -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in text.split_inclusive('\n') {
        if let Some(m) = MapsLine::parse(line.trim_end_matches('\n')) {
            keep = m.start < end && m.end > start;
        }
        if keep {
            out.push_str(line);
        }
    }
    out
}

/// The smaps fields the model keeps and comparisons check; other smaps lines are left out of
/// both sides.
pub const COMPARED_SMAPS_FIELDS: &[&str] = &["Size", "KernelPageSize", "MMUPageSize", "ProtectionKey", "VmFlags"];

/// Canonical form of checkpoint text: every maps line reduced to its fields with device and
/// inode replaced by "object k" (first appearance order); smaps fields outside
/// [`COMPARED_SMAPS_FIELDS`] dropped; other lines kept verbatim.
pub fn normalize(text: &str) -> Vec<String> {
    normalize_pairs(text).into_iter().map(|(_, c)| c).collect()
}

/// Each compared line of `text` with its canonical form.
fn normalize_pairs(text: &str) -> Vec<(&str, String)> {
    let mut objects: HashMap<(u32, u32, u64), usize> = HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        match MapsLine::parse(line) {
            Some(m) => {
                let obj = if m.has_object() {
                    let n = objects.len();
                    let k = *objects.entry((m.dev_major, m.dev_minor, m.inode)).or_insert(n);
                    format!("obj#{k}")
                } else {
                    "anon".to_string()
                };
                out.push((line, format!("{:x}-{:x} {} {:x} {} {}", m.start, m.end, m.perms, m.offset, obj, m.name)));
            }
            None => match line.split_once(':') {
                Some((key, _)) if !key.contains(' ') && !COMPARED_SMAPS_FIELDS.contains(&key) => {}
                _ => out.push((line, line.trim_end().to_string())),
            },
        }
    }
    out
}

/// Compares two checkpoint texts after normalisation. None when they agree; otherwise a report
/// with the first differing line and both texts side by side.
pub fn compare(expected: &str, got: &str) -> Option<String> {
    let (e, g) = (normalize(expected), normalize(got));
    if e == g {
        return None;
    }
    let first = e.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(e.len().min(g.len()));
    let mut report = format!("checkpoint text differs at line {} of the checkpoint:\n", first + 1);
    report.push_str(&unified_diff(expected, got));
    Some(report)
}

/// A small line diff (`-` expected, `+` got), with the normalised comparison deciding equality.
pub fn unified_diff(expected: &str, got: &str) -> String {
    let (pe, pg) = (normalize_pairs(expected), normalize_pairs(got));
    let (e, g): (Vec<&str>, Vec<&str>) = (pe.iter().map(|p| p.0).collect(), pg.iter().map(|p| p.0).collect());
    let (ne, ng): (Vec<&String>, Vec<&String>) = (pe.iter().map(|p| &p.1).collect(), pg.iter().map(|p| &p.1).collect());
    // Longest common subsequence on the normalised lines; traces are small.
    let (n, m) = (ne.len(), ng.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if ne[i] == ng[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && ne[i] == ng[j] {
            out.push_str(&format!("  {}\n", e[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", g[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", e[i]));
            i += 1;
        }
    }
    out
}

/// Replaces every occurrence of the working directory's path with `@CWD@`.
pub fn redact_cwd(text: &str, cwd: &str) -> String {
    if cwd.is_empty() { text.to_string() } else { text.replace(cwd, "@CWD@") }
}
