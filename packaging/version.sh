#!/bin/sh
# Turn a `git describe` result into the semver version nfpm packages with,
# ordered the way dpkg and rpm compare versions:
#   v1.2.3                     -> 1.2.3
#   v1.2.3-rc.1                -> 1.2.3-rc.1            (1.2.3~rc.1: before 1.2.3)
#   v1.2.3-4-gabc1234          -> 1.2.3+4.gabc1234      (after 1.2.3)
#   v1.2.3-4-gabc1234-dirty    -> 1.2.3+4.gabc1234.dirty
#   abc1234 (no tag yet)       -> 0.0.0+git.N.abc1234   (N: commits so far)
set -eu
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 VERSION" >&2
    exit 2
fi
v=${1#v}
dirty=
case "$v" in *-dirty) dirty=dirty; v=${v%-dirty} ;; esac
case "$v" in
    [0-9]*.[0-9]*)
        after=$(printf '%s' "$v" | sed -n 's/^\(.*\)-\([0-9][0-9]*\)-g\([0-9a-f][0-9a-f]*\)$/\1+\2.g\3/p')
        [ -n "$after" ] && v=$after
        ;;
    *)
        n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
        v="0.0.0+git.$n.$v"
        ;;
esac
if [ -n "$dirty" ]; then
    case "$v" in *+*) v="$v.$dirty" ;; *) v="$v+$dirty" ;; esac
fi
# Keep to semver's alphabet: letters, digits, dots, hyphens, one plus.
base=${v%%+*}
meta=
case "$v" in *+*) meta=${v#*+} ;; esac
base=$(printf '%s' "$base" | tr -c 'A-Za-z0-9.-' '.')
meta=$(printf '%s' "$meta" | tr -c 'A-Za-z0-9.' '.')
if [ -n "$meta" ]; then
    printf '%s+%s\n' "$base" "$meta"
else
    printf '%s\n' "$base"
fi
