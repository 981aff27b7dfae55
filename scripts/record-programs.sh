#!/usr/bin/env bash
# Records the corpus of real programs with `vmaspace trace`, as root on the live kernel, in a
# scratch working directory: a small C program (fork, a thread, a shared file mapping, mseal),
# perl, ls, python3, sqlite3, a gcc compile and link (gcc forks and execs cc1, as, collect2 and
# ld), git, node (a JIT with threads), xz with four threads, and vmaspace itself.
#
#   scripts/record-programs.sh tests/recordings
set -euo pipefail
out=$(mkdir -p "${1:?usage: $0 OUT_DIR}" && cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
vmaspace="${VMASPACE:-$here/target/release/vmaspace}"
[ -x "$vmaspace" ] || (cd "$here" && cargo build -q --release -p vmaspace-cli)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/crates/vmaspace-cli/tests/programs/cprog.c" "$work/"
cp "$here/examples/traces/split_and_merge.trace" "$work/"
cd "$work"
gcc -O1 -o cprog cprog.c -lpthread
record() {
  local name=$1; shift
  echo "== $name: $*"
  "$vmaspace" trace -o "$out/$name" -- "$@" > /dev/null
}
record cprog ./cprog
record perl perl -e 'my %h = map { $_ => 1 } 1..1000; print scalar(keys %h), "\n"'
record ls ls -la /
record python3 python3 -c 'import json, sqlite3; print(json.dumps([1, 2]))'
record sqlite3 sqlite3 ':memory:' 'create table t(x); insert into t values (1); select * from t;'
record gcc-compile gcc -c cprog.c -o cprog.o
record gcc-link gcc -o cprog2 cprog.c -lpthread
record git git --version
record node node -e 'console.log([1, 2, 3].map(x => x * 2).join(","))'
record xz-threads xz -T4 -k -f cprog.c
record vmaspace "$vmaspace" run split_and_merge.trace
