//! Starting an address space from a `/proc/PID/maps` snapshot.
//!
//! What the text does not show is taken as a freshly started process has it: `[vvar]`,
//! `[vvar_vclock]` and `[vdso]` are special mappings (never merged), `[stack]` grows down,
//! `[heap]` is the brk area (its end is the break), anonymous writable mappings have been
//! faulted, and each distinct device and inode is one file, mapped privately unless the line
//! says `s`.

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT, is_page_aligned};
use crate::driver::{FMode, InodeState, OpenFile, VmOperations};
use crate::flags::VmFlags;
use crate::vma::{AnonVmaRef, Vma};
use crate::{AddressSpace, GateArea};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A maps snapshot line the model cannot take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedError {
    /// 1-based line number in the snapshot.
    pub line: usize,
    /// What is wrong with the line.
    pub message: String,
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for SeedError {}

struct Line<'a> {
    start: u64,
    end: u64,
    perms: &'a [u8],
    offset: u64,
    dev: (u32, u32),
    ino: u64,
    name: &'a str,
}

fn parse_line(text: &str) -> Option<Line<'_>> {
    let mut rest = text;
    let mut next = || {
        let t = rest.trim_start_matches(' ');
        let end = t.find(' ').unwrap_or(t.len());
        let (f, r) = t.split_at(end);
        rest = r;
        (!f.is_empty()).then_some(f)
    };
    let (range, perms, offset, dev, ino) = (next()?, next()?, next()?, next()?, next()?);
    let (s, e) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    let name = rest.trim_start_matches(' ');
    Some(Line {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        perms: perms.as_bytes().get(..4).filter(|_| perms.len() == 4)?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: (u32::from_str_radix(maj, 16).ok()?, u32::from_str_radix(min, 16).ok()?),
        ino: ino.parse().ok()?,
        name,
    })
}

/// The operations of a special mapping (`special_mapping_vmops`): named, with a close
/// operation, never split.
fn special_ops(name: &str) -> Arc<VmOperations> {
    let label: Arc<str> = Arc::from(name);
    Arc::new(VmOperations {
        label: "special_mapping_vmops",
        close: Some(Arc::new(|_| {})),
        may_split: Some(Arc::new(|_, _| Err(crate::Errno::EINVAL))),
        fault: Some(Arc::new(|_, _| crate::driver::VmFault::Mapped)),
        name: Some(Arc::new(move |_| Some(label.to_string()))),
        ..VmOperations::default()
    })
}

/// A file of a snapshot, opened once per (device, inode), with the operations its file system
/// gives such mappings.
type SeededFile = (Arc<OpenFile>, Option<Arc<VmOperations>>);

impl AddressSpace {
    /// Replaces the address space's VMAs with those of a maps snapshot.
    pub fn seed_from_maps(&mut self, text: &str) -> Result<(), SeedError> {
        let mut files: HashMap<((u32, u32), u64), SeededFile> = HashMap::new();
        let mut sizes: HashMap<((u32, u32), u64), u64> = HashMap::new();
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let err = |m: &str| SeedError { line: i + 1, message: m.to_string() };
            let l = parse_line(raw).ok_or_else(|| err("not a maps line"))?;
            if l.start >= l.end || !is_page_aligned(l.start) || !is_page_aligned(l.end) || !is_page_aligned(l.offset) {
                return Err(err("the range or offset is not page aligned"));
            }
            if l.ino != 0 || l.dev != (0, 0) {
                let end = l.offset + (l.end - l.start);
                let s = sizes.entry((l.dev, l.ino)).or_insert(0);
                *s = (*s).max(end);
            }
            lines.push((i + 1, l));
        }
        let mut prev_end = 0;
        for (lineno, l) in lines {
            if l.name == "[vsyscall]" {
                self.gate = Some(GateArea { start: l.start, end: l.end });
                continue;
            }
            if l.start < prev_end {
                return Err(SeedError { line: lineno, message: "overlaps the line before it".into() });
            }
            prev_end = l.end;
            let mut vma = self.seed_vma(&l, &mut files, &sizes);
            vma.pages_exact = false;
            // A VMA with an anon_vma was written, so a page table maps part of it; within one
            // 2 MiB region, that is the region's (a bigger one's is anywhere: not assumed).
            if vma.anon_vma.is_some() && vma.start >> PMD_SHIFT == (vma.end - 1) >> PMD_SHIFT {
                self.pages.add_page_tables(vma.start, vma.end);
            }
            self.counters.account(vma.flags, vma.pages() as i64);
            if vma.flags.contains(VmFlags::LOCKED) {
                self.counters.locked_vm += vma.pages();
            }
            self.tree.insert(vma);
        }
        if self.brk == 0 {
            self.set_brk(self.program_image_end());
        }
        Ok(())
    }

    /// Where the break of a process without `[heap]` is: the end of its program image (with
    /// ASLR off the kernel puts `start_brk` right after the bss, `load_elf_binary`'s
    /// `elf_brk`): the lowest VMA's file's segments, holes between them allowed, and the
    /// anonymous bss right after the last of them.
    fn program_image_end(&self) -> u64 {
        let mut vmas = self.tree.iter();
        let Some(first) = vmas.next().filter(|v| v.file.is_some()) else { return 0 };
        let image = first.file.as_ref().map(|f| Arc::as_ptr(&f.inode));
        let mut end = first.end;
        for v in vmas {
            if v.file.as_ref().map(|f| Arc::as_ptr(&f.inode)) == image {
                end = v.end;
            } else if v.file.is_none() && v.start == end {
                end = v.end;
                break;
            } else {
                break;
            }
        }
        end
    }

    fn seed_vma(
        &mut self,
        l: &Line<'_>,
        files: &mut HashMap<((u32, u32), u64), SeededFile>,
        sizes: &HashMap<((u32, u32), u64), u64>,
    ) -> Vma {
        let p = l.perms;
        let mut flags = VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
        for (c, f) in [(b'r', VmFlags::READ), (b'w', VmFlags::WRITE), (b'x', VmFlags::EXEC)] {
            if p.contains(&c) {
                flags |= f;
            }
        }
        let shared = p[3] == b's';
        if shared {
            flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
        }
        match l.name {
            "[vvar]" | "[vvar_vclock]" => {
                let flags = VmFlags::READ
                    | VmFlags::MAYREAD
                    | VmFlags::PFNMAP
                    | VmFlags::IO
                    | VmFlags::DONTEXPAND
                    | VmFlags::DONTDUMP;
                let mut v = Vma::new(l.start, l.end, 0, flags);
                v.ops = Some(special_ops(l.name));
                return v;
            }
            "[vdso]" => {
                let mut v = Vma::new(l.start, l.end, 0, flags | VmFlags::DONTEXPAND);
                v.ops = Some(special_ops(l.name));
                return v;
            }
            _ => {}
        }
        let anon = l.ino == 0 && l.dev == (0, 0);
        if flags.contains(VmFlags::WRITE) && !shared {
            flags |= VmFlags::ACCOUNT;
        }
        if anon {
            if l.name == "[stack]" {
                flags |= VmFlags::GROWSDOWN;
                self.start_stack = l.end - 8;
            }
            if l.name == "[heap]" {
                self.start_brk = l.start;
                self.brk = l.end;
            }
            let mut v = Vma::new(l.start, l.end, l.start >> PAGE_SHIFT, flags);
            if flags.contains(VmFlags::WRITE) {
                self.next_anon_vma += 1;
                v.anon_vma = Some(AnonVmaRef::new(self.next_anon_vma, false));
            }
            return v;
        }
        let key = (l.dev, l.ino);
        let file = files.entry(key).or_insert_with(|| {
            let (path, linked) = match l.name.strip_suffix(" (deleted)") {
                Some(p) => (p, false),
                None => (l.name, true),
            };
            let size = sizes.get(&key).copied().unwrap_or(PAGE_SIZE);
            let state =
                InodeState { path: path.replace("\\012", "\n").into_bytes(), linked, size, ..InodeState::default() };
            // The file system the snapshot's device or path names makes the inode, and says
            // what operations its mappings carry.
            let (inode, ops) = self.vfs.snapshot_inode(l.ino, l.dev, state);
            let file =
                self.vfs.open_inode(inode, FMode { read: true, write: shared && flags.contains(VmFlags::WRITE) });
            (file, ops)
        });
        let mut v = Vma::new(l.start, l.end, l.offset >> PAGE_SHIFT, flags);
        v.ops = file.1.clone();
        v.file = Some(file.0.clone());
        v
    }
}

impl AddressSpace {
    /// Linux: `execve()` for a recording: a new address space, seeded from `image` (the maps
    /// the kernel showed right after the exec), with the same settings, files and descriptors
    /// (the model does not track `O_CLOEXEC`, so every descriptor stays). The old address space
    /// is the caller's to release ([`AddressSpace::exit_mmap`]).
    ///
    /// The exec placed the image's first hint-less mappings (the interpreter, or a static
    /// program's vDSO) top-down from `mmap_base`, so the highest mapping below the stack ends at
    /// it: with address-space randomisation `mmap_base` is not the default
    /// (`arch_pick_mmap_layout()`), and the new address space takes it from there.
    pub fn exec(&self, image: &str) -> Result<AddressSpace, SeedError> {
        let mut mm = AddressSpace::bare(self.settings.clone(), self.vfs.clone());
        mm.fds = self.fds.clone();
        mm.seed_from_maps(image)?;
        if mm.start_stack != 0
            && let Some(below) =
                mm.tree.iter().filter(|v| v.end <= mm.start_stack && !v.flags.contains(VmFlags::GROWSDOWN)).last()
        {
            mm.settings.mmap_base = below.end;
        }
        Ok(mm)
    }
}
