//! strace logs as users already have them (`strace -f -y -s N -o LOG PROG`), read into a
//! [`Trace`]: the pid prefixes (`1234 ` with `-o`, `[pid 1234] ` without) become the trace's
//! processes, threads (`clone`/`clone3` with `CLONE_VM`) join their process, `<unfinished ...>`
//! / `<... resumed>` pairs are joined (a joined call takes its place where it completed), `+++ exited +++` and `--- SIGNAL ---` lines, `/* ... */`
//! comments and `-y`'s `<path>` annotations are dropped, and `syscall_0x1ce` is `mseal`.
//!
//! What a log cannot tell is reported, never invented ([`StraceImport`]): the program's image
//! after `execve` (its maps), the page faults it made (they decide anon_vma identity and smaps),
//! and the files outside the working directory it mapped. Calls that change the address space or
//! the descriptor table in ways the trace language has no words for (`socket`, `pipe`, `dup`
//! via `fcntl`, ...) are listed by name and line; calls that change neither (`read`, `fstat`,
//! ...) are counted and left out.

use crate::call::{Line, Trace};
use crate::parse::{ParseError, parse_line};
use std::collections::{BTreeMap, HashMap};

/// What was read from a strace log.
#[derive(Debug, Clone, Default)]
pub struct StraceImport {
    /// The calls of the trace language, with the kernel's results; the first process is the
    /// log's first pid, the others are `[pid N]` with their real pids.
    pub trace: Trace,
    /// Lines whose calls change the address space or the descriptor table in a way the trace
    /// language cannot express: (line, call, why).
    pub unexpressible: Vec<(usize, String, &'static str)>,
    /// Calls left out because they change neither the address space nor the descriptors, by
    /// name: how many.
    pub skipped: BTreeMap<String, usize>,
    /// Lines of `execve` calls: the image each loaded is not in the log.
    pub execs: Vec<usize>,
    /// Lines where a memory call of one thread was in progress while another thread of the
    /// same process made one: the order of their effects is not known.
    pub races: Vec<usize>,
}

/// Whether a text looks like a strace log (its first call line starts with a pid).
pub fn looks_like_strace(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    first.is_some_and(|l| split_pid(l).is_some())
}

/// `1234 rest` or `[pid 1234] rest`.
fn split_pid(line: &str) -> Option<(u32, &str)> {
    if let Some(rest) = line.strip_prefix("[pid") {
        let (n, rest) = rest.trim_start().split_once(']')?;
        return Some((n.trim().parse().ok()?, rest.trim_start()));
    }
    let end = line.find(|c: char| !c.is_ascii_digit())?;
    if end == 0 || !line[end..].starts_with(' ') {
        return None;
    }
    Some((line[..end].parse().ok()?, line[end..].trim_start()))
}

/// Calls that change neither the address space nor the descriptor table (or only in ways the
/// model does not look at).
const IRRELEVANT: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "lseek",
    "fstat",
    "newfstatat",
    "stat",
    "lstat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrandom",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "futex",
    "wait4",
    "waitid",
    "getpid",
    "gettid",
    "getppid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "uname",
    "ioctl",
    "getcwd",
    "readlink",
    "readlinkat",
    "getdents64",
    "clock_gettime",
    "clock_nanosleep",
    "nanosleep",
    "sched_getaffinity",
    "sched_yield",
    "sysinfo",
    "exit",
    "kill",
    "tgkill",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "fadvise64",
    "fsync",
    "fdatasync",
    "chdir",
    "fchdir",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "flock",
    "umask",
    "setpgid",
    "getpgid",
    "getpgrp",
    "setsid",
    "times",
    "getrusage",
    "getpriority",
    "setpriority",
    "prctl",
    "membarrier",
    "capget",
    "getsockname",
    "getpeername",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "connect",
    "bind",
    "listen",
    "setsockopt",
    "getsockopt",
    "shutdown",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "fchownat",
    "utimensat",
    "statfs",
    "fstatfs",
    "sync",
    "syncfs",
    "restart_syscall",
    "alarm",
    "pause",
    "getitimer",
    "setitimer",
    "timerfd_settime",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "sched_setaffinity",
];

/// Calls that create, duplicate or close descriptors, or change memory, in ways the trace
/// language has no words for.
fn unexpressible_reason(name: &str) -> Option<&'static str> {
    Some(match name {
        "socket" | "socketpair" | "pipe" | "pipe2" | "eventfd" | "eventfd2" | "epoll_create" | "epoll_create1"
        | "timerfd_create" | "signalfd" | "signalfd4" | "inotify_init" | "inotify_init1" | "accept" | "accept4"
        | "pidfd_open" | "fanotify_init" | "perf_event_open" | "io_uring_setup" | "userfaultfd" | "memfd_secret" => {
            "creates a descriptor the model has no file for"
        }
        "fcntl" => "fcntl(F_DUPFD) makes a descriptor the trace language cannot name",
        "execve" | "execveat" => "loads a new program image, which the log does not show",
        "shmat" | "shmdt" | "shmget" | "shmctl" => "System V shared memory",
        "process_madvise" | "process_vm_writev" | "process_mrelease" => "acts on another process's memory",
        "remap_file_pages" | "mincore" | "msync" | "migrate_pages" | "mbind" | "set_mempolicy" | "move_pages" => {
            "a memory call the model does not do"
        }
        "vfork" => "vfork shares the parent's memory until exec",
        "truncate" | "fallocate" | "copy_file_range" | "sendfile" | "splice" => {
            "changes a file's size or pages in a way the trace language cannot say"
        }
        _ => return None,
    })
}

/// Removes `/* ... */` comments and `-y` `<...>` annotations outside string literals.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            // `3</path>`, `AT_FDCWD</dir>`, `= 3</path>`: after a digit or a name.
            '<' if out.chars().last().is_some_and(|p| p.is_ascii_alphanumeric() || p == '_') => {
                let mut depth = 1;
                for n in chars.by_ref() {
                    match n {
                        '<' => depth += 1,
                        '>' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `flags=` of a `clone3({...})` line, as written.
fn clone3_flags(call: &str) -> &str {
    call.split_once("flags=").map_or("", |(_, r)| r.split([',', '}']).next().unwrap_or(""))
}

/// Reads a strace log.
pub fn import_strace(text: &str) -> Result<StraceImport, ParseError> {
    let mut out = StraceImport::default();
    // Thread id → the pid of its process (the first pid is the main process).
    let mut process_of: HashMap<u32, u32> = HashMap::new();
    let mut main: Option<u32> = None;
    let mut pending: HashMap<u32, (usize, String)> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((tid, rest)) = split_pid(trimmed) else {
            return Err(ParseError {
                line: lineno,
                column: 1,
                message: "expected a pid at the start of a strace line".into(),
            });
        };
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        // Join `<unfinished ...>` with its `<... NAME resumed>`.
        let (start_line, call_text) = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(tid, (lineno, head.trim_end().to_string()));
            // A memory call left in progress while another thread of the process makes one.
            continue;
        } else if let Some(tail) = rest.strip_prefix("<...") {
            let after = tail.split_once("resumed>").map_or("", |(_, a)| a);
            match pending.remove(&tid) {
                Some((l, head)) => (l, format!("{head}{after}")),
                None => continue,
            }
        } else {
            (lineno, rest.to_string())
        };
        let main_pid = *main.get_or_insert(tid);
        let proc_pid = *process_of.entry(tid).or_insert(tid);
        let cleaned = clean(&call_text);
        let name: String = cleaned.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // Memory calls of one process in flight together (two threads) race.
        if is_memory_call(&name)
            && pending.iter().any(|(t, (_, h))| {
                *t != tid && process_of.get(t) == Some(&proc_pid) && is_memory_call(&h[..h.find('(').unwrap_or(0)])
            })
        {
            out.races.push(start_line);
        }
        let cleaned = match name.as_str() {
            "syscall_0x1ce" => mseal_from_raw(&cleaned),
            "clone3" => {
                let flags = clone3_flags(&cleaned);
                let result = cleaned.rsplit_once('=').map_or("", |(_, r)| r.trim());
                format!("clone(flags={}) = {result}", if flags.is_empty() { "SIGCHLD" } else { flags })
            }
            _ => cleaned,
        };
        let name: String = cleaned.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if name == "clone" && cleaned.contains("CLONE_VM") {
            // A thread: its calls are its process's.
            if let Some(child) = result_number(&cleaned) {
                process_of.insert(child, proc_pid);
            }
            continue;
        }
        if name == "execve" || name == "execveat" {
            out.execs.push(start_line);
        }
        if IRRELEVANT.contains(&name.as_str()) {
            *out.skipped.entry(name).or_default() += 1;
            continue;
        }
        if name == "fcntl" && !cleaned.contains("F_DUPFD") {
            if !cleaned.contains("F_ADD_SEALS") && !cleaned.contains("F_GET_SEALS") {
                // F_GETFD, F_SETFL, ...: neither memory nor descriptors.
                *out.skipped.entry(name).or_default() += 1;
                continue;
            }
        } else if let Some(why) = unexpressible_reason(&name) {
            out.unexpressible.push((start_line, name, why));
            continue;
        }
        let prefixed = if proc_pid == main_pid { cleaned.clone() } else { format!("[pid {proc_pid}] {cleaned}") };
        match parse_line(&prefixed, start_line) {
            Ok(line) => out.trace.lines.push(relabel(line, main_pid)),
            Err(e) if e.message.contains("is not a call a trace can make") => {
                out.unexpressible.push((start_line, name, "a call the trace language does not have"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn relabel(line: Line, main: u32) -> Line {
    Line { pid: line.pid.filter(|p| *p != main), ..line }
}

/// The number after ` = ` of a call line.
fn result_number(line: &str) -> Option<u32> {
    line.rsplit_once(" = ")?.1.split_whitespace().next()?.parse().ok()
}

/// `syscall_0x1ce(a, b, c, ...) = R` (strace 6.1 does not know mseal) as `mseal(a, b, c) = R`.
fn mseal_from_raw(line: &str) -> String {
    let Some((args, result)) = line.strip_prefix("syscall_0x1ce(").and_then(|r| r.split_once(')')) else {
        return line.to_string();
    };
    let first3: Vec<&str> = args.split(',').map(str::trim).take(3).collect();
    format!("mseal({}){result}", first3.join(", "))
}

fn is_memory_call(name: &str) -> bool {
    matches!(
        name,
        "mmap"
            | "munmap"
            | "mprotect"
            | "mremap"
            | "madvise"
            | "mlock"
            | "mlock2"
            | "munlock"
            | "mlockall"
            | "munlockall"
            | "mseal"
            | "brk"
            | "pkey_mprotect"
            | "syscall_0x1ce"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Call, Outcome};

    const LOG: &str = r#"100 execve("/usr/bin/prog", ["prog"], 0x7ffc /* 35 vars */) = 0
100 brk(NULL)                         = 0x55a8af777000
100 openat(AT_FDCWD</tmp/x>, "f", O_RDWR|O_CREAT, 0600) = 3</tmp/x/f>
100 ftruncate(3</tmp/x/f>, 4096)      = 0
100 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3</tmp/x/f (deleted)>, 0) = 0x7f1e8e559000
100 read(3</tmp/x/f>, "\177ELF\2"..., 832) = 832
100 fcntl(3</tmp/x/f>, F_GETFD)       = 0x1 (flags FD_CLOEXEC)
100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f1e8e36ea10) = 101
100 wait4(101,  <unfinished ...>
101 munmap(0x7f1e8e559000, 4096)      = 0
101 exit_group(0)                     = ?
101 +++ exited with 0 +++
100 <... wait4 resumed>NULL, 0, NULL) = 101
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=101} ---
100 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD, exit_signal=0, stack=0x7f1e8db6d000} => {parent_tid=[102]}, 88) = 102
[pid   102] madvise(0x7f1e8db6d000, 8368128, MADV_DONTNEED <unfinished ...>
[pid   100] mprotect(0x7f1e8e55a000, 4096, PROT_READ) = 0
[pid   102] <... madvise resumed>)   = 0
100 syscall_0x1ce(0x7f1e8e55a000, 0x1000, 0, 0, 0xffffffff, 0) = 0
100 socket(AF_UNIX, SOCK_STREAM, 0)   = 4<UNIX:[12345]>
100 munmap(0x7f1e8e55a000, 8192)      = -1 EPERM (Operation not permitted)
100 exit_group(0)                     = ?
100 +++ exited with 0 +++
"#;

    #[test]
    fn a_strace_log_becomes_a_trace() {
        assert!(looks_like_strace(LOG));
        let i = import_strace(LOG).unwrap();
        let names: Vec<&str> = i.trace.lines.iter().map(|l| l.call.name()).collect();
        assert_eq!(
            names,
            [
                "brk",
                "openat",
                "ftruncate",
                "mmap",
                "clone",
                "munmap",
                "exit_group",
                "mprotect",
                "madvise",
                "mseal",
                "munmap",
                "exit_group"
            ]
        );
        // The fork's child is [pid 101]; the thread 102 is the first process. A joined call
        // takes its place where it completed.
        assert_eq!(i.trace.lines[5].pid, Some(101));
        assert_eq!((i.trace.lines[8].pid, i.trace.lines[8].lineno), (None, 16));
        assert!(matches!(i.trace.lines[9].call, Call::Mseal { len: 0x1000, flags: 0, .. }));
        assert_eq!(i.trace.lines[10].result, Some(Outcome::Error(1)));
        assert_eq!(i.trace.lines[3].result, Some(Outcome::Value(0x7f1e8e559000)));
        // The unfinished madvise of the thread raced with the process's mprotect.
        assert_eq!(i.races, vec![17]);
        assert_eq!(i.execs, vec![1]);
        let unexpressible: Vec<(usize, &str)> = i.unexpressible.iter().map(|(l, n, _)| (*l, n.as_str())).collect();
        assert_eq!(unexpressible, [(1, "execve"), (20, "socket")]);
        assert_eq!(i.skipped.get("read"), Some(&1));
        assert_eq!(i.skipped.get("fcntl"), Some(&1));
        assert_eq!(i.skipped.get("wait4"), Some(&1));
    }

    #[test]
    fn a_plain_trace_is_not_a_strace_log() {
        assert!(!looks_like_strace("# window: 0-1\nmmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n"));
        assert!(looks_like_strace("[pid 7] brk(NULL) = 0x1000\n"));
    }

    #[test]
    fn a_broken_line_names_its_position() {
        let e = import_strace("100 mmap(NULL, 4096, PROT_REED, MAP_PRIVATE, -1, 0) = 0\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("PROT_REED"), "{e}");
    }
}
