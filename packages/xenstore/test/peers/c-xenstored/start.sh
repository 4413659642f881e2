#!/bin/sh
# start.sh DIR [extra xenstored options...]
#
# Starts Debian's C xenstored (Xen 4.17, package xen-utils-4.17) without a
# hypervisor, via the LD_PRELOAD shim xsshim.so, serving DIR/socket.
# Prints the daemon's PID (also written to DIR/xenstored.pid); the log is
# DIR/xenstored.log.  Stop it with: kill "$(cat DIR/xenstored.pid)"
#
# Environment:
#   XSPEER_CACHE    cache for the .deb, its extraction and builds
#                   (default /tmp/xenstored-peer-cache)
#   XSSHIM_DOMAINS  domids reported as existing (default "0"), e.g. "0-8"
#   XSSHIM_DEBUG=1  log stubbed hypervisor calls to DIR/xenstored.log
#   XSPEER_XENSTORED  an already extracted xenstored binary (scripts/peers.mjs puts one
#                   in .peers/); without it the .deb is downloaded into the cache
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 DIR [xenstored options]" >&2; exit 2; }
DIR=$1; shift
CACHE=${XSPEER_CACHE:-/tmp/xenstored-peer-cache}
PKGDIR=$CACHE/pkg
XENSTORED=${XSPEER_XENSTORED:-$PKGDIR/usr/lib/xen-4.17/bin/xenstored}

mkdir -p "$CACHE"
if [ ! -x "$XENSTORED" ]; then
    ( cd "$CACHE" && rm -f xen-utils-4.17_*.deb &&
      apt-get download xen-utils-4.17 >"$CACHE/download.log" 2>&1 ) ||
        { echo "apt-get download xen-utils-4.17 failed, see $CACHE/download.log" >&2; exit 1; }
    rm -rf "$PKGDIR"
    dpkg -x "$CACHE"/xen-utils-4.17_*.deb "$PKGDIR"
fi
if ldd "$XENSTORED" | grep -q 'not found'; then
    echo "missing libraries for xenstored:" >&2
    ldd "$XENSTORED" | grep 'not found' >&2
    echo "install: apt-get install -y libxenevtchn1 libxengnttab1 libxenmisc4.17 libxencall1 libxenforeignmemory1 libyajl2" >&2
    exit 1
fi

make -s -C "$HERE" O="$CACHE/build" >"$CACHE/build.log" 2>&1 ||
    { cat "$CACHE/build.log" >&2; echo "build failed (needs gcc, make, libxen-dev)" >&2; exit 1; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [ -f "$DIR/xenstored.pid" ] && kill -0 "$(cat "$DIR/xenstored.pid")" 2>/dev/null; then
    echo "xenstored already running in $DIR (pid $(cat "$DIR/xenstored.pid"))" >&2
    exit 1
fi
rm -f "$DIR/socket" "$DIR/xenstored.pid"

XENSTORED_RUNDIR=$DIR XSSHIM_DIR=$DIR LD_PRELOAD=$CACHE/build/xsshim.so \
    "$XENSTORED" -N "$@" </dev/null >"$DIR/xenstored.log" 2>&1 &
PID=$!

i=0
while [ ! -S "$DIR/socket" ]; do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "xenstored exited; log:" >&2; cat "$DIR/xenstored.log" >&2; exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 200 ]; then
        echo "timeout waiting for $DIR/socket" >&2; kill "$PID"; exit 1
    fi
    sleep 0.05
done
echo "$PID" >"$DIR/xenstored.pid"
echo "$PID"
