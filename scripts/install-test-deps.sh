#!/bin/sh
# Installs what the tests drive besides Kindling itself: Debian's AWS CLI v2
# (package awscli; scripts/awscli-smoke.sh) and boto3 (python3-boto3;
# scripts/boto3-smoke.py). Idempotent; needs root and apt.
set -eu
need=""
/usr/bin/aws --version 2>&1 | grep -q '^aws-cli/2\.' || need="$need awscli"
/usr/bin/python3 -c 'import boto3' 2>/dev/null || need="$need python3-boto3"
[ -n "$need" ] || exit 0
export DEBIAN_FRONTEND=noninteractive
for p in $need; do
	if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		apt-get update -q
		break
	fi
done
# shellcheck disable=SC2086 # $need is a list of package names
apt-get install -y -q --no-install-recommends $need >/dev/null
echo "install-test-deps: installed$need"
