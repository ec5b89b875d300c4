#!/bin/sh
# build-runsc.sh [OUT] - build gVisor's runsc, the runtime of the gvisor
# sandbox backend (internal/sandbox/gvisor), from source with the go command.
#
# The gVisor version is pinned in tools/runsc/go.mod (module
# gvisor.dev/gvisor, the pseudo-version of its `go` branch that the Go module
# proxy serves). Nothing else is fetched: no prebuilt binary is ever
# downloaded.
#
# Precompiled seccomp filters: the module's runsc/boot/filter/
# filter_precompiled.go is a stub (gVisor's Bazel build generates the real
# one), so a plain go-built runsc compiles its seccomp filters at every
# sandbox start. This script builds in a temporary copy of tools/runsc: it
# runs `go mod vendor` there, runs tools/runsc/gen-precompiled (gVisor's own
# config.PrecompiledPrograms) to write the real file, and builds with
# `go build -overlay` replacing the vendored stub with it (-overlay refuses
# files in the module cache, hence the vendor directory; it is never
# committed and the build directory is removed afterwards).
# BUILD_RUNSC_SECCOMP=plain builds the stub variant instead, as before.
#
# OUT defaults to /var/lib/kindling/bin/runsc. The build runs once: OUT.stamp
# records the pinned version, the Go version that built it and the seccomp
# variant, and a current stamp next to an existing OUT means there is nothing
# to do (a stamp from before the variant was recorded means a plain build,
# rebuilt once). The binary is built beside OUT and renamed into place, so a
# reader never sees half of it.
#
# Takes about 100 s and 1.5 GB of memory on 2 cores the first time (module
# download included), plus a few seconds to generate the filters; the module
# and build caches make later builds faster.
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
variant=${BUILD_RUNSC_SECCOMP:-precompiled}
case $variant in
precompiled) want="gvisor.dev/gvisor $version $gover seccomp=precompiled" ;;
plain) want="gvisor.dev/gvisor $version $gover" ;;
*) die "BUILD_RUNSC_SECCOMP must be precompiled or plain, not $variant" ;;
esac

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
build=
cleanup() {
	rm -f "$tmp"
	if [ -n "$build" ]; then rm -rf "$build"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building runsc from gvisor.dev/gvisor@$version with $gover (seccomp filters: $variant)"
start=$(date +%s)
ldflags="-X gvisor.dev/gvisor/runsc/version.version=$version"
if [ "$variant" = plain ]; then
	# Static, reproducible paths; the version shows in `runsc --version`.
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
		-o "$tmp" gvisor.dev/gvisor/runsc
else
	build=$(mktemp -d "${TMPDIR:-/tmp}/build-runsc.XXXXXX")
	case $build in *[\"\\]*) die "unusable build directory name $build" ;; esac
	cp "$tools/go.mod" "$tools/go.sum" "$build/"
	cp -R "$tools/gen-precompiled" "$build/"
	cd "$build"
	go mod vendor || die "go mod vendor failed"
	stub="$build/vendor/gvisor.dev/gvisor/runsc/boot/filter/filter_precompiled.go"
	[ -f "$stub" ] || die "$stub not found: the pinned gVisor changed its layout"
	CGO_ENABLED=0 go build -trimpath -o "$build/gen-precompiled.bin" ./gen-precompiled ||
		die "cannot build gen-precompiled"
	gen=$(date +%s)
	"$build/gen-precompiled.bin" -o "$build/filter_precompiled.go" ||
		die "gen-precompiled failed (BUILD_RUNSC_SECCOMP=plain builds without precompiled filters)"
	log "generated the seccomp filters in $(($(date +%s) - gen)) s"
	printf '{"Replace":{"%s":"%s"}}\n' "$stub" "$build/filter_precompiled.go" >"$build/overlay.json"
	CGO_ENABLED=0 go build -trimpath -overlay "$build/overlay.json" -ldflags "$ldflags" \
		-o "$tmp" gvisor.dev/gvisor/runsc
	cd "$tools"
fi
"$tmp" --version >/dev/null || die "the built runsc does not run"
mv -f "$tmp" "$OUT"
cleanup
build=
trap - EXIT
printf '%s\n' "$want" >"$OUT.stamp"
log "built $OUT in $(($(date +%s) - start)) s: $("$OUT" --version | head -n 1)"
