#!/usr/bin/env bash
# Bundle and verify throughput against the manual pipeline.
#
#   bench/bundle/run.sh [SIZE] [REPEATS]      (default: 2GiB 5)
#
# Generates SIZE of bf16-like safetensors shards plus JSON files, then, in
# interleaved rounds (so machine load hits both sides alike), times:
#   bundle:  airlock bundle DIR --sign K --out B.tar.zst
#   manual:  tar -cf - DIR | zstd -T0 -3 > M.tar.zst; sha256sum DIR/*
#   verify:  airlock verify B.tar.zst --pubkey K.pub --out OUT [--no-sync]
#   manual:  zstd -dc M.tar.zst | tar -x; sha256sum -c
# and prints the median, min and max wall time, throughput, peak RSS, CPU
# seconds (user+sys; less sensitive to other load than wall time), and
# manual/airlock ratios. Needs zstd, GNU tar, coreutils, /usr/bin/time.
# Note: peak RSS of a shell pipeline is that of its largest process.
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-2GiB}
reps=${2:-5}
for tool in zstd tar sha256sum /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/airlock" ./cmd/airlock
go build -o "$work/gen" ./bench/bundle/gen
"$work/gen" -out "$work/model" -size "$size"
"$work/airlock" keygen --out "$work/k" --unencrypted >/dev/null
bytes=$(du -sb "$work/model" | cut -f1)
cat "$work/model"/* >/dev/null # warm the page cache
results="$work/results.tsv"
: >"$results"

# timed NAME CMD...: runs CMD, appends "NAME wall_s maxrss_kb user_s sys_s".
timed() {
  local name=$1; shift
  sync # flush the previous step's dirty pages outside the timing
  /usr/bin/time -f "$name %e %M %U %S" -a -o "$results" "$@" >/dev/null 2>"$work/stderr" ||
    { cat "$work/stderr" >&2; exit 1; }
}

for i in $(seq "$reps"); do
  echo "round $i/$reps: $(uptime | sed 's/.*load/load/')" >&2
  rm -f "$work/b.tar.zst" "$work/b.tar.zst.minisig"
  timed bundle "$work/airlock" bundle "$work/model" --sign "$work/k.key" --out "$work/b.tar.zst" --platforms none
  rm -f "$work/m.tar.zst" "$work/sums"
  timed manual_bundle sh -c "tar -cf - -C '$work' model | zstd -T0 -3 -q -o '$work/m.tar.zst' && cd '$work/model' && sha256sum * > '$work/sums'"
  # Alternate the order of the two verify variants between rounds, so that
  # neither always pays for evicting the previous step's page cache.
  if ((i % 2)); then variants="nosync sync"; else variants="sync nosync"; fi
  for v in $variants; do
    rm -rf "$work/out"
    flag=(); [ "$v" = nosync ] && flag=(--no-sync)
    timed "verify_$v" "$work/airlock" verify "$work/b.tar.zst" --pubkey "$work/k.pub" --out "$work/out" "${flag[@]}"
  done
  rm -rf "$work/out" "$work/mout" && mkdir "$work/mout"
  timed manual_verify sh -c "zstd -dc '$work/m.tar.zst' | tar -x -C '$work/mout' && cd '$work/mout/model' && sha256sum -c --quiet '$work/sums'"
  rm -rf "$work/mout"
done

echo "bundle size: airlock $(stat -c %s "$work/b.tar.zst") bytes, manual zstd -3 $(stat -c %s "$work/m.tar.zst") bytes, content $bytes bytes"
python3 - "$results" "$bytes" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("Command")]
size = int(sys.argv[2])
by = {}
for name, secs, rss, usr, sys_ in rows:
    by.setdefault(name, []).append((float(secs), int(rss), float(usr) + float(sys_)))
med = {}
print(f"{'step':15} {'n':>2} {'median s':>9} {'min s':>7} {'max s':>7} {'MB/s':>7} {'peak RSS MB':>12} {'CPU s':>7} {'MB/CPU-s':>9}")
for name, v in by.items():
    t = [s for s, _, _ in v]
    cpu = statistics.median([c for _, _, c in v])
    med[name] = statistics.median(t)
    print(f"{name:15} {len(t):2} {med[name]:9.2f} {min(t):7.2f} {max(t):7.2f} {size/med[name]/1e6:7.0f} {max(r for _, r, _ in v)/1024:12.0f} {cpu:7.2f} {size/cpu/1e6:9.0f}")
def ratio(a, b):
    if a in med and b in med:
        print(f"{b}/{a} (speed-up of airlock): {med[b]/med[a]:.2f}x")
ratio("bundle", "manual_bundle")
ratio("verify_nosync", "manual_verify")
ratio("verify_sync", "manual_verify")
PY
