#!/bin/sh
# Drives the AWS CLI v2 against a Kindling server: deploys FUNCTION from ZIP
# (a zip of testdata/functions/behave; without ZIP, FUNCTION must exist),
# invokes it synchronously and asynchronously so that it prints markers, then
# finds the markers and Lambda's START/END/REPORT lines with `aws logs tail`,
# `aws logs filter-log-events` and `aws logs get-log-events`, checks the
# stream's name, sets a retention policy and deletes what it deployed. With
# SNAPSTART=1 (a server on gVisor) it then turns SnapStart on, publishes a
# version, waits for its snapshot and checks that the version's first invoke
# is a restore (Restore Duration in its REPORT line).
# The e2e suite runs it (TestAWSCLILogs); by hand:
#
#   ENDPOINT=http://127.0.0.1:9000 FUNCTION=hello ZIP=behave.zip \
#   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1 \
#   scripts/awscli-smoke.sh
#
# `aws logs tail` exists in AWS CLI v2 only (Debian bookworm's awscli
# package is 2.9.19); set AWS_CLI to its path when another aws comes first
# on PATH.
set -eu
: "${ENDPOINT:?set ENDPOINT to the server URL}" "${FUNCTION:?set FUNCTION to a deployed behave function}"
AWS=${AWS_CLI:-aws}
if ! "$AWS" --version 2>&1 | grep -q '^aws-cli/2\.'; then
	echo "awscli-smoke: $AWS is not AWS CLI v2 ($("$AWS" --version 2>&1)); install Debian's awscli or set AWS_CLI" >&2
	exit 2
fi
aws() { "$AWS" --endpoint-url "$ENDPOINT" "$@"; }
fail() {
	echo "awscli-smoke: FAIL: $*" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
group="/aws/lambda/$FUNCTION"
marker="smoke-marker-$$-$(date +%s)"

if [ -n "${ZIP:-}" ]; then
	aws lambda create-function --function-name "$FUNCTION" --runtime provided.al2023 \
		--handler bootstrap --role arn:aws:iam::000000000000:role/smoke \
		--zip-file "fileb://$ZIP" >/dev/null || fail "aws lambda create-function"
	trap 'aws lambda delete-function --function-name "$FUNCTION" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
	aws lambda wait function-active-v2 --function-name "$FUNCTION" || fail "aws lambda wait function-active-v2"
	echo "aws lambda create-function: $FUNCTION Active"
fi

aws lambda invoke --function-name "$FUNCTION" --cli-binary-format raw-in-base64-out \
	--payload "{\"op\":\"log\",\"lines\":[\"$marker\"]}" "$tmp/result.json" >/dev/null ||
	fail "aws lambda invoke"
echo "aws lambda invoke: ok"
async="smoke-async-$$-$(date +%s)"
status=$(aws lambda invoke --function-name "$FUNCTION" --invocation-type Event --cli-binary-format raw-in-base64-out \
	--payload "{\"op\":\"log\",\"lines\":[\"$async\"]}" "$tmp/async.json" --query StatusCode --output text) ||
	fail "aws lambda invoke --invocation-type Event"
[ "$status" = 202 ] || fail "async invoke answered $status, want 202"
echo "aws lambda invoke --invocation-type Event: 202"

# Logs are stored asynchronously, as in CloudWatch: poll for up to 20 s.
i=0
while :; do
	aws logs tail "$group" --since 10m --format short >"$tmp/tail.txt" 2>"$tmp/tail.err" || true
	grep -q "REPORT RequestId:" "$tmp/tail.txt" && grep -q "$marker" "$tmp/tail.txt" &&
		grep -q "$async" "$tmp/tail.txt" && break
	i=$((i + 1))
	[ "$i" -lt 100 ] || fail "aws logs tail never showed $marker and $async: $(cat "$tmp/tail.txt" "$tmp/tail.err")"
	sleep 0.2
done
for line in "START RequestId:" "$marker" "END RequestId:" "REPORT RequestId:"; do
	grep -q "$line" "$tmp/tail.txt" || fail "no '$line' in aws logs tail: $(cat "$tmp/tail.txt")"
done
echo "aws logs tail: START, output, END and REPORT found"

n=$(aws logs filter-log-events --log-group-name "$group" --filter-pattern "\"$marker\"" \
	--query 'length(events)' --output text)
[ "$n" = 1 ] || fail "filter-log-events for the marker found $n events"
echo "aws logs filter-log-events: 1 event"

# The stream of the environment that printed the marker (the async invoke
# may have run in another one).
stream=$(aws logs filter-log-events --log-group-name "$group" --filter-pattern "\"$marker\"" \
	--query 'events[0].logStreamName' --output text)
echo "$stream" | grep -Eq '^[0-9]{4}/[0-9]{2}/[0-9]{2}/\[\$LATEST\][0-9a-f]{32}$' ||
	fail "stream name '$stream' is not Lambda's"
aws logs describe-log-streams --log-group-name "$group" --query 'logStreams[].logStreamName' --output text |
	grep -qF "$stream" || fail "describe-log-streams does not list $stream"
aws logs get-log-events --log-group-name "$group" --log-stream-name "$stream" --start-from-head \
	--query 'events[].message' --output text | grep -q "$marker" ||
	fail "get-log-events of $stream lacks the marker"
echo "aws logs describe-log-streams / get-log-events: $stream"

aws logs put-retention-policy --log-group-name "$group" --retention-in-days 7
days=$(aws logs describe-log-groups --log-group-name-prefix "$group" --query 'logGroups[0].retentionInDays' --output text)
[ "$days" = 7 ] || fail "retention is '$days' after put-retention-policy 7"
echo "aws logs put-retention-policy: 7 days"

if [ "${SNAPSTART:-}" = 1 ]; then
	aws lambda update-function-configuration --function-name "$FUNCTION" \
		--snap-start ApplyOn=PublishedVersions >/dev/null || fail "update-function-configuration --snap-start"
	aws lambda wait function-updated-v2 --function-name "$FUNCTION" || fail "wait function-updated-v2"
	version=$(aws lambda publish-version --function-name "$FUNCTION" --query Version --output text) ||
		fail "publish-version"
	aws lambda wait function-active-v2 --function-name "$FUNCTION" --qualifier "$version" ||
		fail "wait function-active-v2 --qualifier $version"
	status=$(aws lambda get-function --function-name "$FUNCTION" --qualifier "$version" \
		--query 'Configuration.SnapStart.OptimizationStatus' --output text)
	[ "$status" = On ] || fail "version $version OptimizationStatus is '$status', want On"
	aws lambda invoke --function-name "$FUNCTION:$version" --cli-binary-format raw-in-base64-out \
		--payload '{"op":"log","lines":["restored"]}' --log-type Tail "$tmp/restored.json" \
		--query LogResult --output text | base64 -d >"$tmp/restored.log" || fail "invoke $FUNCTION:$version"
	grep -q "Restore Duration: " "$tmp/restored.log" ||
		fail "the first invoke of version $version was not a restore: $(cat "$tmp/restored.log")"
	echo "aws lambda publish-version with SnapStart: version $version restored"
fi
echo "awscli-smoke: ok"
