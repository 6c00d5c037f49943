#!/bin/sh
# The point-in-time restore test (pitr.sh) with the repository on the fake
# B2, and trouble on the way: every token expires on its 21st use, so each
# command making more calls than that (the restores, each fetching dozens of
# chunks) meets an expiry mid-run, and bursts of 503 and of 429 with
# Retry-After hit the first calls: four failures in a row, so that the first
# request succeeds only at the last of the plugin's five attempts.  The
# backup and every restore must still succeed, and the fake must have seen
# every one of those faults.

set -u
. "${top_srcdir:-.}/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
B2_FAKE_CONTROL='{"token_uses": 20, "fail_503": 2, "fail_429": 2, "retry_after": 1}'
export B2_FAKE_CONTROL
store_run b2 pitr.sh
