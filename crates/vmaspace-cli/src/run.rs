//! `vmaspace run`: runs a trace on the model.

use crate::exec::{Model, ModelOptions, check_runnable};
use crate::scenario::Scenario;
use std::io::Write;
use std::path::{Path, PathBuf};
use vmaspace_trace::{Call, Outcome, Scope, format_call, format_outcome, print::returns_address};

/// Options of `vmaspace run`.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    pub window: Option<(u64, u64)>,
    pub initial_maps: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub brk: Option<u64>,
    /// An initial maps snapshot given as text (used by `check`, which takes it from the kernel).
    pub initial_maps_text: Option<String>,
    /// Extra mounts for the model (`--mount DIR=FSTYPE`).
    pub mounts: Vec<crate::exec::ModelMount>,
    /// Protection keys on or off; None: as the trace's `# pkeys:` header says, else as on this
    /// machine.
    pub pkeys: Option<bool>,
    /// Start from an empty address space instead of the process `check` runs traces in.
    pub empty: bool,
    /// The trace will run on the kernel too (see `ModelOptions::kernel_limits`).
    pub kernel_limits: bool,
}

/// The layout of the process the kernel side runs traces in (the executor, with ASLR off, on
/// Linux 6.18 x86_64), which `run` starts from by default so that its placements are the
/// kernel's. `tests/scenarios.rs` checks it against a fresh kernel run.
pub const EXECUTOR_LAYOUT: &str = include_str!("executor-layout.maps");

/// What the model did with a trace, line by line (the model's counterpart of
/// `vmaspace_oracle::KernelRun`).
#[derive(Debug)]
pub struct ModelRun {
    pub results: Vec<Option<Outcome>>,
    /// Checkpoint text per line, or with `every_step` the maps text after every call.
    pub texts: Vec<Option<String>>,
    /// The first result that differed from the trace's expectation: a message.
    pub mismatch: Option<String>,
    /// The working directory the model ran in.
    pub cwd: String,
}

/// Whether to capture the maps text after every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    Checkpoints,
    EveryCall,
}

/// The model's mounts for a scenario run in `cwd`: `extra` and the trace's `# mount:` headers.
fn trace_mounts(s: &Scenario, cwd: &str, extra: &[crate::exec::ModelMount]) -> Vec<crate::exec::ModelMount> {
    let mut mounts = extra.to_vec();
    for spec in &s.trace.setup.mounts {
        let abs = vmaspace_trace::MountSpec { dir: format!("{cwd}/{}", spec.dir), fs: spec.fs };
        mounts.push(crate::exec::model_mount(&abs));
    }
    mounts
}

/// Refuses, before the kernel side runs, a scenario the model could not run in the kernel
/// side's working directory (both sides then stay on files the model has), or one whose calls
/// go past the model's page budget ([`vmaspace::pages`]): the model walks the pages the kernel
/// would walk, so a call it refuses would make the kernel do unbounded work (a guard install
/// over a TiB range allocates gigabytes of page tables in one uninterruptible walk).
pub fn check_before_kernel(s: &Scenario) -> Result<(), String> {
    if s.strace.is_some() {
        return Err("a strace log is already a record of the kernel: run it on the model with `vmaspace run`".into());
    }
    let mounts = trace_mounts(s, vmaspace_oracle::jail::CWD, &[]);
    check_runnable(&s.trace, &mounts, Some(&s.text)).map_err(|e| e.to_string())?;
    // The model's own run, from the recorded initial maps or an empty space: where it starts
    // changes little of the page work.
    let initial = if s.is_whole_space() { read(&s.initial_maps_path()).unwrap_or_default() } else { String::new() };
    let args = RunArgs {
        cwd: Some(vmaspace_oracle::jail::CWD.into()),
        initial_maps_text: s.is_whole_space().then_some(initial),
        kernel_limits: true,
        ..RunArgs::default()
    };
    run_scenario(s, &args, Steps::Checkpoints).map(|_| ())
}

/// Runs a scenario on the model, stopping at the first result that differs from the trace.
/// Checkpoint text is scoped as `args.window` or the trace header says (the default window
/// otherwise, as `check` and `record` compare it).
pub fn run_scenario(s: &Scenario, args: &RunArgs, steps: Steps) -> Result<ModelRun, String> {
    let (mut model, scope, cwd) = start_model(s, args)?;
    let runnable = s.runnable();
    let mut run = ModelRun { results: Vec::new(), texts: Vec::new(), mismatch: None, cwd };
    for line in &runnable.lines {
        if line.call.is_checkpoint() {
            validated(&model, line)?;
            run.results.push(None);
            run.texts.push(Some(model.checkpoint(line, scope)));
            continue;
        }
        let got = apply_checked(&mut model, line)?;
        run.results.push(Some(got));
        run.texts.push((steps == Steps::EveryCall).then(|| model.checkpoint(&maps_of(line), scope)));
        if let Some(expected) = line.result
            && expected != got
        {
            let hex = returns_address(&line.call);
            run.mismatch = Some(format!(
                "line {}: {}: expected {}, got {}",
                line.lineno,
                format_call(&line.call),
                format_outcome(expected, hex),
                format_outcome(got, hex)
            ));
            break;
        }
    }
    Ok(run)
}

/// Runs one call on the model; an error when it went past the model's page budget.
pub fn apply_checked(model: &mut Model, line: &vmaspace_trace::Line) -> Result<Outcome, String> {
    let got = model.apply(line).unwrap_or(Outcome::NoReturn);
    if let Some(why) = model.limit_exceeded() {
        return Err(format!("line {}: {}: refused: {why}", line.lineno, format_call(&line.call)));
    }
    // Checked after every call in debug builds (the tests); in release builds at checkpoints,
    // so that a long trace does not pay a walk of every VMA and page run per call.
    if cfg!(debug_assertions) {
        validated(model, line)?;
    }
    Ok(got)
}

/// Checks the model's invariants at `line`: a broken one is a bug of the model's, said as such
/// rather than gone on from.
fn validated(model: &Model, line: &vmaspace_trace::Line) -> Result<(), String> {
    model.validate().map_err(|e| {
        format!("line {}: {}: the model's state is inconsistent (a bug): {e}", line.lineno, format_call(&line.call))
    })
}

/// The model a scenario starts from under `args` (the process `check` runs traces in by
/// default), the scope its checkpoints print, and its working directory.
pub fn start_model(s: &Scenario, args: &RunArgs) -> Result<(Model, Option<Scope>, String), String> {
    let scope = args.window.map(|(start, end)| Scope::Window { start, end }).or(Some(s.trace.effective_scope()));
    // A recording of a real program starts from its own image and files.
    if crate::recording::is_recording(s) {
        let smaps = crate::scenario::read_limited(&s.path.with_extension("smaps")).unwrap_or_default();
        let (model, cwd) = crate::recording::recording_model(s, &smaps)?;
        return Ok((model, scope, cwd));
    }
    let initial_maps = match (&args.initial_maps_text, &args.initial_maps, s.is_whole_space()) {
        (Some(t), _, _) => Some(t.clone()),
        (None, Some(p), _) => Some(read(p)?),
        (None, None, true) => Some(read(&s.initial_maps_path())?),
        // By default the process `check` runs traces in: the executor's layout on this kernel.
        (None, None, false) if !args.empty && args.brk.is_none() => Some(EXECUTOR_LAYOUT.to_string()),
        (None, None, false) => None,
    };
    let cwd = match &args.cwd {
        Some(c) => std::path::absolute(c).map_err(|e| e.to_string())?.to_string_lossy().into_owned(),
        None => fresh_cwd(),
    };
    let mounts = trace_mounts(s, &cwd, &args.mounts);
    let pkeys = args.pkeys.or(s.trace.setup.pkeys);
    let hugepages = s.trace.setup.hugepages;
    check_runnable(&s.trace, &mounts, Some(&s.text)).map_err(|e| e.to_string())?;
    let opts = ModelOptions {
        cwd,
        initial_maps,
        brk: args.brk,
        mounts,
        pkeys,
        hugepages,
        outside_files: Vec::new(),
        directories: Vec::new(),
        // A strace log shows no page fault, let alone a read of a present page.
        hidden_accesses: s.strace.is_some(),
        kernel_limits: args.kernel_limits,
    };
    let mut model = Model::new(&opts)?;
    model.fork_labels = s.trace.fork_labels().into();
    Ok((model, scope, opts.cwd))
}

/// A `maps()` checkpoint of the process a line runs in.
fn maps_of(line: &vmaspace_trace::Line) -> vmaspace_trace::Line {
    vmaspace_trace::Line { call: Call::Maps, result: None, ..line.clone() }
}

fn read(p: &Path) -> Result<String, String> {
    crate::scenario::read_limited(p)
}

/// A working directory name for the model that no other run uses. The model never touches the
/// disk, so it is not created.
fn fresh_cwd() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}/vmaspace-{}-{nanos}", std::env::temp_dir().display(), std::process::id())
}

/// How `run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Calls as strace prints them, checkpoints under a label.
    Text,
    /// One JSON object a line.
    Json,
}

/// `run`'s output options.
#[derive(Debug, Clone)]
pub struct Output {
    pub quiet: bool,
    pub format: Format,
    pub expect: Option<PathBuf>,
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            // `<` escaped keeps the text safe inside an HTML <script> element (`render`).
            '<' => out.push_str("\\u003c"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A result as strace prints it, with the errno's description.
pub fn result_text(call: &Call, o: Outcome) -> String {
    let text = format_outcome(o, returns_address(call));
    match o {
        Outcome::Error(n) => match vmaspace::Errno::from_number(i32::from(n)) {
            Some(e) => format!("{text} ({})", e.text()),
            None => text,
        },
        _ => text,
    }
}

/// Prints what the model did, line by line.
fn print_run(s: &Scenario, out: &ModelRun, o: &Output) {
    let mut stdout = std::io::stdout().lock();
    let lines = s.runnable().lines;
    for (i, line) in lines.iter().enumerate().take(out.results.len().max(out.texts.len())) {
        let pid = line.pid.map_or("null".to_string(), |p| p.to_string());
        let text = out.texts.get(i).cloned().flatten();
        let result = out.results.get(i).copied().flatten();
        let shown = match (o.format, &text, result) {
            (Format::Json, Some(t), _) => {
                format!(
                    "{{\"line\": {}, \"pid\": {pid}, \"checkpoint\": {}, \"text\": {}}}\n",
                    line.lineno,
                    json_string(line.call.name()),
                    json_string(t)
                )
            }
            (Format::Json, None, Some(r)) if !o.quiet => format!(
                "{{\"line\": {}, \"pid\": {pid}, \"call\": {}, \"result\": {}}}\n",
                line.lineno,
                json_string(&format_call(&line.call)),
                json_string(&result_text(&line.call, r))
            ),
            (Format::Text, Some(t), _) if o.quiet => t.clone(),
            (Format::Text, Some(t), _) => {
                let who = line.pid.map_or(String::new(), |p| format!(" [pid {p}]"));
                format!("--- {}() at line {}{who} ---\n{t}", line.call.name(), line.lineno)
            }
            (Format::Text, None, Some(r)) if !o.quiet => {
                let who = line.pid.map_or(String::new(), |p| format!("[pid {p}] "));
                format!("{who}{} = {}\n", format_call(&line.call), result_text(&line.call, r))
            }
            _ => String::new(),
        };
        let _ = stdout.write_all(shown.as_bytes());
    }
    let _ = stdout.flush();
}

/// `vmaspace run TRACE`. Returns the exit status.
/// `vmaspace run TRACES...`: each trace in turn, under a `==> NAME <==` line when there are
/// several; the exit status is the worst.
pub fn main_all(traces: &[std::path::PathBuf], args: &RunArgs, output: &Output) -> i32 {
    if traces.len() > 1 && output.expect.is_some() {
        eprintln!("vmaspace run: --expect compares one trace's output; give one trace");
        return 2;
    }
    let mut status = 0;
    for (i, t) in traces.iter().enumerate() {
        if traces.len() > 1 {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            println!("{}==> {} <==", if i > 0 { "\n" } else { "" }, t.display());
        }
        status = status.max(main(t, args, output));
    }
    status
}

pub fn main(trace: &Path, args: &RunArgs, output: &Output) -> i32 {
    let s = match crate::scenario::load_for("run", trace) {
        Ok(s) => s,
        Err(status) => return status,
    };
    match crate::scenario::strace_report(&s, args.initial_maps.is_some()) {
        Ok(r) if r.is_empty() => {}
        Ok(r) => eprintln!("{r}"),
        Err(r) => {
            eprintln!("{r}");
            return 2;
        }
    }
    match run_scenario(&s, args, Steps::Checkpoints) {
        Err(e) => {
            eprintln!("vmaspace run: {}: {e}", trace.display());
            2
        }
        Ok(out) => {
            print_run(&s, &out, output);
            if let Some(msg) = &out.mismatch {
                eprintln!("{}: {msg}", trace.display());
                return 1;
            }
            if let Some(expect) = &output.expect {
                let want = match read(expect) {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("vmaspace run: --expect {e}");
                        return 2;
                    }
                };
                let cwd = out.cwd.clone();
                let got: String = out.texts.iter().flatten().map(|t| t.replace(&cwd, "@CWD@")).collect();
                let scope =
                    args.window.map(|(start, end)| Scope::Window { start, end }).or(Some(s.trace.effective_scope()));
                let scope = scope.unwrap_or(vmaspace_trace::DEFAULT_WINDOW);
                let (w, g) = (crate::scenario::apply_scope(&want, scope), crate::scenario::apply_scope(&got, scope));
                if let Some(report) = vmaspace_trace::maps::compare(&w, &g) {
                    eprintln!(
                        "{}: the checkpoints differ from {} (- expected, + model)\n{report}",
                        trace.display(),
                        expect.display()
                    );
                    return 1;
                }
                eprintln!("{}: the checkpoints agree with {}", trace.display(), expect.display());
            }
            0
        }
    }
}
