#!/usr/bin/env bash
# The controller's costs at 10,000 managed tokens: CPU per watch pass with nothing due (without and with a Notifier), the idle
# process's CPU over a minute, and introspection throughput and p99 latency under wrk.
# Needs: a release build (built here), python3, and wrk (apt-get install wrk) for the last part.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tokenctl >/dev/null
tokenctl=$PWD/.build/release/tokenctl
data=${BENCH_DATA:-bench-data}/controller-10k
tokens=${TOKENS:-10000}
window=${WINDOW:-60}
mkdir -p "$data"
if [ ! -f "$data/tokens.yaml" ]; then
  python3 - "$data/tokens.yaml" "$tokens" <<'PY'
import sys
path, count = sys.argv[1], int(sys.argv[2])
with open(path, "w") as out:
    out.write("apiVersion: tokenctl/v1\nkind: Issuer\nmetadata: {name: local}\nspec: {type: builtin}\n")
    out.write("---\napiVersion: tokenctl/v1\nkind: Store\nmetadata: {name: envfile}\nspec: {type: dotenv, dotenv: {path: bench.env}}\n")
    for i in range(count):
        out.write(f"---\napiVersion: tokenctl/v1\nkind: Token\nmetadata: {{name: t{i}, namespace: bench, owner: team-bench}}\n"
                  f"spec: {{issuer: local, scopes: [read], lifespan: 90d, rotation: {{every: 60d, overlap: 1d}}, "
                  f"deliverTo: [{{store: envfile, key: bench/t{i}}}]}}\n")
PY
  "$tokenctl" apply -f "$data" --auto-approve >/dev/null
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
metric() { curl -s "http://$1/metrics" | awk -v name="$2" '$1 == name {print $2}'; }

run_controller() {  # interval, extra args…; sets pid and address
  local log="$data/controller.log"
  "$tokenctl" reconcile --watch -f "$data" --interval "$1" --listen 127.0.0.1:0 "${@:2}" 2>"$log" &
  pid=$!
  for _ in $(seq 1 100); do
    address=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|listening on http://||' || true)
    [ -n "$address" ] && [ -n "$(metric "$address" 'tokenctl_reconcile_pass_duration_seconds_count')" ] && break
    sleep 0.2
  done
}

measure_passes() {  # label; prints CPU per pass and sets per_pass_ms
  run_controller 5s
  start_ticks=$(cpu_ticks "$pid"); start_passes=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_count)
  sleep "$window"
  end_ticks=$(cpu_ticks "$pid"); end_passes=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_count)
  sum=$(metric "$address" tokenctl_reconcile_pass_duration_seconds_sum); count=$end_passes
  kill -TERM "$pid"; wait "$pid" || true
  per_pass_ms=$(python3 -c "print(($end_ticks - $start_ticks) / $ticks_per_second / max($end_passes - $start_passes, 1) * 1000)")
  python3 -c "
ticks = ($end_ticks - $start_ticks) / $ticks_per_second; passes = $end_passes - $start_passes
print(f'$1: passes: {passes:.0f}; process CPU: {ticks:.2f} s, {ticks / max(passes, 1) * 1000:.0f} ms CPU per pass; mean pass wall time {$sum / $count * 1000:.0f} ms')"
}

echo "== watch passes with nothing due ($tokens tokens, --interval 5s, ${window}s window)"
measure_passes "without a Notifier"
without_ms=$per_pass_ms
# The same fleet with a Notifier that wants every event: each pass also computes which notices are due (none is).
cat > "$data/notifier.yaml" <<'YAML'
apiVersion: tokenctl/v1
kind: Notifier
metadata: {name: bench}
spec:
  url: env:BENCH_WEBHOOK_URL
  events: {expiring: {}, failing: {}, ghost: {}, unused: {}, policyViolation: {}, rateLimited: {}}
YAML
measure_passes "with a Notifier (every event)"
rm -f "$data/notifier.yaml"
python3 -c "print(f'notices add {($per_pass_ms / $without_ms - 1) * 100:+.1f}% CPU per pass')"

echo "== idle controller (--interval 1h) over ${window}s"
run_controller 1h
start_ticks=$(cpu_ticks "$pid")
sleep "$window"
end_ticks=$(cpu_ticks "$pid")
kill -TERM "$pid"; wait "$pid" || true
python3 -c "
ticks = ($end_ticks - $start_ticks) / $ticks_per_second
print(f'CPU {ticks:.3f} s over $window s = {ticks / $window * 100:.3f}% of one core')"

if command -v wrk >/dev/null; then
  echo "== introspection: wrk, 2 threads, 32 connections, 20 s, cycling through 1,000 real tokens of $tokens"
  awk -F= 'NR <= 1000 {print $2}' "$data/bench.env" > "$data/tokens.txt"
  cat > "$data/introspect.lua" <<LUA
tokens = {}
for line in io.lines("$data/tokens.txt") do tokens[#tokens + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/introspect", {["Content-Type"] = "application/x-www-form-urlencoded"}, "token=" .. tokens[(counter % #tokens) + 1])
end
LUA
  "$tokenctl" serve --state-dir "$data/.tokenctl" --listen 127.0.0.1:0 2>"$data/serve.log" &
  pid=$!
  for _ in $(seq 1 50); do
    address=$(grep -o 'listening on http://[0-9.:]*' "$data/serve.log" | sed 's|listening on http://||' || true)
    [ -n "$address" ] && break
    sleep 0.2
  done
  wrk -t2 -c32 -d20s --latency -s "$data/introspect.lua" "http://$address" | grep -E "Requests/sec|Latency|99%|50%|requests in|Non-2xx"
  echo "active answers counted by the server: $(metric "$address" 'tokenctl_introspection_requests_total{result="active"}')"
  kill -TERM "$pid"; wait "$pid" || true
else
  echo "(wrk not installed: apt-get install wrk to measure introspection)"
fi
