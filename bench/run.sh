#!/usr/bin/env bash
# `make bench`: overhead of the shim and of the seccomp backend against running without them,
# side by side in one run.
# Each configuration runs ROUNDS times, interleaved with the others; the fastest run is reported (the
# least disturbed by the rest of the machine; medians are printed too).
set -euo pipefail
cd "$(dirname "$0")/.."
ITER=${ITER:-1000000}
ROUNDS=${ROUNDS:-7}
SHIM=$PWD/target/release/libchaos_shim.so
CTL=$PWD/target/release/chaos-ctl
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -O2 -o "$OUT/pingpong" bench/pingpong.c
# Control pages as a run makes them (copied out while the run lives: a one-program run removes its
# LOG.run/ when it ends): the fast path with one mapped must stay what it is without.
PAGE_NOMATCH=$OUT/nomatch.control
PAGE_DISABLED=$OUT/disabled.control
"$CTL" run -q --policy bench/nomatch.toml --log "$OUT/nomatch.jsonl" -- sh -c "cp \"\$CHAOS_CONTROL\" $PAGE_NOMATCH"
"$CTL" run -q --policy bench/disabled.toml --log "$OUT/disabled.jsonl" -- sh -c "cp \"\$CHAOS_CONTROL\" $PAGE_DISABLED"

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fastest() { tr ' ' '\n' | grep -v '^$' | sort -n | head -1; }
# One table: its header, then a row per configuration (LABEL, its runs, native's fastest).
header() { printf '%-34s %12s %12s %12s\n' "configuration" "ns/call" "vs native" "median"; }
row() {
  local m med
  m=$(echo "$2" | fastest)
  med=$(echo "$2" | median)
  printf '%-34s %12.1f %+11.1f %12.1f\n' "$1" "$m" "$(echo "$m - $3" | bc -l)" "$med"
}

# One table per loop shape: MODE is plain (send+recv), poll (send+poll+recv), epoll (+epoll_wait).
bench_mode() {
  local mode=$1; shift
  local configs=("$@")
  declare -A RUNS=()
  for ((r = 0; r < ROUNDS; r++)); do
    for c in "${configs[@]}"; do
      case $c in
        native)   v=$(env -u LD_PRELOAD "$OUT/pingpong" "$ITER" "$mode") ;;
        empty)    v=$(LD_PRELOAD=$SHIM CHAOS_PROFILE=none "$OUT/pingpong" "$ITER" "$mode") ;;
        nomatch)  v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/nomatch.toml "$OUT/pingpong" "$ITER" "$mode") ;;
        other-op) v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/other-op.toml "$OUT/pingpong" "$ITER" "$mode") ;;
        same-class) v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/same-class.toml "$OUT/pingpong" "$ITER" "$mode") ;;
        match-p0) v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/match-p0.toml "$OUT/pingpong" "$ITER" "$mode") ;;
        page-nomatch) v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/nomatch.toml CHAOS_CONTROL=$PAGE_NOMATCH "$OUT/pingpong" "$ITER" "$mode") ;;
        page-off) v=$(LD_PRELOAD=$SHIM CHAOS_POLICY=bench/disabled.toml CHAOS_CONTROL=$PAGE_DISABLED "$OUT/pingpong" "$ITER" "$mode") ;;
        census)   v=$(LD_PRELOAD=$SHIM CHAOS_PROFILE=none CHAOS_CENSUS=1 "$OUT/pingpong" "$ITER" "$mode") ;;
        fiu-run)  v=$(fiu-run -x "$OUT/pingpong" "$ITER" "$mode") ;;
      esac
      RUNS[$c]+="$v "
    done
  done
  local base
  base=$(echo "${RUNS[native]}" | fastest)
  if [ "$mode" = churn ]; then
    echo "epoll_create1 + epoll_ctl + close, $ITER cycles, best of $ROUNDS (ns per cycle)"
  elif [ "$mode" = file ]; then
    echo "pwrite + pread on a regular file no rule targets, $ITER rounds, best of $ROUNDS (ns per intercepted call)"
  else
    echo "$mode loop on a unix socketpair, $ITER rounds, best of $ROUNDS (ns per intercepted call)"
  fi
  header
  for c in "${configs[@]}"; do
    local label=$c
    case $c in
      native) label="native (no shim)";;
      empty) label="shim, no rules (profile none)";;
      nomatch) label="shim, rules not matching fd";;
      other-op) label="shim, rule on fd, connect";;
      same-class) label="shim, rule on fd, read";;
      match-p0) label="shim, matching rule, p=0";;
      page-nomatch) label="page, rules not matching";;
      page-off) label="page, rule on fd, off";;
      census) label="shim, explore's census on";;
      fiu-run) label="libfiu fiu-run -x";;
    esac
    row "$label" "${RUNS[$c]}" "$base"
  done
  echo
}

configs=(native empty nomatch other-op same-class match-p0 page-nomatch page-off census)
command -v fiu-run >/dev/null && configs+=(fiu-run)
bench_mode plain "${configs[@]}"
bench_mode poll native empty nomatch
bench_mode epoll native empty nomatch
bench_mode file native empty nomatch
ITER=$((ITER / 10)) bench_mode churn native empty

# The seccomp backend, for what the shim cannot reach: the same loop built static (no libc calls
# for a preload library to hook) and its Go counterpart. Every call the filter hands over is a
# round trip to chaos-ctl's supervisor, whether or not a rule fires; the filter is built from the
# policy, so a policy whose rules act only on connect (other-op.toml), or none, hands over no
# send or recv, while any rule on a data call has every data call handed over. strace --inject
# is the peer tool that reaches the same programs (ptrace: the call stops twice). Fewer rounds:
# these cost µs.
SITER=${SITER:-$((ITER / 20))}
cc -O2 -static -o "$OUT/pingpong-static" bench/pingpong.c
GO_PINGPONG=
if command -v go >/dev/null; then
  GOCACHE=$PWD/target/go-fixtures/cache GO111MODULE=off CGO_ENABLED=0 go build -o "$OUT/pingpong-go" bench/pingpong.go
  GO_PINGPONG=$OUT/pingpong-go
fi
# An injection armed on a call the loop never makes, so that strace traces and stops at each
# of the loop's calls and injects nothing, as chaos-ctl with a rule that does not fire.
STRACE_INJECT=(strace -f -qq --seccomp-bpf -o /dev/null -e trace=sendto,recvfrom,read,write,connect
  -e inject=connect:error=ECONNREFUSED)
seccomp_cost() {
  local title=$1 prog=$2; shift 2
  local configs=("$@")
  declare -A RUNS=()
  for ((r = 0; r < ROUNDS; r++)); do
    for c in "${configs[@]}"; do
      case $c in
        native) v=$("$prog" "$SITER" plain) ;;
        preload) v=$(LD_PRELOAD=$SHIM CHAOS_PROFILE=none "$OUT/pingpong" "$SITER" plain) ;;
        none) v=$("$CTL" run -q --backend seccomp -P none --log "$OUT/s.jsonl" -- "$prog" "$SITER" plain) ;;
        connect) v=$("$CTL" run -q --backend seccomp --policy bench/other-op.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" plain) ;;
        nomatch) v=$("$CTL" run -q --backend seccomp --policy bench/nomatch.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" plain) ;;
        match-p0) v=$("$CTL" run -q --backend seccomp --policy bench/match-p0.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" plain) ;;
        strace) v=$("${STRACE_INJECT[@]}" "$prog" "$SITER" plain) ;;
      esac
      RUNS[$c]+="$v "
    done
  done
  local base
  base=$(echo "${RUNS[native]}" | fastest)
  echo "$title, $SITER rounds, best of $ROUNDS (ns per call)"
  header
  for c in "${configs[@]}"; do
    local label=$c
    case $c in
      native) label="native";;
      preload) label="preload: shim, no rules (dynamic)";;
      none) label="seccomp: no rules (profile none)";;
      connect) label="seccomp: rule on connect only";;
      nomatch) label="seccomp: data rules, not this fd";;
      match-p0) label="seccomp: data rule on fd, p=0";;
      strace) label="strace -f --seccomp-bpf --inject";;
    esac
    row "$label" "${RUNS[$c]}" "$base"
  done
  echo
}
if "$CTL" run -q --backend seccomp -P none --log "$OUT/s.jsonl" -- true 2>/dev/null; then
  seccomp_cost "send + recv on a unix socketpair, static C (gcc -static)" "$OUT/pingpong-static" \
    native preload none connect nomatch match-p0 strace
  if [ -n "$GO_PINGPONG" ]; then
    seccomp_cost "Write + Read on a unix socketpair, Go (net.FileConn, netpoller)" "$GO_PINGPONG" \
      native none connect nomatch match-p0 strace
  else
    echo "(no go on PATH: the Go table is left out)"; echo
  fi
else
  echo "(the seccomp backend cannot run here: its tables are left out)"; echo
fi

# Wall-clock numbers on a shared VM move by tens of ns between runs; instruction counts do not.
# callgrind counts user-space instructions; running N and 2N rounds and taking the difference
# leaves out everything done once (the shim's constructor, the program's start-up).
if command -v valgrind >/dev/null; then
  N=100000
  echo "extra user-space instructions per intercepted call (callgrind, slope between $N and $((2 * N)) rounds)"
  printf '%-8s %12s %12s %12s %12s %12s %12s %14s %14s\n' "loop" "no rules" "not matching" "fd, connect" \
    "fd, read" "match, p=0" "match, rare" "page, no match" "page, rule off"
  # The environment goes on valgrind itself: it hands LD_PRELOAD on to the program it runs.
  count() { local n=$1; shift
    env "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$OUT/pingpong" "$n" "$mode" 2>&1 |
      awk '/refs:/ {gsub(",", "", $NF); print $NF}'; }
  slope() { echo "$(count $((2 * N)) "$@") - $(count $N "$@")" | bc; }
  for mode in plain poll epoll file; do
    case $mode in plain | file) calls=$((2 * N)) ;; *) calls=$((3 * N)) ;; esac
    base=$(slope -u LD_PRELOAD)
    e=$(slope LD_PRELOAD="$SHIM" CHAOS_PROFILE=none)
    m=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/nomatch.toml)
    o=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/other-op.toml)
    c=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/same-class.toml)
    p=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/match-p0.toml)
    r=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/match-rare.toml)
    pm=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/nomatch.toml CHAOS_CONTROL="$PAGE_NOMATCH")
    po=$(slope LD_PRELOAD="$SHIM" CHAOS_POLICY=bench/disabled.toml CHAOS_CONTROL="$PAGE_DISABLED")
    per() { echo "($1 - $base) / $calls" | bc -l; }
    printf '%-8s %12.1f %12.1f %12.1f %12.1f %12.1f %12.1f %14.1f %14.1f\n' "$mode" "$(per "$e")" \
      "$(per "$m")" "$(per "$o")" "$(per "$c")" "$(per "$p")" "$(per "$r")" "$(per "$pm")" "$(per "$po")"
  done
  echo
fi

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  echo "redis-benchmark (SET/GET, 50 clients, 200000 requests) against redis-server"
  port=$((20000 + RANDOM % 20000))
  bench_redis() {
    "$@" redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    timeout 120 redis-benchmark -p "$port" -t set,get -n 200000 -c 50 -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | awk '{print $2}' | paste -sd+ | bc -l
    kill "$pid"; wait "$pid" 2>/dev/null || true
  }
  n1=$(bench_redis env); s1=$(bench_redis env LD_PRELOAD="$SHIM" CHAOS_PROFILE=none)
  n2=$(bench_redis env); s2=$(bench_redis env LD_PRELOAD="$SHIM" CHAOS_PROFILE=none)
  native=$(echo "($n1 + $n2) / 2" | bc -l); shim=$(echo "($s1 + $s2) / 2" | bc -l)
  printf '%-30s %12.0f req/s (SET+GET)\n' "native" "$native"
  printf '%-30s %12.0f req/s  (%.1f%% of native)\n' "shim, no rules" "$shim" "$(echo "100 * $shim / $native" | bc -l)"
fi

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v curl >/dev/null; then
  echo
  echo "redis-benchmark (SET/GET, 50 clients, 200000 requests) through a Toxiproxy proxy, no toxics"
  port=$((20000 + RANDOM % 20000)); api=$((port + 1))
  redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
  rpid=$!
  target/release/chaos-ctl toxiproxy --listen "127.0.0.1:$api" 2>/dev/null &
  tpid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && curl -sf "http://127.0.0.1:$api/version" >/dev/null && break; sleep 0.1; done
  relay=$(curl -sf -X POST "http://127.0.0.1:$api/proxies" \
    -d "{\"name\":\"redis\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$port\"}" |
    sed 's/.*"listen":"127.0.0.1:\([0-9]*\)".*/\1/')
  rps() { timeout 120 redis-benchmark -p "$1" -t set,get -n 200000 -c 50 -q 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | awk '{print $2}' | paste -sd+ | bc -l; }
  # In-process: redis-benchmark under `chaos-ctl run --toxiproxy-addr` (no rules) creates the same
  # proxy through the run's API and connects to its listen port; its shim connects it straight to
  # redis-server (no hop). The relay of that run listens too, unused.
  inproc_dir=$(mktemp -d)
  printf 'seed = 1\n' > "$inproc_dir/none.toml"
  inproc() {
    local api2=$((port + 2))
    timeout 180 target/release/chaos-ctl run --quiet --policy "$inproc_dir/none.toml" --log "$inproc_dir/run.jsonl" \
      --toxiproxy-addr "127.0.0.1:$api2" -- sh -c "
        listen=\$(curl -sf -X POST http://127.0.0.1:$api2/proxies -d '{\"name\":\"redis\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:$port\"}' |
          sed 's/.*\"listen\":\"127.0.0.1:\\([0-9]*\\)\".*/\\1/')
        redis-benchmark -p \"\$listen\" -t set,get -n 200000 -c 50 -q" 2>/dev/null |
      tr '\r' '\n' | grep 'requests per second' | awk '{print $2}' | paste -sd+ | bc -l
  }
  d1=$(rps "$port"); r1=$(rps "$relay"); i1=$(inproc); d2=$(rps "$port"); r2=$(rps "$relay"); i2=$(inproc)
  kill "$tpid" "$rpid"; wait "$tpid" "$rpid" 2>/dev/null || true
  rm -rf "$inproc_dir"
  direct=$(echo "($d1 + $d2) / 2" | bc -l); relayed=$(echo "($r1 + $r2) / 2" | bc -l)
  inprocess=$(echo "(${i1:-0} + ${i2:-0}) / 2" | bc -l)
  printf '%-30s %12.0f req/s (SET+GET)\n' "direct" "$direct"
  printf '%-30s %12.0f req/s  (%.1f%% of direct)\n' "through the relay" "$relayed" "$(echo "100 * $relayed / $direct" | bc -l)"
  printf '%-30s %12.0f req/s  (%.1f%% of direct)\n' "in-process (no hop)" "$inprocess" "$(echo "100 * $inprocess / $direct" | bc -l)"
fi
