#!/usr/bin/env bash
# Runs to find each planted bug of explore's fixtures: `chaos-ctl explore` against `sweep` with the
# `benign` and `network` profiles given as many runs as explore made. Prints one row per bug:
# the run (explore) or seed (sweep) that first showed its outcome, "-" when none did.
# Usage: bench/explore-vs-sweep.sh  (after cargo build --release; needs cc, go, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
CTL=$PWD/target/release/chaos-ctl
export CHAOS_SHIM=$PWD/target/release/libchaos_shim.so
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
printf 'level = 3\n' >"$OUT/optional.cfg"
printf 'name = x\n' >"$OUT/required.cfg"
cc -O2 -o "$OUT/explore_bugs" tests/fixtures/explore_bugs.c
cc -O2 -static -o "$OUT/explore_bugs_static" tests/fixtures/explore_bugs.c
CGO_ENABLED=0 GO111MODULE=off GOCACHE="$OUT/gocache" go build -o "$OUT/explore_bugs_go" \
  tests/fixtures/go/explore_bugs.go
PY=$(python3 -c 'import sys; print(sys.executable)')

# One program: LABEL, then its outcomes as "outcome=bug" pairs, then -- and the command.
measure() {
  local label=$1; shift
  local bugs=()
  while [[ $1 != -- ]]; do bugs+=("$1"); shift; done
  shift
  local dir=$OUT/$label
  mkdir -p "$dir"
  "$CTL" explore -j 2 --timeout 3s --json --out "$dir/explore" -- "$@" >"$dir/explore.json" \
    2>/dev/null || true
  local budget
  budget=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' \
    "$dir/explore.json")
  for profile in benign network; do
    "$CTL" sweep --seeds "1..$budget" -j 2 --timeout 3s --keep-going --profile "$profile" \
      --out "$dir/$profile" -- "$@" 2>"$dir/$profile.txt" >/dev/null || true
  done
  python3 - "$dir" "$label" "$budget" "${bugs[@]}" <<'PY'
import json, re, sys
d, label, budget, bugs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
runs = json.load(open(f"{d}/explore.json"))["runs"]
def first_run(outcome):
    return next((str(i + 1) for i, r in enumerate(runs) if r["outcome"] == outcome), "-")
def first_seed(profile, outcome):
    for line in open(f"{d}/{profile}.txt"):
        m = re.match(r"chaos: seed (\d+): (.*) \([\d.]+ s\)$", line.strip())
        if m and m.group(2) == outcome:
            return m.group(1)
    return "-"
for pair in bugs:
    outcome, bug = pair.split("=", 1)
    print(f"| {label} | {bug} | {budget} | {first_run(outcome)} | "
          f"{first_seed('benign', outcome)} | {first_seed('network', outcome)} |")
PY
}

echo "| program | bug | budget | explore: run | sweep benign: seed | sweep network: seed |"
echo "|---|---|---|---|---|---|"
C_BUGS=("killed by SIGSEGV=crash on open EACCES" "timed out=hang on recv EINTR"
  "exit 1=loss on short write")
measure "C (preload)" "${C_BUGS[@]}" -- "$OUT/explore_bugs" "$OUT"
measure "C static (seccomp)" "${C_BUGS[@]}" -- "$OUT/explore_bugs_static" "$OUT"
measure "Go (seccomp)" "exit 2=panic on open error" -- "$OUT/explore_bugs_go" "$OUT"
measure "Python" "exit 1=traceback on open error" -- "$PY" -S tests/fixtures/explore_bugs.py "$OUT"
