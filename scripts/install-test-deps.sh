#!/bin/sh
# Installs what the tests need beyond the build itself: Debian's AWS CLI v2
# (package awscli), which the end-to-end suite drives through
# scripts/awscli-smoke.sh. Idempotent; needs root and apt.
set -eu
if /usr/bin/aws --version 2>&1 | grep -q '^aws-cli/2\.'; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy awscli 2>/dev/null | grep -q 'Candidate: [0-9]'; then
	apt-get update -q
fi
apt-get install -y -q --no-install-recommends awscli >/dev/null
/usr/bin/aws --version
