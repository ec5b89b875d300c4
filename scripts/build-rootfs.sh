#!/bin/sh
# build-rootfs.sh [DEST] - build the shared, read-only base userland of the
# process sandbox backend (internal/sandbox/process): a minimal Debian
# bookworm (glibc, /bin/sh, CA certificates), comparable to Lambda's
# provided.al2023 image.
#
# DEST defaults to /var/lib/kindling/rootfs. The script is idempotent: DEST
# carries a stamp file (.kindling-rootfs) whose "format" line names the layout
# version below; a DEST with a current stamp is left alone. Otherwise the tree
# is built in a staging directory beside DEST and renamed into place, so a
# reader never sees a half-built tree.
#
# Rebuilding replaces DEST while sandboxes may have it mounted: stop the
# server first when FORMAT changes.
#
# DEST.erofs is the same tree as an EROFS image (mkfs.erofs from Debian's
# erofs-utils, installed here when missing; uncompressed, no inline data, as
# gVisor's EROFS reader wants), from which the gvisor backend's sandboxes
# get their root without a gofer process (internal/sandbox/gvisor/doc.go,
# "File systems"). DEST.erofs.stamp holds the stamp of the tree it was made
# from; the image is remade whenever that differs (the tree was rebuilt),
# also when the tree itself is current.
#
# Needs root, apt (Debian/Ubuntu host) and network access to the mirror.
set -eu

# FORMAT must match process.RootFSFormat in internal/sandbox/process.
FORMAT=2
SUITE=bookworm
SANDBOX_USER=sbx_user1051
SANDBOX_ID=993

DEST=${1:-/var/lib/kindling/rootfs}
DEST=${DEST%/}
STAMP_NAME=.kindling-rootfs

log() { printf 'build-rootfs: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (try: sudo $0 $*)"

stamp_ok() {
	[ -f "$1/$STAMP_NAME" ] && grep -qx "format=$FORMAT" "$1/$STAMP_NAME"
}

# ensure_pkg CMD PKG installs the Debian package PKG when CMD is missing.
ensure_pkg() {
	command -v "$1" >/dev/null 2>&1 && return 0
	# Refresh the package lists only when apt does not know the package.
	if ! apt-cache show "$2" >/dev/null 2>&1 ||
		apt-cache policy "$2" | grep -q 'Candidate: (none)'; then
		log "apt-get update"
		apt-get update -q
	fi
	log "installing $2"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" >/dev/null
}

# build_image makes DEST.erofs from the current tree DEST unless it was made
# from this very tree already.
build_image() {
	img="$DEST.erofs"
	if [ -f "$img" ] && [ -f "$img.stamp" ] && cmp -s "$DEST/$STAMP_NAME" "$img.stamp"; then
		log "$img is current"
		return 0
	fi
	ensure_pkg mkfs.erofs erofs-utils
	log "making $img"
	rm -f "$img.tmp.$$"
	# -E noinline_data: gVisor maps file data straight from the image,
	# which it supports for block-aligned (flat plain) data only.
	mkfs.erofs --quiet -E noinline_data "$img.tmp.$$" "$DEST" >&2 ||
		{ rm -f "$img.tmp.$$"; die "mkfs.erofs failed"; }
	mv -f "$img.tmp.$$" "$img"
	cp "$DEST/$STAMP_NAME" "$img.stamp.tmp.$$"
	mv -f "$img.stamp.tmp.$$" "$img.stamp"
	log "made $img ($(du -h "$img" | cut -f1))"
}

if stamp_ok "$DEST"; then
	log "$DEST is current (format $FORMAT); nothing to do"
	build_image
	exit 0
fi

parent=$(dirname "$DEST")
mkdir -p "$parent"

# One build at a time per DEST.
exec 9>"$DEST.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi
if stamp_ok "$DEST"; then
	log "$DEST was built by a concurrent run; nothing to do"
	build_image
	exit 0
fi

# --- debootstrap ---------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
ensure_pkg debootstrap debootstrap

# --- mirror: reuse the Debian mirror this machine's apt uses --------------
mirror=
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	# deb822 "URIs:" lines and one-line "deb URI suite ..." entries; the
	# first URI whose path ends in /debian (not -security, not third party).
	m=$(sed -n -e 's/^[[:space:]]*URIs:[[:space:]]*//p' \
		-e 's/^[[:space:]]*deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}\([^[:space:]]*\).*/\2/p' "$f" |
		tr ' ' '\n' | grep -E '^https?://[^ ]*/debian/?$' | head -n 1 || true)
	if [ -n "$m" ]; then
		mirror=$m
		break
	fi
done
mirror=${mirror:-http://deb.debian.org/debian}

keyring=
if [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
	keyring=--keyring=/usr/share/keyrings/debian-archive-keyring.gpg
fi

staging="$DEST.staging.$$"
cleanup() {
	# debootstrap mounts /proc and /sys inside its target; a failed run can
	# leave them. Unmount deepest first, then remove the staging tree.
	if [ -d "$staging" ]; then
		awk -v p="$staging/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		rm -rf --one-file-system "$staging"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "debootstrap $SUITE from $mirror into $staging"
start=$(date +%s)
# shellcheck disable=SC2086 # $keyring is empty or one word
debootstrap --variant=minbase --include=ca-certificates,curl $keyring \
	"$SUITE" "$staging" "$mirror" >"$staging.log" 2>&1 ||
	{ tail -n 30 "$staging.log" >&2; rm -f "$staging.log"; die "debootstrap failed"; }
rm -f "$staging.log"
log "debootstrap done in $(($(date +%s) - start)) s"

# --- prepare the sandbox layout ---------------------------------------------
cd "$staging"

# Mount points the backend fills per sandbox: they stay empty here.
for d in proc dev sys; do
	mkdir -p "$d"
	find "$d" -mindepth 1 -delete
done
mkdir -p var/task opt var/runtime tmp
find tmp -mindepth 1 -delete
chmod 1777 tmp
chmod 0755 var/task opt var/runtime

# The unprivileged user functions run as (Lambda's sbx_user1051).
if grep -q "^[^:]*:[^:]*:$SANDBOX_ID:" etc/passwd || grep -q "^[^:]*:[^:]*:$SANDBOX_ID:" etc/group; then
	die "uid/gid $SANDBOX_ID already taken in the debootstrapped tree"
fi
echo "$SANDBOX_USER:x:$SANDBOX_ID:$SANDBOX_ID::/tmp:/usr/sbin/nologin" >>etc/passwd
echo "$SANDBOX_USER:x:$SANDBOX_ID:" >>etc/group
[ -f etc/shadow ] && echo "$SANDBOX_USER:!:19000::::::" >>etc/shadow
[ -f etc/gshadow ] && echo "$SANDBOX_USER:!::" >>etc/gshadow

# Name resolution inside a sandbox without a network: localhost only.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >etc/hosts
: >etc/resolv.conf
echo sandbox >etc/hostname

# Space: apt caches and package lists are useless in a read-only tree.
rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
	var/cache/debconf/*-old var/log/*.log var/log/apt/*
mkdir -p var/lib/apt/lists/partial

printf 'format=%s\nsuite=%s\nmirror=%s\nbuilt=%s\n' \
	"$FORMAT" "$SUITE" "$mirror" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$STAMP_NAME"
cd /

# --- swap into place ---------------------------------------------------------
if [ -e "$DEST" ]; then
	old="$DEST.old.$$"
	mv -T "$DEST" "$old"
	mv -T "$staging" "$DEST"
	rm -rf --one-file-system "$old"
else
	mv -T "$staging" "$DEST"
fi
trap - EXIT

log "built $DEST ($(du -sh "$DEST" | cut -f1)) format $FORMAT"
build_image
