#!/usr/bin/env bash
# Fetch a headless Chromium + chromedriver without root, for the browser test of `tumorpde view --server`.
#
# Downloads Debian's own chromium, chromium-common and chromium-driver packages (plus the shared
# libraries a minimal Debian 12 image lacks) with `apt-get download`, unpacks them with `dpkg -x`
# into a cache folder, checks with `ldd` that nothing is missing, and writes two wrappers:
#
#     $CACHE/bin/chromium       $CACHE/bin/chromedriver
#
# The browser test (tests/viz/test_view_browser.py) finds them there, or through
# TUMORPDE_CHROMIUM / TUMORPDE_CHROMEDRIVER, or as `chromium`/`chromedriver` on PATH.
# Re-running is cheap: an existing, working cache is kept.
#
# Usage: scripts/get-chromium.sh [CACHE]   (default: ${XDG_CACHE_HOME:-~/.cache}/tumorpde-chromium)
set -euo pipefail

CACHE="${1:-${TUMORPDE_CHROMIUM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tumorpde-chromium}}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
ROOT="$CACHE/root"
LIBDIRS="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/pulseaudio:$ROOT/usr/lib/chromium"

# Chromium, its driver, and the libraries it links that are not in a minimal bookworm image.
PACKAGES=(
    chromium chromium-common chromium-driver
    libopenh264-7 libdouble-conversion3 libharfbuzz-subset0 libpulse0 libflac12 libopus0
    libxnvctrl0 libminizip1 libopenjp2-7 libogg0 libsndfile1 libasyncns0 libvorbis0a
    libvorbisenc2 libmpg123-0 libmp3lame0
)

works() {
    [ -x "$CACHE/bin/chromium" ] && [ -x "$CACHE/bin/chromedriver" ] &&
        "$CACHE/bin/chromium" --version >/dev/null 2>&1 &&
        "$CACHE/bin/chromedriver" --version >/dev/null 2>&1
}

if works; then
    echo "get-chromium: cached: $("$CACHE/bin/chromium" --version) in $CACHE"
    exit 0
fi

command -v apt-get >/dev/null || { echo "get-chromium: needs apt-get (Debian/Ubuntu)" >&2; exit 1; }
DEBS="$CACHE/debs"
rm -rf "$ROOT" "$DEBS"
mkdir -p "$ROOT" "$DEBS" "$CACHE/bin"
(cd "$DEBS" && apt-get download "${PACKAGES[@]}")
for deb in "$DEBS"/*.deb; do
    dpkg -x "$deb" "$ROOT"
done

missing="$(LD_LIBRARY_PATH="$LIBDIRS" ldd "$ROOT/usr/lib/chromium/chromium" "$ROOT/usr/bin/chromedriver" \
    "$ROOT"/usr/lib/x86_64-linux-gnu/*.so* 2>/dev/null | grep 'not found' | sort -u || true)"
if [ -n "$missing" ]; then
    echo "get-chromium: shared libraries still missing (add their packages to PACKAGES):" >&2
    echo "$missing" >&2
    exit 1
fi

cat >"$CACHE/bin/chromium" <<EOF
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$ROOT/usr/lib/chromium/chromium" "\$@"
EOF
cat >"$CACHE/bin/chromedriver" <<EOF
#!/bin/sh
export LD_LIBRARY_PATH="$LIBDIRS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$ROOT/usr/bin/chromedriver" "\$@"
EOF
chmod +x "$CACHE/bin/chromium" "$CACHE/bin/chromedriver"
rm -rf "$DEBS"

works || { echo "get-chromium: unpacked, but chromium does not start" >&2; exit 1; }
echo "get-chromium: $("$CACHE/bin/chromium" --version) in $CACHE/bin"
