#!/usr/bin/env bash
# Builds in release mode and compares `tokenctl validate` with a bare libyaml event loop
# on 10k and 100k synthetic token specs, in one file and split over 8 files.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product tokenctl >/dev/null
swift build -c release --product manifest-bench >/dev/null
bench=.build/release/manifest-bench
data=${BENCH_DATA:-bench-data}
for spec in "10000 1 10k-1" "100000 1 100k-1" "100000 8 100k-8"; do
  set -- $spec
  [ -d "$data/$3" ] || "$bench" generate --tokens "$1" --files "$2" --out "$data/$3" >/dev/null
done
for name in 10k-1 100k-1 100k-8; do
  "$bench" run "$data/$name" --tokenctl .build/release/tokenctl --repeat "${REPEAT:-3}"
done

# No-op plans over the same specs with every token recorded in state (state written once per data set).
swift build -c release --product plan-bench >/dev/null
for name in 10k-1 100k-1 100k-8; do
  .build/release/plan-bench "$data/$name" --tokenctl .build/release/tokenctl --repeat "${REPEAT:-3}"
done

# Apply: 10k new builtin tokens delivered to an encrypted store, then a second apply (no changes).
swift build -c release --product apply-bench >/dev/null
[ -d "$data/apply-10k" ] || "$bench" generate --tokens 10000 --files 1 --out "$data/apply-10k" >/dev/null
.build/release/apply-bench "$data/apply-10k" --tokenctl .build/release/tokenctl
