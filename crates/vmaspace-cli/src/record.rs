//! `vmaspace record`: runs traces on the live kernel and writes the kernel's results and
//! checkpoint text into the scenario files.

use crate::scenario::{InputError, Scenario, apply_scope, rewrite_results, set_header};
use std::fs;
use std::path::PathBuf;
use vmaspace_oracle::{KernelRun, RunOptions};
use vmaspace_trace::maps::redact_cwd;

/// The expected files of a scenario as the kernel produces them.
pub struct Recording {
    pub trace_text: String,
    pub expected: String,
    pub initial_maps: Option<String>,
}

/// Runs a scenario on the kernel and renders what `record` writes.
pub fn record_one(s: &Scenario) -> Result<Recording, String> {
    crate::run::check_before_kernel(s)?;
    let runnable = s.runnable();
    let run = vmaspace_oracle::run(&runnable, &RunOptions::default()).map_err(|e| e.to_string())?;
    Ok(render(s, &run))
}

pub fn render(s: &Scenario, run: &KernelRun) -> Recording {
    let cwd = run.cwd.to_string_lossy().into_owned();
    let scope = s.trace.effective_scope();
    let expected: String = run.texts.iter().flatten().map(|t| apply_scope(&redact_cwd(t, &cwd), scope)).collect();
    let results: Vec<_> = run.results.iter().take(s.trace.lines.len()).copied().collect();
    let mut trace_text = rewrite_results(&s.text, &s.trace, &results);
    if s.trace.depends_on_pkeys() {
        let value = if crate::exec::machine_has_pkeys() { "on" } else { "off" };
        trace_text = set_header(&trace_text, "pkeys", value);
    }
    Recording { trace_text, expected, initial_maps: s.is_whole_space().then(|| redact_cwd(&run.initial_maps, &cwd)) }
}

/// `vmaspace record [--check] TRACE...`. Returns the exit status.
pub fn main(traces: &[PathBuf], check: bool, any_kernel: bool) -> i32 {
    if let Err(e) = vmaspace_oracle::check_kernel(any_kernel) {
        eprintln!("vmaspace record: {e}");
        return 2;
    }
    if let Err(e) = vmaspace_oracle::safety::prepare() {
        eprintln!("vmaspace record: {e}");
        return 2;
    }
    let mut status = 0;
    for path in traces {
        let outcome = Scenario::load(path).map_err(|InputError(e)| (2, e)).and_then(|s| {
            let rec = record_one(&s).map_err(|e| (2, format!("{}: {e}", path.display())));
            crate::exit_if_interrupted();
            let rec = rec?;
            if check { compare(&s, &rec).map_err(|e| (1, e)) } else { write(&s, &rec).map_err(|e| (2, e)) }
        });
        if let Err((code, msg)) = outcome {
            eprintln!("vmaspace record: {msg}");
            status = status.max(code);
        }
    }
    status
}

fn write(s: &Scenario, rec: &Recording) -> Result<(), String> {
    let w = |p: PathBuf, text: &str| fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()));
    w(s.path.clone(), &rec.trace_text)?;
    w(s.expected_path(), &rec.expected)?;
    if let Some(init) = &rec.initial_maps {
        w(s.initial_maps_path(), init)?;
    }
    eprintln!("recorded {}", s.path.display());
    if rec.expected.is_empty() {
        // Easy to miss: addresses outside the default window give an empty expected file, which
        // every model then "agrees" with.
        eprintln!(
            "vmaspace record: warning: {}: no VMA of any checkpoint lies in the trace's window \
             (`# window:` header, default 0x0ff000000000-0x101000000000); the expected file is empty",
            s.path.display()
        );
    }
    Ok(())
}

fn compare(s: &Scenario, rec: &Recording) -> Result<(), String> {
    let name = s.path.display();
    if rec.trace_text != s.text {
        let diff = vmaspace_trace::maps::unified_diff(&s.text, &rec.trace_text);
        return Err(format!("{name}: the kernel's results differ from the recorded ones:\n{diff}"));
    }
    let old = crate::scenario::read_limited(&s.expected_path()).unwrap_or_default();
    if let Some(report) = vmaspace_trace::maps::compare(&old, &rec.expected) {
        return Err(format!(
            "{name}: the kernel's checkpoint text differs from {}:\n{report}",
            s.expected_path().display()
        ));
    }
    eprintln!("{name}: unchanged");
    Ok(())
}
