#!/usr/bin/python3
"""Drives a Kindling server with boto3 (Debian's python3-boto3), unmodified:
deploys FUNCTION from ZIP (a zip of testdata/functions/behave), publishes a
version behind an alias, invokes it synchronously (with the log tail) and
asynchronously, finds both invocations' output with CloudWatch Logs'
filter_log_events, and deletes the function.

The e2e suite runs it (TestBoto3); by hand:

    ENDPOINT=http://127.0.0.1:9000 FUNCTION=hello ZIP=behave.zip \\
    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1 \\
    scripts/boto3-smoke.py
"""
import base64
import json
import os
import sys
import time

import boto3

endpoint, name = os.environ["ENDPOINT"], os.environ["FUNCTION"]
lam = boto3.client("lambda", endpoint_url=endpoint)
logs = boto3.client("logs", endpoint_url=endpoint)


def fail(msg):
    print("boto3-smoke: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


with open(os.environ["ZIP"], "rb") as f:
    code = f.read()
lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap",
                    Role="arn:aws:iam::000000000000:role/boto3", Code={"ZipFile": code})
try:
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    print("create_function, publish_version %s, create_alias live: ok" % version)

    marker = "boto3-sync-%d" % os.getpid()
    out = lam.invoke(FunctionName=name, Qualifier="live", LogType="Tail",
                     Payload=json.dumps({"op": "log", "lines": [marker]}))
    tail = base64.b64decode(out["LogResult"]).decode()
    if out["StatusCode"] != 200 or out["ExecutedVersion"] != version or marker not in tail:
        fail("sync invoke: %r %r" % (out["StatusCode"], tail))
    print("invoke (alias live -> version %s) with the log tail: ok" % version)

    amarker = "boto3-async-%d" % os.getpid()
    out = lam.invoke(FunctionName=name, InvocationType="Event",
                     Payload=json.dumps({"op": "log", "lines": [amarker]}))
    if out["StatusCode"] != 202:
        fail("async invoke answered %r" % out["StatusCode"])
    print("invoke Event: 202")

    group = "/aws/lambda/" + name
    deadline = time.time() + 30
    while True:
        seen = set()
        try:
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
                for ev in page["events"]:
                    for m in (marker, amarker):
                        if m in ev["message"]:
                            seen.add(m)
        except logs.exceptions.ResourceNotFoundException:
            pass
        if seen == {marker, amarker}:
            break
        if time.time() > deadline:
            fail("filter_log_events found %r of both markers" % sorted(seen))
        time.sleep(0.2)
    print("filter_log_events: both invocations' output found")
finally:
    lam.delete_function(FunctionName=name)
print("boto3-smoke: ok")
