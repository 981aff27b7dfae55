//! Protection keys on and off (`Settings::pkeys`): a CPU without them (x86 `OSPKE` absent) has
//! no key at all (pkey_alloc fails with EINVAL), no execute-only mappings and no `ProtectionKey` line in smaps, as
//! measured on such a 6.18 machine (`tests/scenarios/exec_only_pkey.trace` is the same trace
//! recorded with keys).

use std::sync::Arc;
use vmaspace::flags::{map, prot};
use vmaspace::{AddressSpace, Errno, Settings, Vfs};

fn space(pkeys: bool) -> AddressSpace {
    AddressSpace::with_settings(Settings { pkeys, ..Settings::default() }, Arc::new(Vfs::default()))
}

const ADDR: u64 = 0x1000_0000_0000;

fn exec_only(mm: &mut AddressSpace) -> bool {
    let flags = map::PRIVATE | map::ANONYMOUS | map::FIXED;
    mm.mmap(ADDR, 0x1000, prot::EXEC, flags, -1, 0).unwrap();
    mm.peek(ADDR, 1).is_err()
}

#[test]
fn with_keys_exec_only_is_unreadable_and_smaps_names_the_key() {
    let mut mm = space(true);
    assert!(exec_only(&mut mm));
    assert!(mm.smaps().contains("ProtectionKey:         1\n"), "{}", mm.smaps());
    assert!(mm.pkey_alloc(0, 0).is_ok());
}

#[test]
fn without_keys_exec_only_stays_readable_and_no_key_can_be_allocated() {
    let mut mm = space(false);
    assert!(!exec_only(&mut mm));
    assert!(!mm.smaps().contains("ProtectionKey"), "{}", mm.smaps());
    // Measured on a 6.18 machine without OSPKE: key 0 is not allocated either.
    assert_eq!(mm.pkey_alloc(1, 0), Err(Errno::EINVAL));
    assert_eq!(mm.pkey_alloc(0, 0), Err(Errno::EINVAL));
    // The failed call left key 0 marked allocated and could not free it.
    assert_eq!(mm.pkey_alloc(0, 0), Err(Errno::ENOSPC));
    assert_eq!(mm.pkey_free(0), Err(Errno::EINVAL));
    assert_eq!(mm.pkey_mprotect(ADDR, 0x1000, prot::READ, 0), Err(Errno::EINVAL));
    assert_eq!(mm.pkey_mprotect(ADDR, 0x1000, prot::READ, -1), Ok(0));
}
