#!/usr/bin/env bash
# Set up the real-kernel test tier (docs/testing.md): QEMU with the emulated Intel igb SR-IOV NIC,
# the Debian kernel, and a tiny busybox initramfs that mounts the host's root over 9p.
#
#   scripts/vm/setup.sh          install what is missing, build what is stale; quick when done
#
# Environment:
#   VFKEEPER_VM_CACHE   where the kernel, its modules and the initramfs live
#                       (default /var/cache/vfkeeper-vm; outside the repo, shared by all clones)
#
# As root it installs Debian packages (QEMU >= 8 from <codename>-backports, because Debian 12's
# own QEMU 7.2 has no igb device). Not root: it says what is missing and exits non-zero.
# Exit status 0 means the tier is ready; the harness (tests/vm/vm_harness.py) reads
# $VFKEEPER_VM_CACHE/vm.env, which this script writes last.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VFKEEPER_VM_CACHE:-/var/cache/vfkeeper-vm}
INIT_SCRIPT=$HERE/initramfs-init

# Modules the initramfs carries. BOOT ones are loaded by the init; the others are there for later
# tiers (the guest loads them on request: kernel argument vfk.load=a,b or modprobe in the guest).
BOOT_MODULES=(virtio_pci 9pnet_virtio 9p overlay igb igbvf)
EXTRA_MODULES=(vfio_pci vfio_iommu_type1)
OPTIONAL_MODULES=(crc32_generic rdma_rxe ib_umad ib_uverbs)

# Host tools the set-up and the guest need. The guest chroots into this host's root, so host
# packages are guest packages: iproute2 for `ip`, libvirt for the hot-plug tier (best effort).
TOOL_DEBS=(busybox-static kmod cpio)
QEMU_DEB=qemu-system-x86
GUEST_DEBS=(iproute2 libvirt-daemon libvirt-daemon-driver-qemu)

say() { printf '\033[1m[vm-setup]\033[0m %s\n' "$*" >&2; }
fail() {
    say "FAILED: $*"
    say "the real-kernel tests (pytest -m vm) will skip and say why; fix the above and re-run $0"
    exit 1
}

is_root() { [ "$(id -u)" = 0 ]; }

missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

qemu_has_igb() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 &&
        qemu-system-x86_64 -device help 2>/dev/null | grep -q '^name "igb"'
}

# --- apt -----------------------------------------------------------------------------------------
codename() { . /etc/os-release && echo "${VERSION_CODENAME:-}"; }

# The URI of the machine's own Debian source (never a hard-coded host).
debian_uri() {
    local cn=$1 f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: blank-line separated stanzas; take the URIs of a stanza whose Suites has "$cn".
        uri=$(awk -v cn="$cn" '
            BEGIN { RS = ""; FS = "\n" }
            {
                u = ""; s = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u = a[1] }
                    if ($i ~ /^Suites:/ && (" " $i " ") ~ (" " cn " ")) s = 1
                    if ($i ~ /^Types:/ && $i !~ /deb( |$)/) s = 0
                }
                if (s && u != "") { print u; exit }
            }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v cn="$cn" '$1 == "deb" && $0 ~ (" " cn " ") {
                  for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit }
              }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return 0; }
    done
    return 1
}

has_backports() {
    grep -rqs -- "$1-backports" /etc/apt/sources.list /etc/apt/sources.list.d/
}

APT_UPDATED=0
apt_update() {
    [ $APT_UPDATED = 1 ] && return 0
    say "apt-get update"
    apt-get update -qq || fail "apt-get update failed (no network to the Debian mirror?)"
    APT_UPDATED=1
}

# Installing libvirt-daemon must not start daemons on this host: a policy-rc.d says "no" for the
# duration of the install, unless the machine already has one (containers usually do).
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
cleanup() { [ $OWN_POLICY = 1 ] && rm -f "$POLICY"; return 0; }
trap cleanup EXIT
block_service_starts() {
    [ -e "$POLICY" ] && return 0
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" && OWN_POLICY=1
}

apt_install() { # [apt-get options...] -- packages...
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    block_service_starts
    local log
    log=$(mktemp)
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${opts[@]}" "$@" \
        >"$log" 2>&1; then
        rm -f "$log"
        return 0
    fi
    tail -n 20 "$log" >&2
    rm -f "$log"
    return 1
}

ensure_packages() {
    local missing_tools missing_guest cn uri
    missing_tools=$(missing_debs "${TOOL_DEBS[@]}")
    missing_guest=$(missing_debs "${GUEST_DEBS[@]}")
    if [ -z "$missing_tools" ] && [ -z "$missing_guest" ] && qemu_has_igb; then
        return 0
    fi
    if ! is_root; then
        qemu_has_igb || missing_tools="$missing_tools $QEMU_DEB(>=8, from backports)"
        say "not root: cannot install the Debian packages the tier needs:$(printf ' %s' $missing_tools $missing_guest)"
        say "run as root: ./dev.sh setup   (or: sudo $0)"
        exit 1
    fi
    cn=$(codename)
    if ! qemu_has_igb; then
        if [ -n "$cn" ] && ! has_backports "$cn"; then
            uri=$(debian_uri "$cn") || fail "no Debian source for '$cn' in /etc/apt/sources.list{,.d}; cannot add $cn-backports"
            say "adding $cn-backports from $uri (QEMU >= 8 emulates the igb SR-IOV NIC; $cn has $(apt-cache policy $QEMU_DEB | awk '/Candidate/{print $2}'))"
            cat >/etc/apt/sources.list.d/vfkeeper-backports.sources <<EOF
# Added by vfkeeper scripts/vm/setup.sh: QEMU >= 8 for the igb SR-IOV test tier.
Types: deb
URIs: $uri
Suites: $cn-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
            APT_UPDATED=0
        fi
        apt_update
        say "installing $QEMU_DEB from $cn-backports"
        apt_install -t "$cn-backports" -- "$QEMU_DEB" ||
            fail "apt-get install -t $cn-backports $QEMU_DEB failed"
        qemu_has_igb || fail "the installed QEMU ($(qemu-system-x86_64 --version | head -1)) has no igb device; need QEMU >= 8"
    fi
    if [ -n "$missing_tools" ]; then
        apt_update
        say "installing$(printf ' %s' $missing_tools)"
        # shellcheck disable=SC2086
        apt_install -- $missing_tools || fail "apt-get install$(printf ' %s' $missing_tools) failed"
    fi
    missing_guest=$(missing_debs "${GUEST_DEBS[@]}")
    if [ -n "$missing_guest" ]; then
        apt_update
        say "installing guest packages (best effort; libvirt is for the later hot-plug tier):$(printf ' %s' $missing_guest)"
        # shellcheck disable=SC2086
        apt_install -- $missing_guest ||
            say "WARNING: could not install$(printf ' %s' $missing_guest); tests that need them will skip"
    fi
}

# --- kernel --------------------------------------------------------------------------------------
# The package linux-image-amd64 currently depends on, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

cached_kernel() {
    find "$CACHE/kernel" -mindepth 2 -maxdepth 2 -name .extracted -printf '%h\n' 2>/dev/null |
        xargs -r -n1 basename | sort -V | tail -1
}

# Downloads and extracts one kernel package into $CACHE/kernel/<package>; says why when it cannot.
extract_kernel() { # PACKAGE
    local pkg=$1 kver=${1#linux-image-} dest=$CACHE/kernel/$1 tmp
    mkdir -p "$CACHE/kernel" && tmp=$(mktemp -d "$CACHE/kernel/.dl.XXXXXX") || return 1
    # apt downloads as the user _apt when it can write the directory.
    chown _apt "$tmp" 2>/dev/null || true
    say "downloading $pkg (the kernel linux-image-amd64 depends on)"
    if ! (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null); then
        say "apt-get download $pkg failed"
        rm -rf "$tmp"
        return 1
    fi
    chown root "$tmp" 2>/dev/null || true
    say "extracting $pkg into $dest"
    if ! dpkg -x "$tmp"/*.deb "$tmp/root" || [ ! -f "$tmp/root/boot/vmlinuz-$kver" ]; then
        say "dpkg -x of $pkg failed, or it has no /boot/vmlinuz-$kver"
        rm -rf "$tmp"
        return 1
    fi
    # dpkg -x runs no maintainer scripts: build modules.dep so modprobe works (here and in the guest).
    if ! depmod -b "$tmp/root" "$kver"; then
        say "depmod -b for $kver failed"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$dest"
    mv "$tmp/root" "$dest" && rm -rf "$tmp" && touch "$dest/.extracted"
}

ensure_kernel() { # sets KPKG KVER KROOT
    KPKG=$(kernel_package || true)
    if [ -z "$KPKG" ] && is_root; then
        apt_update
        KPKG=$(kernel_package || true)
    fi
    if [ -n "$KPKG" ] && [ ! -f "$CACHE/kernel/$KPKG/.extracted" ] && extract_kernel "$KPKG"; then
        # Older kernels in the cache are not needed any more.
        find "$CACHE/kernel" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' ! -name "$KPKG" \
            -exec rm -rf {} +
    fi
    if [ -z "$KPKG" ] || [ ! -f "$CACHE/kernel/$KPKG/.extracted" ]; then
        # Offline, no apt lists, or the mirror moved on: a kernel extracted earlier still works.
        local wanted=${KPKG:-linux-image-amd64\'s dependency}
        KPKG=$(cached_kernel)
        [ -n "$KPKG" ] || fail "cannot get the Debian kernel ($wanted), and none is cached in $CACHE/kernel"
        say "WARNING: cannot get $wanted; using the cached $KPKG"
    fi
    KVER=${KPKG#linux-image-}
    KROOT=$CACHE/kernel/$KPKG
}

# --- initramfs -----------------------------------------------------------------------------------
# Prints "path" lines for the .ko files of the given modules and their dependencies, in load order.
module_files() {
    local m
    for m in "$@"; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null |
            awk '$1 == "insmod" { print $2 }'
    done | awk '!seen[$0]++'
}

# Copies one module file into WORK/modules, uncompressed (busybox insmod hands the bytes to
# init_module, which takes no compressed images); prints its path inside the initramfs.
copy_module() { # WORK FILE
    local f=$2 base dst
    base=$(basename "$f")
    base=${base%.xz}
    base=${base%.zst}
    base=${base%.gz}
    dst=$1/modules/$base
    if [ ! -f "$dst" ]; then
        case "$f" in
            *.xz) xz -dc "$f" >"$dst" ;;
            *.zst) zstd -qdc "$f" >"$dst" ;;
            *.gz) gzip -dc "$f" >"$dst" ;;
            *) cp "$f" "$dst" ;;
        esac
    fi
    echo "/modules/$base"
}

build_initramfs() {
    local initrd=$CACHE/initramfs-$KVER.cpio.gz stamp want busybox mods=() m
    busybox=/bin/busybox
    [ -z "$(missing_debs busybox-static)" ] && [ -x "$busybox" ] ||
        fail "busybox-static is not installed (the initramfs needs a static busybox)"
    [ -f "$INIT_SCRIPT" ] || fail "$INIT_SCRIPT is missing"

    # Which optional modules this kernel has.
    local optional=()
    for m in "${OPTIONAL_MODULES[@]}"; do
        if modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" >/dev/null 2>&1; then
            optional+=("$m")
        else
            say "note: $KVER has no module $m (soft-RoCE tests will skip)"
        fi
    done
    for m in "${BOOT_MODULES[@]}" "${EXTRA_MODULES[@]}"; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" >/dev/null 2>&1 ||
            fail "$KVER has no module $m (modprobe -d $KROOT -S $KVER --show-depends $m)"
    done

    want=$( {
        echo "$KVER"
        sha256sum "$INIT_SCRIPT" "$busybox" | cut -d' ' -f1
        echo "${BOOT_MODULES[*]} | ${EXTRA_MODULES[*]} ${optional[*]}"
    } | sha256sum | cut -c1-16)
    stamp=$CACHE/initramfs-$KVER.stamp
    if [ -f "$initrd" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        INITRD=$initrd
        return 0
    fi

    say "building the initramfs for $KVER"
    local work
    work=$(mktemp -d "$CACHE/.initramfs.XXXXXX")
    mkdir -p "$work"/{bin,sbin,etc,proc,sys,dev,lower,upper,newroot,modules}
    cp "$busybox" "$work/bin/busybox"
    cp "$INIT_SCRIPT" "$work/init"
    chmod 755 "$work/init" "$work/bin/busybox"
    # The kernel opens /dev/console for /init before anything is mounted.
    mknod -m 600 "$work/dev/console" c 5 1 2>/dev/null || say "note: cannot mknod dev/console (not root); init redirects itself"

    # Each module file once, flat.
    # etc/modules.boot: files to load at boot, in order. etc/modules.map: "name file" for vfk.load=.
    local f
    : >"$work/etc/modules.boot"
    : >"$work/etc/modules.map"
    while read -r f; do
        copy_module "$work" "$f" >>"$work/etc/modules.boot"
    done < <(module_files "${BOOT_MODULES[@]}")
    for m in "${EXTRA_MODULES[@]}" "${optional[@]}"; do
        printf '%s' "$m" >>"$work/etc/modules.map"
        while read -r f; do
            printf ' %s' "$(copy_module "$work" "$f")" >>"$work/etc/modules.map"
        done < <(module_files "$m")
        echo >>"$work/etc/modules.map"
    done
    echo "$KVER" >"$work/etc/kver"

    (cd "$work" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$initrd.tmp" ||
        { rm -rf "$work"; fail "cpio of the initramfs failed"; }
    mv "$initrd.tmp" "$initrd"
    echo "$want" >"$stamp"
    rm -rf "$work"
    INITRD=$initrd
    say "initramfs: $initrd ($(du -h "$initrd" | cut -f1))"
}

# --- main ----------------------------------------------------------------------------------------
ensure_packages
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
    # Another user (root) set the cache up; fine as long as it was built from this init script.
    if grep -qx "INIT_SHA256=$(sha256sum "$INIT_SCRIPT" | cut -d' ' -f1)" "$CACHE/vm.env" 2>/dev/null; then
        say "ready: $CACHE/vm.env is current (the cache is read-only for $(id -un))"
        exit 0
    fi
    fail "$CACHE is not writable and its set-up is missing or stale (run as root, or set VFKEEPER_VM_CACHE)"
fi
ensure_kernel
build_initramfs

env_new=$(cat <<EOF
# Written by scripts/vm/setup.sh; read by tests/vm/vm_harness.py.
KVER=$KVER
KERNEL=$KROOT/boot/vmlinuz-$KVER
INITRD=$INITRD
MODULES_DIR=$KROOT/lib/modules/$KVER
QEMU=$(command -v qemu-system-x86_64)
QEMU_VERSION=$(qemu-system-x86_64 --version | head -1 | awk '{print $4}')
INIT_SHA256=$(sha256sum "$INIT_SCRIPT" | cut -d' ' -f1)
EOF
)
if [ "$(cat "$CACHE/vm.env" 2>/dev/null)" != "$env_new" ]; then
    printf '%s\n' "$env_new" >"$CACHE/vm.env.tmp" && mv "$CACHE/vm.env.tmp" "$CACHE/vm.env"
fi
say "ready: kernel $KVER, QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), cache $CACHE"
