#!/usr/bin/env bash
# The fleet at 10k and 100k tokens, in one command: release build, generated manifests (`manifest-bench generate
# --files 1`: builtin issuer, encrypted-file store), and for each size N:
#   apply      N new tokens from empty state: seconds, tokens/s, peak RSS (and, over sizes, how the time grows)
#   plan       a no-op `tokenctl plan` after that apply: seconds (best of REPEAT)
#   watch      `reconcile --watch --interval 5s` with nothing due: ms of process CPU per pass over WINDOW seconds
#   idle       `reconcile --watch --interval 1h`: the process's CPU over WINDOW seconds, in % of one core
#   rotate     all N at once (`tokenctl rotate --issuer local --reason … --auto-approve`): seconds, tokens/s, peak RSS
#   healthz    `tokenctl serve`, wrk -t2 -c32 for DURATION seconds on GET /healthz: requests/s
#   introspect the same on POST /introspect, cycling through 1,000 real tokens of the fleet: requests/s, the ratio to
#              /healthz, p99 latency
#   pg apply, pg plan   apply and the no-op plan again with the state on PostgreSQL (a throwaway cluster from
#              Tests/Postgres/pg-cluster.sh), with the ratio to the SQLite figures; skipped without postgresql-15
#
#   Benchmarks/fleet.sh                                   # SIZES="10000 100000", WINDOW=60, DURATION=15, REPEAT=3
#   SIZES=10000 WINDOW=30 DURATION=10 Benchmarks/fleet.sh
#   POSTGRES=0 Benchmarks/fleet.sh                        # without the PostgreSQL rows
#   SKIP_BUILD=1 Benchmarks/fleet.sh                      # use the binaries already in .build/release
#   ROWS="introspect" SIZES=100000 Benchmarks/fleet.sh    # only some rows (apply always runs: it makes the fleet)
#
# Needs python3 and curl; wrk (apt-get install wrk) for the introspection rows; postgresql-15 for the PostgreSQL rows.
# The manifests are generated once under ${BENCH_DATA:-bench-data}/fleet-N (git-ignored); the state, the store and the
# introspection tokens (delivered only to fleet-N/introspect-tokens.env, mode 0600, never printed) are removed after
# each size. Every process the script starts, the PostgreSQL cluster and the temporary directory go on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  swift build -c release --product tokenctl >/dev/null
  swift build -c release --product manifest-bench >/dev/null
fi
tokenctl=$PWD/.build/release/tokenctl
bench=$PWD/.build/release/manifest-bench
for binary in "$tokenctl" "$bench"; do
  [ -x "$binary" ] || { echo "fleet.sh: $binary is missing (run without SKIP_BUILD=1 to build it)" >&2; exit 1; }
done
sizes=${SIZES:-10000 100000}
window=${WINDOW:-60}
duration=${DURATION:-15}
repeat=${REPEAT:-3}
data=${BENCH_DATA:-bench-data}
mkdir -p "$data"
data=$(cd "$data" && pwd)
# The SQLite rows use the state beside the manifests, whatever the caller's environment says.
unset TOKENCTL_STATE_URL

work=$(mktemp -d /tmp/tokenctl-fleet-XXXXXX)
chmod 755 "$work"   # the PostgreSQL cluster below runs as the postgres user when this runs as root
pids=()             # processes started here that may still run
cluster=""          # the running PostgreSQL cluster, if any
fleet=""            # the fleet directory whose state and tokens go on exit
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  [ -z "$cluster" ] || Tests/Postgres/pg-cluster.sh stop "$cluster" || true
  [ -z "$fleet" ] || rm -rf "$fleet/.tokenctl" "$fleet/secrets.vault" "$fleet/introspect-tokens.env"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command with its output in a log file; prints "SECONDS PEAK_RSS_KIB", or the log's end and fails.
cat > "$work/measure.py" <<'PY'
import resource, subprocess, sys, time
log, command = sys.argv[1], sys.argv[2:]
with open(log, "w") as out:
    start = time.monotonic()
    status = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
if status != 0:
    sys.stderr.write(f"fleet.sh: '{' '.join(command[1:3])}' exited {status}; the end of its output:\n")
    with open(log) as text:
        sys.stderr.writelines(text.readlines()[-20:])
    sys.exit(1)
print(f"{seconds:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
PY
# measure LOG COMMAND…: sets seconds and rss (KiB); stops the script when the command fails.
measure() {
  local out
  out=$(python3 "$work/measure.py" "$@") || exit 1
  read -r seconds rss <<<"$out"
}

rows=${ROWS:-plan watch idle rotate introspect postgres}
want() { [[ " $rows " == *" $1 "* ]]; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
row() { printf '%-12s %7s  %s\n' "$1" "$2" "$3"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
metric() { curl -s "http://$1/metrics" | awk -v name="$2" '$1 == name {print $2}'; }

# Starts a server in the background (log file, command…); sets pid and address once it listens.
start_server() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  pid=$!
  pids=("$pid")
  address=""
  for _ in $(seq 1 600); do
    address=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|listening on http://||' || true)
    [ -n "$address" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "fleet.sh: '$2' did not start listening; its output:" >&2
  tail -20 "$log" >&2
  exit 1
}

stop_server() {
  kill -TERM "$pid"
  wait "$pid" || true
  pids=()
}

# Starts the controller (interval) and waits for its first successful pass (the first ones may wait for the files, just
# written by apply's store, to settle).
run_controller() {
  start_server "$work/controller.log" "$tokenctl" reconcile --watch -f "$fleet" --interval "$1" --listen 127.0.0.1:0
  for _ in $(seq 1 1500); do
    [ "$(metric "$address" 'tokenctl_reconcile_passes_total{result="success"}' | cut -d. -f1)" -ge 1 ] 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  echo "fleet.sh: the controller finished no pass; its output:" >&2
  tail -20 "$work/controller.log" >&2
  exit 1
}

# Best of REPEAT no-op plans, in seconds.
best_plan() {
  local seconds rss times=()
  for _ in $(seq 1 "$repeat"); do
    measure "$work/plan.log" "$tokenctl" plan -f "$fleet"
    times+=("$seconds")
  done
  grep -q "^No changes" "$work/plan.log" || { echo "fleet.sh: warning: the plan after apply is not empty:" >&2; tail -3 "$work/plan.log" >&2; }
  printf '%s\n' "${times[@]}" | sort -g | head -1
}

# What apply or rotate says it did: "N changes applied, F failed".
outcome() { sed -n 's/^Apply complete: \(.*failed\)\..*/\1/p' "$1"; }

pg_bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
psql=psql
[ -x "$pg_bin/psql" ] && psql=$pg_bin/psql
postgres_missing=""
if [ "${POSTGRES:-1}" = 0 ]; then
  postgres_missing="POSTGRES=0"
elif [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ] || ! command -v "$psql" >/dev/null; then
  postgres_missing="no initdb, pg_ctl or psql: apt-get install postgresql-15"
fi

declare -A result
echo "fleet.sh: sizes $sizes; watch window ${window}s; wrk ${duration}s; plans best of $repeat; $(nproc) cores"
for n in $sizes; do
  fleet="$data/fleet-$n"
  if [ ! -f "$fleet/tokens-00.yaml" ]; then
    "$bench" generate --tokens "$n" --files 1 --out "$fleet" >/dev/null
  fi
  grep -q "type: encrypted-file" "$fleet/tokens-00.yaml" || { echo "fleet.sh: $fleet has no encrypted-file store" >&2; exit 1; }
  rm -rf "$fleet/.tokenctl" "$fleet/secrets.vault"
  echo "== $n tokens ($fleet)"

  # Apply from empty state, then the no-op plan.
  measure "$work/apply.log" "$tokenctl" apply -f "$fleet" --auto-approve
  result[apply:$n]=$seconds
  row apply "$n" "$(calc '%8.2f s  %7.0f tokens/s  peak RSS %5d MiB' "$seconds, $n / $seconds, $rss / 1024")  ($(outcome "$work/apply.log"))"
  if want plan || want postgres; then
    seconds=$(best_plan)
    result[plan:$n]=$seconds
    row plan "$n" "$(calc '%8.2f s  (no changes)' "$seconds")"
  fi

  # The controller with nothing due: CPU per pass, then the idle process.
  if want watch; then
  run_controller 5s
  start_ticks=$(cpu_ticks "$pid"); start_passes=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_count)
  sleep "$window"
  end_ticks=$(cpu_ticks "$pid"); end_passes=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_count)
  sum=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_sum)
  stop_server
  passes=$((end_passes - start_passes))
  row watch "$n" "$(calc '%8.0f ms CPU per pass  (%d passes in %d s, --interval 5s; mean pass wall %.0f ms)' \
    "($end_ticks - $start_ticks) / $ticks_per_second / ($passes > 0 ? $passes : 1) * 1000, $passes, $window, $sum / $end_passes * 1000")"
  fi
  if want idle; then
  run_controller 1h
  start_ticks=$(cpu_ticks "$pid")
  sleep "$window"
  end_ticks=$(cpu_ticks "$pid")
  stop_server
  row idle "$n" "$(calc '%8.3f %% of one core  (%.2f s CPU in %d s, --interval 1h)' \
    "($end_ticks - $start_ticks) / $ticks_per_second / $window * 100, ($end_ticks - $start_ticks) / $ticks_per_second, $window")"
  fi

  # Rotate every token at once.
  if want rotate; then
  measure "$work/rotate.log" "$tokenctl" rotate -f "$fleet" --issuer local --reason "fleet benchmark: rotate every token" --auto-approve
  result[rotate:$n]=$seconds
  row rotate "$n" "$(calc '%8.2f s  %7.0f tokens/s  peak RSS %5d MiB' "$seconds, $n / $seconds, $rss / 1024")  ($(outcome "$work/rotate.log"))"
  fi

  # Introspection under wrk, cycling through 1,000 current tokens spread over the fleet. Their secrets leave the
  # encrypted store the supported way: an apply of a copy of the manifests in which these tokens are also delivered to
  # a dotenv file under the fleet directory (1,000 redeliveries, nothing issued; the copy's directory has the fleet's
  # name, so it counts as the same manifest roots). Nothing is printed; the file goes when the size is done.
  if ! want introspect; then
    :
  elif command -v wrk >/dev/null; then
    mkdir -p "$work/introspect/fleet-$n"
    python3 - "$fleet" "$work/introspect/fleet-$n/tokens-00.yaml" <<'PY'
import re, sys
fleet, manifest = sys.argv[1:]
documents = open(f"{fleet}/tokens-00.yaml").read().split("\n---\n")
tokens = [i for i, d in enumerate(documents) if re.search(r"^kind: Token$", d, re.M)]
for i in tokens[::max(len(tokens) // 1000, 1)][:1000]:
    key = re.search(r"^  namespace: (\S+)$", documents[i], re.M).group(1) + "/" + re.search(r"^  name: (\S+)$", documents[i], re.M).group(1)
    documents[i] = documents[i].rstrip("\n") + f"\n    - store: introspect\n      key: {key}\n"
text = "\n---\n".join(documents).replace("path: secrets.vault", f"path: {fleet}/secrets.vault", 1)
text = text.rstrip("\n") + ("\n---\napiVersion: tokenctl/v1\nkind: Store\nmetadata: {name: introspect}\n"
                            f"spec: {{type: dotenv, dotenv: {{path: {fleet}/introspect-tokens.env}}}}\n")
open(manifest, "w").write(text)
PY
    measure "$work/deliver.log" "$tokenctl" apply -f "$work/introspect/fleet-$n" --state-dir "$fleet/.tokenctl" --auto-approve
    delivered=$(wc -l <"$fleet/introspect-tokens.env")
    cat > "$work/introspect.lua" <<LUA
tokens = {}
for line in io.lines("$fleet/introspect-tokens.env") do tokens[#tokens + 1] = line:match("=(.*)$") end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/introspect", {["Content-Type"] = "application/x-www-form-urlencoded"}, "token=" .. tokens[(counter % #tokens) + 1])
end
LUA
    start_server "$work/serve.log" "$tokenctl" serve --state-dir "$fleet/.tokenctl" --listen 127.0.0.1:0
    wrk -t2 -c32 -d"${duration}s" --latency "http://$address/healthz" >"$work/wrk-healthz.txt"
    wrk -t2 -c32 -d"${duration}s" --latency -s "$work/introspect.lua" "http://$address/introspect" >"$work/wrk-introspect.txt"
    active=$(metric "$address" 'tokenctl_introspection_requests_total{result="active"}')
    inactive=$(metric "$address" 'tokenctl_introspection_requests_total{result="inactive"}')
    stop_server
    rm -f "$fleet/introspect-tokens.env"
    healthz=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk-healthz.txt")
    introspect=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk-introspect.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-introspect.txt")
    healthz_p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-healthz.txt")
    errors=$(grep -hE "Non-2xx|Socket errors" "$work/wrk-healthz.txt" "$work/wrk-introspect.txt" | tr -s ' ' | paste -sd';' - || true)
    row healthz "$n" "$(calc '%8.0f requests/s  p99 %s' "$healthz, \"$healthz_p99\"")"
    row introspect "$n" "$(calc '%8.0f requests/s  = %.2fx healthz  p99 %s  (%d tokens; answers: %d active, %d inactive)' \
      "$introspect, $introspect / $healthz, \"$p99\", $delivered, ${active:-0}, ${inactive:-0}")${errors:+  wrk: $errors}"
    [ "${inactive:-0}" = 0 ] || echo "fleet.sh: warning: some introspected tokens were inactive; the figure is not for real tokens only" >&2
  else
    row introspect "$n" "skipped: wrk is not installed (apt-get install wrk)"
  fi

  # The state on PostgreSQL: apply from empty state and the no-op plan again.
  if ! want postgres; then
    :
  elif [ -z "$postgres_missing" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cluster="$work/pg-$n"
    url=$(PG_BIN=$pg_bin Tests/Postgres/pg-cluster.sh start "$cluster" "$port")
    # The benchmark measures the work, not the statement log the test clusters keep.
    "$psql" "$url" -qc "ALTER SYSTEM SET log_statement = 'none'" -c "ALTER SYSTEM SET log_connections = off" \
      -c "SELECT pg_reload_conf()" >/dev/null
    rm -rf "$fleet/.tokenctl" "$fleet/secrets.vault"
    export TOKENCTL_STATE_URL=$url
    measure "$work/apply.log" "$tokenctl" apply -f "$fleet" --auto-approve
    result[pg_apply:$n]=$seconds
    row "pg apply" "$n" "$(calc '%8.2f s  %7.0f tokens/s  peak RSS %5d MiB  = %.2fx SQLite' \
      "$seconds, $n / $seconds, $rss / 1024, $seconds / ${result[apply:$n]}")"
    seconds=$(best_plan)
    result[pg_plan:$n]=$seconds
    row "pg plan" "$n" "$(calc '%8.2f s  = %.2fx SQLite' "$seconds, $seconds / ${result[plan:$n]}")"
    unset TOKENCTL_STATE_URL
    Tests/Postgres/pg-cluster.sh stop "$cluster"
    cluster=""
  else
    row postgres "$n" "skipped: $postgres_missing"
  fi
  rm -rf "$fleet/.tokenctl" "$fleet/secrets.vault"
done

# How the times grow from the smallest size to the largest.
read -r smallest largest <<<"$(tr ' ' '\n' <<<"$sizes" | grep . | sort -n | sed -n '1p;$p' | paste -sd' ' -)"
if [ -n "${largest:-}" ] && [ "$largest" != "$smallest" ]; then
  echo "== $largest vs $smallest tokens ($(calc %.0f "$largest / $smallest")x the tokens)"
  for key in apply rotate plan pg_apply pg_plan; do
    [ -n "${result[$key:$smallest]:-}" ] && [ -n "${result[$key:$largest]:-}" ] || continue
    row "${key/_/ }" "ratio" "$(calc '%8.2fx the time  (%.2f s vs %.2f s)' \
      "${result[$key:$largest]} / ${result[$key:$smallest]}, ${result[$key:$largest]}, ${result[$key:$smallest]}")"
  done
fi
