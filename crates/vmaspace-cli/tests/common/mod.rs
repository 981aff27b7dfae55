//! What the CLI's integration tests share.

/// Whether the live-kernel side can run here: root on Linux 6.18.x. Tests that need it say
/// loudly when they skip.
pub fn kernel_usable() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    release.starts_with("6.18.") && root
}
