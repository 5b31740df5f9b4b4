#!/usr/bin/env bash
# The journal at scale (issue 17): a journal of ENTRIES transactions (default 1,000,000,
# generated: 2,000 a day over 500 days, rows of the shape the service writes) against an
# empty one. The journal_scale example measures, on both alternately, the median of RUNS:
# start-up (open + recovery: after a clean close, with a cold page cache, after a crash),
# an approved chip sale on the simulated lane and the journal's writes of one, `posctl
# journal list`, `posctl report` (today, and a full day against a 1-day journal), and the
# API's /v1/status, /healthz and /metrics; then the journal's bytes per transaction.
#
#   bash crates/pos-serve/benches/journal_scale.sh [ENTRIES] [DIR] [RUNS]
#
# DIR: where the journals go (default the system temp directory): put it on the storage to
# measure. It needs about 1.6 kB per transaction free (1.6 GB at a million). Generating a
# million takes about a minute; the whole run two to three.
set -euo pipefail
cd "$(dirname "$0")/../../.."
entries=${1:-1000000}
dir=${2:-${TMPDIR:-/tmp}}
runs=${3:-101}
cargo build --release -q -p pos-serve --example journal_scale
bin=${CARGO_TARGET_DIR:-target}/release/examples/journal_scale
"$bin" --entries "$entries" --dir "$dir" --runs "$runs"
