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

/// The smaps fields every VMA's block must have on both sides; the others (page counters) are
/// compared where the model printed them with a value it knows (not
/// [`vmaspace::SMAPS_UNKNOWN`]).
pub const MANDATORY_SMAPS_FIELDS: &[&str] = &["Size", "KernelPageSize", "MMUPageSize", "ProtectionKey", "VmFlags"];

/// Lines of a text with their canonical forms.
type Canonical<'a> = Vec<(&'a str, String)>;

/// One maps line with the smaps field lines under it.
struct Block<'a> {
    header: Option<(&'a str, MapsLine)>,
    fields: Vec<(&'a str, &'a str)>,
}

fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out: Vec<Block<'_>> = Vec::new();
    for line in text.lines() {
        if let Some(m) = MapsLine::parse(line) {
            out.push(Block { header: Some((line, m)), fields: Vec::new() });
            continue;
        }
        let key = line.split_once(':').map_or(line, |(k, _)| k);
        match out.last_mut() {
            Some(b) => b.fields.push((key, line)),
            None => out.push(Block { header: None, fields: vec![(key, line)] }),
        }
    }
    out
}

/// Canonical lines of `text` (raw line, canonical form): maps lines reduced to their fields with
/// device and inode replaced by "object k" (first appearance order), and of each block's smaps
/// fields only the mandatory ones and those `keep(block index, key)` allows.
fn canonical<'a>(text: &'a str, keep: &dyn Fn(usize, &str) -> bool) -> Canonical<'a> {
    let mut objects: HashMap<(u32, u32, u64), usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, b) in blocks(text).into_iter().enumerate() {
        if let Some((raw, m)) = b.header {
            let obj = if m.has_object() {
                let n = objects.len();
                format!("obj#{}", *objects.entry((m.dev_major, m.dev_minor, m.inode)).or_insert(n))
            } else {
                "anon".to_string()
            };
            out.push((raw, format!("{:x}-{:x} {} {:x} {} {}", m.start, m.end, m.perms, m.offset, obj, m.name)));
        }
        for (key, raw) in b.fields {
            let is_field = !key.contains(' ') && raw.contains(':');
            if !is_field || MANDATORY_SMAPS_FIELDS.contains(&key) || keep(i, key) {
                out.push((raw, raw.trim_end().to_string()));
            }
        }
    }
    out
}

/// Whether a smaps field line's value is one the model printed as unknown.
fn is_unknown(line: &str) -> bool {
    line.split_once(':').is_some_and(|(_, v)| v.split_whitespace().next() == Some(vmaspace::SMAPS_UNKNOWN))
}

/// How many page counter values (the smaps fields other than [`MANDATORY_SMAPS_FIELDS`]) a
/// model's smaps text gives, and how many of them it prints as unknown.
pub fn counter_values(model: &str) -> (usize, usize) {
    let counters: Vec<&str> = blocks(model)
        .into_iter()
        .filter(|b| b.header.is_some())
        .flat_map(|b| b.fields)
        .filter(|(key, raw)| !key.contains(' ') && raw.contains(':') && !MANDATORY_SMAPS_FIELDS.contains(key))
        .map(|(_, raw)| raw)
        .collect();
    (counters.len(), counters.iter().filter(|raw| is_unknown(raw)).count())
}

/// The canonical forms of the kernel's and the model's text: the model's fields are kept
/// unless their value is unknown, the kernel's where the model printed the same field with a
/// known value in the same block.
fn canonical_pair<'a>(kernel: &'a str, model: &'a str) -> (Canonical<'a>, Canonical<'a>) {
    let model_blocks = blocks(model);
    let known: Vec<Vec<&str>> =
        model_blocks.iter().map(|b| b.fields.iter().filter(|f| !is_unknown(f.1)).map(|f| f.0).collect()).collect();
    let keep = |i: usize, key: &str| known.get(i).is_some_and(|ks| ks.contains(&key));
    let k = canonical(kernel, &keep);
    let m = canonical(model, &keep);
    (k, m)
}

/// Canonical form of checkpoint text (every field kept).
pub fn normalize(text: &str) -> Vec<String> {
    canonical(text, &|_, _| true).into_iter().map(|(_, c)| c).collect()
}

/// Compares the kernel's checkpoint text (`expected`) with the model's (`got`) after
/// normalisation. None when they agree; otherwise a report with the first differing line and
/// a diff.
pub fn compare(expected: &str, got: &str) -> Option<String> {
    let (pe, pg) = canonical_pair(expected, got);
    let (e, g): (Vec<&String>, Vec<&String>) = (pe.iter().map(|p| &p.1).collect(), pg.iter().map(|p| &p.1).collect());
    if e == g {
        return None;
    }
    let first = e.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(e.len().min(g.len()));
    let mut report = format!("checkpoint text differs at line {} of the checkpoint:\n", first + 1);
    report.push_str(&diff_pairs(&pe, &pg));
    Some(report)
}

/// A unified diff of two texts (`-` expected, `+` got; removed lines before added ones, three
/// lines of context, `@@ -LINE,N +LINE,N @@` hunks), lines being equal when their canonical
/// forms are.
pub fn unified_diff(expected: &str, got: &str) -> String {
    let full = diff_pairs(&canonical(expected, &|_, _| true), &canonical(got, &|_, _| true));
    let ops: Vec<&str> = full.lines().collect();
    hunks(&ops, 3)
}

/// Groups `  `/`-`/`+` lines into hunks with `context` lines around each change; within a run
/// of changes, removals come first.
fn hunks(ops: &[&str], context: usize) -> String {
    let changed: Vec<usize> = (0..ops.len()).filter(|&i| !ops[i].starts_with("  ")).collect();
    let mut out = String::new();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(context);
        let mut end = changed[k];
        while k < changed.len() && changed[k] <= end + 2 * context + 1 {
            end = changed[k];
            k += 1;
        }
        let end = (end + context + 1).min(ops.len());
        // Line numbers on each side before `start`.
        let old_before = ops[..start].iter().filter(|o| !o.starts_with('+')).count();
        let new_before = ops[..start].iter().filter(|o| !o.starts_with('-')).count();
        let body = &ops[start..end];
        let old_n = body.iter().filter(|o| !o.starts_with('+')).count();
        let new_n = body.iter().filter(|o| !o.starts_with('-')).count();
        out.push_str(&format!("@@ -{},{old_n} +{},{new_n} @@\n", old_before + 1, new_before + 1));
        let mut i = 0;
        while i < body.len() {
            if body[i].starts_with("  ") {
                out.push(' ');
                out.push_str(&body[i][2..]);
                out.push('\n');
                i += 1;
                continue;
            }
            let run_end = (i..body.len()).find(|&j| body[j].starts_with("  ")).unwrap_or(body.len());
            for prefix in ['-', '+'] {
                for o in body[i..run_end].iter().filter(|o| o.starts_with(prefix)) {
                    out.push(prefix);
                    out.push_str(&o[2..]);
                    out.push('\n');
                }
            }
            i = run_end;
        }
    }
    out
}

fn diff_pairs(pe: &[(&str, String)], pg: &[(&str, String)]) -> String {
    let (n, m) = (pe.len(), pg.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if pe[i].1 == pg[j].1 { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && pe[i].1 == pg[j].1 {
            out.push_str(&format!("  {}\n", pe[i].0));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", pg[j].0));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", pe[i].0));
            i += 1;
        }
    }
    out
}

/// Replaces every occurrence of the working directory's path with `@CWD@`.
pub fn redact_cwd(text: &str, cwd: &str) -> String {
    if cwd.is_empty() { text.to_string() } else { text.replace(cwd, "@CWD@") }
}
