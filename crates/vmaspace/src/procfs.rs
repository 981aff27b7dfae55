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
        let mut out = Vec::with_capacity((self.map_count() + 1) * 80);
        for v in self.tree.iter() {
            self.show_map_vma(&mut out, v);
        }
        self.show_gate(&mut out);
        text(out)
    }

    /// The maps text of the VMAs that intersect `[start, end)` only.
    pub fn maps_window(&self, start: u64, end: u64) -> String {
        let mut out = Vec::new();
        for v in self.tree.iter_range(start, end) {
            self.show_map_vma(&mut out, v);
        }
        if self.gate.is_some_and(|g| g.start < end && g.end > start) {
            self.show_gate(&mut out);
        }
        text(out)
    }

    /// The text of `/proc/PID/smaps`: every field the kernel prints, for every VMA. The page
    /// counters (`Rss` … `Locked`, `THPeligible`) are exact where the model knows the VMA's
    /// pages: anonymous pages (each frame's mapcount, so pages shared with a fork's other side
    /// count in `Shared_Dirty` and their `Pss` is divided), page-cache pages of files, shmem,
    /// memfds, shared `/dev/zero` and secretmem (each inode's cache, with fault-around and
    /// read-around: their mapcount counts every mapping of every process), guard markers,
    /// nothing mapped. Where it does not (a VMA seeded from the kernel's maps, a file cached
    /// before the trace or by calls it does not show, asynchronous read-ahead, pages advised
    /// away lazily, VMAs that may hold THPs, KSM candidates), the value is printed as `?`:
    /// unknown, never a guess. `THPeligible` is always known.
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

    /// The gate area's smaps entry: the `[vsyscall]` page, execute-only, nothing counted.
    fn smaps_gate(&self, out: &mut String) {
        let Some(g) = self.gate else { return };
        let mut line = Vec::new();
        self.show_gate(&mut line);
        out.push_str(&text(line));
        smaps_field(out, "Size:", (g.end - g.start) >> 10);
        smaps_field(out, "KernelPageSize:", 4);
        smaps_field(out, "MMUPageSize:", 4);
        show_counters(out, Some(&MemSizeStats::default()), false);
        if self.settings.pkeys {
            let _ = writeln!(out, "ProtectionKey:  {:>8}", 0);
        }
        let _ = writeln!(out, "VmFlags: {}", VmFlags::EXEC.mnemonics());
    }

    /// Linux: `show_smap()`.
    fn smaps_of<'a>(&self, vmas: impl Iterator<Item = &'a Vma>) -> String {
        let mut out = String::new();
        let mut line = Vec::new();
        for v in vmas {
            line.clear();
            self.show_map_vma(&mut line, v);
            out.push_str(std::str::from_utf8(&line).unwrap_or_default());
            let kb = (v.end - v.start) >> 10;
            smaps_field(&mut out, "Size:", kb);
            let page_kb = crate::fault::vma_page_size(v) >> 10;
            smaps_field(&mut out, "KernelPageSize:", page_kb);
            smaps_field(&mut out, "MMUPageSize:", page_kb);
            show_counters(&mut out, self.smap_gather_stats(v).as_ref(), v.thp_eligible());
            if self.settings.pkeys {
                let _ = writeln!(out, "ProtectionKey:  {:>8}", v.flags.pkey());
            }
            let _ = writeln!(out, "VmFlags: {}", v.flags.mnemonics());
        }
        out
    }

    /// Linux: `smap_gather_stats()`, where the model knows every page the VMA maps: `None`
    /// where it does not (see [`AddressSpace::smaps`]).
    fn smap_gather_stats(&self, v: &Vma) -> Option<MemSizeStats> {
        // ksmd merges MADV_MERGEABLE pages on its own schedule.
        if !v.pages_exact || v.flags.contains(VmFlags::MERGEABLE) || v.may_hold_thp() {
            return None;
        }
        if crate::hugetlb::hugetlb_inode(v).is_some() {
            return self.smaps_hugetlb_range(v);
        }
        let mut mss = MemSizeStats::default();
        let locked = v.flags.contains(VmFlags::LOCKED);
        // A truncation unmapped every page past the new end of the file, private copies too;
        // the model forgets them lazily (see `drop_if_truncated`).
        let eof = v
            .file
            .as_ref()
            .filter(|f| !v.is_anonymous() && f.inode.is_regular())
            .map(|f| f.inode.state().size.div_ceil(crate::addr::PAGE_SIZE));
        // A page-cache page's mapcount counts the mappings of other processes, which a trace
        // that hides accesses (or a file cached before it) leaves unknown.
        let cache_known = self.settings.accesses_visible
            && v.ops.as_ref().is_some_and(|o| o.cache_fault.is_some())
            && v.file.as_ref().is_some_and(|f| !f.inode.cache().is_unknown());
        for r in self.pages.range(v.start, v.end) {
            // Runs of more than one page are anonymous memory in anonymous VMAs: no file.
            if eof.is_some_and(|e| v.pgoff_at(r.start) >= e) || v.copy_truncated(r.start, r.page) {
                continue;
            }
            match r.page {
                crate::Page::Anon(a) => mss.account_anon(a, &r, locked),
                // A pte marker, not a page.
                crate::Page::Guard => {}
                // Truncated or punched out: unmapped everywhere (forgotten lazily).
                crate::Page::File(f) if f.folio.is_evicted() => {}
                crate::Page::File(f) if cache_known => mss.account_file(f, locked),
                crate::Page::File(_) | crate::Page::Pfn | crate::Page::Huge(_) => return None,
            }
        }
        Some(mss)
    }

    /// Linux: `show_map_vma()`.
    fn show_map_vma(&self, out: &mut Vec<u8>, v: &Vma) {
        let f = v.flags;
        let mut line = LineBuf::default();
        line.hex(v.start, 8);
        line.put(b"-");
        line.hex(v.end, 8);
        line.put(&[
            b' ',
            if f.contains(VmFlags::READ) { b'r' } else { b'-' },
            if f.contains(VmFlags::WRITE) { b'w' } else { b'-' },
            if f.contains(VmFlags::EXEC) { b'x' } else { b'-' },
            if f.contains(VmFlags::MAYSHARE) { b's' } else { b'p' },
            b' ',
        ]);
        match &v.file {
            // No file: offset, device and inode are all zero.
            None => line.put(b"00000000 00:00 0 "),
            Some(file) => {
                line.hex(v.pgoff << PAGE_SHIFT, 8);
                line.put(b" ");
                line.hex(u64::from(file.inode.dev.0), 2);
                line.put(b":");
                line.hex(u64::from(file.inode.dev.1), 2);
                line.put(b" ");
                line.dec(file.inode.ino);
                line.put(b" ");
            }
        }
        match self.vma_name(v) {
            Some(name) => {
                line.pad_name();
                line.flush(out);
                out.extend_from_slice(name.as_bytes());
                out.push(b'\n');
            }
            None => {
                line.put(b"\n");
                line.flush(out);
            }
        }
    }

    fn show_gate(&self, out: &mut Vec<u8>) {
        if let Some(g) = self.gate {
            let mut line = LineBuf::default();
            line.hex(g.start, 8);
            line.put(b"-");
            line.hex(g.end, 8);
            line.put(b" --xp 00000000 00:00 0 ");
            line.pad_name();
            line.flush(out);
            out.extend_from_slice(b"[vsyscall]\n");
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
        v.anon_name().map(|n| format!("[anon:{n}]"))
    }
}

/// One maps line's fixed part, built in place and appended at once (Linux's `seq_file`
/// writes the same digits straight into its buffer).
struct LineBuf {
    buf: [u8; 128],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> LineBuf {
        LineBuf { buf: [0; 128], len: 0 }
    }
}

/// The text of a maps listing (ASCII and the names' UTF-8, so never lossy in practice).
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The 16 lower-case hex digits of `v` as the bytes of a big-endian `u128`, most significant
/// first, computed eight at a time in one register (each nibble spread to a byte, then
/// shifted into `0-9` or `a-f`).
fn hex16(v: u64) -> u128 {
    let half = |x: u32| -> u64 {
        let mut x = u64::from(x);
        x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
        x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
        x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
        // The most significant nibble is now in the most significant byte. Digits above 9
        // get 'a' - '0' - 10 more.
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        x + 0x3030_3030_3030_3030 + letters * 0x27
    };
    (u128::from(half((v >> 32) as u32)) << 64) | u128::from(half(v as u32))
}

impl LineBuf {
    /// Appends bytes of a size known at compile time (one bounds check, a fixed copy).
    fn put<const N: usize>(&mut self, b: &[u8; N]) {
        let at = self.len;
        self.buf[at..at + N].copy_from_slice(b);
        self.len = at + N;
    }
    #[inline]
    /// `seq_put_hex_ll()`: lower-case hex, zero-padded to `width` digits. Writes 16 bytes,
    /// the digits first (what follows them is overwritten later or cut off).
    fn hex(&mut self, value: u64, width: usize) {
        let digits = (((64 - value.leading_zeros()) as usize).div_ceil(4)).clamp(width, 16);
        let shifted = hex16(value) << ((16 - digits) * 8);
        self.buf[self.len..self.len + 16].copy_from_slice(&shifted.to_be_bytes());
        self.len += digits;
    }
    /// `seq_put_decimal_ull()`.
    fn dec(&mut self, value: u64) {
        if value < 10 {
            self.put(&[b'0' + value as u8]);
            return;
        }
        let digits = value.checked_ilog10().map_or(1, |l| l as usize + 1);
        let mut v = value;
        for i in (0..digits).rev() {
            self.buf[self.len + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += digits;
    }
    /// `seq_pad()`: spaces up to the name's column, then one more.
    fn pad_name(&mut self) {
        let to = self.len.max(NAME_PAD) + 1;
        self.buf[self.len..to].fill(b' ');
        self.len = to;
    }
    /// Appends the line: its first 64 bytes or the whole buffer at once (copies of fixed
    /// size), then cut to length.
    fn flush(&self, out: &mut Vec<u8>) {
        let base = out.len();
        match self.buf.first_chunk::<64>() {
            Some(short) if self.len <= 64 => out.extend_from_slice(short),
            _ => out.extend_from_slice(&self.buf),
        }
        out.truncate(base + self.len);
    }
}

impl AddressSpace {
    /// Linux: `smaps_hugetlb_range()`: a hugetlb VMA counts only its huge pages, as
    /// `Shared_Hugetlb` when another entry maps the page too (`folio_maybe_mapped_shared()`:
    /// a fork's, or another shared mapping's of the file's page), else `Private_Hugetlb`.
    /// A shared mapping of 2 MiB pages that spans a whole aligned 1 GiB range may share its
    /// page table with another process's (`want_pmd_share()`, `hugetlb_pmd_shared()`), which
    /// the model does not follow: unknown.
    fn smaps_hugetlb_range(&self, v: &Vma) -> Option<MemSizeStats> {
        let size = crate::fault::vma_page_size(v);
        const PUD_SIZE: u64 = 1 << 30;
        let pmd_share = v.flags.contains(VmFlags::MAYSHARE)
            && size < PUD_SIZE
            && v.start
                .checked_next_multiple_of(PUD_SIZE)
                .and_then(|s| s.checked_add(PUD_SIZE))
                .is_some_and(|e| e <= v.end);
        if pmd_share {
            return None;
        }
        let mut mss = MemSizeStats::default();
        for r in self.pages.range(v.start, v.end) {
            let shared = match r.page {
                // The reservation owner unmapped it from this fork (unmap_ref_private()).
                crate::Page::Huge(h) if h.is_taken_away() => continue,
                crate::Page::Huge(h) => std::sync::Arc::strong_count(h) > 1,
                // Truncated or punched out: unmapped everywhere (forgotten lazily).
                crate::Page::File(f) if f.folio.is_evicted() => continue,
                crate::Page::File(f) => f.mapcount() > 1,
                _ => return None,
            };
            if shared {
                mss.shared_hugetlb += size;
            } else {
                mss.private_hugetlb += size;
            }
        }
        Some(mss)
    }
}

/// What `smap_gather_stats()` adds up (Linux: `struct mem_size_stats`); Pss values are in
/// bytes shifted left by [`PSS_SHIFT`].
#[derive(Debug)]
struct MemSizeStats {
    resident: u64,
    shared_clean: u64,
    private_clean: u64,
    shared_dirty: u64,
    private_dirty: u64,
    /// `None` once a page's `PG_referenced` is unknown.
    referenced: Option<u64>,
    anonymous: u64,
    pss: u64,
    pss_dirty: u64,
    pss_locked: u64,
    shared_hugetlb: u64,
    private_hugetlb: u64,
}

impl Default for MemSizeStats {
    fn default() -> MemSizeStats {
        MemSizeStats {
            resident: 0,
            shared_clean: 0,
            private_clean: 0,
            shared_dirty: 0,
            private_dirty: 0,
            referenced: Some(0),
            anonymous: 0,
            pss: 0,
            pss_dirty: 0,
            pss_locked: 0,
            shared_hugetlb: 0,
            private_hugetlb: 0,
        }
    }
}

/// Linux: `PSS_SHIFT`, the fixed-point fraction bits of Pss.
const PSS_SHIFT: u32 = 12;

impl MemSizeStats {
    /// Linux: `smaps_account()` → `smaps_page_accumulate()` for a small anonymous page, which
    /// is always dirty: shared when more than one entry maps its frame, its Pss divided among
    /// them.
    fn account_anon(&mut self, a: &crate::AnonPage, r: &crate::pages::RunRef<'_>, locked: bool) {
        self.anonymous += r.end - r.start;
        let first = a.frames.first() + r.offset;
        for seg in a.frames.frames().segments(first, r.pages()) {
            self.accumulate(seg.len, u64::from(seg.mapcount), a.young, seg.referenced, true, locked);
        }
    }

    /// `smaps_account()` for a small page-cache folio: dirty when written through a shared
    /// mapping; its mapcount counts every mapping of every process (the cache's own reference
    /// is not a mapping).
    fn account_file(&mut self, f: &crate::filemap::FilePage, locked: bool) {
        let dirty = f.dirty || f.folio.is_dirty();
        self.accumulate(1, f.mapcount() as u64, f.young, f.folio.referenced.referenced(), dirty, locked);
    }

    /// Linux: `smaps_page_accumulate()` for `pages` small pages, each mapped `mapcount` times.
    fn accumulate(
        &mut self,
        pages: u64,
        mapcount: u64,
        young: Option<bool>,
        referenced: Option<bool>,
        dirty: bool,
        locked: bool,
    ) {
        let size = crate::addr::PAGE_SIZE * pages;
        self.resident += size;
        // `pte_young() || folio_test_young() || folio_test_referenced()`.
        match (young, referenced) {
            (Some(true), _) | (_, Some(true)) => self.referenced = self.referenced.map(|r| r + size),
            (Some(false), Some(false)) => {}
            (None, _) | (_, None) => self.referenced = None,
        }
        let one = crate::addr::PAGE_SIZE << PSS_SHIFT;
        let pss = pages * if mapcount >= 2 { one / mapcount } else { one };
        self.pss += pss;
        let private = mapcount < 2;
        match (dirty, private) {
            (true, true) => self.private_dirty += size,
            (true, false) => self.shared_dirty += size,
            (false, true) => self.private_clean += size,
            (false, false) => self.shared_clean += size,
        }
        if dirty {
            self.pss_dirty += pss;
        }
        if locked {
            self.pss_locked += pss;
        }
    }
}

/// Linux: `__show_smap()` from `Rss` to `THPeligible`; every value `?` when `mss` is unknown.
fn show_counters(out: &mut String, mss: Option<&MemSizeStats>, thp_eligible: bool) {
    let kb = |f: fn(&MemSizeStats) -> u64| mss.map(|m| f(m) >> 10);
    let referenced = mss.and_then(|m| m.referenced).map(|r| r >> 10);
    let pss_kb = |f: fn(&MemSizeStats) -> u64| mss.map(|m| f(m) >> (10 + PSS_SHIFT));
    let zero = mss.map(|_| 0);
    for (label, value) in [
        ("Rss:", kb(|m| m.resident)),
        ("Pss:", pss_kb(|m| m.pss)),
        ("Pss_Dirty:", pss_kb(|m| m.pss_dirty)),
        ("Shared_Clean:", kb(|m| m.shared_clean)),
        ("Shared_Dirty:", kb(|m| m.shared_dirty)),
        ("Private_Clean:", kb(|m| m.private_clean)),
        ("Private_Dirty:", kb(|m| m.private_dirty)),
        ("Referenced:", referenced),
        ("Anonymous:", kb(|m| m.anonymous)),
        ("KSM:", zero),
        ("LazyFree:", zero),
        ("AnonHugePages:", zero),
        ("ShmemPmdMapped:", zero),
        ("FilePmdMapped:", zero),
        ("Shared_Hugetlb:", kb(|m| m.shared_hugetlb)),
        ("Private_Hugetlb:", kb(|m| m.private_hugetlb)),
        ("Swap:", zero),
        ("SwapPss:", zero),
        ("Locked:", pss_kb(|m| m.pss_locked)),
    ] {
        match value {
            Some(v) => smaps_field(out, label, v),
            None => {
                let _ = writeln!(out, "{label:<16}{UNKNOWN:>8} kB");
            }
        }
    }
    let _ = writeln!(out, "THPeligible:    {:>8}", u8::from(thp_eligible));
}

/// How smaps prints a value the model does not know (a comparison with the kernel skips it).
pub const UNKNOWN: &str = "?";

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
    use super::LineBuf;

    #[test]
    fn number_writers_match_printf_formats() {
        let edges =
            [0, 1, 9, 10, 0xf, 0x10, 0xfff, 0x1234_5678, 0xffff_ffff, 0x1_0000_0000, 0x7fff_ffff_f000, u64::MAX];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let spread = (0..20_000u64).map(|i| {
            x = x.rotate_left(7) ^ i.wrapping_mul(0x2545_f491_4f6c_dd1d);
            x >> (i % 64)
        });
        for v in edges.into_iter().chain(spread) {
            assert_eq!(super::hex16(v).to_be_bytes(), *format!("{v:016x}").as_bytes());
            for width in [2, 8, 16] {
                let (mut line, mut s) = (LineBuf::default(), Vec::new());
                line.hex(v, width);
                line.flush(&mut s);
                assert_eq!(s, format!("{v:0width$x}").as_bytes(), "hex {v:#x} width {width}");
            }
            let (mut line, mut s) = (LineBuf::default(), Vec::new());
            line.dec(v);
            line.flush(&mut s);
            assert_eq!(s, v.to_string().as_bytes());
        }
    }
}
