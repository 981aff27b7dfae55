//! `vmaspace trace -o NAME -- PROG ARGS...` (record a real program on the live kernel) and
//! `vmaspace replay NAME` (run the recording on the model and compare call by call).
//!
//! A recording is three files:
//! * `NAME.trace`: a trace (docs/trace-format.md) with a header naming the program, its working
//!   directory and the files it opened that existed before (`# file: PATH real=PATH size=N
//!   dev=MAJ:MIN ino=N`), then every call that changes or depends on the address space or the
//!   descriptor table with the kernel's result: `execve(PATH) = 0` followed by the image it
//!   loaded as `#| ` maps lines, `placeholder(FD, WHAT)` for descriptors of sockets and pipes,
//!   `resize(FD, SIZE)` for writes past a file's end, and `touch`/`peek` lines marked
//!   `# inferred` for the page faults `/proc/PID/pagemap` showed before a memory call. Calls the
//!   trace language cannot express are kept as `# unexpressible:` comments, and counted.
//! * `NAME.expected`: the maps after each memory call, as `== LINE` blocks.
//! * `NAME.smaps`: each process's smaps as it exited, as `== PID` blocks.

use crate::exec::{Model, ModelOptions};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vmaspace_oracle::tracer::{self, Event, Fault, OutsideFile, Recording, nr};
use vmaspace_trace::{Call, Line, Outcome, format_line, format_outcome, print::returns_address};

/// The name strace gives a syscall number this recorder keeps or refuses.
fn syscall_name(n: u64) -> String {
    let name = match n {
        41 => "socket",
        53 => "socketpair",
        22 => "pipe",
        293 => "pipe2",
        43 => "accept",
        288 => "accept4",
        290 => "eventfd2",
        213 => "epoll_create",
        291 => "epoll_create1",
        283 => "timerfd_create",
        289 => "signalfd4",
        294 => "inotify_init1",
        434 => "pidfd_open",
        323 => "userfaultfd",
        425 => "io_uring_setup",
        298 => "perf_event_open (uprobes write into mappings)",
        58 => "vfork",
        29 => "shmget",
        30 => "shmat",
        67 => "shmdt",
        440 => "process_madvise",
        216 => "remap_file_pages",
        437 => "openat2",
        436 => "close_range",
        263 => "unlinkat",
        72 => "fcntl",
        157 => "prctl",
        16 => "ioctl(userfaultfd)",
        _ => return format!("syscall_{n:#x}"),
    };
    name.to_string()
}

fn le_u64(b: &[u8]) -> Option<u64> {
    b.get(..8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
}

/// A call of a recording in the trace language, if it has one (Ok(None): not worth a line).
fn to_call(n: u64, a: &[u64; 6], string: &Option<(usize, Vec<u8>)>, ret: i64) -> Result<Option<Call>, String> {
    let s = || string.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
    let fd = |x: u64| x as i32 as i64;
    Ok(Some(match n {
        nr::MMAP => Call::Mmap { addr: a[0], len: a[1], prot: a[2], flags: a[3], fd: fd(a[4]), offset: a[5] },
        nr::MUNMAP => Call::Munmap { addr: a[0], len: a[1] },
        nr::MPROTECT => Call::Mprotect { addr: a[0], len: a[1], prot: a[2] },
        nr::PKEY_MPROTECT => Call::PkeyMprotect { addr: a[0], len: a[1], prot: a[2], pkey: fd(a[3]) },
        nr::PKEY_ALLOC => Call::PkeyAlloc { flags: a[0], access_rights: a[1] },
        nr::PKEY_FREE => Call::PkeyFree { pkey: fd(a[0]) },
        nr::MREMAP => Call::Mremap {
            old_addr: a[0],
            old_len: a[1],
            new_len: a[2],
            flags: a[3],
            new_addr: a[4],
            explicit_new_addr: true,
        },
        nr::MADVISE => Call::Madvise { addr: a[0], len: a[1], advice: a[2] },
        nr::MLOCK => Call::Mlock { addr: a[0], len: a[1] },
        nr::MLOCK2 => Call::Mlock2 { addr: a[0], len: a[1], flags: a[2] },
        nr::MUNLOCK => Call::Munlock { addr: a[0], len: a[1] },
        nr::MLOCKALL => Call::Mlockall { flags: a[0] },
        nr::MUNLOCKALL => Call::Munlockall,
        nr::MSEAL => Call::Mseal { addr: a[0], len: a[1], flags: a[2] },
        nr::BRK => Call::Brk { addr: a[0] },
        nr::PRCTL if a[0] == 0x5356_4d41 && a[1] == 0 => {
            Call::PrctlSetVmaAnonName { addr: a[2], len: a[3], name: (a[4] != 0).then(s) }
        }
        // PR_SET_MEMORY_MERGE (KSM on every new VMA), PR_SET_THP_DISABLE, and PR_SET_VMA's
        // other options change VMAs in ways the trace language cannot say.
        nr::PRCTL if matches!(a[0], 67 | 41) || a[0] == 0x5356_4d41 => return Err(syscall_name(n)),
        nr::PRCTL => return Ok(None),
        nr::OPEN => Call::Open { path: s(), flags: a[1], mode: a[2] },
        nr::OPENAT => Call::Openat { dirfd: fd(a[0]), path: s(), flags: a[2], mode: a[3] },
        nr::CLOSE => Call::Close { fd: fd(a[0]) },
        nr::DUP => Call::Dup { fd: fd(a[0]) },
        nr::DUP2 => Call::Dup2 { old: fd(a[0]), new: fd(a[1]) },
        nr::DUP3 => Call::Dup3 { old: fd(a[0]), new: fd(a[1]), flags: a[2] },
        nr::FTRUNCATE => Call::Ftruncate { fd: fd(a[0]), len: a[1] },
        nr::UNLINK => Call::Unlink { path: s() },
        nr::MEMFD_CREATE => Call::MemfdCreate { name: s(), flags: a[1] },
        nr::MEMFD_SECRET => Call::MemfdSecret { flags: a[0] },
        nr::FCNTL => match a[1] {
            1033 => Call::FcntlAddSeals { fd: fd(a[0]), seals: a[2] },
            1034 => Call::FcntlGetSeals { fd: fd(a[0]) },
            // F_DUPFD, F_DUPFD_CLOEXEC: the new descriptor shares the file, as dup2 to it.
            0 | 1030 if ret >= 0 => Call::Dup2 { old: fd(a[0]), new: ret },
            0 | 1030 => return Ok(None),
            _ => return Ok(None),
        },
        // vfork: the child shares the parent's memory until it execs; a child that only execs
        // (as posix_spawn's and gcc's do) is a fork whose copy the exec replaces.
        nr::FORK | nr::VFORK => Call::Fork { clone_flags: None },
        nr::CLONE | nr::CLONE3 => {
            let flags = if n == nr::CLONE3 { string.as_ref().and_then(|(_, b)| le_u64(b)).unwrap_or(0) } else { a[0] };
            if flags & 0x100 != 0 && flags & 0x4000 == 0 {
                // CLONE_VM without CLONE_VFORK: a thread, whose calls are its process's.
                return Ok(None);
            }
            Call::Fork { clone_flags: Some(flags) }
        }
        nr::EXIT_GROUP => Call::ExitGroup { status: a[0] as i32 as i64 },
        nr::EXIT => return Ok(None),
        _ => return Err(syscall_name(n)),
    }))
}

/// Whether a path a recording opened is one of the files it knows (by its absolute form).
fn known_path(rec: &Recording, path: &[u8]) -> bool {
    let abs = if path.first() == Some(&b'/') {
        path.to_vec()
    } else {
        let mut p = rec.cwd.as_os_str().as_encoded_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(path);
        p
    };
    rec.files.contains_key(&abs)
}

/// Writes a recording as `NAME.trace`, `NAME.expected` and `NAME.smaps`. Returns the number of
/// calls written and the unexpressible ones.
pub fn write_recording(rec: &Recording, command: &str, out: &Path) -> std::io::Result<(usize, Vec<String>)> {
    let mut trace = String::new();
    let _ = writeln!(trace, "# vmaspace trace: {command} (exit status {})", rec.status);
    let _ = writeln!(trace, "# whole-space");
    let _ = writeln!(trace, "# cwd: {}", rec.cwd.display());
    // smaps prints ProtectionKey lines only on a CPU with protection keys.
    let pkeys = if crate::exec::machine_has_pkeys() { "on" } else { "off" };
    let _ = writeln!(trace, "# pkeys: {pkeys}");
    if let Some(Event::Exec { pid, .. }) = rec.events.iter().find(|e| matches!(e, Event::Exec { .. })) {
        let _ = writeln!(trace, "# pid: {pid}");
    }
    for f in rec.files.values() {
        let _ = writeln!(
            trace,
            "# file: {} real={} size={} dev={:02x}:{:02x} ino={}",
            String::from_utf8_lossy(&f.path),
            String::from_utf8_lossy(&f.real_path),
            f.size,
            f.dev.0,
            f.dev.1,
            f.ino
        );
    }
    // Directories the program created files in, outside its working directory: the model lets
    // files be created there.
    let mut dirs: Vec<String> = rec
        .created
        .iter()
        .filter_map(|p| {
            use std::os::unix::ffi::OsStrExt;
            Path::new(std::ffi::OsStr::from_bytes(p)).parent().map(|d| d.display().to_string())
        })
        .filter(|d| Path::new(d) != rec.cwd)
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        let _ = writeln!(trace, "# dir: {d}");
    }
    let main = rec.events.iter().find(|e| matches!(e, Event::Exec { .. })).map(|e| match e {
        Event::Exec { pid, .. }
        | Event::Call { pid, .. }
        | Event::Faults { pid, .. }
        | Event::Exit { pid, .. }
        | Event::Inherited { pid, .. } => *pid,
    });
    let mut expected = String::new();
    let mut smaps = String::new();
    let mut lineno = trace.lines().count();
    let mut calls = 0;
    let mut unexpressible = Vec::new();
    let label = |pid: u32| (Some(pid) != main).then_some(pid);
    let push = |trace: &mut String, line: &Line, comment: &str| {
        let mut text = format_line(line);
        text.push_str(comment);
        trace.push_str(&text);
        trace.push('\n');
    };
    // Exec events already written with their execve.
    let mut consumed = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < rec.events.len() {
        if consumed.contains(&i) {
            i += 1;
            continue;
        }
        match &rec.events[i] {
            Event::Call { pid, nr: n, args, string, ret: Some(r), special: true, .. } => {
                // An open of a directory or a device the model has no file for.
                lineno += 1;
                let what = string.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
                let line = Line {
                    lineno,
                    pid: label(*pid),
                    call: Call::Placeholder { fd: *r, what },
                    result: Some(Outcome::Value(*r as u64)),
                };
                let _ = n;
                let _ = args;
                push(&mut trace, &line, "");
                calls += 1;
            }
            Event::Call { pid, nr: n @ (nr::OPEN | nr::OPENAT), string: Some((_, path)), ret: Some(r), .. }
                if *r < 0 && *r != -2 && !known_path(rec, path) =>
            {
                // An open that failed on something the model does not have (a terminal, a
                // directory it may not enter): nothing changed; kept as a comment.
                lineno += 1;
                let _ = writeln!(
                    trace,
                    "# not replayed: [pid {pid}] {}(\"{}\") = {r} (a file the model does not have)",
                    if *n == nr::OPEN { "open" } else { "openat" },
                    String::from_utf8_lossy(path)
                );
            }
            Event::Call { pid, nr: n, args, string, ret, maps, size, .. } => {
                if *n == nr::EXECVE {
                    // An exec that worked is followed by its image (other processes' events may
                    // come between); one that failed changed nothing.
                    let image_at = rec.events[i + 1..]
                        .iter()
                        .position(|e| match e {
                            Event::Exec { pid: p, .. } | Event::Call { pid: p, .. } | Event::Faults { pid: p, .. } => {
                                p == pid
                            }
                            _ => false,
                        })
                        .map(|k| i + 1 + k)
                        .filter(|k| matches!(rec.events[*k], Event::Exec { .. }));
                    if let Some(Event::Exec { maps: image, fds, start_brk, .. }) = image_at.map(|k| &rec.events[k]) {
                        lineno += 1;
                        let path = string.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
                        let line = Line {
                            lineno,
                            pid: label(*pid),
                            call: Call::Execve { path, image: String::new(), fds: None, brk: None },
                            result: Some(Outcome::Value(0)),
                        };
                        push(&mut trace, &line, "");
                        for m in image.lines() {
                            let _ = writeln!(trace, "#| {m}");
                            lineno += 1;
                        }
                        let list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
                        let _ = writeln!(trace, "#fds: {}", list.join(" "));
                        lineno += 1;
                        if let Some(b) = start_brk {
                            let _ = writeln!(trace, "#brk: {b:#x}");
                            lineno += 1;
                        }
                        calls += 1;
                        consumed.insert(image_at.unwrap_or(i));
                    }
                    i += 1;
                    continue;
                }
                let r = ret.unwrap_or(0);
                match tracer::kind_of(*n) {
                    Some(tracer::Kind::Placeholder) if r >= 0 => {
                        let what = syscall_name(*n);
                        let fds: Vec<i64> = match string {
                            Some((tracer::FD_PAIR, b)) if b.len() >= 8 => vec![
                                i64::from(i32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4]))),
                                i64::from(i32::from_le_bytes(b[4..8].try_into().unwrap_or([0; 4]))),
                            ],
                            _ => vec![r],
                        };
                        for fd in fds {
                            lineno += 1;
                            let call = Call::Placeholder { fd, what: what.clone().into_bytes() };
                            let line = Line { lineno, pid: label(*pid), call, result: Some(Outcome::Value(fd as u64)) };
                            push(&mut trace, &line, "");
                            calls += 1;
                        }
                    }
                    Some(tracer::Kind::Placeholder) => {}
                    Some(tracer::Kind::Size) => {
                        if let Some((fd, sz)) = size {
                            lineno += 1;
                            let line = Line {
                                lineno,
                                pid: label(*pid),
                                call: Call::Resize { fd: *fd, size: *sz },
                                result: Some(Outcome::Value(0)),
                            };
                            push(&mut trace, &line, "");
                            calls += 1;
                        }
                    }
                    _ => match to_call(*n, args, string, r) {
                        Ok(Some(call)) => {
                            lineno += 1;
                            let result = ret.map(Outcome::from_raw).or(Some(Outcome::NoReturn));
                            let result =
                                if matches!(call, Call::ExitGroup { .. }) { Some(Outcome::NoReturn) } else { result };
                            let line = Line { lineno, pid: label(*pid), call, result };
                            push(&mut trace, &line, "");
                            calls += 1;
                            if let Some(m) = maps {
                                let _ = write!(expected, "== {lineno}\n{m}");
                            }
                        }
                        Ok(None) => {}
                        Err(name) => {
                            lineno += 1;
                            let _ = writeln!(trace, "# unexpressible: [pid {pid}] {name}(...) = {r}");
                            unexpressible.push(format!("{name} (line {lineno})"));
                        }
                    },
                }
            }
            Event::Faults { pid, ranges } => {
                for (addr, len, how) in ranges {
                    lineno += 1;
                    if *how == Fault::Foreign {
                        let _ = writeln!(
                            trace,
                            "# unexpressible: [pid {pid}] pages {addr:#x}+{len:#x} written by the kernel in a VMA the program cannot write (a uprobe, ptrace)"
                        );
                        unexpressible.push(format!("a kernel write (line {lineno})"));
                        continue;
                    }
                    let call = if *how == Fault::Write {
                        Call::Touch { addr: *addr, len: *len }
                    } else {
                        Call::Peek { addr: *addr, len: *len }
                    };
                    let line = Line { lineno, pid: label(*pid), call, result: Some(Outcome::Value(0)) };
                    push(&mut trace, &line, "  # inferred");
                }
            }
            Event::Exit { pid, smaps: s } => {
                let _ = write!(smaps, "== {pid}\n{s}");
            }
            Event::Exec { .. } => {}
            Event::Inherited { pid, fds } => {
                for (fd, what) in fds {
                    lineno += 1;
                    let call = Call::Placeholder { fd: *fd, what: format!("inherited {what}").into_bytes() };
                    let line = Line { lineno, pid: label(*pid), call, result: Some(Outcome::Value(*fd as u64)) };
                    push(&mut trace, &line, "");
                    calls += 1;
                }
            }
        }
        i += 1;
    }
    std::fs::write(out.with_extension("trace"), trace)?;
    std::fs::write(out.with_extension("expected"), expected)?;
    std::fs::write(out.with_extension("smaps"), smaps)?;
    Ok((calls, unexpressible))
}

/// `vmaspace trace [-o NAME] [--aslr] -- PROG ARGS...`. Exits with the program's status.
pub fn trace_main(out: Option<PathBuf>, aslr: bool, command: &[String]) -> i32 {
    let Some((prog, args)) = command.split_first() else {
        eprintln!("vmaspace trace: no program given (vmaspace trace -o NAME -- PROG ARGS...)");
        return 2;
    };
    let out =
        out.unwrap_or_else(|| PathBuf::from(Path::new(prog).file_name().map_or("trace".into(), |n| n.to_owned())));
    let rec = match tracer::trace(Path::new(prog), args, &tracer::TraceOptions { aslr }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmaspace trace: {e}");
            return 2;
        }
    };
    match write_recording(&rec, &command.join(" "), &out) {
        Ok((calls, unexpressible)) => {
            let procs: std::collections::BTreeSet<u32> = rec
                .events
                .iter()
                .filter_map(|e| if let Event::Call { pid, .. } = e { Some(*pid) } else { None })
                .collect();
            let procs = procs.len();
            eprintln!(
                "vmaspace trace: {calls} calls in {procs} process(es) written to {}; {} call(s) the trace language cannot express{}",
                out.with_extension("trace").display(),
                unexpressible.len(),
                if unexpressible.is_empty() { String::new() } else { format!(": {}", unexpressible.join(", ")) }
            );
            rec.status
        }
        Err(e) => {
            eprintln!("vmaspace trace: writing {}: {e}", out.display());
            2
        }
    }
}

/// The `# cwd:` and `# file:` header lines of a recording.
fn recording_header(s: &Scenario) -> (Option<String>, Vec<OutsideFile>, Vec<String>) {
    let mut cwd = None;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for h in &s.trace.header {
        let h = h.trim_start_matches('#').trim();
        if let Some(d) = h.strip_prefix("dir:") {
            dirs.push(d.trim().to_string());
        } else if let Some(c) = h.strip_prefix("cwd:") {
            cwd = Some(c.trim().to_string());
        } else if let Some(f) = h.strip_prefix("file:") {
            let mut words = f.split_whitespace();
            let Some(path) = words.next() else { continue };
            let mut file = OutsideFile {
                path: path.as_bytes().to_vec(),
                real_path: path.as_bytes().to_vec(),
                size: 0,
                dev: (0, 0),
                ino: 0,
            };
            for w in words {
                match w.split_once('=') {
                    Some(("real", v)) => file.real_path = v.as_bytes().to_vec(),
                    Some(("size", v)) => file.size = v.parse().unwrap_or(0),
                    Some(("ino", v)) => file.ino = v.parse().unwrap_or(0),
                    Some(("dev", v)) => {
                        if let Some((a, b)) = v.split_once(':') {
                            file.dev =
                                (u32::from_str_radix(a, 16).unwrap_or(0), u32::from_str_radix(b, 16).unwrap_or(0));
                        }
                    }
                    _ => {}
                }
            }
            files.push(file);
        }
    }
    (cwd, files, dirs)
}

/// Whether a trace is a recording made by `vmaspace trace` (its first line says so).
pub fn is_recording(s: &Scenario) -> bool {
    s.text.starts_with("# vmaspace trace:")
}

/// The model a recording starts from: its working directory, the files and directories that
/// existed before the program ran, its protection keys setting (from `# pkeys:`, or, for older
/// recordings, from whether its exit smaps show `ProtectionKey` lines), and the accesses a
/// recording cannot show. Also returns the working directory.
pub fn recording_model(s: &Scenario, exit_smaps_text: &str) -> Result<(Model, String), String> {
    let (cwd, files, dirs) = recording_header(s);
    let opts = ModelOptions {
        cwd: cwd.unwrap_or_else(|| "/".into()),
        outside_files: files,
        directories: dirs,
        pkeys: s
            .trace
            .setup
            .pkeys
            .or_else(|| (!exit_smaps_text.is_empty()).then(|| exit_smaps_text.contains("ProtectionKey:"))),
        hidden_accesses: true,
        ..ModelOptions::default()
    };
    let mut model = Model::new(&opts)?;
    model.fork_labels = s.trace.fork_labels().into();
    Ok((model, opts.cwd))
}

/// `vmaspace replay NAME`: exit 0 when every call replayed and agreed, 1 when something
/// differs or could not be expressed, 2 when the recording cannot be used.
pub fn replay_main(name: &Path) -> i32 {
    let trace_path = name.with_extension("trace");
    let s = match Scenario::load(&trace_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vmaspace replay: {e}");
            return 2;
        }
    };
    let unexpressible: Vec<(usize, &str)> = s
        .text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("# unexpressible:"))
        .map(|(i, l)| (i + 1, l))
        .collect();
    let expected = crate::scenario::read_limited(&name.with_extension("expected")).unwrap_or_default();
    let blocks: BTreeMap<usize, String> = numbered_blocks(&expected);
    let exit_smaps_text = crate::scenario::read_limited(&name.with_extension("smaps")).unwrap_or_default();
    let mut model = match recording_model(&s, &exit_smaps_text) {
        Ok((m, _)) => m,
        Err(e) => {
            eprintln!("vmaspace replay: {e}");
            return 2;
        }
    };
    let mut procs = std::collections::BTreeSet::new();
    let mut calls = 0;
    // The process label of each unexpressible call (its real pid; the first process is None).
    let main_pid: Option<u32> = s
        .trace
        .header
        .iter()
        .find_map(|h| h.trim_start_matches('#').trim().strip_prefix("pid:").and_then(|p| p.trim().parse().ok()));
    let label_of = |text: &str| -> Option<u32> {
        let pid: u32 = text.split("[pid ").nth(1)?.split(']').next()?.trim().parse().ok()?;
        (Some(pid) != main_pid).then_some(pid)
    };
    let mut pending: std::collections::VecDeque<(usize, Option<u32>)> =
        unexpressible.iter().map(|(l, t)| (*l, label_of(t))).collect();
    // Processes past a call the model could not make (and the children they fork): what they
    // do next depends on it, so they are not replayed further; the others go on.
    let mut tainted: std::collections::BTreeSet<Option<u32>> = std::collections::BTreeSet::new();
    let mut labels = s.trace.fork_labels().into_iter();
    let mut skipped = 0;
    let exit_smaps: BTreeMap<u32, String> = numbered_blocks(&exit_smaps_text);
    let mut smaps_tally = SmapsTally::default();
    for line in &s.trace.lines {
        while pending.front().is_some_and(|(at, _)| *at < line.lineno) {
            if let Some((_, p)) = pending.pop_front() {
                tainted.insert(p);
            }
        }
        if tainted.contains(&line.pid) {
            if matches!(line.call, Call::Fork { .. })
                && let Some(child) = labels.next()
            {
                tainted.insert(Some(child));
            }
            // Whatever it did, it exits: its address space goes, and with it its share of the
            // pages it had from its parent.
            if matches!(line.call, Call::ExitGroup { .. }) {
                let _ = model.apply(line);
            }
            skipped += 1;
            continue;
        }
        if matches!(line.call, Call::Fork { .. }) {
            // Keep the label iterator in step with the model's own.
            let _ = labels.next();
        }
        procs.insert(line.pid);
        // Each process's smaps as it exits, against NAME.smaps: every field, page counters
        // where the model knows them (it prints the others as `?`).
        if matches!(line.call, Call::ExitGroup { .. })
            && let Some(want) = exit_smaps.get(&line.pid.or(main_pid).unwrap_or(0))
        {
            let have = model.checkpoint(&Line { call: Call::Smaps, result: None, ..line.clone() }, None);
            if let Some(report) = vmaspace_trace::maps::compare(want, &have) {
                eprintln!("line {}: smaps as the process exits differ (- kernel, + model)\n{report}", line.lineno);
                return 1;
            }
            smaps_tally.add(&have);
        }
        let got = model.apply(line).unwrap_or(Outcome::NoReturn);
        calls += 1;
        if let Some(why) = model.limit_exceeded() {
            eprintln!("vmaspace replay: line {}: refused: {why}", line.lineno);
            return 2;
        }
        if let Some(want) = line.result
            && want != got
        {
            let hex = returns_address(&line.call);
            eprintln!(
                "line {}: {}: the kernel returned {}, the model {}",
                line.lineno,
                vmaspace_trace::format_call(&line.call),
                format_outcome(want, hex),
                format_outcome(got, hex)
            );
            return 1;
        }
        if let Some(want) = blocks.get(&line.lineno) {
            let have = model.checkpoint(&Line { call: Call::Maps, result: None, ..line.clone() }, None);
            if let Some(report) = vmaspace_trace::maps::compare(want, &have) {
                eprintln!(
                    "line {}: {}: maps differ (- kernel, + model)\n{report}",
                    line.lineno,
                    vmaspace_trace::format_call(&line.call)
                );
                return 1;
            }
        }
    }
    if !unexpressible.is_empty() {
        eprintln!(
            "{calls} calls in {} processes agree; {} could not be expressed, and the {skipped} calls after them in their {} processes were not replayed:",
            procs.len(),
            unexpressible.len(),
            tainted.len()
        );
        for (_, u) in unexpressible.iter().take(10) {
            eprintln!("  {u}");
        }
        return 1;
    }
    eprintln!("{calls} calls in {} processes: all agree", procs.len());
    if smaps_tally.processes > 0 {
        eprintln!(
            "smaps as {} processes exited: all agree; {} of {} page counter values known to the model and compared (the rest printed as `?`: pages of VMAs seeded from the kernel's maps, file and shmem pages)",
            smaps_tally.processes,
            smaps_tally.known,
            smaps_tally.known + smaps_tally.unknown
        );
    }
    0
}

/// The `== N` blocks of a recording's `.expected` (N a line) or `.smaps` file (N a pid).
fn numbered_blocks<K: std::str::FromStr + Ord + Copy>(text: &str) -> BTreeMap<K, String> {
    let mut blocks: BTreeMap<K, String> = BTreeMap::new();
    let mut current: Option<K> = None;
    for l in text.split_inclusive('\n') {
        if let Some(n) = l.strip_prefix("== ").and_then(|n| n.trim().parse().ok()) {
            current = Some(n);
            blocks.insert(n, String::new());
        } else if let Some(n) = current {
            blocks.entry(n).or_default().push_str(l);
        }
    }
    blocks
}

/// How many exit smaps were compared, and how many of their page counters the model knew.
#[derive(Default)]
struct SmapsTally {
    processes: usize,
    known: usize,
    unknown: usize,
}

impl SmapsTally {
    fn add(&mut self, model_smaps: &str) {
        let (all, unknown) = vmaspace_trace::maps::counter_values(model_smaps);
        self.processes += 1;
        self.known += all - unknown;
        self.unknown += unknown;
    }
}
