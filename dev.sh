#!/usr/bin/env bash
# vfkeeper's one entry point for people and CI.
#
#   ./dev.sh demo [ARGS...]   set everything up, then run vfkeeper's main job on the embedded default
#   ./dev.sh test [PYTEST...] set everything up, then run ruff, mypy --strict and the whole test suite
#   ./dev.sh setup            only the set-up (venv, pip packages, Debian packages when root)
#
# Set-up is idempotent and quick when nothing changed: Debian packages are installed only when
# missing (and only as root), the venv is re-synced only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=${VFKEEPER_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

say() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
# What the demo needs: a compiler toolchain and libvirt's headers to build libvirt-python.
DEMO_DEBS=(python3-venv gcc pkg-config libvirt-dev)
# What the test suite needs on top: libvirt's schemas and validator, PostgreSQL's server,
# the user-space InfiniBand fabric (ibsim + OpenSM), iproute2 for namespaces, openssl for the
# test CA of the UFM TLS tests; cloud-init and netplan.io render vfkeeper's guest documents
# (tests/guest: only their converters run, nothing configures this machine's network) and
# xorriso reads its config-drive images back.
TEST_DEBS=(libvirt-clients libxml2-utils postgresql ibsim-utils opensm infiniband-diags iproute2
           openssl cloud-init netplan.io xorriso)

missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

apt_updated=0
apt_install() {
    local missing
    missing=$(missing_debs "$@")
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        say "not root: cannot install Debian packages: $(echo $missing). Install them, or run as root."
        return 0
    fi
    if [ $apt_updated = 0 ]; then
        say "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    say "installing Debian packages: $(echo $missing)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# --- Python venv -----------------------------------------------------------------------------
ensure_venv() {
    local extras=$1 stamp="$VENV/.vfkeeper-stamp" want
    want="$(sha256sum pyproject.toml | cut -c1-16)-$extras"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating venv at $VENV"
        "$PY" -m venv "$VENV"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing vfkeeper and its Python packages into $VENV ($extras)"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        if ! "$VENV/bin/python" -m pip install -q -e ".[$extras,libvirt]"; then
            say "libvirt-python did not build (libvirt-dev missing?); continuing without it"
            "$VENV/bin/python" -m pip install -q -e ".[$extras]"
        fi
        echo "$want" >"$stamp"
    fi
}

setup_demo() {
    apt_install "${DEMO_DEBS[@]}"
    ensure_venv "dev"
}

setup_test() {
    apt_install "${DEMO_DEBS[@]}" "${TEST_DEBS[@]}"
    ensure_venv "dev"
    # The ibsim tier (simulated InfiniBand fabric + the real OpenSM): in CI, once its tools are
    # installed, a skip would hide a broken harness, so it must run.
    if [ "${CI:-}" = true ] && command -v ibsim >/dev/null && command -v opensm >/dev/null \
        && command -v smpquery >/dev/null; then
        export VFKEEPER_IBSIM_REQUIRED=1
    fi
    # The guest-configuration tier (Debian's cloud-init, netplan and xorriso): likewise.
    if [ "${CI:-}" = true ] && command -v cloud-init >/dev/null && command -v xorriso >/dev/null \
        && { command -v netplan >/dev/null || [ -x /usr/sbin/netplan ]; }; then
        export VFKEEPER_GUEST_TOOLS_REQUIRED=1
    fi
    # The real-kernel tier: QEMU (igb SR-IOV emulation needs QEMU >= 8), a Debian kernel and
    # a busybox initramfs. Best effort: the tier skips with the reason when this fails.
    # Once set-up succeeded, a skipping tier would hide a broken harness: in CI it must run.
    if bash scripts/vm/setup.sh; then
        if [ "${CI:-}" = true ]; then export VFKEEPER_VM_REQUIRED=1; fi
    else
        say "the QEMU real-kernel tier could not be set up; its tests will skip and say why"
    fi
    # Nova itself, in a venv of its own, for the device-spec differential tests (never a dependency).
    bash scripts/nova-venv.sh >/dev/null || say "Nova could not be installed; the Nova differential tests will skip and say why"
}

cmd=${1:-}
shift || true
case "$cmd" in
    demo)
        setup_demo
        exec "$VENV/bin/vfkeeper" demo "$@"
        ;;
    test)
        setup_test
        export PATH="$VENV/bin:$PATH"
        say "ruff"
        ruff check src tests bench
        say "mypy --strict src"
        mypy
        say "pytest"
        exec pytest "$@"
        ;;
    setup)
        setup_test
        ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
