#!/usr/bin/env bash
# The QEMU virtual hardware rig in one command: prepare it (cached), build the guest's
# binaries, boot the guest and run its scenarios against QEMU's USB CCID reader, FTDI
# adapter and USB keyboard, with the pcsc-lite comparison.
#
#   hil-tests/qemu-rig/run.sh [qemu-rig options]     e.g. --only reader --verbose
#
# Exit 0: passed. 1: a case failed. 3: SKIP, the rig cannot run on this machine (the
# message says why). POS_RIG_CACHE overrides the cache directory (target/qemu-rig).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${POS_RIG_CACHE:-target/qemu-rig}
# An absolute path as it is; a relative one from the workspace root.
case "$cache" in
    /*) ;;
    *) cache="$PWD/$cache" ;;
esac

bash hil-tests/qemu-rig/prepare.sh "$cache"

target=x86_64-unknown-linux-gnu
# Where cargo puts what it builds (CARGO_TARGET_DIR moves it).
out=${CARGO_TARGET_DIR:-target}
echo "rig: building the static guest binary"
RUSTFLAGS="-C target-feature=+crt-static" LIBUDEV_NO_PKG_CONFIG=1 \
    cargo build --quiet --release -p qemu-rig-guest --bin rig-guest --target "$target"

# The pcsc-lite client links Debian's libpcsclite (unpacked in the cache), dynamically;
# pcsc-road (our pcsc: road) is dynamic too and loads libpcsclite at run time.
echo "rig: building the pcsc-lite benchmark client and the pcsc: road helper"
if POS_PCSC_LIB_DIR="$cache/root/usr/lib/x86_64-linux-gnu" \
    cargo build --quiet --release -p qemu-rig-guest --features pcsc --bin pcsc-bench \
        --bin pcsc-road; then
    # Without their debug information (the release profile keeps it): the image is unpacked
    # into the guest's memory, and two unstripped 40 MB binaries more make it not fit.
    for bin in pcsc-bench pcsc-road; do
        strip --strip-debug -o "$cache/$bin" "$out/release/$bin" 2>/dev/null ||
            cp "$out/release/$bin" "$cache/$bin"
    done
else
    # The cache has libpcsclite: a build failure is a real error, not a reason to skip.
    echo "rig: pcsc-bench or pcsc-road did not build" >&2
    exit 1
fi

cargo build --quiet --release -p qemu-rig
exec "$out/release/qemu-rig" --cache "$cache" \
    --guest "$out/$target/release/rig-guest" "$@"
