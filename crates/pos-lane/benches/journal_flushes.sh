#!/usr/bin/env bash
# The journal's flushes per sale, counted for real: the journal_flushes example runs sales
# of each kind on the simulated lane under strace, and every fsync/fdatasync on the
# journal's files (journal.sqlite, -wal, -shm, its directory and identity marker) between
# a sale's markers is counted. The sale time on storage whose fsync costs FSYNC_MS (default
# 10 ms, e.g. eMMC or an SD card) is the measured median plus the counted flushes times
# FSYNC_MS (flushes run one after another in a sale, so they add up).
#
#   bash crates/pos-lane/benches/journal_flushes.sh [SALES_PER_KIND] [DIR]
#
# DIR: where the journal goes (default the system temp directory): run it on the storage
# you want to measure. Needs strace (Debian package strace) and python3.
set -euo pipefail
cd "$(dirname "$0")/../../.."
per_kind=${1:-5}
dir=${2:-${TMPDIR:-/tmp}}
fsync_ms=${FSYNC_MS:-10}
if ! command -v strace >/dev/null; then
    echo "journal_flushes: strace is not installed (apt-get install strace): cannot count flushes" >&2
    exit 3
fi
cargo build --release -q -p pos-lane --example journal_flushes
bin=${CARGO_TARGET_DIR:-target}/release/examples/journal_flushes
trace=$(mktemp)
out=$(mktemp)
trap 'rm -f "$trace" "$out"' EXIT
strace -f -y -qq -s 128 -e trace=fsync,fdatasync,write -e signal=none -o "$trace" \
    "$bin" "$per_kind" "$dir" >"$out"
python3 - "$trace" "$out" "$fsync_ms" <<'PY'
import re, sys, collections
trace, out, fsync_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
counts = collections.defaultdict(lambda: collections.Counter())
sales = collections.Counter()
kind = None
for line in open(trace, errors="replace"):
    m = re.search(r'write\(2<[^>]*>, "@@SALE (\w+)', line)
    if m:
        kind = m.group(1); sales[kind] += 1; continue
    if 'write(2<' in line and '"@@END' in line:
        kind = None; continue
    m = re.search(r'(fsync|fdatasync)\(\d+<([^>]*)>\)', line)
    if m and kind:
        path = m.group(2)
        name = path.rsplit('/', 1)[-1]
        if 'journal.sqlite' in name:
            what = 'journal' if name == 'journal.sqlite' else name.replace('journal.sqlite', '').lstrip('.-') or 'journal'
        elif '/' in path and '.' not in name and 'tmp' in path:
            what = 'directory'
        else:
            what = 'other:' + name
        counts[kind][what] += 1
times = {}
for line in open(out):
    parts = line.rstrip('\n').split('\t')
    if len(parts) == 3 and parts[0] in sales:
        times[parts[0]] = (float(parts[1]), float(parts[2]))
print(f"journal flushes per sale (strace; fsync at {fsync_ms:g} ms = measured median + flushes x {fsync_ms:g} ms)")
print(f"{'kind':40} {'flushes':>8} {'(commits)':>9} {'median ms':>10} {'at %g ms/fsync' % fsync_ms:>16}  detail")
for k in sales:
    n = sales[k]
    c = counts[k]
    journal = sum(v for w, v in c.items() if not w.startswith('other:'))
    per = journal / n
    commits, med = times.get(k, (float('nan'), float('nan')))
    detail = ', '.join(f"{w} {v/n:g}" for w, v in sorted(c.items()))
    print(f"{k:40} {per:8.1f} {commits:9.1f} {med:10.2f} {med + per*fsync_ms:16.1f}  {detail}")
PY
