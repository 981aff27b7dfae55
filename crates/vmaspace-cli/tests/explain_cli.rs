//! `vmaspace explain`: placements explained step by step end at the address the kernel chose
//! (the scenarios' recorded results), and adjacent VMAs that Linux keeps apart are explained
//! by the merge condition Linux's rules say fails.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

fn explain(trace: &Path, extra: &[&str]) -> String {
    let out = vmaspace().arg("explain").arg(trace).args(extra).output().unwrap();
    assert!(out.status.success(), "{}: {}", trace.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The hex number that follows `marker` in `line`.
fn hex_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = rest.trim_start().strip_prefix("0x")?;
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).ok()
}

/// Per explained line: the result the header shows and the address the last placement step
/// arrived at.
fn placements(text: &str) -> Vec<(usize, String, Option<u64>)> {
    let mut out: Vec<(usize, String, Option<u64>)> = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("line ") {
            let lineno: usize = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
            let result = rest.rsplit(" = ").next().unwrap().to_string();
            out.push((lineno, result, None));
        } else if l.starts_with("# Adjacent") {
            break;
        } else if let Some(last) = out.last_mut() {
            let found = hex_after(l, "mapping starts at")
                .or_else(|| hex_after(l, "takes its top:"))
                .or_else(|| hex_after(l, "takes its bottom:"))
                .or_else(|| l.contains("is free: taken").then(|| hex_after(l, "the hint")).flatten());
            if found.is_some() {
                last.2 = found;
            }
        }
    }
    out
}

/// The kernel's results, by line, as `record` wrote them into the trace.
fn recorded_results(trace: &Path) -> HashMap<usize, String> {
    let text = std::fs::read_to_string(trace).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
        .filter_map(|(i, l)| l.rsplit_once(") = ").map(|(_, r)| (i + 1, r.trim().to_string())))
        .collect()
}

#[test]
fn placements_explained_end_where_the_kernel_put_them() {
    let mut explained = 0;
    let recordings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/recordings");
    let traces = ["placement_topdown", "placement_thp", "placement_hints", "placement_stack_gap", "placement_files"]
        .map(|n| scenarios().join(format!("{n}.trace")))
        .into_iter()
        // Real programs: ls and git, recorded by `vmaspace trace`.
        .chain(["ls", "git"].map(|n| recordings.join(format!("{n}.trace"))));
    for trace in traces {
        let name = trace.file_stem().unwrap().to_string_lossy().into_owned();
        let text = explain(&trace, &[]);
        let kernel = recorded_results(&trace);
        for (lineno, result, arrived) in placements(&text) {
            let want = &kernel[&lineno];
            assert!(result.starts_with(want.as_str()), "{name} line {lineno}: model {result}, kernel {want}");
            if let Some(addr) = arrived {
                assert_eq!(format!("{addr:#x}"), *want, "{name} line {lineno}: the explanation ends elsewhere\n{text}");
                explained += 1;
            }
        }
    }
    // Every scenario above places hint-less mappings; the count guards against a parser that
    // finds nothing.
    assert!(explained >= 40, "only {explained} placements explained");
}

const PAIRS: &str = "\
openat(AT_FDCWD, \"f\", O_RDWR|O_CREAT, 0600) = 3
ftruncate(3, 65536) = 0
openat(AT_FDCWD, \"f\", O_RDWR) = 4
mmap(0x100000000000, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000000000
mmap(0x100000001000, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000001000
mmap(0x100000010000, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000010000
touch(0x100000010000, 4096) = 0
mmap(0x100000020000, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x100000020000
touch(0x100000020000, 4096) = 0
mremap(0x100000020000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x100000011000) = 0x100000011000
mmap(0x100000030000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0) = 0x100000030000
mmap(0x100000031000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 4, 0x1000) = 0x100000031000
mmap(0x100000040000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0) = 0x100000040000
mmap(0x100000041000, 4096, PROT_READ, MAP_SHARED|MAP_FIXED, 3, 0x3000) = 0x100000041000
maps()
";

/// The explanation of the pair whose upper VMA starts at `upper`.
fn reason_for(text: &str, upper: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(upper))
        .unwrap_or_else(|| panic!("no pair with the upper VMA at {upper}:\n{text}"));
    lines[i + 1].trim().to_string()
}

#[test]
fn unmerged_neighbours_are_explained_by_the_condition_that_fails() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("pairs.trace");
    std::fs::write(&trace, PAIRS).unwrap();
    // On Linux, each of these pairs stays two VMAs: the model agrees with the kernel's maps.
    if common::kernel_usable() {
        let out = vmaspace().arg("check").arg(&trace).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        eprintln!("!!!!!!!! SKIPPED the kernel half of explain's pairs test: needs root on Linux 6.18.x !!!!!!!!");
    }
    let text = explain(&trace, &[]);
    // is_mergeable_vma(): VM_WRITE (and VM_ACCOUNT, which writable private memory carries).
    let flags = reason_for(&text, "100000001000-");
    assert!(flags.starts_with("vm_flags differ in VM_WRITE|VM_ACCOUNT"), "{flags}");
    // is_mergeable_anon_vma(): each VMA was written before they met, so each has its own.
    let anon = reason_for(&text, "100000011000-");
    assert!(anon.starts_with("anon_vma differs"), "{anon}");
    assert!(anon.contains("made at line 7: touch(0x100000010000, 4096)"), "{anon}");
    assert!(anon.contains("made at line 9: touch(0x100000020000, 4096)"), "{anon}");
    // is_mergeable_vma(): another open() is another vm_file.
    let file = reason_for(&text, "100000031000-");
    assert!(file.contains("two open file descriptions of one file"), "{file}");
    // can_vma_merge_after(): file page 3 does not follow page 0.
    let pgoff = reason_for(&text, "100000041000-");
    assert!(pgoff.contains("would need 0x1, it has 0x3"), "{pgoff}");
    // --at: before line 5 the read-only page was not there.
    let early = explain(&trace, &["--at", "4"]);
    assert!(!early.contains("100000001000-"), "{early}");
    let out = vmaspace().args(["explain", "--at", "99"]).arg(&trace).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 99 is not a call"));
    std::fs::remove_dir_all(&dir).unwrap();
}
