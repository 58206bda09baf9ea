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

# ONLY=seccomp: the seccomp backend's tables alone (the shim's, callgrind's and redis's left out).
SHIM_TABLES=yes
[ "${ONLY:-}" = seccomp ] && SHIM_TABLES=
if [ -n "$SHIM_TABLES" ]; then
  configs=(native empty nomatch other-op same-class match-p0 page-nomatch page-off census)
  command -v fiu-run >/dev/null && configs+=(fiu-run)
  bench_mode plain "${configs[@]}"
  bench_mode poll native empty nomatch
  bench_mode epoll native empty nomatch
  bench_mode file native empty nomatch
  ITER=$((ITER / 10)) bench_mode churn native empty
fi

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
# MODE (plain: send+recv; file: pwrite+pread) is the loop's; explore's census is what its
# discovery run has on (CHAOS_CENSUS=1, no rules): every call handed over and its site found.
seccomp_cost() {
  local title=$1 prog=$2 mode=$3; shift 3
  local configs=("$@")
  declare -A RUNS=()
  for ((r = 0; r < ROUNDS; r++)); do
    for c in "${configs[@]}"; do
      case $c in
        native) v=$("$prog" "$SITER" "$mode") ;;
        preload) v=$(LD_PRELOAD=$SHIM CHAOS_PROFILE=none "$OUT/pingpong" "$SITER" "$mode") ;;
        none) v=$("$CTL" run -q --backend seccomp -P none --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        connect) v=$("$CTL" run -q --backend seccomp --policy bench/other-op.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        nomatch) v=$("$CTL" run -q --backend seccomp --policy bench/nomatch.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        match-p0) v=$("$CTL" run -q --backend seccomp --policy bench/match-p0.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        file-p0) v=$("$CTL" run -q --backend seccomp --policy bench/file-p0.toml --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        census) v=$(CHAOS_CENSUS=1 "$CTL" run -q --backend seccomp -P none --log "$OUT/s.jsonl" -- "$prog" "$SITER" "$mode") ;;
        strace) v=$("${STRACE_INJECT[@]}" "$prog" "$SITER" "$mode") ;;
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
      file-p0) label="seccomp: file rule, p=0";;
      census) label="seccomp: explore's census";;
      strace) label="strace -f --seccomp-bpf --inject";;
    esac
    row "$label" "${RUNS[$c]}" "$base"
  done
  echo
}
# `chaos-ctl explore`'s discovery run (the census on, no rules: CHAOS_CENSUS=1 is what explore
# sets for it) against a plain run under the same backend with no rules, whole programs' wall
# time, start-up included: the two ping-pongs (the worst case: nothing but system calls), the
# explore tests' fixtures, and a Go HTTP client making 100 GETs of a local server (python3's).
wall_us() {
  local s
  s=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  echo $((($(date +%s%N) - s) / 1000))
}
discovery_row() {
  local title=$1; shift
  declare -A RUNS=()
  for ((r = 0; r < ROUNDS; r++)); do
    RUNS[native]+="$(wall_us "$@") "
    RUNS[run]+="$(wall_us "$CTL" run -q --backend seccomp -P none --log "$OUT/d.jsonl" -- "$@") "
    RUNS[census]+="$(wall_us env CHAOS_CENSUS=1 "$CTL" run -q --backend seccomp -P none --log "$OUT/d.jsonl" -- "$@") "
  done
  local n p c
  n=$(echo "${RUNS[native]}" | fastest); p=$(echo "${RUNS[run]}" | fastest); c=$(echo "${RUNS[census]}" | fastest)
  printf '%-44s %10.1f %10.1f %10.1f %9.2fx\n' "$title" "$(echo "$n / 1000" | bc -l)" \
    "$(echo "$p / 1000" | bc -l)" "$(echo "$c / 1000" | bc -l)" "$(echo "$c / $p" | bc -l)"
}
discovery_table() {
  echo "explore's discovery run under seccomp, wall time in ms, best of $ROUNDS"
  printf '%-44s %10s %10s %10s %10s\n' "program" "native" "run" "discovery" "disc/run"
  discovery_row "send+recv ping-pong, static C, $SITER rounds" "$OUT/pingpong-static" "$SITER" plain
  [ -n "$GO_PINGPONG" ] && discovery_row "Write+Read ping-pong, Go, $SITER rounds" "$GO_PINGPONG" "$SITER" plain
  local cfg=$OUT/explore-cfg
  mkdir -p "$cfg"
  echo "level = 3" >"$cfg/optional.cfg"
  echo "name = x" >"$cfg/required.cfg"
  cc -O2 -static -o "$OUT/explore-bugs-static" tests/fixtures/explore_bugs.c
  discovery_row "explore_bugs.c fixture, static C" "$OUT/explore-bugs-static" "$cfg"
  if [ -n "$GO_PINGPONG" ]; then
    GOCACHE=$PWD/target/go-fixtures/cache GO111MODULE=off CGO_ENABLED=0 \
      go build -o "$OUT/explore-bugs-go" tests/fixtures/go/explore_bugs.go
    discovery_row "explore_bugs.go fixture, Go" "$OUT/explore-bugs-go" "$cfg"
    GOCACHE=$PWD/target/go-fixtures/cache GO111MODULE=off CGO_ENABLED=0 \
      go build -o "$OUT/httpget" bench/httpget.go
    if command -v python3 >/dev/null; then
      local port=$((20000 + RANDOM % 20000))
      mkdir -p "$OUT/www" && head -c 4096 /dev/urandom >"$OUT/www/blob"
      (cd "$OUT/www" && exec timeout 600 python3 -m http.server "$port" --bind 127.0.0.1) >/dev/null 2>&1 &
      local server=$!
      for _ in $(seq 50); do "$OUT/httpget" "http://127.0.0.1:$port/blob" 1 2>/dev/null && break; sleep 0.1; done
      discovery_row "Go net/http client, 100 GETs of a local server" "$OUT/httpget" "http://127.0.0.1:$port/blob" 100
      kill "$server"; wait "$server" 2>/dev/null || true
    fi
  fi
  echo
}
if "$CTL" run -q --backend seccomp -P none --log "$OUT/s.jsonl" -- true 2>/dev/null; then
  seccomp_cost "send + recv on a unix socketpair, static C (gcc -static)" "$OUT/pingpong-static" plain \
    native preload none connect nomatch match-p0 census strace
  # The file loop: with no file rule its calls are not handed over at all; a file rule for
  # another path (nomatch.toml) or this one (file-p0.toml) has every pwrite and pread handed over.
  seccomp_cost "pwrite + pread on a regular file, static C (gcc -static)" "$OUT/pingpong-static" file \
    native preload none nomatch file-p0 census
  if [ -n "$GO_PINGPONG" ]; then
    seccomp_cost "Write + Read on a unix socketpair, Go (net.FileConn, netpoller)" "$GO_PINGPONG" plain \
      native none connect nomatch match-p0 census strace
  else
    echo "(no go on PATH: the Go table is left out)"; echo
  fi
  discovery_table
else
  echo "(the seccomp backend cannot run here: its tables are left out)"; echo
fi

# Wall-clock numbers on a shared VM move by tens of ns between runs; instruction counts do not.
# callgrind counts user-space instructions; running N and 2N rounds and taking the difference
# leaves out everything done once (the shim's constructor, the program's start-up).
if [ -n "$SHIM_TABLES" ] && command -v valgrind >/dev/null; then
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

if [ -n "$SHIM_TABLES" ] && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
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

if [ -n "$SHIM_TABLES" ] && command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null && command -v curl >/dev/null; then
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
