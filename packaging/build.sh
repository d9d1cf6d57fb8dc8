#!/bin/sh
# Build the ohfp .deb and .rpm with nfpm (a Go tool dependency in go.mod: no
# download beyond the Go module proxy).
#
#   packaging/build.sh VERSION
#
# VERSION is normally `git describe` (v1.2.3, v1.2.3-4-gabc1234-dirty, or a
# bare commit); packaging/version.sh turns it into a package version.
# It also generates, into a temporary folder: the man pages and shell
# completions (packaging/gendocs), the copyright file and the changelog.
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

# Generated files: man pages and completions (from the binaries' help and
# the configuration reference), the copyright file and the changelog.
work=$(mktemp -d "${TMPDIR:-/tmp}/ohfp-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
$GO run ./packaging/gendocs -bin "$bin" -reference internal/config/reference.md -version "$pkgver" -out "$work"

# The copyright file (Debian's machine-readable format). The binaries are
# static: they hold the Go modules they were built from, listed here.
{
    cat packaging/copyright.in
    echo "Comment: ohfpd and ohfp are statically linked Go programs. Besides the Go"
    echo " standard library (BSD-3-Clause) they contain these Go modules, each under"
    echo " its own licence:"
    $GO version -m "$bin/ohfpd" "$bin/ohfp" | awk '$1 == "dep" { print " " $2 " " $3 }' | sort -u
    echo
    echo "License: Apache-2.0"
    echo " On Debian systems the full text of the Apache License, Version 2.0 is in"
    echo " /usr/share/common-licenses/Apache-2.0 (and in /usr/share/licenses/ohfp/LICENSE"
    echo " with the .rpm)."
} > "$work/copyright"

# The changelog (Debian's changelog.Debian.gz, the rpm's %changelog): one
# entry for the version being built.
# Its version is the packages' own: pre-release after "~", release 1.
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
native=$(printf '%s' "$pkgver" | sed 's/^\([^+-]*\)-/\1~/')-1
cat > "$work/changelog.yaml" <<EOF
- semver: $native
  date: $date
  packager: ohfp maintainers <ohfp@example.org>
  deb:
    urgency: medium
    distributions: [unstable]
  changes:
    - note: Built from git $1; the changes are in its history.
EOF
sed "s|^changelog: .*|changelog: $work/changelog.yaml|" packaging/nfpm.yaml > "$work/nfpm.yaml"

mkdir -p "$dist"
export OHFP_VERSION="$pkgver" OHFP_ARCH="$arch" OHFP_BIN="$bin" OHFP_GEN="$work"
for packager in deb rpm; do
    $GO tool nfpm package --config "$work/nfpm.yaml" --packager "$packager" --target "$dist/"
done
# rpmlint's filters of what is on purpose, each explained: rpmlint reads an
# rpmlintrc next to the one package it is given.
cp packaging/ohfp.rpmlintrc "$dist/ohfp.rpmlintrc"
echo "ohfp $pkgver ($arch): packages in $dist/"
