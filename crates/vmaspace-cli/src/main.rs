//! `vmaspace`: run memory-mapping traces on the model, and record and check them against the
//! live kernel.
#![forbid(unsafe_code)]

mod record;
mod scenario;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "vmaspace", version, about = "Linux 6.18's memory-mapping subsystem, as a model you can run and check")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run traces on the live kernel and write its results, checkpoint text and initial maps
    /// into the scenario files.
    Record {
        /// Re-run and report any difference from what is recorded, without writing.
        #[arg(long)]
        check: bool,
        /// Accept a kernel other than 6.18.x.
        #[arg(long)]
        any_kernel: bool,
        #[arg(required = true)]
        traces: Vec<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    let status = match cli.command {
        Cmd::Record { check, any_kernel, traces } => record::main(&traces, check, any_kernel),
    };
    std::process::exit(status);
}
