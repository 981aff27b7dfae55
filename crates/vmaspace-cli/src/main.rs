//! `vmaspace`: run memory-mapping traces on the model, and record and check them against the
//! live kernel.
#![forbid(unsafe_code)]

mod bench;
mod check;
mod exec;
mod explain;
mod fuzz;
mod record;
mod recording;
mod render;
mod rng;
mod run;
mod scenario;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "vmaspace",
    version,
    about = "Linux 6.18's memory-mapping subsystem, as a model you can run and check"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run traces on the model.
    ///
    /// Every call with the model's result and every checkpoint's text go to standard output,
    /// the first result that differs from the trace to standard error (exit 1). The model
    /// starts as the process `check` runs traces in. With several traces, each one's output
    /// comes under a `==> NAME <==` line, and the exit status is the worst of them.
    Run {
        /// The traces (or strace logs); `-` reads standard input.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// Print only the VMAs that intersect START-END (hex).
        #[arg(long, value_parser = parse_window)]
        window: Option<(u64, u64)>,
        /// Start from this /proc/PID/maps snapshot instead of the kernel side's process.
        #[arg(long)]
        initial_maps: Option<PathBuf>,
        /// Start from an empty address space instead of the kernel side's process.
        #[arg(long)]
        empty: bool,
        /// Print only the checkpoints' text.
        #[arg(long, short)]
        quiet: bool,
        /// Output as text (strace's spelling) or JSON (one object a line: calls with `line`,
        /// `pid`, `call` and `result`; checkpoints with `line`, `pid`, `checkpoint` and `text`).
        #[arg(long, value_enum, default_value_t = run::Format::Text)]
        format: run::Format,
        /// Compare the checkpoints' text with this file (a recorded NAME.expected; `@CWD@`
        /// stands for the working directory) and exit 1 if they differ: a check against the
        /// kernel's recording on a machine without Linux 6.18.
        #[arg(long)]
        expect: Option<PathBuf>,
        /// The working directory relative paths resolve against (default: a fresh name).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// The program break of an address space without a program image (hex).
        #[arg(long, value_parser = parse_hex)]
        brk: Option<u64>,
        /// Mount a file system for the model: DIR=tmpfs, DIR=ext4, DIR=hugetlbfs or
        /// DIR=overlay, DIR absolute (repeatable; /dev/shm is tmpfs already).
        #[arg(long, value_parser = parse_mount)]
        mount: Vec<crate::exec::ModelMount>,
    },
    /// Explain a trace's address space: why each mapping landed where it did, and why adjacent
    /// VMAs did not merge.
    ///
    /// Runs the trace on the model (starting as `run` does) and prints, for every call that
    /// chose an address, the placement code's decisions (allocator, hint, THP alignment, the
    /// gap searched and taken, stack guard gaps), then for every pair of adjacent VMAs the
    /// first of Linux's merge conditions that keeps them apart, in Linux's terms.
    Explain {
        /// The trace.
        trace: PathBuf,
        /// Stop after this line of the trace (default: run it all).
        #[arg(long)]
        at: Option<usize>,
        /// Start from this /proc/PID/maps snapshot instead of the kernel side's process.
        #[arg(long)]
        initial_maps: Option<PathBuf>,
        /// Start from an empty address space instead of the kernel side's process.
        #[arg(long)]
        empty: bool,
    },
    /// Draw a trace's address space as one self-contained HTML page.
    ///
    /// The page shows every process's VMAs after every call as bands (colour by kind, shade by
    /// permissions) on an axis where a 4 KiB VMA and a 128 TiB gap are both visible, with a
    /// step control over the calls; the VMAs a call made, split, merged, changed or unmapped
    /// are outlined, and hovering a VMA shows its maps and smaps lines. No network access.
    Render {
        /// The trace.
        trace: PathBuf,
        /// The HTML file to write.
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Start from this /proc/PID/maps snapshot instead of the kernel side's process.
        #[arg(long)]
        initial_maps: Option<PathBuf>,
        /// Start from an empty address space instead of the kernel side's process.
        #[arg(long)]
        empty: bool,
    },
    /// Run traces on the model and on the live kernel and report the first divergence.
    Check {
        /// Compare the maps after every call, not only at checkpoints.
        #[arg(long)]
        every_step: bool,
        /// Accept a kernel other than 6.18.x.
        #[arg(long)]
        any_kernel: bool,
        /// Text (on stderr), or also one JSON object a trace on stdout (`trace`, `verdict`:
        /// agree, diverge, skipped or unusable, `message`), then one with the totals.
        #[arg(long, value_enum, default_value_t = run::Format::Text)]
        format: run::Format,
        /// The traces (NAME.trace; NAME.expected and NAME.initial-maps beside them).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
    },
    /// Fuzz: random traces on the model and the kernel, compared after every call.
    ///
    /// Every divergence is shrunk to a minimal trace and written to --out as it is found.
    Fuzz {
        /// The seed of the random generator (each case's seed derives from it).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many traces to generate.
        #[arg(long, default_value_t = 1000)]
        cases: usize,
        /// Calls per case.
        #[arg(long, default_value_t = 50)]
        ops: usize,
        /// Cases run at once.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Where shrunk divergent traces are written.
        #[arg(long, default_value = "fuzz-out")]
        out: PathBuf,
        /// Also write every generated case to --out (with its initial maps, runnable as it is).
        #[arg(long)]
        keep: bool,
        /// Run only shard I of N (1 <= I <= N): the cases whose number is I-1 modulo N, so that
        /// N machines split a campaign without overlap.
        #[arg(long, value_parser = parse_shard, default_value = "1/1")]
        shard: (usize, usize),
        /// Accept a kernel other than 6.18.x.
        #[arg(long)]
        any_kernel: bool,
        /// Text, or JSON on stdout: one object a divergence found (`case`, `calls`,
        /// `shrunk_from`, `file`, `message`), then one with the totals (`cases`, `calls`,
        /// `divergences`, `seed`, `out`). Progress stays on stderr.
        #[arg(long, value_enum, default_value_t = run::Format::Text)]
        format: run::Format,
    },
    /// Record a real program on the live kernel.
    ///
    /// Every call that changes or depends on the address space or the descriptors, the maps
    /// after each memory call, the inferred page faults, and smaps at exit go to NAME.trace,
    /// NAME.expected and NAME.smaps. Exits with the program's status.
    Trace {
        /// The recording's name (default: the program's).
        #[arg(short = 'o', long)]
        out: Option<PathBuf>,
        /// Keep address-space randomisation on (off by default, as the model assumes).
        #[arg(long)]
        aslr: bool,
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Measure the model beside the live kernel: ns per operation for several numbers of VMAs.
    ///
    /// For each N, N non-mergeable one-page VMAs are made on the model and, in a child process,
    /// as real mappings; then an mmap+munmap pair, an mprotect split+merge pair, maps text per
    /// line, a fork, and a hint-less placement past N one-page holes are timed on both sides
    /// (medians of batches), with the model's heap per VMA. The kernel side runs only where N
    /// fits within vm.max_map_count, and only on Linux 6.18.
    Bench {
        /// The numbers of VMAs, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,10000,60000,1000000")]
        vmas: Vec<u64>,
        /// A Markdown table with the ratios, or JSON: one object a row, `{"vmas", "op",
        /// "model_ns", "kernel_ns"}` (kernel_ns null where the kernel side did not run), and
        /// `{"vmas", "op": "bytes_per_vma", "model_bytes"}` per N.
        #[arg(long, value_enum, default_value_t = run::Format::Text)]
        format: run::Format,
        /// Also write an SVG plot of cost against N (model and kernel) to this file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Measure every N this many times, a round over all of them at a time; each time
        /// reported is the lowest of the rounds' medians, on both sides (this machine kind's
        /// speed drifts by a third from one moment to the next).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Also time the replay of this recording (`vmaspace trace`) on the model, per call.
        #[arg(long)]
        replay: Option<PathBuf>,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `vmaspace man > vmaspace.1`.
    Man,
    /// Run a recording (`vmaspace trace`) on the model, comparing call by call.
    ///
    /// Reports the first call whose result or maps differ from the kernel's, or
    /// `N calls in M processes: all agree`.
    Replay {
        /// The recording's name (NAME.trace and NAME.expected).
        name: PathBuf,
    },
    /// Run traces on the live kernel and write what it did into the scenario files.
    ///
    /// The results go into the trace, the checkpoint text into NAME.expected and, for
    /// `# whole-space` traces, the initial maps into NAME.initial-maps.
    Record {
        /// Re-run and report any difference from what is recorded, without writing.
        #[arg(long)]
        check: bool,
        /// Accept a kernel other than 6.18.x.
        #[arg(long)]
        any_kernel: bool,
        /// The traces (NAME.trace; NAME.expected and NAME.initial-maps beside them).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let status = match cli.command {
        Cmd::Run { traces, window, initial_maps, empty, quiet, format, expect, cwd, brk, mount } => run::main_all(
            &traces,
            &run::RunArgs {
                window,
                initial_maps,
                cwd,
                brk,
                initial_maps_text: None,
                mounts: mount,
                pkeys: None,
                empty,
                // `run` is the model alone: no kernel to protect.
                kernel_limits: false,
            },
            &run::Output { quiet, format, expect },
        ),
        Cmd::Explain { trace, at, initial_maps, empty } => {
            explain::main(&trace, at, &run::RunArgs { initial_maps, empty, ..run::RunArgs::default() })
        }
        Cmd::Render { trace, out, initial_maps, empty } => {
            render::main(&trace, &out, &run::RunArgs { initial_maps, empty, ..run::RunArgs::default() })
        }
        Cmd::Check { every_step, any_kernel, format, traces } => check::main(&traces, every_step, any_kernel, format),
        Cmd::Fuzz { seed, cases, ops, jobs, out, keep, shard, any_kernel, format } => {
            fuzz::main(&fuzz::FuzzArgs { seed, cases, ops, jobs, out, keep, shard, format }, any_kernel)
        }
        Cmd::Record { check, any_kernel, traces } => record::main(&traces, check, any_kernel),
        Cmd::Trace { out, aslr, command } => recording::trace_main(out, aslr, &command),
        Cmd::Replay { name } => recording::replay_main(&name),
        Cmd::Bench { vmas, format, plot, rounds, replay } => {
            bench::main(&bench::BenchArgs { vmas, format, plot, rounds, replay })
        }
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "vmaspace", &mut std::io::stdout());
            0
        }
        Cmd::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("vmaspace man: {e}");
                    2
                }
            }
        }
    };
    std::process::exit(status);
}

/// Exits with 128 + the signal if SIGINT, SIGTERM or SIGHUP came (once the runs in progress
/// have returned, and so undone what they changed).
pub(crate) fn exit_if_interrupted() {
    if let Some(sig) = vmaspace_oracle::safety::interrupted() {
        eprintln!("vmaspace: interrupted by signal {sig}; what the run changed on the machine is restored");
        std::process::exit(128 + sig);
    }
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}` is not I/N"))?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| format!("`{i}` is not a number"))?,
        n.trim().parse().map_err(|_| format!("`{n}` is not a number"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("shard {i}/{n}: I must be between 1 and N"));
    }
    Ok((i, n))
}

fn parse_window(s: &str) -> Result<(u64, u64), String> {
    vmaspace_trace::parse_window(s)
}

fn parse_hex(s: &str) -> Result<u64, String> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(h, 16).map_err(|_| format!("`{s}` is not a hex address"))
}

fn parse_mount(s: &str) -> Result<crate::exec::ModelMount, String> {
    let spec = vmaspace_trace::MountSpec::parse(s)?;
    if !spec.dir.starts_with('/') {
        return Err(format!("mount point `{}` is not an absolute path", spec.dir));
    }
    Ok(exec::model_mount(&spec))
}
