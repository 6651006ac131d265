#!/usr/bin/env bash
# Smoke-runs every fuzz target for N seconds each (default 30), on stable Rust:
# cargo-fuzz without a sanitizer (-s none), with debug assertions (-a).
#
#   fuzz/smoke.sh [SECONDS] [TARGET...]
#
# Builds the targets, generates the seed corpora if they are missing (corpus/ is
# git-ignored), replays the saved crash reproducers in regressions/<target>/, then
# fuzzes. Exits non-zero on the first failure; libFuzzer leaves the input in
# artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-30}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(stackcmd stream ingress api dns_response dns_files)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "== seeds"
cargo run --quiet --example gen_seeds

echo "== build"
cargo fuzz build -s none -a

for t in "${targets[@]}"; do
  opts=(-max_total_time="$secs" -print_final_stats=1)
  case "$t" in
    stackcmd) opts+=(-dict=stackcmd.dict) ;;
    stream) opts+=(-max_len=20000) ;;
    ingress) opts+=(-dict=ingress.dict -max_len=16384) ;;
    dns_response) opts+=(-max_len=1024) ;;
  esac
  if compgen -G "regressions/$t/*" >/dev/null; then
    echo "== $t: replaying regressions/$t"
    # Several runs each: some failures (nondeterminism) show only now and then.
    cargo fuzz run -s none -a "$t" regressions/"$t"/* -- -runs=10
  fi
  echo "== $t: fuzzing for $secs s"
  log="target/smoke-$t.log"
  mkdir -p target
  rc=0
  cargo fuzz run -s none -a "$t" -- "${opts[@]}" >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log"
    echo "== $t FAILED (exit $rc, full log in fuzz/$log)"
    exit 1
  fi
done
echo "== all fuzz targets ran clean"
