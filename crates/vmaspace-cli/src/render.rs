//! `vmaspace render TRACE -o FILE.html`: one self-contained HTML page (no network access) that
//! shows the address space of every process over the whole trace. The model runs the trace
//! once; after every call each process's VMAs (with their maps and smaps text) are kept,
//! deduplicated, and what changed is classified (new, split, merged, changed, unmapped). The
//! page draws them with a step control; its script and style are in `render.html`.

use crate::run::{RunArgs, apply_checked, result_text, start_model};
use crate::scenario::Scenario;
use std::collections::HashMap;
use std::path::Path;
use vmaspace::{AddressSpace, Vma};
use vmaspace_trace::format_call;

/// The page around the data: style, script and a placeholder for the JSON.
const TEMPLATE: &str = include_str!("render.html");

/// Most steps a page holds: past this, the page would be too large to load comfortably.
const MAX_STEPS: usize = 20_000;

/// `vmaspace render TRACE -o FILE`. Returns the exit status.
pub fn main(trace: &Path, out: &Path, args: &RunArgs) -> i32 {
    let s = match crate::scenario::load_for("render", trace) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let title = trace.file_name().map_or("trace".into(), |n| n.to_string_lossy().into_owned());
    let html = match render(&s, &title, args) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("vmaspace render: {}: {e}", trace.display());
            return 2;
        }
    };
    match std::fs::write(out, html) {
        Ok(()) => {
            eprintln!("vmaspace render: wrote {}", out.display());
            0
        }
        Err(e) => {
            eprintln!("vmaspace render: cannot write {}: {e}", out.display());
            2
        }
    }
}

/// One VMA as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VmaView {
    start: u64,
    end: u64,
    kind: &'static str,
    perms: String,
    maps: String,
    smaps: String,
}

/// What happened to a VMA (or a range) at a step.
fn change_of(v: &VmaView, before: &[VmaView]) -> Option<&'static str> {
    if before.contains(v) {
        return None;
    }
    let overlapping: Vec<&VmaView> = before.iter().filter(|b| b.start < v.end && v.start < b.end).collect();
    Some(match overlapping.as_slice() {
        [] => "new",
        [one] if one.start <= v.start && v.end <= one.end && (one.start, one.end) != (v.start, v.end) => "split",
        [one] if (one.start, one.end) == (v.start, v.end) => "changed",
        several if several.len() > 1 && several.iter().all(|b| v.start <= b.start && b.end <= v.end) => "merged",
        _ => "changed",
    })
}

/// The page's data, built as JSON text by hand (the CLI has no JSON library).
#[derive(Default)]
struct PageData {
    vmas: Vec<VmaView>,
    index: HashMap<VmaView, usize>,
    steps: Vec<String>,
}

impl PageData {
    fn intern(&mut self, v: VmaView) -> usize {
        if let Some(i) = self.index.get(&v) {
            return *i;
        }
        self.vmas.push(v.clone());
        self.index.insert(v, self.vmas.len() - 1);
        self.vmas.len() - 1
    }
}

fn kind_of(v: &Vma, maps: &str) -> &'static str {
    let name = maps.split_whitespace().nth(5).unwrap_or("");
    let f = v.flags();
    if f.contains(vmaspace::VmFlags::HUGETLB) {
        "hugetlb"
    } else if name == "[stack]" {
        "stack"
    } else if name == "[heap]" {
        "heap"
    } else if f.intersects(vmaspace::VmFlags::SPECIAL) || name.starts_with('[') {
        "special"
    } else if v.is_anonymous() {
        "anon"
    } else if f.contains(vmaspace::VmFlags::MAYSHARE) {
        "shared"
    } else {
        "file"
    }
}

/// The VMAs of one address space as the page shows them.
fn views(mm: &AddressSpace) -> Vec<VmaView> {
    mm.vmas()
        .map(|v| {
            let maps = mm.maps_window(v.start(), v.start() + 1).trim_end().to_string();
            let smaps = mm.smaps_window(v.start(), v.start() + 1);
            VmaView {
                start: v.start(),
                end: v.end(),
                kind: kind_of(v, &maps),
                perms: maps.split_whitespace().nth(1).unwrap_or("").to_string(),
                smaps: smaps.split_once('\n').map_or(String::new(), |(_, rest)| rest.to_string()),
                maps,
            }
        })
        .collect()
}

/// The page for a scenario.
fn render(s: &Scenario, title: &str, args: &RunArgs) -> Result<String, String> {
    let (mut model, _, _) = start_model(s, args)?;
    let mut data = PageData::default();
    let mut previous: HashMap<Option<u32>, Vec<VmaView>> = HashMap::new();
    let snapshot = |model: &crate::exec::Model,
                    data: &mut PageData,
                    previous: &mut HashMap<Option<u32>, Vec<VmaView>>,
                    caption: String| {
        let mut pids: Vec<Option<u32>> = model.procs.keys().copied().collect();
        pids.sort();
        let mut procs = Vec::new();
        for pid in pids {
            let now = views(&model.procs[&pid]);
            // What the process had at the step before (nothing new to say at its first).
            let before = previous.remove(&pid);
            let mut items = Vec::new();
            for v in &now {
                let change = before.as_deref().and_then(|b| change_of(v, b));
                let i = data.intern(v.clone());
                items.push(match change {
                    Some(c) => format!("[{i},\"{c}\"]"),
                    None => format!("[{i}]"),
                });
            }
            // Ranges that held a VMA before and hold none now: unmapped.
            for b in before.iter().flatten() {
                if !now.iter().any(|v| v.start < b.end && b.start < v.end) {
                    let i = data.intern(b.clone());
                    items.push(format!("[{i},\"unmapped\"]"));
                }
            }
            let label = pid.map_or("the trace's process".to_string(), |p| format!("pid {p}"));
            procs.push(format!("{{\"pid\":{},\"vmas\":[{}]}}", crate::run::json_string(&label), items.join(",")));
            previous.insert(pid, now);
        }
        previous.retain(|p, _| model.procs.contains_key(p));
        data.steps.push(format!(
            "{{\"caption\":{},\"procs\":[{}]}}",
            crate::run::json_string(&caption),
            procs.join(",")
        ));
    };
    snapshot(&model, &mut data, &mut previous, "the address space the trace starts from".into());
    for line in &s.runnable().lines {
        if line.call.is_checkpoint() {
            continue;
        }
        if data.steps.len() > MAX_STEPS {
            return Err(format!("more than {MAX_STEPS} calls: too many for one page"));
        }
        let got = apply_checked(&mut model, line)?;
        let who = line.pid.map_or(String::new(), |p| format!("[pid {p}] "));
        let caption =
            format!("line {}: {who}{} = {}", line.lineno, format_call(&line.call), result_text(&line.call, got));
        snapshot(&model, &mut data, &mut previous, caption);
    }
    let vmas: Vec<String> = data
        .vmas
        .iter()
        .map(|v| {
            format!(
                "{{\"s\":\"{:x}\",\"e\":\"{:x}\",\"k\":\"{}\",\"p\":{},\"m\":{},\"sm\":{}}}",
                v.start,
                v.end,
                v.kind,
                crate::run::json_string(&v.perms),
                crate::run::json_string(&v.maps),
                crate::run::json_string(&v.smaps)
            )
        })
        .collect();
    let json = format!(
        "{{\"title\":{},\"vmas\":[{}],\"steps\":[{}]}}",
        crate::run::json_string(title),
        vmas.join(",\n"),
        data.steps.join(",\n")
    );
    Ok(TEMPLATE.replace("__TITLE__", &html_escape(title)).replace("__DATA__", &json))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
