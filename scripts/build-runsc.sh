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
# Performance patches: every tools/runsc/patches/*.patch (a unified diff
# against the gvisor.dev/gvisor module's root, -p1) is applied, with the
# patch command, to copies of the vendored files it names, and the copies
# replace those files through the same -overlay (both variants). They
# change only how fast runsc does what it does (or how much memory it
# keeps, or fix a bug), never what it allows (see
# internal/sandbox/gvisor/doc.go, "Start-up cost"); a patch that no longer
# applies to the pinned gVisor stops the build:
#   hostmm-lazy-membarrier.patch    membarrier(REGISTER_PRIVATE_EXPEDITED),
#       an RCU grace period (~5-10 ms) in the init of every runsc process
#       (CLI, gofer, sandbox, twice each with their re-exec), is made on
#       first use: only the KVM platform uses it, and registers in New.
#   cgroup-background-restore.patch  `runsc run`/`create`/`restore` moves
#       itself back out of the sandbox's cgroups (another grace period, on
#       cgroup v1) in the background once the sandbox process is started,
#       while the sandbox starts, instead of after, while the sandbox waits;
#       it is still back before doing anything else.
#   stateio-read-parallelism.patch  the pages file of a checkpoint is read
#       with at most one read per CPU but one (at least one) instead of 128
#       (restore): the application keeps a CPU while memory loads.
#   mm-async-load-map-unit.patch  while a restored sandbox's memory is still
#       loading, a fault maps (and waits for) 256 KiB, one read of the pages
#       file, instead of 32 MiB: the first response of a restored function
#       no longer waits longer the larger its memory.
#   systrap-seccomp-notify-enoent.patch  a fix, not a speed-up: systrap
#       retries SECCOMP_IOCTL_NOTIF_RECV on ENOENT (a notification withdrawn
#       because its task was interrupted, as the cgroup freezer does) like
#       on EINTR, instead of killing the address space: needed to freeze
#       idle sandboxes (internal/sandbox/gvisor/doc.go, "Idle sandboxes").
#   idle-memory-release.patch  memory use only: the sentry's Usage.Reduce
#       (called by the backend before it freezes a sandbox) returns the
#       freed Go heap to the host (debug.FreeOSMemory instead of
#       runtime.GC), and the gofer does so once after its set-up.
#   goferless-erofs-submounts.patch  memory use only: runsc starts no gofer
#       when no mount needs its file server (lisafs), which upstream allows
#       for an EROFS root image only: it handed the sandbox the root image
#       alone. It now also opens the submounts' EROFS images and creates
#       the overlay filestores (the /tmp overlay's host file) itself, as it
#       does with a gofer, so that a sandbox whose root, code, agent and
#       /tmp lower layer are EROFS images runs without a gofer process
#       (~4 MB each; internal/sandbox/gvisor/doc.go, "File systems"). The
#       sentry gets the files it would get with a gofer, read-only images
#       and the filestore, and no other.
#   mm-cow-within-vma.patch  memory use (and a permission fix): a write
#       that breaks copy-on-write of a private file mapping copies pages
#       of that vma only. Translated pmas of adjacent mappings of one file
#       merge when their effective permissions match (an ELF's read-only
#       .rodata and its .data before the first write), and the copy,
#       widened to the 2 MB-aligned range, took up to 2 MB of .rodata
#       into private memory and gave it .data's write permission: ~1.8 MB
#       of every Go process (the agent, a Go function's runtime).
#
# OUT defaults to /var/lib/kindling/bin/runsc. The build runs once: OUT.stamp
# records the pinned version, the Go version that built it, the seccomp
# variant, a hash of the patches and their names, and a current stamp next to an
# existing OUT means there is nothing to do (any other stamp, or none,
# means a rebuild). The binary is built beside OUT and renamed into place,
# so a reader never sees half of it.
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
precompiled | plain) ;;
*) die "BUILD_RUNSC_SECCOMP must be precompiled or plain, not $variant" ;;
esac
patches=
for p in "$tools"/patches/*.patch; do
	[ -f "$p" ] && patches="$patches $p"
done
if [ -n "$patches" ]; then
	command -v patch >/dev/null 2>&1 || die "the patch command is needed (apt-get install patch)"
	# shellcheck disable=SC2086 # the names are ours, without blanks
	phash=$(cat $patches | sha256sum | cut -c1-16)
else
	phash=none
fi
# The stamp's second line names the patches applied: the gvisor backend
# mounts EROFS images without a gofer only with a runsc whose stamp says
# goferless-erofs-submounts (internal/sandbox/gvisor/erofs_linux.go).
names=
for p in $patches; do
	n=$(basename "$p" .patch)
	names="$names${names:+ }$n"
done
want="gvisor.dev/gvisor $version $gover seccomp=$variant patches=$phash
applied=$names"

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

log "building runsc from gvisor.dev/gvisor@$version with $gover (seccomp filters: $variant, patches: $phash)"
start=$(date +%s)
ldflags="-X gvisor.dev/gvisor/runsc/version.version=$version"
build=$(mktemp -d "${TMPDIR:-/tmp}/build-runsc.XXXXXX")
case $build in *[\"\\]*) die "unusable build directory name $build" ;; esac
cp "$tools/go.mod" "$tools/go.sum" "$build/"
cp -R "$tools/gen-precompiled" "$build/"
cd "$build"
go mod vendor || die "go mod vendor failed"
gvisor="$build/vendor/gvisor.dev/gvisor"
# overlay.json's entries, "vendored file":"replacement", comma-separated.
entries=
add() { entries="$entries${entries:+,}\"$1\":\"$2\""; }
for p in $patches; do
	for f in $(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p"); do
		case $f in *..* | /*) die "$p: unexpected path $f" ;; esac
		[ -f "$gvisor/$f" ] || die "$p: $f is not in the pinned gVisor"
		[ -f "$build/patched/$f" ] && continue
		mkdir -p "$(dirname "$build/patched/$f")"
		cp "$gvisor/$f" "$build/patched/$f"
		add "$gvisor/$f" "$build/patched/$f"
	done
	patch -p1 --batch --forward --silent -d "$build/patched" -i "$p" ||
		die "$(basename "$p") does not apply to gvisor.dev/gvisor@$version"
done
printf '{"Replace":{%s}}\n' "$entries" >"$build/overlay.json"
if [ "$variant" = precompiled ]; then
	stub="$gvisor/runsc/boot/filter/filter_precompiled.go"
	[ -f "$stub" ] || die "$stub not found: the pinned gVisor changed its layout"
	CGO_ENABLED=0 go build -trimpath -overlay "$build/overlay.json" -o "$build/gen-precompiled.bin" ./gen-precompiled ||
		die "cannot build gen-precompiled"
	gen=$(date +%s)
	"$build/gen-precompiled.bin" -o "$build/filter_precompiled.go" ||
		die "gen-precompiled failed (BUILD_RUNSC_SECCOMP=plain builds without precompiled filters)"
	log "generated the seccomp filters in $(($(date +%s) - gen)) s"
	add "$stub" "$build/filter_precompiled.go"
	printf '{"Replace":{%s}}\n' "$entries" >"$build/overlay.json"
fi
# Static, reproducible paths; the version shows in `runsc --version`.
CGO_ENABLED=0 go build -trimpath -overlay "$build/overlay.json" -ldflags "$ldflags" \
	-o "$tmp" gvisor.dev/gvisor/runsc || die "go build failed"
cd "$tools"
"$tmp" --version >/dev/null || die "the built runsc does not run"
mv -f "$tmp" "$OUT"
cleanup
build=
trap - EXIT
printf '%s\n' "$want" >"$OUT.stamp"
log "built $OUT in $(($(date +%s) - start)) s: $("$OUT" --version | head -n 1)"
