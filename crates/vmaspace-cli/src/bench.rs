//! `vmaspace bench`: the model's cost per operation beside the live kernel's, measured in one
//! run, for several numbers of VMAs; a table with the ratios, JSON rows, and an SVG plot of cost
//! against N. The operation streams are the kernel side's (`vmaspace_oracle::bench`), done on
//! the model with the same addresses.

use std::fmt::Write as _;
use std::path::PathBuf;
use vmaspace::AddressSpace;
use vmaspace::flags::{map, mremap, prot};
use vmaspace_oracle::bench::{BASE, KernelTimes, MOVED, OPS, WORK, heap_in_use, kernel_side, median_ns};

const PAGE: u64 = 0x1000;

/// Options of `vmaspace bench`.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub vmas: Vec<u64>,
    pub format: crate::run::Format,
    pub plot: Option<PathBuf>,
    /// Rounds per N; each time reported is the lowest of the rounds' medians.
    pub rounds: usize,
    /// A recording (`vmaspace trace`) whose replay on the model is timed too.
    pub replay: Option<PathBuf>,
}

/// The measurements for one N.
#[derive(Debug, Clone)]
struct Row {
    vmas: u64,
    model: [f64; 6],
    kernel: Option<KernelTimes>,
    bytes_per_vma: f64,
}

fn anon(mm: &mut AddressSpace, addr: u64, len: u64, p: u64) {
    mm.mmap(addr, len, p, map::PRIVATE | map::ANONYMOUS | map::FIXED, -1, 0).expect("bench mapping");
}

impl Row {
    /// The lower of each time of two rounds (the memory is the first's: it does not vary).
    fn best(&self, o: &Row) -> Row {
        let kernel = match (self.kernel, o.kernel) {
            (Some(a), Some(b)) => Some(a.min(&b)),
            (a, b) => a.or(b),
        };
        Row {
            vmas: self.vmas,
            model: std::array::from_fn(|i| self.model[i].min(o.model[i])),
            kernel,
            bytes_per_vma: self.bytes_per_vma,
        }
    }
}

/// A model with the N VMAs and the work area, and the heap it took.
fn model_with(n: u64) -> (AddressSpace, usize) {
    let before = heap_in_use();
    let mut mm = AddressSpace::new();
    // The model goes past the kernel's default limit (65530) where the kernel cannot.
    mm.settings_mut().max_map_count = usize::MAX / 2;
    for i in 0..n {
        let p = if i % 2 == 0 { prot::READ | prot::WRITE } else { prot::READ };
        anon(&mut mm, BASE + i * PAGE, PAGE, p);
    }
    anon(&mut mm, WORK, 3 * PAGE, prot::READ | prot::WRITE);
    let held = heap_in_use().saturating_sub(before);
    (mm, held)
}

/// Batches sized so that one N takes a second or two whatever the cost.
fn batches(n: u64, per_vma_work: bool) -> (usize, usize) {
    if per_vma_work { (7, if n >= 100_000 { 1 } else { 3 }) } else { (51, 2000) }
}

fn model_side(n: u64) -> ([f64; 6], f64) {
    let (mut mm, held) = model_with(n);
    let rw = prot::READ | prot::WRITE;
    let (b, k) = batches(n, false);
    let pair = median_ns(b, k, || {
        let a = mm.mmap(0, PAGE, rw, map::PRIVATE | map::ANONYMOUS, -1, 0).expect("bench mmap");
        mm.munmap(a, PAGE).expect("bench munmap");
    });
    let mprotect = median_ns(b, k, || {
        mm.mprotect(WORK + PAGE, PAGE, prot::READ).expect("bench mprotect");
        mm.mprotect(WORK + PAGE, PAGE, rw).expect("bench mprotect");
    });
    let flags = mremap::MAYMOVE | mremap::FIXED;
    let mremap_move = median_ns(b, k, || {
        mm.mremap(WORK, 3 * PAGE, 3 * PAGE, flags, MOVED).expect("bench mremap");
        mm.mremap(MOVED, 3 * PAGE, 3 * PAGE, flags, WORK).expect("bench mremap");
    });
    let (b, k) = batches(n, true);
    let lines = mm.map_count().max(1) as f64;
    let maps = median_ns(b, k, || {
        std::hint::black_box(mm.maps());
    }) / lines;
    let fork = median_ns(b, k, || {
        drop(std::hint::black_box(mm.fork().expect("bench fork")));
    });
    drop(mm);
    // The N VMAs just below the mapping area's top, one-page holes between them.
    let mut frag = AddressSpace::new();
    frag.settings_mut().max_map_count = usize::MAX / 2;
    let top = frag.settings().mmap_base;
    for i in 0..n {
        anon(&mut frag, top - (2 * i + 2) * PAGE, PAGE, rw);
    }
    let placement = median_ns(21, 200, || {
        let a = frag.mmap(0, 2 * PAGE, rw, map::PRIVATE | map::ANONYMOUS, -1, 0).expect("bench mmap");
        frag.munmap(a, 2 * PAGE).expect("bench munmap");
    });
    ([pair, mprotect, mremap_move, maps, fork, placement], held as f64 / (n + 1) as f64)
}

/// How many VMAs the kernel side may make: `vm.max_map_count` less room for the process's own.
fn kernel_limit() -> u64 {
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok());
    max.unwrap_or(65530u64).saturating_sub(200)
}

fn kernel_value(k: &KernelTimes, op: usize) -> f64 {
    k.by_op()[op]
}

/// What the replay of a recording cost on the model.
struct ReplayTime {
    calls: usize,
    ns_per_call: f64,
}

/// Times the replay of a recording on the model (the best of `rounds`): each call applied in
/// order, in every process, as `vmaspace replay` does, without the comparison.
fn replay_side(path: &std::path::Path, rounds: usize) -> Result<ReplayTime, String> {
    let s = crate::scenario::Scenario::load(path).map_err(|crate::scenario::InputError(e)| e)?;
    if !crate::recording::is_recording(&s) {
        return Err(format!("{}: not a recording made by `vmaspace trace`", path.display()));
    }
    let smaps = crate::scenario::read_limited(&path.with_extension("smaps")).unwrap_or_default();
    let calls = s.trace.lines.len().max(1);
    let once = || -> Result<f64, String> {
        let (mut model, _) = crate::recording::recording_model(&s, &smaps)?;
        let t = std::time::Instant::now();
        for line in &s.trace.lines {
            std::hint::black_box(model.apply(line));
        }
        Ok(t.elapsed().as_nanos() as f64 / calls as f64)
    };
    let mut best = once()?;
    for _ in 1..rounds {
        best = best.min(once()?);
    }
    Ok(ReplayTime { calls, ns_per_call: best })
}

/// `vmaspace bench`. Returns the exit status.
pub fn main(args: &BenchArgs) -> i32 {
    let kernel_ok = vmaspace_oracle::check_kernel(false).is_ok();
    if !kernel_ok {
        eprintln!("vmaspace bench: not Linux 6.18.x: the kernel side is left out");
    }
    let json = args.format == crate::run::Format::Json;
    if !json {
        println!("| VMAs | op | model ns | kernel ns | kernel/model |");
        println!("|---|---|---|---|---|");
    }
    // Rounds go over every N in turn, so that a slow moment of the machine falls on one
    // round of several N rather than on every round of one.
    let rounds = args.rounds.max(1);
    let mut rows: Vec<Row> = Vec::new();
    for round in 0..rounds {
        for (i, &n) in args.vmas.iter().enumerate() {
            // The kernel side runs first, in a child, before the model's memory grows.
            let kernel = if kernel_ok && n <= kernel_limit() {
                kernel_side(n).map_err(|e| eprintln!("vmaspace bench: {n} VMAs: {e}")).ok()
            } else {
                None
            };
            let (model, bytes_per_vma) = model_side(n);
            let row = Row { vmas: n, model, kernel, bytes_per_vma };
            if round == 0 {
                rows.push(row);
            } else {
                rows[i] = rows[i].best(&row);
            }
        }
    }
    for row in &rows {
        print_row(row, json);
    }
    if let Some(path) = &args.replay {
        match replay_side(path, args.rounds.max(1)) {
            Ok(r) => print_replay(path, &r, json),
            Err(e) => {
                eprintln!("vmaspace bench: {e}");
                return 2;
            }
        }
    }
    if let Some(path) = &args.plot
        && let Err(e) = std::fs::write(path, plot(&rows))
    {
        eprintln!("vmaspace bench: cannot write {}: {e}", path.display());
        return 2;
    }
    0
}

fn print_row(row: &Row, json: bool) {
    let n = row.vmas;
    for (i, op) in OPS.iter().enumerate() {
        let m = row.model[i];
        let k = row.kernel.map(|k| kernel_value(&k, i));
        if json {
            let kernel = k.map_or("null".to_string(), |k| format!("{k:.1}"));
            println!("{{\"vmas\": {n}, \"op\": \"{op}\", \"model_ns\": {m:.1}, \"kernel_ns\": {kernel}}}");
        } else {
            let (kt, ratio) = match k {
                Some(k) => (format!("{k:.0}"), format!("{:.2}x", k / m)),
                None => (String::new(), String::new()),
            };
            println!("| {n} | {op} | {m:.0} | {kt} | {ratio} |");
        }
    }
    if json {
        println!("{{\"vmas\": {n}, \"op\": \"bytes_per_vma\", \"model_bytes\": {:.1}}}", row.bytes_per_vma);
    } else {
        println!("| {n} | bytes_per_vma | {:.0} | | |", row.bytes_per_vma);
    }
}

fn print_replay(path: &std::path::Path, r: &ReplayTime, json: bool) {
    let name = path.display().to_string();
    if json {
        let name = crate::run::json_string(&name);
        println!(
            "{{\"op\": \"replay\", \"trace\": {name}, \"calls\": {}, \"model_ns\": {:.1}, \"kernel_ns\": null}}",
            r.calls, r.ns_per_call
        );
    } else {
        println!("| {} calls | replay of {name}, per call | {:.0} | | |", r.calls, r.ns_per_call);
    }
}

/// An SVG plot of cost against N, both on log scales: one line per operation and side (the
/// kernel's dashed).
fn plot(rows: &[Row]) -> String {
    const COLOURS: [&str; 6] = ["#4e79a7", "#e15759", "#76b7b2", "#59a14f", "#b07aa1", "#f28e2b"];
    let (w, h, left, right, top, bottom) = (760.0, 440.0, 70.0, 200.0, 30.0, 50.0);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for r in rows {
        for i in 0..OPS.len() {
            points.push((r.vmas as f64, r.model[i]));
            if let Some(k) = r.kernel {
                points.push((r.vmas as f64, kernel_value(&k, i)));
            }
        }
    }
    let lg = |v: f64| v.max(1e-3).log10();
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(lg(p.0)), b.max(lg(p.0))));
    let (y0, y1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(lg(p.1)), b.max(lg(p.1))));
    let (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let px = |v: f64| left + (lg(v) - x0) / (x1 - x0) * (w - left - right);
    let py = |v: f64| h - bottom - (lg(v) - y0) / (y1 - y0) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\n\
         <text x=\"{left}\" y=\"18\" font-size=\"14\">vmaspace bench: ns per operation against VMAs (log scales; \
         dashed: the kernel)</text>\n"
    );
    for e in x0 as i32..=x1 as i32 {
        let x = px(10f64.powi(e));
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{}\" \
             text-anchor=\"middle\">1e{e}</text>",
            h - bottom,
            h - bottom + 18.0
        );
    }
    for e in y0 as i32..=y1 as i32 {
        let y = py(10f64.powi(e));
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" \
             text-anchor=\"end\">1e{e} ns</text>",
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    let _ =
        writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">VMAs</text>", (left + w - right) / 2.0, h - 10.0);
    for (i, op) in OPS.iter().enumerate() {
        let c = COLOURS[i];
        let model: Vec<String> =
            rows.iter().map(|r| format!("{:.1},{:.1}", px(r.vmas as f64), py(r.model[i]))).collect();
        let kernel: Vec<String> = rows
            .iter()
            .filter_map(|r| r.kernel.map(|k| format!("{:.1},{:.1}", px(r.vmas as f64), py(kernel_value(&k, i)))))
            .collect();
        let _ =
            writeln!(s, "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>", model.join(" "));
        if kernel.len() > 1 {
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\"{}\"/>",
                kernel.join(" ")
            );
        }
        for p in model.iter().chain(&kernel) {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{c}\"/>");
        }
        let ly = top + 20.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"3\"/><text x=\"{}\" \
             y=\"{}\">{op}</text>",
            w - right + 10.0,
            w - right + 34.0,
            w - right + 40.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}
