//! The environment a trace asks for in its header: file systems mounted in the working
//! directory (`# mount: DIR=FSTYPE`) and huge pages reserved in the pools
//! (`# hugepages: 2M=N 1G=M`). Both sides honour it: the kernel side mounts and reserves for
//! the run and undoes it afterwards; the model starts with the same mount table and pools.

use std::fmt;

/// A file system type a `# mount:` header may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountFs {
    /// `mount -t tmpfs`.
    Tmpfs,
    /// An ext4 image on a loop device.
    Ext4,
    /// `mount -t hugetlbfs` (2 MiB pages).
    Hugetlbfs,
    /// `mount -t overlay` with an empty lower layer; its upper and work directories lie on the
    /// root file system (ext4), outside the working directory.
    Overlay,
}

impl MountFs {
    /// The type as `mount -t` spells it.
    pub fn name(self) -> &'static str {
        match self {
            MountFs::Tmpfs => "tmpfs",
            MountFs::Ext4 => "ext4",
            MountFs::Hugetlbfs => "hugetlbfs",
            MountFs::Overlay => "overlay",
        }
    }

    /// Every type, in the order error messages list them.
    pub const ALL: [MountFs; 4] = [MountFs::Tmpfs, MountFs::Ext4, MountFs::Hugetlbfs, MountFs::Overlay];
}

impl std::str::FromStr for MountFs {
    type Err = String;
    fn from_str(s: &str) -> Result<MountFs, String> {
        MountFs::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<_> = MountFs::ALL.iter().map(|f| f.name()).collect();
            format!("unknown file system `{s}` (one of {})", names.join(", "))
        })
    }
}

/// One `DIR=FSTYPE` mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The mount point as written: relative to the working directory in a trace header,
    /// absolute on the command line.
    pub dir: String,
    pub fs: MountFs,
}

impl MountSpec {
    /// Parses `DIR=FSTYPE`; the directory loses any trailing `/`.
    pub fn parse(s: &str) -> Result<MountSpec, String> {
        let (dir, fs) = s.trim().split_once('=').ok_or_else(|| format!("`{s}` is not DIR=FSTYPE"))?;
        let dir = dir.trim().trim_end_matches('/');
        if dir.is_empty() {
            return Err(format!("`{s}` names no directory"));
        }
        Ok(MountSpec { dir: dir.to_string(), fs: fs.trim().parse()? })
    }

    /// A mount point a trace header may use: a relative path below the working directory
    /// (no `..`, not the working directory itself), so the run never mounts over anything else.
    pub fn check_relative(&self) -> Result<(), String> {
        let bad = self.dir.starts_with('/') || self.dir.split('/').any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            return Err(format!("mount point `{}` is not a plain path below the working directory", self.dir));
        }
        Ok(())
    }
}

impl fmt::Display for MountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.dir, self.fs.name())
    }
}

/// The sizes of the huge page pools a trace asks for (`nr_hugepages` of each size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HugePagePools {
    /// 2 MiB pages.
    pub pages_2m: u64,
    /// 1 GiB pages.
    pub pages_1g: u64,
}

impl HugePagePools {
    /// The most memory a `# hugepages:` header may ask for (1 TiB).
    pub const MAX_BYTES: u64 = 1 << 40;

    /// Parses `N` (2 MiB pages) or any of `2M=N`, `1G=N` separated by spaces.
    pub fn parse(s: &str) -> Result<HugePagePools, String> {
        let mut pools = HugePagePools::default();
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() {
            return Err("`# hugepages:` names no pool size".into());
        }
        for w in words {
            let (slot, n) = match w.split_once('=') {
                None => (&mut pools.pages_2m, w),
                Some(("2M", n)) => (&mut pools.pages_2m, n),
                Some(("1G", n)) => (&mut pools.pages_1g, n),
                Some((size, _)) => return Err(format!("unknown huge page size `{size}` (2M or 1G)")),
            };
            *slot = n.parse().map_err(|_| format!("`{n}` is not a page count"))?;
        }
        let bytes = u128::from(pools.pages_2m) * (2 << 20) + u128::from(pools.pages_1g) * (1 << 30);
        if bytes > u128::from(Self::MAX_BYTES) {
            return Err(format!(
                "the pools would hold {} GiB: more than {} GiB is refused (the kernel side also refuses what the machine's memory cannot hold)",
                bytes >> 30,
                Self::MAX_BYTES >> 30
            ));
        }
        Ok(pools)
    }
}

/// What a trace's header asks of the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Setup {
    /// `# mount: DIR=FSTYPE` lines, in order.
    pub mounts: Vec<MountSpec>,
    /// `# hugepages: ...`: None leaves the pools as they are (the model assumes them empty).
    pub hugepages: Option<HugePagePools>,
    /// `# pkeys: on|off`: whether the machine the trace was recorded on has memory protection
    /// keys (x86's OSPKE). `vmaspace record` writes it into traces whose output depends on it
    /// (see [`crate::Trace::depends_on_pkeys`]); None: as on the machine at hand.
    pub pkeys: Option<bool>,
}

/// Parses the value of a `# pkeys:` header.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("`{other}` is not on or off")),
    }
}
