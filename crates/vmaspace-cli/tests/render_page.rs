//! `vmaspace render`: the page is loaded in a real browser (Debian's headless Chromium); for
//! each case the DOM after the page's script ran is checked against what the kernel recorded,
//! and a screenshot is kept in `target/render-screenshots/` and checked for what it shows.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vmaspace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmaspace"))
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok())
}

fn work_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("render-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../render-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn render(trace: &Path, html: &Path) {
    let out = vmaspace().arg("render").arg(trace).arg("-o").arg(html).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn headless(browser: &str) -> Command {
    let mut c = Command::new(browser);
    // As root, Chromium needs --no-sandbox; the page is our own file and the network is unused.
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]);
    c
}

/// The DOM once the page's script has drawn step `step`, without the scripts themselves.
fn dom(browser: &str, html: &Path, step: usize) -> String {
    let url = format!("file://{}#step={step}", html.display());
    let out = headless(browser).arg("--dump-dom").arg(&url).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut text = String::from_utf8(out.stdout).unwrap();
    while let Some(a) = text.find("<script") {
        let b = text[a..].find("</script>").map_or(text.len(), |e| a + e + "</script>".len());
        text.replace_range(a..b, "");
    }
    text
}

/// A screenshot of step `step`, decoded: (width, height, RGBA pixels).
fn screenshot(browser: &str, html: &Path, step: usize, name: &str) -> (u32, u32, Vec<u8>) {
    let png_path = screenshots().join(format!("{name}.png"));
    let url = format!("file://{}#step={step}", html.display());
    let out = headless(browser)
        .arg(format!("--screenshot={}", png_path.display()))
        .arg("--window-size=1400,800")
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgba: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2], if channels == 4 { p[3] } else { 255 }])
        .collect();
    (info.width, info.height, rgba)
}

/// Pixels within a small distance of `rgb`.
fn pixels_of(rgba: &[u8], rgb: (u8, u8, u8)) -> usize {
    rgba.chunks(4)
        .filter(|p| {
            let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
            d(p[0], rgb.0) + d(p[1], rgb.1) + d(p[2], rgb.2) < 12
        })
        .count()
}

/// The `(start, end)` of the rectangles the page drew, with their `data-change` if any.
fn drawn(dom: &str) -> Vec<(u64, u64, Option<String>)> {
    dom.split("<rect class=\"vma ")
        .skip(1)
        .map(|r| {
            let attr = |name: &str| {
                let at = r.find(&format!("{name}=\""))? + name.len() + 2;
                Some(r[at..at + r[at..].find('"')?].to_string())
            };
            let hex = |s: Option<String>| u64::from_str_radix(&s.unwrap(), 16).unwrap();
            (hex(attr("data-start")), hex(attr("data-end")), attr("data-change"))
        })
        .collect()
}

/// The step that shows the state after line `lineno` of a trace (step 0 is the start; every
/// call, not checkpoints or comments, is one step).
fn step_after(trace_text: &str, lineno: usize) -> usize {
    trace_text
        .lines()
        .take(lineno)
        .filter(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with("maps(") && !t.starts_with("smaps(")
        })
        .count()
}

#[test]
fn splits_merges_and_unmaps_are_shown_as_the_kernel_recorded_them() {
    let Some(browser) = chromium() else {
        eprintln!("!!!!!!!! SKIPPED the render test: no chromium (apt-get install chromium) !!!!!!!!");
        return;
    };
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/traces/split_and_merge.trace");
    let text = std::fs::read_to_string(&trace).unwrap();
    let html = work_dir().join("split_and_merge.html");
    render(&trace, &html);
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing is loaded from anywhere (the SVG namespace is only a name).
    for loads in ["<script src", "<link", "src=\"http", "href=\"http", "url(http", "@import", "fetch("] {
        assert!(!page.contains(loads), "the page loads something: {loads}");
    }

    // After line 7 (mprotect of the middle page): the kernel's maps at the next checkpoint.
    let expected = std::fs::read_to_string(trace.with_extension("expected")).unwrap();
    let kernel: Vec<(u64, u64)> = expected
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.split_once('-'))
        .filter_map(|(a, b)| Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?)))
        .skip(1) // the first checkpoint's one VMA
        .take(3)
        .collect();
    let d = dom(browser, &html, step_after(&text, 7));
    assert!(d.contains("line 7: mprotect(0x100000002000, 4096, PROT_READ) = 0"), "caption");
    // The trace's checkpoints show the default window, 0x0ff000000000-0x101000000000.
    let window = |v: &[(u64, u64, Option<String>)]| -> Vec<(u64, u64)> {
        v.iter()
            .filter(|r| r.1 > 0x0ff0_0000_0000 && r.0 < 0x1010_0000_0000 && r.2.as_deref() != Some("unmapped"))
            .map(|r| (r.0, r.1))
            .collect()
    };
    let rects = drawn(&d);
    assert_eq!(window(&rects), kernel, "the VMAs drawn after the split are the kernel's");
    assert_eq!(rects.iter().filter(|r| r.2.as_deref() == Some("split")).count(), 3, "{rects:?}");

    // Line 9 makes the page writable again: one merged VMA.
    let d = dom(browser, &html, step_after(&text, 9));
    let merged: Vec<_> = drawn(&d).into_iter().filter(|r| r.2.as_deref() == Some("merged")).collect();
    assert_eq!(merged, vec![(0x1000_0000_0000, 0x1000_0000_8000, Some("merged".to_string()))]);

    // Line 15 unmaps the lot: what was there is drawn as unmapped, nothing live in the window.
    let d = dom(browser, &html, step_after(&text, 15));
    let rects = drawn(&d);
    assert!(window(&rects).is_empty(), "{rects:?}");
    assert!(rects.iter().any(|r| r.2.as_deref() == Some("unmapped")), "{rects:?}");

    // What the screenshot of the split shows: anonymous memory in its colour, the split's
    // outline, the executor's file pages.
    let (w, h, rgba) = screenshot(browser, &html, step_after(&text, 7), "split_and_merge-split");
    assert_eq!((w, h), (1400, 800));
    assert!(pixels_of(&rgba, (0x4e, 0x79, 0xa7)) > 300, "anonymous VMAs drawn");
    assert!(pixels_of(&rgba, (0xff, 0x7f, 0x0e)) > 50, "split outlines drawn");
    assert!(pixels_of(&rgba, (0xe1, 0x57, 0x59)) > 100, "the stack drawn");
}

#[test]
fn a_page_and_a_64_tib_mapping_are_both_visible_in_every_process() {
    let Some(browser) = chromium() else {
        eprintln!("!!!!!!!! SKIPPED the render test: no chromium (apt-get install chromium) !!!!!!!!");
        return;
    };
    let dir = work_dir();
    let trace = dir.join("sizes.trace");
    std::fs::write(
        &trace,
        "mmap(0x100000000000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)\n\
         mmap(0x200000000000, 0x400000000000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED|MAP_NORESERVE, -1, 0)\n\
         fork() = 1001\n\
         [pid 1001] munmap(0x100000000000, 4096)\n",
    )
    .unwrap();
    let html = dir.join("sizes.html");
    render(&trace, &html);
    let d = dom(browser, &html, 4);
    assert_eq!(d.matches("class=\"proc\"").count(), 2, "two processes after the fork");
    let widths: Vec<f64> = d
        .split("<rect class=\"vma ")
        .skip(1)
        .filter(|r| r.contains("data-start=\"100000000000\"") || r.contains("data-start=\"200000000000\""))
        .map(|r| {
            let at = r.find(" width=\"").unwrap() + 8;
            r[at..at + r[at..].find('"').unwrap()].parse().unwrap()
        })
        .collect();
    // The page in the parent, the 64 TiB mapping in both, the page unmapped in the child.
    assert_eq!(widths.len(), 4, "{widths:?}");
    assert!(widths.iter().all(|w| *w >= 12.0), "every VMA at least 12 px wide: {widths:?}");
    assert!(widths.iter().all(|w| *w <= 400.0), "no VMA takes the page: {widths:?}");
    let (_, _, rgba) = screenshot(browser, &html, 4, "sizes-after-fork");
    assert!(pixels_of(&rgba, (0x4e, 0x79, 0xa7)) > 300, "anonymous VMAs drawn");
    assert!(pixels_of(&rgba, (0xd6, 0x27, 0x28)) > 20, "the child's unmapped page outlined");
}
