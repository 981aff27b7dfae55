#!/usr/bin/env bash
# Builds some of Linux's own mm selftests from a Linux 6.18 source tree (outside this
# repository: their code is not ours) and records each with `vmaspace trace`, as root on the
# live kernel. What goes into the repository is the recordings (what the kernel did), not the
# tests.
#
#   scripts/record-mm-selftests.sh /path/to/linux-6.18 tests/recordings
#
# The tree needs tools/testing/selftests/{mm,clone3,pidfd,kselftest*.h}, tools/include,
# include/uapi and arch/x86/include/uapi (a checkout of any 6.18.y tree has them).
set -euo pipefail
tree=$(cd "${1:?usage: $0 LINUX_TREE OUT_DIR}" && pwd)
out=$(mkdir -p "${2:?usage: $0 LINUX_TREE OUT_DIR}" && cd "$2" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
vmaspace="${VMASPACE:-$here/target/release/vmaspace}"
[ -x "$vmaspace" ] || (cd "$here" && cargo build -q --release -p vmaspace-cli)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
mm="$tree/tools/testing/selftests/mm"
tests=(merge mseal_test mremap_test map_fixed_noreplace guard-regions mlock2-tests mremap_dontunmap)
for t in "${tests[@]}"; do
  # The kernel's uapi headers first (newer than the distribution's), tools/include last for
  # linux/compiler.h; __packed is what headers_install would have expanded; mseal's number
  # is not in older asm/unistd_64.h.
  (cd "$mm" && gcc -O2 -w -I.. -isystem "$tree/include/uapi" -isystem "$tree/arch/x86/include/uapi" \
      -idirafter "$tree/tools/include" "-D__packed=__attribute__((packed))" -D__NR_mseal=462 -D_GNU_SOURCE \
      -o "$build/$t" "$t.c" vm_util.c thp_settings.c -lm -lpthread -lrt)
done
cd "$build"
for t in "${tests[@]}"; do
  echo "== $t"
  "$vmaspace" trace -o "$out/selftest-$t" -- "./$t" > "$out/selftest-$t.log" 2>&1 || echo "$t exited with $?"
  tail -1 "$out/selftest-$t.log"
  rm -f "$out/selftest-$t.log"
done
