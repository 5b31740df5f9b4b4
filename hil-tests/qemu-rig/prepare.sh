#!/usr/bin/env bash
# Prepare the QEMU rig: download Debian's packages for QEMU, a guest kernel, busybox and
# (for the pcsc-lite comparison and the pcsc: road) pcscd + libccid + udev's daemon (through
# which pcscd hears of a USB reader leaving), and unpack them into a cache directory
# with `dpkg -x`. Nothing is installed system-wide (installing qemu-system-x86 would remove
# the machine's qemu-utils). Cached: a second run does nothing.
#
#   hil-tests/qemu-rig/prepare.sh [CACHE_DIR]      (default target/qemu-rig)
#
# Exit 0: ready. Exit 3: this machine cannot prepare the rig (no apt-get/dpkg, packages not
# downloadable); the message starts with SKIP and says why. Other codes: a real error.
set -euo pipefail

cache=${1:-target/qemu-rig}
stamp="$cache/root/.prepared-v1"
if [ -f "$stamp" ]; then
    # A cache prepared before udev was in the list: add it (pcsc.unplug skips without it).
    if [ ! -e "$cache/root/bin/udevadm" ] && [ ! -e "$cache/root/usr/bin/udevadm" ]; then
        mkdir -p "$cache/debs"
        if (cd "$cache/debs" && apt-get download udev >/dev/null 2>&1); then
            dpkg -x "$(ls "$cache"/debs/udev_*.deb | head -1)" "$cache/root"
            echo "rig: added udev to $cache"
        else
            echo "rig: udev could not be downloaded: pcsc.unplug will be skipped" >&2
        fi
    fi
    echo "rig: prepared in $cache (cached)"
    exit 0
fi

skip() {
    echo "SKIP: the QEMU rig cannot be prepared here: $*" >&2
    exit 3
}

command -v apt-get >/dev/null 2>&1 || skip "no apt-get (the rig unpacks Debian's packages)"
command -v dpkg >/dev/null 2>&1 || skip "no dpkg"
[ "$(uname -m)" = x86_64 ] || skip "the rig's packages are for x86_64, this is $(uname -m)"

apt_opts=()
if ! apt-cache show qemu-system-x86 >/dev/null 2>&1; then
    echo "rig: no package lists; running apt-get update"
    apt-get update -qq >/dev/null 2>&1 || skip "apt-get update failed (no package lists, no registry?)"
fi

# QEMU and the libraries it needs that this machine lacks (what `apt-get install` would
# fetch), the kernel that linux-image-amd64 points at, busybox, pcsc-lite, libccid and udev
# (only its daemon goes into the guest, without rules).
qemu_pkgs=$(apt-get install -s --no-install-recommends qemu-system-x86 2>/dev/null | awk '/^Inst/{print $2}' || true)
[ -n "$qemu_pkgs" ] || qemu_pkgs=qemu-system-x86
kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{k=$2} END{print k}' || true)
[ -n "$kernel_pkg" ] || skip "cannot resolve linux-image-amd64 to a kernel package"
pkgs="$qemu_pkgs $kernel_pkg busybox-static pcscd libccid libpcsclite1 libpcsclite-dev udev"

# Only this run's packages are unpacked (no second kernel from an older download).
rm -rf "$cache/debs"
mkdir -p "$cache/debs"
echo "rig: downloading $(wc -w <<<"$pkgs") packages into $cache/debs (about 90 MB, once)"
(cd "$cache/debs" && apt-get download $pkgs >/dev/null 2>apt-download.err) \
    || skip "apt-get download failed: $(tail -3 "$cache/debs/apt-download.err")"

rm -rf "$cache/root.tmp"
mkdir -p "$cache/root.tmp"
for deb in "$cache"/debs/*.deb; do
    dpkg -x "$deb" "$cache/root.tmp"
done
rm -rf "$cache/root"
mv "$cache/root.tmp" "$cache/root"
printf '%s\n' $pkgs >"$stamp"
echo "rig: unpacked into $cache/root"
