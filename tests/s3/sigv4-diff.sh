#!/bin/sh
# Differential test: pgkeep's SigV4 signer against botocore's, on many
# generated S3 requests (see diff-signer.py).  TAP on stdout.
exec /usr/bin/python3 "$top_srcdir/tests/s3/diff-signer.py" \
	"$top_builddir/tests/unit/test_sigv4" 500
