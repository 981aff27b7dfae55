//! Reads a strace log and prints what the trace language makes of it (a debugging aid):
//! `cargo run -p vmaspace-trace --example import_strace -- LOG`.
fn main() {
    let path = std::env::args().nth(1).expect("a strace log");
    let text = std::fs::read_to_string(path).expect("readable");
    match vmaspace_trace::strace::import_strace(&text) {
        Ok(i) => {
            for l in &i.trace.lines {
                println!("{}", vmaspace_trace::format_line(l));
            }
            eprintln!(
                "skipped: {:?}\nunexpressible: {:?}\nexecs: {:?}\nraces: {:?}",
                i.skipped, i.unexpressible, i.execs, i.races
            );
        }
        Err(e) => eprintln!("{e}"),
    }
}
