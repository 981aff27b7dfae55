//! `vmaspace explain`: why each mapping landed where it did, and why adjacent VMAs did not
//! merge, in Linux's terms. The reasons come from the model's own placement and merge code
//! (`vmaspace::explain`), never from a second copy of its rules.

use crate::exec::Model;
use crate::run::{RunArgs, apply_checked, result_text, start_model};
use crate::scenario::Scenario;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use vmaspace::explain::{MergeBlocker, PlacementStep};
use vmaspace::{AddressSpace, Vma};
use vmaspace_trace::format_call;

/// Where each anon_vma came from: the line (and its call) that made it, per process.
type AnonOrigins = HashMap<(Option<u32>, u64), (usize, String)>;

/// `vmaspace explain TRACE [--at LINE]`. Returns the exit status.
pub fn main(trace: &Path, at: Option<usize>, args: &RunArgs) -> i32 {
    let s = match crate::scenario::load_for("explain", trace) {
        Ok(s) => s,
        Err(status) => return status,
    };
    match explain(&s, at, args) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("vmaspace explain: {}: {e}", trace.display());
            2
        }
    }
}

/// The explanation of a trace run up to line `at` (the whole trace without it).
pub fn explain(s: &Scenario, at: Option<usize>, args: &RunArgs) -> Result<String, String> {
    let (mut model, _, _) = start_model(s, args)?;
    for mm in model.procs.values_mut() {
        mm.record_placement(true);
    }
    let mut origins = AnonOrigins::new();
    note_anon_origins(&model, None, 0, "(before the trace)", &mut origins);
    let runnable = s.runnable();
    if let Some(at) = at
        && !runnable.lines.iter().any(|l| l.lineno == at)
    {
        return Err(format!("line {at} is not a call of the trace"));
    }
    let mut out = String::from("# Placements\n");
    let mut placed = 0;
    for line in &runnable.lines {
        if at.is_some_and(|at| line.lineno > at) {
            break;
        }
        // A process's exit would take its address space with it: the explanation is of the
        // address spaces as the trace leaves them.
        if line.call.is_checkpoint() || matches!(line.call, vmaspace_trace::Call::ExitGroup { .. }) {
            continue;
        }
        let got = apply_checked(&mut model, line)?;
        // exec gives the process a new address space: record its placements too.
        if matches!(line.call, vmaspace_trace::Call::Execve { .. })
            && let Some(mm) = model.procs.get_mut(&line.pid)
        {
            mm.record_placement(true);
        }
        let call = format_call(&line.call);
        let steps = model.procs.get(&line.pid).map(AddressSpace::take_placement_steps).unwrap_or_default();
        // MAP_FIXED goes through the allocators too, which return its address as it is.
        let chose = steps.iter().any(|s| !matches!(s, PlacementStep::Allocator(_) | PlacementStep::ThpNotApplicable));
        if chose {
            placed += 1;
            let who = line.pid.map_or(String::new(), |p| format!(" [pid {p}]"));
            let _ = writeln!(out, "\nline {}{who}: {call} = {}", line.lineno, result_text(&line.call, got));
            let mmap_base = model.procs.get(&line.pid).map_or(0, |mm| mm.settings().mmap_base);
            for step in &steps {
                let _ = writeln!(out, "  {}", placement_text(step, mmap_base));
            }
        }
        note_anon_origins(&model, line.pid, line.lineno, &call, &mut origins);
        // A fork's child got its anon_vmas from this line too.
        if let (vmaspace_trace::Call::Fork { .. }, vmaspace_trace::Outcome::Value(child)) = (&line.call, got) {
            note_anon_origins(&model, u32::try_from(child).ok(), line.lineno, &call, &mut origins);
        }
    }
    if placed == 0 {
        out.push_str("\n(no call of the trace chose an address)\n");
    }
    let when = at.map_or("at the end of the trace".to_string(), |l| format!("after line {l}"));
    let _ = writeln!(out, "\n# Adjacent VMAs that did not merge, {when}");
    let mut pids: Vec<Option<u32>> = model.procs.keys().copied().collect();
    pids.sort();
    for pid in pids {
        let mm = &model.procs[&pid];
        if model.procs.len() > 1 {
            let _ = writeln!(out, "\n[pid {}]", pid.map_or("of the trace".to_string(), |p| p.to_string()));
        }
        let vmas: Vec<&Vma> = mm.vmas().collect();
        let mut pairs = 0;
        for w in vmas.windows(2) {
            let (prev, next) = (w[0], w[1]);
            let Some(why) = mm.why_not_merged(prev.start(), next.start()) else { continue };
            pairs += 1;
            let _ = writeln!(out, "\n  {}\n  {}", maps_line(mm, prev), maps_line(mm, next));
            let _ = writeln!(out, "    {}", blocker_text(&why, prev, next, pid, &origins));
        }
        if pairs == 0 {
            out.push_str("\n  (no two VMAs are adjacent)\n");
        }
    }
    Ok(out)
}

/// Remembers the line that gave each new anon_vma of `pid`'s VMAs.
fn note_anon_origins(model: &Model, pid: Option<u32>, lineno: usize, call: &str, origins: &mut AnonOrigins) {
    let Some(mm) = model.procs.get(&pid) else { return };
    for a in mm.vmas().filter_map(Vma::anon_vma) {
        origins.entry((pid, a.id())).or_insert_with(|| (lineno, call.to_string()));
    }
}

/// The VMA's line of `/proc/PID/maps`, without its trailing newline.
fn maps_line(mm: &AddressSpace, v: &Vma) -> String {
    mm.maps_window(v.start(), v.start() + 1).trim_end().to_string()
}

fn placement_text(step: &PlacementStep, mmap_base: u64) -> String {
    let limit = |a: u64| if a == mmap_base { format!("{a:#x} (mmap_base)") } else { format!("{a:#x}") };
    match step {
        PlacementStep::Allocator(a) => format!("get_unmapped_area: {a}"),
        PlacementStep::HintTaken(a) => format!("the hint {a:#x} is free: taken as it is"),
        PlacementStep::HintRefused { addr, why } => format!("the hint {addr:#x} is not used: {why}"),
        PlacementStep::ThpNotApplicable => {
            "no whole 2 MiB-aligned 2 MiB chunk fits the request: no THP alignment, a plain search".into()
        }
        PlacementStep::ThpAligned { padded_len, found, aligned } => format!(
            "THP alignment: a search for {padded_len:#x} bytes (the length plus 2 MiB) found {found:#x}; the \
             mapping starts at {aligned:#x}, so that address and file offset agree modulo 2 MiB"
        ),
        PlacementStep::Gap { top_down: true, length, low_limit, high_limit, gap, align_mask, addr } => format!(
            "top-down search (unmapped_area_topdown) from {} down to {low_limit:#x} for {length:#x} bytes: the \
             highest free gap that holds them is {:#x}-{:#x}; the mapping takes its top{}: {addr:#x}",
            limit(*high_limit),
            gap.0,
            gap.1,
            alignment(*align_mask)
        ),
        PlacementStep::Gap { top_down: false, length, low_limit, high_limit, gap, align_mask, addr } => format!(
            "bottom-up search (unmapped_area) from {low_limit:#x} up to {high_limit:#x} for {length:#x} bytes: \
             the lowest free gap that holds them is {:#x}-{:#x}; the mapping takes its bottom{}: {addr:#x}",
            gap.0,
            gap.1,
            alignment(*align_mask)
        ),
        PlacementStep::StackGuardGap { stack, limit } => format!(
            "that gap reaches into the stack guard gap of the growing VMA at {stack:#x} \
             (stack_guard_gap): searching again with the limit at {limit:#x}"
        ),
        PlacementStep::BottomUpFallback => {
            "nothing fits top-down: the bottom-up allocator from mmap_legacy_base is tried".into()
        }
        PlacementStep::NoGap => "no free gap holds it: ENOMEM".into(),
    }
}

fn alignment(mask: u64) -> String {
    if mask == 0 { String::new() } else { format!(", aligned to {:#x} bytes (align_mask {mask:#x})", mask + 0x1000) }
}

fn blocker_text(why: &MergeBlocker, prev: &Vma, next: &Vma, pid: Option<u32>, origins: &AnonOrigins) -> String {
    match why {
        MergeBlocker::Special(f) => format!(
            "the upper VMA has {} (VM_SPECIAL): such a range never merges (vma_merge_existing_range)",
            f.names()
        ),
        MergeBlocker::FlagsDiffer(f) => format!(
            "vm_flags differ in {} (is_mergeable_vma); smaps shows them as `{}`",
            f.names(),
            f.mnemonics().trim_end()
        ),
        MergeBlocker::FileDiffers => {
            let what = match (prev.file(), next.file()) {
                (Some(a), Some(b)) if a.inode.ino == b.inode.ino && a.inode.dev == b.inode.dev => {
                    "two open file descriptions of one file: every open() makes another vm_file".to_string()
                }
                (Some(_), Some(_)) => "two different files".to_string(),
                _ => "one maps a file and the other does not".to_string(),
            };
            format!("vm_file differs (is_mergeable_vma): {what}")
        }
        MergeBlocker::AnonNameDiffers => "anon_vma_name differs (is_mergeable_vma)".into(),
        MergeBlocker::AnonVmaDiffers { target, range } => format!(
            "anon_vma differs (is_mergeable_anon_vma): the lower VMA's is {}, the upper's {}",
            anon_text(*target, pid, origins),
            anon_text(*range, pid, origins)
        ),
        MergeBlocker::PgoffNotContiguous { expected, found } => {
            let hint = if prev.is_anonymous() && next.is_anonymous() {
                " (an anonymous VMA's vm_pgoff is the page number where it was first mapped: one of them was \
                 moved by mremap)"
            } else {
                " (the file offsets do not continue)"
            };
            format!(
                "vm_pgoff does not continue (can_vma_merge_after): the upper VMA would need {expected:#x}, it has \
                 {found:#x}{hint}"
            )
        }
        MergeBlocker::CloseOp => format!(
            "the upper VMA's vm_ops->close ({}) forbids removing it in a merge (can_merge_remove_vma)",
            next.ops().map_or("?", |o| o.label)
        ),
        MergeBlocker::NotAttempted => "nothing keeps them apart: they would merge, but Linux merges only when a call \
             maps, changes or moves a range beside a VMA, and none did since they met"
            .into(),
    }
}

fn anon_text(a: Option<vmaspace::vma::AnonVmaRef>, pid: Option<u32>, origins: &AnonOrigins) -> String {
    let Some(a) = a else { return "none yet (nothing was written there)".into() };
    let origin = match origins.get(&(pid, a.id())) {
        Some((0, _)) => " (it was there before the trace)".to_string(),
        Some((line, call)) => format!(" (made at line {line}: {call})"),
        None => String::new(),
    };
    let forked =
        if a.forked() { ", a fork child's, still chained to its parent's (vma_had_uncowed_parents)" } else { "" };
    format!("anon_vma #{}{origin}{forked}", a.id())
}
