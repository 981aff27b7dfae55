//! The confinement of the kernel side: every executor runs in a mount namespace of its own,
//! chrooted into a fresh root directory inside the run's private directory. That root holds
//! only the executor, the working directory, `/dev/zero` and `/dev/null` (bind mounts), a
//! private tmpfs at `/dev/shm`, and the mounts the trace's header asks for; there is no `/proc`
//! (the oracle reads the executor's maps from outside). Whatever path a trace names, the
//! kernel resolves it inside that root, so the run cannot create, write, truncate or delete
//! anything outside it. Mounts are made inside the namespace only, never seen by the rest of
//! the machine, and vanish with its last process; ext4 images sit on loop devices that clear
//! themselves when their file system goes (`LO_FLAGS_AUTOCLEAR`).
//!
//! Layout of a run directory (`/var/lib/vmaspace/runs/ID`):
//!
//! ```text
//! owner                   pid and start time of the run's process
//! root/                   the executor's `/`
//!   tmp/vmaspace/executor the executor
//!   tmp/vmaspace-cwd/     the working directory (trace mounts below it)
//!   dev/zero dev/null     bind mounts of the real devices
//!   dev/shm/              a private tmpfs
//! layers/                 ext4 images and overlay layers (outside the executor's root)
//! ```

use crate::OracleError;
use crate::safety::RunDir;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use vmaspace_trace::{MountFs, Setup};

/// The executor's path inside its root (it appears in the maps of whole-space scenarios).
pub const EXECUTOR_PATH: &str = "/tmp/vmaspace/executor";
/// The working directory inside the executor's root.
pub const CWD: &str = "/tmp/vmaspace-cwd";

/// Errors of [`Jail::enter`] carry `STEP_CODE * (step + 1) + errno`.
const STEP_CODE: i32 = 0x10000;

/// One mount(2) call, with its strings made before the fork.
#[derive(Debug)]
pub(crate) struct MountCall {
    source: CString,
    target: CString,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
    /// For the error message.
    pub what: String,
}

impl MountCall {
    /// Runs the mount; in the child, between fork and exec: async-signal-safe.
    fn run(&self) -> libc::c_int {
        let opt = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        // SAFETY: every pointer is a NUL-terminated string owned by `self`, or null.
        unsafe {
            libc::mount(
                self.source.as_ptr(),
                self.target.as_ptr(),
                opt(&self.fstype),
                self.flags,
                opt(&self.data).cast(),
            )
        }
    }
}

fn cstr(p: &Path) -> Result<CString, OracleError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| OracleError::Io(format!("{} holds a NUL", p.display())))
}

fn io(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> OracleError {
    move |e| OracleError::Io(format!("{what}: {e}"))
}

/// A loop device bound to an ext4 image, set to clear itself when its last user goes.
#[derive(Debug)]
struct LoopDevice {
    /// Held until the executor has mounted it; then the mount keeps the device.
    _file: File,
    path: PathBuf,
}

/// `LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE` and `LO_FLAGS_AUTOCLEAR` from `<linux/loop.h>`.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_config` (with its `struct loop_info64`), 304 bytes.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
    reserved: [u64; 8],
}

impl LoopDevice {
    /// Binds a free loop device to `image` with `LO_FLAGS_AUTOCLEAR`.
    fn attach(image: &Path) -> Result<LoopDevice, OracleError> {
        let backing = OpenOptions::new().read(true).write(true).open(image).map_err(io(image.display()))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/loop-control")
            .map_err(io("/dev/loop-control (loop devices, for ext4 mounts)"))?;
        for _ in 0..64 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(OracleError::Io(format!("no free loop device: {}", std::io::Error::last_os_error())));
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let dev = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(io(path.display()))?;
            // SAFETY: all-zero is a valid loop_config (plain integers and arrays).
            let mut config: LoopConfig = unsafe { std::mem::zeroed() };
            config.fd = backing.as_raw_fd() as u32;
            config.lo_flags = LO_FLAGS_AUTOCLEAR;
            // SAFETY: `config` is a valid struct loop_config for the duration of the call.
            let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE as _, &config as *const LoopConfig) };
            if r == 0 {
                return Ok(LoopDevice { _file: dev, path });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(OracleError::Io(format!("setting up {}: {e}", path.display())));
            }
            // Another process took this device between GET_FREE and CONFIGURE: try the next.
        }
        Err(OracleError::Io("could not get a free loop device after 64 tries".into()))
    }
}

/// What the child does to enter the jail, prepared before the fork (see [`Entry::enter`]).
#[derive(Debug)]
pub(crate) struct Entry {
    mounts: Vec<MountCall>,
    /// The executor's root, for chroot.
    root: CString,
    /// Its working directory inside the root.
    cwd: CString,
}

/// A run's confinement, made before its executor starts.
#[derive(Debug)]
pub(crate) struct Jail {
    root: PathBuf,
    pub entry: std::sync::Arc<Entry>,
    loops: Vec<LoopDevice>,
    /// Removed when the jail drops.
    _dir: RunDir,
}

impl Jail {
    /// Makes the run directory, its root and the mount calls for `setup`.
    pub fn new(setup: &Setup, executor: &[u8]) -> Result<Jail, OracleError> {
        let dir = RunDir::new()?;
        let root = dir.path.join("root");
        let layers = dir.path.join("layers");
        let cwd = root.join(CWD.trim_start_matches('/'));
        for d in [&root.join("tmp/vmaspace"), &cwd, &root.join("dev/shm"), &layers] {
            fs::create_dir_all(d).map_err(io(d.display()))?;
        }
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io("tmp"))?;
        let exe = root.join(EXECUTOR_PATH.trim_start_matches('/'));
        fs::write(&exe, executor).map_err(io("writing the executor"))?;
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).map_err(io("chmod executor"))?;
        let mut mounts = Vec::new();
        for dev in ["zero", "null"] {
            let target = root.join("dev").join(dev);
            File::create(&target).map_err(io(target.display()))?;
            mounts.push(MountCall {
                source: cstr(&Path::new("/dev").join(dev))?,
                target: cstr(&target)?,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
                what: format!("/dev/{dev}"),
            });
        }
        mounts.push(MountCall {
            source: c"tmpfs".into(),
            target: cstr(&root.join("dev/shm"))?,
            fstype: Some(c"tmpfs".into()),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(c"size=1g,mode=1777".into()),
            what: "a private /dev/shm".into(),
        });
        let mut loops = Vec::new();
        for (i, spec) in setup.mounts.iter().enumerate() {
            spec.check_relative().map_err(OracleError::Io)?;
            let target = cwd.join(&spec.dir);
            fs::create_dir_all(&target).map_err(io(target.display()))?;
            mounts.push(mount_for(&mut loops, spec.fs, i, &layers, &target, spec.to_string())?);
        }
        let entry = Entry { mounts, root: cstr(&root)?, cwd: CString::new(CWD).expect("no NUL") };
        Ok(Jail { root, entry: std::sync::Arc::new(entry), loops, _dir: dir })
    }

    /// Lets go of the loop devices once the executor has mounted them (its mounts hold them
    /// from then on, and they clear themselves when the namespace goes).
    pub fn release_loops(&mut self) {
        self.loops.clear();
    }

    /// The message for a failure to start the executor, decoding what [`Entry::enter`] reported.
    pub fn describe_failure(&self, e: &std::io::Error) -> String {
        let code = e.raw_os_error().unwrap_or(0);
        if code < STEP_CODE {
            return format!("starting the executor: {e}");
        }
        let (step, errno) = ((code / STEP_CODE - 1) as usize, std::io::Error::from_raw_os_error(code % STEP_CODE));
        match self.entry.mounts.get(step) {
            Some(m) => format!("cannot mount {} for the run: {errno} (the oracle must run as root)", m.what),
            None => format!("cannot confine the executor (mount namespace, chroot): {errno}"),
        }
    }

    /// Turns paths in maps text as a process outside the jail reads them (`ROOT/tmp/...`) into
    /// what the executor itself would read (`/tmp/...`).
    pub fn inner_text(&self, text: &str) -> String {
        let prefix = self.root.to_string_lossy();
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            match line.find(&*prefix) {
                Some(i) if line[i + prefix.len()..].starts_with('/') && line[..i].ends_with(' ') => {
                    out.push_str(&line[..i]);
                    out.push_str(&line[i + prefix.len()..]);
                }
                _ => out.push_str(line),
            }
        }
        out
    }
}

/// The mount call for one `# mount:` header, with its image or layers made.
fn mount_for(
    loops: &mut Vec<LoopDevice>,
    kind: MountFs,
    i: usize,
    layers: &Path,
    target: &Path,
    what: String,
) -> Result<MountCall, OracleError> {
    let (source, fstype, data): (CString, &std::ffi::CStr, Option<CString>) = match kind {
        MountFs::Tmpfs => (c"tmpfs".into(), c"tmpfs", Some(c"size=64m".into())),
        MountFs::Hugetlbfs => (c"none".into(), c"hugetlbfs", None),
        MountFs::Ext4 => {
            let image = layers.join(format!("ext4-{i}.img"));
            let f = File::create(&image).map_err(io(image.display()))?;
            f.set_len(32 << 20).map_err(io(image.display()))?;
            drop(f);
            run_command(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image), "mkfs.ext4 (package e2fsprogs)")?;
            let dev = LoopDevice::attach(&image)?;
            let source = cstr(&dev.path)?;
            loops.push(dev);
            (source, c"ext4", None)
        }
        MountFs::Overlay => {
            let base = layers.join(format!("overlay-{i}"));
            let mut opts = Vec::new();
            for layer in ["lower", "upper", "work"] {
                let d = base.join(layer);
                fs::create_dir_all(&d).map_err(io(d.display()))?;
                opts.push(format!("{layer}dir={}", d.display()));
            }
            let data = CString::new(opts.join(",")).map_err(|_| OracleError::Io("NUL in a path".into()))?;
            (c"overlay".into(), c"overlay", Some(data))
        }
    };
    Ok(MountCall { source, target: cstr(target)?, fstype: Some(fstype.into()), flags: 0, data, what })
}

impl Entry {
    /// Enters the jail: a new mount namespace with nothing shared with the machine's, the
    /// mounts, then chroot. Runs in the child between fork and exec, so it only makes system
    /// calls on data prepared before the fork. On failure, the error's raw code carries the
    /// errno and which step failed (see [`Jail::describe_failure`]).
    pub fn enter(&self) -> std::io::Result<()> {
        let fail = |i: usize| {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            Err(std::io::Error::from_raw_os_error(STEP_CODE * (i as i32 + 1) + errno))
        };
        let n = self.mounts.len();
        // SAFETY: unshare and mount with constant arguments or strings owned by `self`.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return fail(n);
            }
            if libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail(n);
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            if m.run() != 0 {
                return fail(i);
            }
        }
        // SAFETY: chroot and chdir on NUL-terminated strings owned by `self`.
        unsafe {
            if libc::chroot(self.root.as_ptr()) != 0 || libc::chdir(self.cwd.as_ptr()) != 0 {
                return fail(n);
            }
        }
        Ok(())
    }
}

pub(crate) fn run_command(cmd: &mut Command, what: &str) -> Result<(), OracleError> {
    let out = cmd.output().map_err(|e| OracleError::Io(format!("{what}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(OracleError::Io(format!("{what}: {} ({})", stderr.trim(), out.status)))
}
