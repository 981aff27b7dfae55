//! parse → print → parse is the identity, and malformed lines name their line and column.

use proptest::prelude::*;
use vmaspace_trace::{Call, Line, Outcome, Signal, consts, format_line, parse_line, parse_trace};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..12)
}

fn fd() -> impl Strategy<Value = i64> {
    prop_oneof![-1i64..40, any::<i32>().prop_map(i64::from), Just(-100)]
}

fn call() -> impl Strategy<Value = Call> {
    let a = any::<u64>;
    prop_oneof![
        (a(), a(), a(), a(), fd(), a())
            .prop_map(|(addr, len, prot, flags, fd, offset)| { Call::Mmap { addr, len, prot, flags, fd, offset } }),
        (a(), a()).prop_map(|(addr, len)| Call::Munmap { addr, len }),
        (a(), a(), a()).prop_map(|(addr, len, prot)| Call::Mprotect { addr, len, prot }),
        (a(), a()).prop_map(|(flags, access_rights)| Call::PkeyAlloc { flags, access_rights }),
        fd().prop_map(|pkey| Call::PkeyFree { pkey }),
        (a(), a(), a(), fd()).prop_map(|(addr, len, prot, pkey)| Call::PkeyMprotect { addr, len, prot, pkey }),
        (a(), a(), a(), a(), a(), any::<bool>()).prop_map(
            |(old_addr, old_len, new_len, flags, n, explicit_new_addr)| {
                Call::Mremap {
                    old_addr,
                    old_len,
                    new_len,
                    flags,
                    new_addr: if explicit_new_addr { n } else { 0 },
                    explicit_new_addr,
                }
            }
        ),
        (a(), a(), a()).prop_map(|(addr, len, advice)| Call::Madvise { addr, len, advice }),
        (a(), a()).prop_map(|(addr, len)| Call::Mlock { addr, len }),
        (a(), a(), a()).prop_map(|(addr, len, flags)| Call::Mlock2 { addr, len, flags }),
        (a(), a()).prop_map(|(addr, len)| Call::Munlock { addr, len }),
        a().prop_map(|flags| Call::Mlockall { flags }),
        Just(Call::Munlockall),
        (a(), a(), a()).prop_map(|(addr, len, flags)| Call::Mseal { addr, len, flags }),
        a().prop_map(|addr| Call::Brk { addr }),
        (a(), a(), prop::option::of(bytes())).prop_map(|(addr, len, name)| Call::PrctlSetVmaAnonName {
            addr,
            len,
            name
        }),
        (fd(), bytes(), a(), a()).prop_map(|(dirfd, path, flags, mode)| Call::Openat { dirfd, path, flags, mode }),
        (bytes(), a(), a()).prop_map(|(path, flags, mode)| Call::Open { path, flags, mode }),
        fd().prop_map(|fd| Call::Close { fd }),
        fd().prop_map(|fd| Call::Dup { fd }),
        (fd(), fd()).prop_map(|(old, new)| Call::Dup2 { old, new }),
        (fd(), fd(), a()).prop_map(|(old, new, flags)| Call::Dup3 { old, new, flags }),
        (fd(), a()).prop_map(|(fd, len)| Call::Ftruncate { fd, len }),
        bytes().prop_map(|path| Call::Unlink { path }),
        (bytes(), a()).prop_map(|(name, flags)| Call::MemfdCreate { name, flags }),
        a().prop_map(|flags| Call::MemfdSecret { flags }),
        (fd(), a()).prop_map(|(fd, seals)| Call::FcntlAddSeals { fd, seals }),
        fd().prop_map(|fd| Call::FcntlGetSeals { fd }),
        Just(Call::Fork { clone_flags: None }),
        a().prop_map(|f| Call::Fork { clone_flags: Some(f & !0x100) }),
        fd().prop_map(|status| Call::ExitGroup { status }),
        (a(), a()).prop_map(|(addr, len)| Call::Touch { addr, len }),
        (a(), a()).prop_map(|(addr, len)| Call::Peek { addr, len }),
        Just(Call::Maps),
        Just(Call::Smaps),
    ]
}

fn outcome_for(call: &Call) -> BoxedStrategy<Option<Outcome>> {
    let errno = (1u16..96).prop_filter("named", |e| consts::errno_name(*e).is_some()).prop_map(Outcome::Error);
    match call {
        Call::Maps | Call::Smaps => Just(None).boxed(),
        Call::ExitGroup { .. } => prop_oneof![Just(None), Just(Some(Outcome::NoReturn))].boxed(),
        Call::Touch { .. } | Call::Peek { .. } => prop_oneof![
            Just(None),
            Just(Some(Outcome::Value(0))),
            Just(Some(Outcome::Signal(Signal::Sigsegv))),
            Just(Some(Outcome::Signal(Signal::Sigbus))),
        ]
        .boxed(),
        _ => prop_oneof![Just(None), (0u64..(1 << 63)).prop_map(|v| Some(Outcome::Value(v))), errno.prop_map(Some)]
            .boxed(),
    }
}

fn line() -> impl Strategy<Value = Line> {
    (call(), prop::option::of(any::<u32>())).prop_flat_map(|(call, pid)| {
        outcome_for(&call).prop_map(move |result| Line { lineno: 7, pid, call: call.clone(), result })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn print_then_parse_is_identity(l in line()) {
        let text = format_line(&l);
        let back = parse_line(&text, 7).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, l, "{}", text);
    }

    #[test]
    fn parsing_any_text_never_panics(s in "\\PC{0,80}") {
        let _ = parse_trace(&s);
    }

    #[test]
    fn parsing_call_shaped_text_never_panics(name in "[a-z_0-9]{1,12}", args in "[A-Za-z0-9_|,\" x<>/\\\\.-]{0,60}", res in "[-=0-9A-Za-z ?()]{0,20}") {
        let _ = parse_trace(&format!("{name}({args}){res}\n"));
    }
}

fn err_at(text: &str) -> (usize, usize, String) {
    let e = parse_trace(text).unwrap_err();
    (e.line, e.column, e.message)
}

#[test]
fn errors_name_line_and_column() {
    let (l, c, m) = err_at("maps()\n\nmmap(NULL, 4096, PROT_READ|MAP_SHARED, MAP_PRIVATE, -1, 0)\n");
    assert_eq!((l, c), (3, 28), "{m}");
    let (l, c, _) = err_at("frobnicate(1)\n");
    assert_eq!((l, c), (1, 1));
    let (l, c, m) = err_at("openat(AT_FDCWD, \"abc\"..., O_RDONLY)\n");
    assert_eq!((l, c), (1, 18));
    assert!(m.contains("cut"), "{m}");
    let (_, _, m) = err_at("munmap(0x1000)\n");
    assert!(m.contains("missing its argument `length` (1 given)"), "{m}");
    let (_, c, _) = err_at("munmap(0x1000, 1, 2)\n");
    assert_eq!(c, 19);
    let (_, _, m) = err_at("vfork()\n");
    assert!(m.contains("vfork"), "{m}");
    let (_, _, m) = err_at("clone(child_stack=NULL, flags=CLONE_VM|SIGCHLD)\n");
    assert!(m.contains("CLONE_VM"), "{m}");
    let (_, _, m) = err_at("maps() = 0\n");
    assert!(m.contains("no result"), "{m}");
    let (_, _, m) = err_at("munmap(0x1000, 4096) = -1 ENOTANERRNO\n");
    assert!(m.contains("unknown errno"), "{m}");
    let (_, _, m) = err_at("munmap(0x1000, 4096) = SIGSEGV\n");
    assert!(m.contains("cannot return"), "{m}");
    let (_, _, m) = err_at("munmap(0x1000, 4096) junk\n");
    assert!(m.contains("unexpected"), "{m}");
    let (l, _, _) = err_at("# window: 2000-1000\n");
    assert_eq!(l, 1);
}

#[test]
fn strace_decorations_are_accepted() {
    let t = parse_trace(
        "[pid  1001] mmap(NULL, 4096, PROT_READ, MAP_SHARED, 3</tmp/x (deleted)>, 0) = 0x7f0000000000 <0.000012>\n\
         munmap(0x7f0000000000, 4096) = -1 EINVAL (Invalid argument)\n\
         fcntl(3, F_GET_SEALS) = 0x1 (seals F_SEAL_SEAL)\n\
         exit_group(0) = ?\n\
         openat(AT_FDCWD, \"a\\x41\\101\\n\", O_RDWR|O_CREAT, 0600) = 3 # comment \"quoted\"\n",
    )
    .unwrap();
    assert_eq!(t.lines[0].pid, Some(1001));
    assert_eq!(t.lines[1].result, Some(Outcome::Error(22)));
    assert_eq!(t.lines[2].result, Some(Outcome::Value(1)));
    assert_eq!(t.lines[3].result, Some(Outcome::NoReturn));
    assert_eq!(t.lines[4].call, Call::Openat { dirfd: -100, path: b"aAA\n".to_vec(), flags: 0o102, mode: 0o600 });
}

#[test]
fn headers_set_the_scope() {
    let t = parse_trace("# whole-space\nmaps()\n").unwrap();
    assert_eq!(t.scope, Some(vmaspace_trace::Scope::WholeSpace));
    let t = parse_trace("# window: 0x1000-2000\nmaps()\n").unwrap();
    assert_eq!(t.scope, Some(vmaspace_trace::Scope::Window { start: 0x1000, end: 0x2000 }));
    let t = parse_trace("maps()\n").unwrap();
    assert_eq!(t.effective_scope(), vmaspace_trace::DEFAULT_WINDOW);
}

#[test]
fn messages_suggest_and_inputs_are_strict() {
    let (_, c, m) = err_at("mmapp(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n");
    assert_eq!(c, 1);
    assert!(m.ends_with("did you mean `mmap`?"), "{m}");
    let (_, c, m) = err_at("mmap(NULL, 4096, PROT_RAED, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)\n");
    assert_eq!(c, 18);
    assert!(m.ends_with("did you mean `PROT_READ`?"), "{m}");
    // Nothing close: no suggestion.
    let (_, _, m) = err_at("frobnicate(1)\n");
    assert!(!m.contains("did you mean"), "{m}");
    // A byte order mark is not part of the first call.
    let t = parse_trace("\u{feff}munmap(0x1000, 4096) = 0\n").expect("BOM accepted");
    assert_eq!(t.lines.len(), 1);
    // Junk after a result is an error at its column; strace's annotations are not.
    let (l, c, m) = err_at("munmap(0x1000, 4096) = 0 junk\n");
    assert_eq!((l, c), (1, 26), "{m}");
    parse_trace("munmap(0x1000, 4096) = -1 EINVAL (Invalid argument) <0.000011>\n").expect("strace's text");
}
