#!/usr/bin/env bash
# Build the vendored Asterisk once into a cache outside the clone and print its prefix.
#
# The cache key is the tarball's sha256 plus this script's own sha256, so CI on the same machine
# reuses a developer's build, and a change to the build options builds anew. A finished build is
# marked with `.complete`; an interrupted one is removed and redone.
#
#   tests/asterisk/build.sh            # prints e.g. /var/cache/pbxgate/asterisk/1f02170cd7a0-3c1e...
#
# Environment: PBXGATE_ASTERISK_TARBALL (default ../shared/vendor/asterisk/asterisk-22.10.1.tar.xz
# beside the clone), PBXGATE_ASTERISK_CACHE (default /var/cache/pbxgate/asterisk, or
# ~/.cache/pbxgate/asterisk when that is not writable).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tarball="${PBXGATE_ASTERISK_TARBALL:-$repo/../shared/vendor/asterisk/asterisk-22.10.1.tar.xz}"
[ -f "$tarball" ] || { echo "build.sh: no Asterisk tarball at $tarball" >&2; exit 2; }

cache="${PBXGATE_ASTERISK_CACHE:-/var/cache/pbxgate/asterisk}"
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/pbxgate/asterisk"
  mkdir -p "$cache"
fi
tar_sum="$(sha256sum "$tarball" | cut -c1-12)"
script_sum="$(sha256sum "$0" | cut -c1-8)"
prefix="$cache/$tar_sum-$script_sum"
if [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi

# One build at a time per key (two test runs may start together).
exec 9>"$prefix.lock"
flock 9
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi
rm -rf "$prefix" "$prefix.src"
mkdir -p "$prefix.src"
started=$SECONDS
log="$prefix.build.log"
# A child shell, so that `set -e` holds inside it (it would not in a `{ ...; } || ...` list).
PREFIX="$prefix" SRC="$prefix.src" TARBALL="$tarball" bash -euo pipefail -c '
  # The archive holds the tree at its top level; a release tarball has one folder above it.
  tar -xJf "$TARBALL" -C "$SRC"
  [ -f "$SRC/configure" ] || mv "$SRC"/*/* "$SRC"/
  cd "$SRC"
  # pjproject and the sound packages are downloads at build time; this machine has no internet.
  ./configure --prefix="$PREFIX" --without-pjproject-bundled --without-pjproject --with-jansson
  make menuselect.makeopts
  menuselect/menuselect --disable BUILD_NATIVE \
    --disable-category MENUSELECT_CORE_SOUNDS --disable-category MENUSELECT_MOH \
    --disable-category MENUSELECT_EXTRA_SOUNDS menuselect.makeopts
  make -j"$(nproc)"
  make install
' >"$log" 2>&1 || { echo "build.sh: Asterisk build failed, see $log" >&2; tail -20 "$log" >&2; exit 1; }
for mod in app_queue res_agi cdr_csv cdr_custom cdr_sqlite3_custom cdr_adaptive_odbc res_odbc \
           app_dial app_mixmonitor app_directed_pickup res_stasis chan_bridge_media; do
  [ -f "$prefix/lib/asterisk/modules/$mod.so" ] || {
    echo "build.sh: the build has no $mod.so (missing a -dev package?), see $log" >&2; exit 1; }
done
rm -rf "$prefix.src"
echo "built in $((SECONDS - started)) s" >>"$log"
touch "$prefix/.complete"
echo "$prefix"
