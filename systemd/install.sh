#!/usr/bin/env bash
# Install sonomap as a systemd service on a cart PC or a Jetson.
#
#   sudo systemd/install.sh [--headless] [--jetson] [--no-enable] [--no-venv]
#                           [--allow CIDR]... [--prefix /opt/sonomap] [--root DESTDIR] [--python python3]
#
# Puts:  PREFIX/venv (sonomap and its runtime deps), PREFIX/README.md and PREFIX/docs/ (the units'
#        Documentation=; operating the service: docs/operations.md),
#        /etc/sonomap/config.yaml (kept if present; 0640 root:sonomap, in /etc/sonomap 0750 root:sonomap),
#        /etc/sonomap/sonomap.env (kept if present),
#        /etc/sonomap/http-token (random, 0600, kept if present and not empty),
#        /etc/systemd/system/sonomap.service + sonomap-headless.service (+ jetson.conf drop-in),
#        /etc/systemd/system/<unit>.d/network.conf with --allow (the units reach loopback only;
#        each --allow CIDR lets one PLUS server / scanner / viewer subnet through),
#        /usr/lib/sysusers.d/sonomap.conf, /usr/lib/tmpfiles.d/sonomap.conf,
#        /etc/xdg/autostart/sonomap-xhost.desktop (display variant only).
# Then creates the 'sonomap' user (systemd-sysusers), reloads systemd and enables the unit.
# --root DESTDIR stages everything under DESTDIR and touches nothing on the running system
# (no user creation, no systemctl): that is how the tests and package builds use it. Staged files
# keep their modes but stay root's: the tmpfiles snippet gives /etc/sonomap and its config to the
# sonomap group when systemd-tmpfiles runs on the target (at boot, or a package's post-install).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/sonomap
ROOT=""
UNIT=sonomap.service
JETSON=0
ENABLE=1
VENV=1
PYTHON=${PYTHON:-python3}
EXTRAS=dicom,igtl,metrics
ALLOW=()

usage() { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --headless) UNIT=sonomap-headless.service ;;
        --jetson) JETSON=1 ;;
        --allow)
            case "${2:-}" in *[!0-9a-fA-F.:/]*|"") echo "install.sh: --allow expects an address or CIDR, got '${2:-}'" >&2; exit 2 ;; esac
            ALLOW+=("$2"); shift ;;
        --no-enable) ENABLE=0 ;;
        --no-venv) VENV=0 ;;
        --prefix) PREFIX=$2; shift ;;
        --root) ROOT=$2; shift ;;
        --python) PYTHON=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute: '$PREFIX'" >&2; exit 2 ;; esac
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or stage with --root DESTDIR)" >&2; exit 2
fi

DEST="$ROOT$PREFIX"
ETC="$ROOT/etc/sonomap"
UNITDIR="$ROOT/etc/systemd/system"
say() { printf 'install.sh: %s\n' "$*"; }

install -d -m 0755 "$DEST" "$UNITDIR" "$ROOT/usr/lib/sysusers.d" "$ROOT/usr/lib/tmpfiles.d"
# The config may name a camera as rtsp://user:password@host: only root and the service's group may
# read it. The group is set once the user exists (step 3); a re-run tightens an older install's 0755.
install -d -m 0750 "$ETC"
chmod 0750 "$ETC"

# 1. The program: a venv under PREFIX. On a Jetson, TensorRT and pycuda come from JetPack's
#    apt packages (python3-libnvinfer, python3-pycuda), so the venv must see system packages.
if [ "$VENV" = 1 ]; then
    VENV_FLAGS=()
    [ "$JETSON" = 1 ] && VENV_FLAGS+=(--system-site-packages)
    say "creating venv $DEST/venv"
    "$PYTHON" -m venv "${VENV_FLAGS[@]}" "$DEST/venv"
    "$DEST/venv/bin/python" -m pip install -q --upgrade pip
    # x86: the versions the tests passed with (constraints.txt); a Jetson takes OpenCV, TensorRT and
    # ONNX Runtime builds for its JetPack, which those x86 pins would refuse.
    PIN_FLAGS=()
    [ "$JETSON" = 0 ] && PIN_FLAGS+=(-c "$SRC/constraints.txt")
    "$DEST/venv/bin/python" -m pip install -q "${PIN_FLAGS[@]}" "$SRC[$EXTRAS]"
fi
install -m 0644 "$SRC/README.md" "$DEST/README.md"
install -d -m 0755 "$DEST/docs"
install -m 0644 "$SRC"/docs/*.md "$DEST/docs/"

# 2. Configuration: never overwrite what the site has edited.
install_once() {  # SRC DEST MODE
    if [ -e "$2" ]; then say "keeping existing $2"; else install -m "$3" "$1" "$2"; say "wrote $2"; fi
}
install_once "$SRC/systemd/config.yaml" "$ETC/config.yaml" 0640
chmod 0640 "$ETC/config.yaml"  # a kept config keeps its content, not an older install's 0644
install_once "$SRC/systemd/sonomap.env" "$ETC/sonomap.env" 0644
# A token file that is empty or only whitespace (an earlier run that failed while writing it) is
# replaced: the service refuses to start with it. The new token goes to a temporary file first and
# is moved into place whole, so a failed write never leaves an empty token behind.
if [ -e "$ETC/http-token" ] && LC_ALL=C grep -q '[^[:space:]]' "$ETC/http-token"; then
    say "keeping existing $ETC/http-token"
else
    [ ! -e "$ETC/http-token" ] || say "replacing the empty $ETC/http-token"
    TOKEN_TMP=$(mktemp "$ETC/.http-token.XXXXXX")  # 0600
    if ! head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKEN_TMP" \
        || [ "$(wc -c < "$TOKEN_TMP")" -ne 64 ]; then
        rm -f "$TOKEN_TMP"
        echo "install.sh: could not write a random HTTP token to $ETC/http-token" >&2; exit 1
    fi
    chmod 0600 "$TOKEN_TMP"
    mv -f "$TOKEN_TMP" "$ETC/http-token"
    say "wrote a random HTTP token to $ETC/http-token"
fi

# 3. Units, user and directories.
install -m 0644 "$SRC/systemd/sonomap.service" "$SRC/systemd/sonomap-headless.service" "$UNITDIR/"
if [ "$PREFIX" != /opt/sonomap ]; then
    sed -i "s|/opt/sonomap|$PREFIX|g" "$UNITDIR/sonomap.service" "$UNITDIR/sonomap-headless.service"
fi
if [ "$JETSON" = 1 ]; then
    install -d -m 0755 "$UNITDIR/$UNIT.d"
    install -m 0644 "$SRC/systemd/jetson/jetson.conf" "$UNITDIR/$UNIT.d/jetson.conf"
fi
if [ "${#ALLOW[@]}" -gt 0 ]; then
    install -d -m 0755 "$UNITDIR/$UNIT.d"
    {
        echo "# Site network allow-list, written by install.sh --allow (the unit allows loopback only)."
        echo "[Service]"
        for cidr in "${ALLOW[@]}"; do echo "IPAddressAllow=$cidr"; done
    } > "$UNITDIR/$UNIT.d/network.conf"
    chmod 0644 "$UNITDIR/$UNIT.d/network.conf"
    say "wrote $UNITDIR/$UNIT.d/network.conf (IPAddressAllow ${ALLOW[*]})"
fi
install -m 0644 "$SRC/systemd/sonomap.sysusers.conf" "$ROOT/usr/lib/sysusers.d/sonomap.conf"
install -m 0644 "$SRC/systemd/sonomap.tmpfiles.conf" "$ROOT/usr/lib/tmpfiles.d/sonomap.conf"
if [ "$UNIT" = sonomap.service ]; then
    install -d -m 0755 "$ROOT/etc/xdg/autostart"
    install -m 0644 "$SRC/systemd/sonomap-xhost.desktop" "$ROOT/etc/xdg/autostart/sonomap-xhost.desktop"
fi

if [ -n "$ROOT" ]; then
    say "staged under $ROOT ($UNIT); nothing enabled"
    exit 0
fi
if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /usr/lib/sysusers.d/sonomap.conf
else  # very old systemd: the same user by hand
    getent group render >/dev/null || groupadd --system render
    id sonomap >/dev/null 2>&1 || useradd --system --home-dir /var/lib/sonomap --shell /usr/sbin/nologin \
        --groups video,render sonomap
fi
# The service (User=sonomap, Group=sonomap) reads its config through the group; others cannot.
chown root:sonomap "$ETC" "$ETC/config.yaml"
systemd-tmpfiles --create /usr/lib/tmpfiles.d/sonomap.conf
systemctl daemon-reload
if [ "$ENABLE" = 1 ]; then
    systemctl enable --now "$UNIT"
    say "enabled and started $UNIT: see 'systemctl status $UNIT' and 'journalctl -u $UNIT'; operating it: $PREFIX/docs/operations.md"
else
    say "installed $UNIT (not enabled): systemctl enable --now $UNIT (see $PREFIX/docs/operations.md)"
fi
