//! `vmaspace check`: runs traces on the model and on the live kernel and reports the first
//! divergence.

use crate::run::{Format, RunArgs, Steps, json_string, run_scenario};
use crate::scenario::{Scenario, apply_scope};
use std::path::PathBuf;
use vmaspace_oracle::{RunOptions, Snapshots};
use vmaspace_trace::maps::{compare, redact_cwd};
use vmaspace_trace::{format_call, format_outcome, print::returns_address};

/// The result of checking one trace.
#[derive(Debug)]
pub enum Verdict {
    Agree,
    /// The trace cannot be checked on this machine: why.
    Skipped(String),
    /// The first divergence, described.
    Diverge(String),
}

/// Runs one scenario on both sides and compares them.
pub fn check_one(s: &Scenario, steps: Steps) -> Result<Verdict, String> {
    let pkeys = crate::exec::machine_has_pkeys();
    if let Some(recorded) = s.trace.setup.pkeys
        && recorded != pkeys
        && s.trace.results_depend_on_pkeys()
    {
        let (had, has) = if recorded { ("had", "has none") } else { ("had none", "has them") };
        return Ok(Verdict::Skipped(format!(
            "its results depend on protection keys, which the machine it was recorded on {had}; this CPU {has}"
        )));
    }
    crate::run::check_before_kernel(s)?;
    let runnable = s.runnable();
    let snapshots = if steps == Steps::EveryCall { Snapshots::EveryCall } else { Snapshots::Checkpoints };
    let kernel = vmaspace_oracle::run(&runnable, &RunOptions { snapshots, ..RunOptions::default() })
        .map_err(|e| e.to_string())?;
    let kcwd = kernel.cwd.to_string_lossy().into_owned();
    let args = RunArgs {
        cwd: Some(kernel.cwd.clone()),
        // The model starts as the kernel's process did, whatever part of it a trace compares.
        initial_maps_text: Some(kernel.initial_maps.clone()),
        pkeys: Some(pkeys),
        ..RunArgs::default()
    };
    let model = run_scenario(s, &args, steps)?;
    let scope = s.trace.effective_scope();
    for (i, line) in runnable.lines.iter().enumerate() {
        let hex = returns_address(&line.call);
        let (k, m) = (kernel.results.get(i).copied().flatten(), model.results.get(i).copied().flatten());
        if let (Some(expected), Some(kr)) = (line.result, k)
            && expected != kr
        {
            return Ok(Verdict::Diverge(format!(
                "line {}: {}: the trace expects {} but the kernel returned {}",
                line.lineno,
                format_call(&line.call),
                format_outcome(expected, hex),
                format_outcome(kr, hex)
            )));
        }
        if k != m {
            let show = |o: Option<vmaspace_trace::Outcome>| o.map_or("nothing".to_string(), |o| format_outcome(o, hex));
            let mut msg =
                format!("line {}: {}: kernel {}, model {}", line.lineno, format_call(&line.call), show(k), show(m));
            if let Some(mm) = &model.mismatch {
                msg.push_str(&format!("\n(the model stopped: {mm})"));
            }
            return Ok(Verdict::Diverge(msg));
        }
        let kt = kernel.texts.get(i).cloned().flatten().map(|t| apply_scope(&redact_cwd(&t, &kcwd), scope));
        let mt = model.texts.get(i).cloned().flatten().map(|t| apply_scope(&redact_cwd(&t, &kcwd), scope));
        if let (Some(kt), Some(mt)) = (&kt, &mt)
            && let Some(report) = compare(kt, mt)
        {
            return Ok(Verdict::Diverge(format!(
                "line {}: {}: maps differ (- kernel, + model)\n{report}",
                line.lineno,
                format_call(&line.call)
            )));
        }
    }
    Ok(Verdict::Agree)
}

/// One trace's verdict as a JSON object (`--format json`).
fn json_verdict(path: &std::path::Path, verdict: &str, message: Option<&str>) -> String {
    format!(
        "{{\"trace\": {}, \"verdict\": \"{verdict}\", \"message\": {}}}",
        json_string(&path.display().to_string()),
        message.map_or("null".to_string(), json_string)
    )
}

/// `vmaspace check [--every-step] [--any-kernel] [--format F] TRACE...`. Returns the exit status.
pub fn main(traces: &[PathBuf], every_step: bool, any_kernel: bool, format: Format) -> i32 {
    let json = format == Format::Json;
    if let Err(e) = vmaspace_oracle::check_kernel(any_kernel) {
        eprintln!("vmaspace check: {e}");
        return 2;
    }
    if let Err(e) = vmaspace_oracle::safety::prepare() {
        eprintln!("vmaspace check: {e}");
        return 2;
    }
    let steps = if every_step { Steps::EveryCall } else { Steps::Checkpoints };
    let mut status = 0;
    let (mut agree, mut diverge, mut skipped, mut unusable) = (0, 0, 0, 0);
    for path in traces {
        let verdict = Scenario::load(path).map_err(|e| e.0).and_then(|s| check_one(&s, steps));
        crate::exit_if_interrupted();
        let line = match verdict {
            Ok(Verdict::Agree) => {
                agree += 1;
                json_verdict(path, "agree", None)
            }
            Ok(Verdict::Skipped(why)) => {
                skipped += 1;
                eprintln!("{}: SKIPPED: {why}", path.display());
                json_verdict(path, "skipped", Some(&why))
            }
            Ok(Verdict::Diverge(msg)) => {
                diverge += 1;
                eprintln!("{}: DIVERGES\n{msg}", path.display());
                status = status.max(1);
                json_verdict(path, "diverge", Some(&msg))
            }
            Err(e) => {
                unusable += 1;
                eprintln!("{}: cannot check: {e}", path.display());
                status = 2;
                json_verdict(path, "unusable", Some(&e))
            }
        };
        if json {
            println!("{line}");
        }
    }
    if json {
        println!(
            "{{\"traces\": {}, \"agree\": {agree}, \"diverge\": {diverge}, \"skipped\": {skipped}, \"unusable\": {unusable}}}",
            traces.len()
        );
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    eprintln!(
        "checked {} trace{}: {agree} agree, {diverge} diverge, {skipped} skipped, {unusable} could not be checked",
        traces.len(),
        plural(traces.len())
    );
    status
}
