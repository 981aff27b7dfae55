//! `/proc/PID/maps` and `/proc/PID/smaps` text (Linux: fs/proc/task_mmu.c).

use crate::AddressSpace;
use crate::addr::PAGE_SHIFT;
use crate::flags::VmFlags;
use crate::vma::Vma;
use std::fmt::Write;

/// The column the name starts at is 73: `seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)` pads the
/// prefix to 72, then one more space.
const NAME_PAD: usize = 72;

impl AddressSpace {
    /// The text of `/proc/PID/maps`.
    pub fn maps(&self) -> String {
        let mut out = String::with_capacity(self.map_count() * 80);
        for v in self.tree.iter() {
            self.show_map_vma(&mut out, v);
        }
        self.show_gate(&mut out);
        out
    }

    /// The maps text of the VMAs that intersect `[start, end)` only.
    pub fn maps_window(&self, start: u64, end: u64) -> String {
        let mut out = String::new();
        for v in self.tree.iter_range(start, end) {
            self.show_map_vma(&mut out, v);
        }
        if let Some(g) = self.gate.filter(|g| g.start < end && g.end > start) {
            let _ = g;
            self.show_gate(&mut out);
        }
        out
    }

    /// The text of `/proc/PID/smaps`. Every VMA has `Size`, `KernelPageSize`, `MMUPageSize`,
    /// `ProtectionKey` and `VmFlags`; the page counters (`Rss` … `Locked`, `THPeligible`) are
    /// printed for private anonymous VMAs whose pages the model knows exactly (see
    /// [`crate::Vma`]'s `pages_exact`), and left out elsewhere rather than printed wrong.
    pub fn smaps(&self) -> String {
        self.smaps_window(0, u64::MAX)
    }

    /// The smaps text of the VMAs that intersect `[start, end)` only.
    pub fn smaps_window(&self, start: u64, end: u64) -> String {
        let mut out = self.smaps_of(self.tree.iter_range(start, end));
        if self.gate.is_some_and(|g| g.start < end && g.end > start) {
            self.smaps_gate(&mut out);
        }
        out
    }

    /// The gate area's smaps entry: the `[vsyscall]` page, execute-only.
    fn smaps_gate(&self, out: &mut String) {
        let Some(g) = self.gate else { return };
        self.show_gate(out);
        smaps_field(out, "Size:", (g.end - g.start) >> 10);
        smaps_field(out, "KernelPageSize:", 4);
        smaps_field(out, "MMUPageSize:", 4);
        if self.settings.pkeys {
            let _ = writeln!(out, "ProtectionKey:  {:>8}", 0);
        }
        let _ = writeln!(out, "VmFlags: {}", VmFlags::EXEC.mnemonics());
    }

    fn smaps_of<'a>(&self, vmas: impl Iterator<Item = &'a Vma>) -> String {
        let mut out = String::new();
        for v in vmas {
            self.show_map_vma(&mut out, v);
            let kb = (v.end - v.start) >> 10;
            smaps_field(&mut out, "Size:", kb);
            let page_kb = crate::fault::vma_page_size(v) >> 10;
            smaps_field(&mut out, "KernelPageSize:", page_kb);
            smaps_field(&mut out, "MMUPageSize:", page_kb);
            if v.pages_exact && v.file.is_none() && !v.flags.contains(VmFlags::SHARED) {
                self.page_counters(&mut out, v);
            }
            if self.settings.pkeys {
                let _ = writeln!(out, "ProtectionKey:  {:>8}", v.flags.pkey());
            }
            let _ = writeln!(out, "VmFlags: {}", v.flags.mnemonics());
        }
        out
    }

    /// Linux: `smap_gather_stats()` for a private anonymous VMA of small pages, none shared:
    /// every present page is private, dirty, referenced and anonymous.
    fn page_counters(&self, out: &mut String, v: &Vma) {
        let anon_kb =
            4 * self.pages.range(v.start..v.end).filter(|(_, p)| matches!(p, crate::Page::Anon)).count() as u64;
        let locked = if v.flags.contains(VmFlags::LOCKED) { anon_kb } else { 0 };
        for (label, kb) in [
            ("Rss:", anon_kb),
            ("Pss:", anon_kb),
            ("Pss_Dirty:", anon_kb),
            ("Shared_Clean:", 0),
            ("Shared_Dirty:", 0),
            ("Private_Clean:", 0),
            ("Private_Dirty:", anon_kb),
            ("Referenced:", anon_kb),
            ("Anonymous:", anon_kb),
            ("KSM:", 0),
            ("LazyFree:", 0),
            ("AnonHugePages:", 0),
            ("ShmemPmdMapped:", 0),
            ("FilePmdMapped:", 0),
            ("Shared_Hugetlb:", 0),
            ("Private_Hugetlb:", 0),
            ("Swap:", 0),
            ("SwapPss:", 0),
            ("Locked:", locked),
        ] {
            smaps_field(out, label, kb);
        }
        // THP is in `madvise` mode and these VMAs never had MADV_HUGEPAGE.
        let _ = writeln!(out, "THPeligible:    {:>8}", 0);
    }

    /// Linux: `show_map_vma()`.
    fn show_map_vma(&self, out: &mut String, v: &Vma) {
        let (offset, dev, ino) = match &v.file {
            Some(f) => (v.pgoff << PAGE_SHIFT, f.inode.dev, f.inode.ino),
            None => (0, (0, 0), 0),
        };
        let line_start = out.len();
        let f = v.flags;
        push_hex(out, v.start, 8);
        out.push('-');
        push_hex(out, v.end, 8);
        out.push(' ');
        out.push(if f.contains(VmFlags::READ) { 'r' } else { '-' });
        out.push(if f.contains(VmFlags::WRITE) { 'w' } else { '-' });
        out.push(if f.contains(VmFlags::EXEC) { 'x' } else { '-' });
        out.push(if f.contains(VmFlags::MAYSHARE) { 's' } else { 'p' });
        out.push(' ');
        push_hex(out, offset, 8);
        out.push(' ');
        push_hex(out, u64::from(dev.0), 2);
        out.push(':');
        push_hex(out, u64::from(dev.1), 2);
        out.push(' ');
        push_dec(out, ino);
        out.push(' ');
        if let Some(name) = self.vma_name(v) {
            push_name(out, line_start, &name);
        }
        out.push('\n');
    }

    fn show_gate(&self, out: &mut String) {
        if let Some(g) = self.gate {
            let line_start = out.len();
            push_hex(out, g.start, 8);
            out.push('-');
            push_hex(out, g.end, 8);
            out.push_str(" --xp 00000000 00:00 0 ");
            push_name(out, line_start, "[vsyscall]");
            out.push('\n');
        }
    }

    /// Linux: `get_vma_name()`.
    fn vma_name(&self, v: &Vma) -> Option<String> {
        if let Some(f) = &v.file {
            let st = f.inode.state();
            let mut name = escape_path(&st.path);
            if !st.linked {
                name.push_str(" (deleted)");
            }
            return Some(name);
        }
        if let Some(name) = v.ops.as_ref().and_then(|o| o.name.clone()).and_then(|n| n(&v.view())) {
            return Some(name);
        }
        if v.start < self.brk && v.end > self.start_brk {
            return Some("[heap]".into());
        }
        if self.start_stack != 0 && v.start <= self.start_stack && v.end >= self.start_stack {
            return Some("[stack]".into());
        }
        v.anon_name.as_ref().map(|n| format!("[anon:{n}]"))
    }
}

/// `show_vma_header_prefix()` then `seq_pad()`: the name starts at column 73, after at least
/// one space.
fn push_name(out: &mut String, line_start: usize, name: &str) {
    let width = out.len() - line_start;
    for _ in width..NAME_PAD {
        out.push(' ');
    }
    out.push(' ');
    out.push_str(name);
}

/// `seq_put_hex_ll()`: lower-case hex, zero-padded to `width` digits.
fn push_hex(out: &mut String, value: u64, width: usize) {
    let mut buf = [b'0'; 16];
    let mut i = buf.len();
    let mut v = value;
    while v != 0 {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 0xf) as usize];
        v >>= 4;
    }
    let first = i.min(buf.len() - width.min(buf.len()));
    // ASCII digits only, so the conversion cannot fail.
    out.push_str(std::str::from_utf8(&buf[first..]).unwrap_or_default());
}

/// `seq_put_decimal_ull()`.
fn push_dec(out: &mut String, value: u64) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

fn smaps_field(out: &mut String, label: &str, kb: u64) {
    let _ = writeln!(out, "{label:<16}{kb:>8} kB");
}

/// `seq_path(m, path, "\n")`: newlines become `\012`; other bytes are kept (invalid UTF-8 is
/// shown as the replacement character).
fn escape_path(path: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(path.len());
    for &b in path {
        if b == b'\n' {
            bytes.extend_from_slice(b"\\012");
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{push_dec, push_hex};

    #[test]
    fn number_writers_match_printf_formats() {
        let values =
            [0, 1, 9, 10, 0xf, 0x10, 0xfff, 0x1234_5678, 0xffff_ffff, 0x1_0000_0000, 0x7fff_ffff_f000, u64::MAX];
        for v in values {
            for width in [2, 8, 16] {
                let mut s = String::new();
                push_hex(&mut s, v, width);
                assert_eq!(s, format!("{v:0width$x}"), "hex {v:#x} width {width}");
            }
            let mut s = String::new();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
