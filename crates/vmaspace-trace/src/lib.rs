//! The vmaspace trace format (see `docs/trace-format.md` of the workspace).
//!
//! A trace is strace's own output syntax plus three calls only a trace has (`touch`, `peek`,
//! `maps`/`smaps`). This crate parses it into typed [`Call`]s, prints them back
//! (parse → print → parse is the identity), and reads and compares maps text.
#![forbid(unsafe_code)]

pub mod call;
pub mod consts;
pub mod maps;
pub mod parse;
pub mod print;
pub mod setup;
pub mod strace;

pub use call::{Call, DEFAULT_WINDOW, Line, Outcome, Scope, Signal, Trace};
pub use parse::{ParseError, parse_line, parse_trace, parse_window};
pub use print::{format_call, format_line, format_outcome};
pub use setup::{HugePagePools, MountFs, MountSpec, Setup};
