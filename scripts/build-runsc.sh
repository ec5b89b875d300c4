#!/bin/sh
# build-runsc.sh [OUT] - build gVisor's runsc, the runtime of the gvisor
# sandbox backend (internal/sandbox/gvisor), from source with the go command.
#
# The gVisor version is pinned in tools/runsc/go.mod (module
# gvisor.dev/gvisor, the pseudo-version of its `go` branch that the Go module
# proxy serves). Nothing else is fetched: no prebuilt binary is ever
# downloaded.
#
# OUT defaults to /var/lib/kindling/bin/runsc. The build runs once: OUT.stamp
# records the pinned version and the Go version that built it, and a current
# stamp next to an existing OUT means there is nothing to do. The binary is
# built beside OUT and renamed into place, so a reader never sees half of it.
#
# Takes about 100 s and 1.5 GB of memory on 2 cores the first time (module
# download included); the module cache makes later builds faster.
set -eu

OUT=${1:-/var/lib/kindling/bin/runsc}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac

log() { printf 'build-runsc: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
tools="$here/tools/runsc"
[ -f "$tools/go.mod" ] || die "$tools/go.mod not found"
command -v go >/dev/null 2>&1 || die "the go command is not on PATH"

cd "$tools"
version=$(go list -m -f '{{.Version}}' gvisor.dev/gvisor) || die "cannot read the pinned gvisor.dev/gvisor version"
gover=$(go env GOVERSION)
want="gvisor.dev/gvisor $version $gover"

current() {
	[ -x "$OUT" ] && [ -f "$OUT.stamp" ] && [ "$(cat "$OUT.stamp")" = "$want" ]
}

if current; then
	log "$OUT is current ($want); nothing to do"
	exit 0
fi

mkdir -p "$(dirname "$OUT")"
# One build at a time per OUT.
exec 9>"$OUT.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if current; then
	log "$OUT was built by a concurrent run; nothing to do"
	exit 0
fi

tmp="$OUT.tmp.$$"
trap 'rm -f "$tmp"' EXIT
trap 'exit 130' INT TERM

log "building runsc from gvisor.dev/gvisor@$version with $gover"
start=$(date +%s)
# Static, reproducible paths; the version shows in `runsc --version`.
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-X gvisor.dev/gvisor/runsc/version.version=$version" \
	-o "$tmp" gvisor.dev/gvisor/runsc
"$tmp" --version >/dev/null || die "the built runsc does not run"
mv -f "$tmp" "$OUT"
trap - EXIT
printf '%s\n' "$want" >"$OUT.stamp"
log "built $OUT in $(($(date +%s) - start)) s: $("$OUT" --version | head -n 1)"
