#!/bin/sh
# Build the ohfp .deb and .rpm with nfpm (a Go tool dependency in go.mod: no
# download beyond the Go module proxy).
#
#   packaging/build.sh VERSION
#
# VERSION is normally `git describe` (v1.2.3, v1.2.3-4-gabc1234-dirty, or a
# bare commit); packaging/version.sh turns it into a package version.
# Environment:
#   OHFP_BIN   folder holding ohfpd and ohfp (default: bin, as `make build`)
#   OHFP_DIST  output folder (default: dist)
#   GOARCH     target architecture (default: `go env GOARCH`)
#   GO         the go command (default: go)
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 VERSION" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

GO=${GO:-go}
bin=${OHFP_BIN:-bin}
dist=${OHFP_DIST:-dist}
arch=${GOARCH:-$($GO env GOARCH)}

for f in "$bin/ohfpd" "$bin/ohfp"; do
    if [ ! -x "$f" ]; then
        echo "$0: $f is missing: run \`make build\` first (or set OHFP_BIN)" >&2
        exit 1
    fi
done

# Both binaries must be static (CGO_ENABLED=0): the packages declare no
# libc dependency, and RHEL 8 has glibc 2.28, older than a cgo build here
# would need.
for f in "$bin/ohfpd" "$bin/ohfp"; do
    if ! $GO version -m "$f" | grep -q 'CGO_ENABLED=0'; then
        echo "$0: $f is not a static, cgo-free Go build: it would need this machine's glibc; build it with CGO_ENABLED=0 (\`make build\` does)" >&2
        exit 1
    fi
done

# Package version: semver as nfpm expects, ordered as dpkg and rpm compare.
pkgver=$(sh packaging/version.sh "$1")

# Reproducible timestamps: the last commit's, unless given.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$dist"
export OHFP_VERSION="$pkgver" OHFP_ARCH="$arch" OHFP_BIN="$bin"
for packager in deb rpm; do
    $GO tool nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$dist/"
done
echo "ohfp $pkgver ($arch): packages in $dist/"
