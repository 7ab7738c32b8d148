#!/usr/bin/env bash
# Restart benchmark (issue 11): a real Prometheus 2.42 scrapes a synthetic
# fleet until its head holds an hour of 15 s data (WAL + chunks_head; the
# exporter timestamps its samples, starting 55 min in the past), then
# Vigil and Prometheus each restart on their own copy of that data dir.
# Reported per run: time from exec to /-/ready, peak RSS (VmHWM) at ready,
# RSS 10 s later, head series, and samples of one series (all must match).
#
#   scripts/bench/restart.sh record    # build the data dir (once)
#   scripts/bench/restart.sh measure   # restart both on copies, RUNS times
#
# Environment (defaults = the issue's setup):
#   WORK=/tmp/vigil-restart-bench  TARGETS=500  SERIES=2000
#   INTERVAL=5    (real seconds between scrapes; each advances 15 s of data)
#   SCRAPES=241   (240 x 15 s = one hour; two hours: SCRAPES=481 INTERVAL=8)  RUNS=3
#   VIGIL=target/release/vigil  PROMETHEUS=prometheus
# WORK may be a tmpfs (the script never mounts anything). Only PIDs this
# script starts are signalled.
set -euo pipefail

WORK=${WORK:-/tmp/vigil-restart-bench}
TARGETS=${TARGETS:-500}
SERIES=${SERIES:-2000}
INTERVAL=${INTERVAL:-5}
SCRAPES=${SCRAPES:-241}
RUNS=${RUNS:-3}
PORT_BASE=${PORT_BASE:-21100}
PROM_PORT=${PROM_PORT:-21090}
VIGIL_PORT=${VIGIL_PORT:-21091}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VIGIL=${VIGIL:-$ROOT/target/release/vigil}
PROMETHEUS=${PROMETHEUS:-prometheus}

mkdir -p "$WORK"
log() { echo "[$(date +%T)] $*" >&2; }

# Seconds from now until $url answers 200 (fails if $pid dies).
ready_wait() {
  local url=$1 pid=$2 limit=$3 start now
  start=$(date +%s.%N)
  while true; do
    if curl -fs -o /dev/null "$url"; then
      now=$(date +%s.%N)
      echo "$now - $start" | bc
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { log "process $pid died"; return 1; }
    now=$(date +%s.%N)
    if (($(echo "$now - $start > $limit" | bc))); then log "timeout"; return 1; fi
    sleep 0.02
  done
}

kb() { awk -v k="$1" '$1==k":" {print $2}' "/proc/$2/status"; }

metric() { # port name -> value on /metrics (an unlabelled metric)
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {printf "%.0f\n", $2}'
}

query() { # port promql [time] -> first value
  curl -fsG "http://127.0.0.1:$1/api/v1/query" --data-urlencode "query=$2" ${3:+--data-urlencode "time=$3"} |
    sed -n 's/.*"value":\[[0-9.]*,"\([^"]*\)"\].*/\1/p'
}

record() {
  [[ -x $WORK/fast_fleet ]] || rustc --edition 2021 -O "$HERE/fast_fleet.rs" -o "$WORK/fast_fleet"
  rm -rf "$WORK/prom"
  # Prometheus drops samples more than 10 min ahead of its clock, and
  # (once `up` is written at real time) more than an hour behind it. The
  # synthetic clock gains 15 - INTERVAL s per scrape on real time: start
  # it so that it ends 5 min ahead, and refuse settings that cannot fit
  # (two hours need INTERVAL=8).
  local gain=$((SCRAPES * (15 - INTERVAL)))
  if ((gain > 65 * 60)); then
    echo "SCRAPES=$SCRAPES at INTERVAL=$INTERVAL gains $((gain / 60)) min on real time; at most 65 fit" >&2
    exit 2
  fi
  local start_ms=$((($(date +%s) - gain + 5 * 60) / 15 * 15 * 1000))
  "$WORK/fast_fleet" --targets "$TARGETS" --series "$SERIES" --port-base "$PORT_BASE" \
    --start "$start_ms" --step 15 --scrapes "$SCRAPES" 2>"$WORK/fleet.log" &
  local fleet=$!
  {
    echo "global: {scrape_interval: ${INTERVAL}s, scrape_timeout: ${INTERVAL}s}"
    echo "scrape_configs:"
    echo "  - job_name: fleet"
    echo "    static_configs:"
    echo "      - targets:"
    for ((i = 0; i < TARGETS; i++)); do echo "        - 127.0.0.1:$((PORT_BASE + i))"; done
  } >"$WORK/record.yml"
  "$PROMETHEUS" --config.file="$WORK/record.yml" --storage.tsdb.path="$WORK/prom" \
    --web.listen-address=127.0.0.1:$PROM_PORT --storage.tsdb.retention.time=30d \
    2>"$WORK/prom-record.log" &
  local prom=$!
  log "recording: prometheus $prom, fleet $fleet; about $((SCRAPES * INTERVAL / 60)) min"
  # Done when every target has served its last step (the fleet counts).
  local want=$((TARGETS * SCRAPES)) served series
  while true; do
    sleep 15
    served=$(tail -1 "$WORK/fleet.log" | sed -n 's/^fast_fleet: \([0-9]*\) scrapes.*/\1/p')
    series=$(metric $PROM_PORT prometheus_tsdb_head_series || true)
    log "scrapes served ${served:-0} of $want, head series ${series:-?}, RSS $(kb VmRSS $prom) kB, dropped $(metric $PROM_PORT prometheus_target_scrapes_sample_out_of_bounds_total || echo ?)"
    if [[ -n $served ]] && ((served >= want)); then break; fi
  done
  # The last bodies repeat (duplicates are ignored); stop cleanly.
  sleep $((2 * INTERVAL))
  kill -TERM $prom
  wait $prom || true
  kill -TERM $fleet
  wait $fleet 2>/dev/null || true
  log "recorded: $(du -sh "$WORK/prom" | cut -f1) ($(du -sh "$WORK/prom/wal" | cut -f1) WAL, $(ls "$WORK/prom/wal" | wc -l) entries; $(du -sh "$WORK/prom/chunks_head" | cut -f1) chunks_head)"
}

measure_one() { # system run
  local sys=$1 run=$2 dir="$WORK/copy" pid secs hwm rss port logf series samples cpu
  rm -rf "$dir"
  cp -a "$WORK/prom" "$dir"
  sync
  printf 'global: {scrape_interval: 1m}\nscrape_configs: []\n' >"$WORK/empty.yml"
  logf="$WORK/$sys-restart-$run.log"
  if [[ $sys == prometheus ]]; then
    port=$PROM_PORT
    "$PROMETHEUS" --config.file="$WORK/empty.yml" --storage.tsdb.path="$dir" \
      --web.listen-address=127.0.0.1:$port --storage.tsdb.retention.time=30d 2>"$logf" &
  else
    port=$VIGIL_PORT
    "$VIGIL" --config.file="$WORK/empty.yml" --storage.tsdb.path="$dir" \
      --web.listen-address=127.0.0.1:$port --storage.tsdb.retention.time=30d >"$logf" 2>&1 &
  fi
  pid=$!
  secs=$(ready_wait "http://127.0.0.1:$port/-/ready" $pid 3600)
  hwm=$(kb VmHWM $pid)
  # CPU seconds (user + system) spent until ready: less sensitive than
  # wall time to other load on a shared machine.
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
  sleep 10
  rss=$(kb VmRSS $pid)
  series=$(metric $port prometheus_tsdb_head_series || true)
  samples=$(query $port "count_over_time(node_cpu_seconds_total{instance=\"127.0.0.1:$PORT_BASE\",cpu=\"0\",mode=\"idle\"}[1d])" $(($(date +%s) + 43200)) || true)
  kill -TERM $pid
  wait $pid || true
  printf '%-10s run %d: ready %6.1f s (CPU %6s s, load %s)  peak RSS %6d MiB  RSS+10s %6d MiB  head series %s  samples of one series %s\n' \
    "$sys" "$run" "$secs" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" $((hwm / 1024)) $((rss / 1024)) "${series:-?}" "${samples:-?}"
  rm -rf "$dir"
}

measure() {
  [[ -d $WORK/prom/wal ]] || { echo "run '$0 record' first" >&2; exit 1; }
  log "data dir $(du -sh "$WORK/prom" | cut -f1); vigil $VIGIL; $("$PROMETHEUS" --version 2>&1 | head -1)"
  for ((r = 1; r <= RUNS; r++)); do
    measure_one prometheus $r
    measure_one vigil $r
  done
}

case ${1:-} in
record) record ;;
measure) measure ;;
*)
  echo "usage: $0 record|measure" >&2
  exit 2
  ;;
esac
