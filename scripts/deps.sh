#!/bin/sh
# deps.sh — makes sure the Debian 12 packages gpux builds and tests with are
# installed. As root it installs what is missing (apt-get); otherwise it
# prints the one command to run and fails, so `make` stops with a reason.
set -e
PKGS="build-essential pkg-config clang libclang-rt-14-dev libnng-dev libevent-dev libssl-dev libpq-dev libjansson-dev libcmocka-dev postgresql wrk openssl curl python3 iproute2 procps"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "gpux: missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "gpux: run as root:  apt-get install -y$missing"
    exit 1
fi
echo "gpux: installing them (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
echo "gpux: packages installed"
