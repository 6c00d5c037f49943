#!/usr/bin/python3
"""Differential test of pgkeep's SigV4 signer against botocore's.

Generates many S3 requests (odd and Unicode keys, spaces, '+', query
parameters in any order, extra and repeated headers, session tokens, signed
and unsigned payloads), has `test_sigv4 --sign` sign them and checks every
Authorization value against the one botocore's S3SigV4Auth computes.  Prints
TAP.  Run with Debian's /usr/bin/python3, which sees python3-botocore.

usage: diff-signer.py PATH/TO/test_sigv4 [COUNT] [SEED]
"""
import hashlib
import random
import subprocess
import sys
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_ALPHABET = (
    "abcXYZ019-._~ +%=&?#;:@!$()',*[]{}|^`\"<>\\/"
    "\u00e9\u00df\u4e2d\u6587\U0001f600\u0301"
)
HEADER_VALUE_ALPHABET = "abcXYZ019-._~ +%=&?#;:@!$()',*/\t  "
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "auto", "us-west-004"]


def rand_text(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def gen_request(rng):
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    bucket = rng.choice(["bucket", "my.bucket", "b-1"])
    key = rand_text(rng, KEY_ALPHABET, 0, 40)
    if rng.random() < 0.2:
        key = "//" + key + "//"
    path = "/" + bucket + "/" + key
    params = []
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(["prefix", "list-type", "continuation-token",
                           "max-keys", "uploads", "uploadId", "partNumber",
                           "delete", "retention", "Zeta", "a b", "x+y"])
        value = None if rng.random() < 0.2 else rand_text(rng, KEY_ALPHABET, 0, 20)
        params.append((name, value))
    host = rng.choice(["127.0.0.1:9000", "s3.amazonaws.com",
                       "bucket.s3.eu-west-3.amazonaws.com", "localhost"])
    headers = [("Host", host)]
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["x-amz-meta-test", "X-Amz-Meta-Test-Two",
                           "Content-Type", "Range", "x-amz-storage-class",
                           "If-None-Match", "Content-MD5", "X-AMZ-META-A"])
        headers.append((name, rand_text(rng, HEADER_VALUE_ALPHABET, 1, 30)))
    body = rand_text(rng, KEY_ALPHABET, 0, 100).encode() if method in ("PUT", "POST") else b""
    payload = ("UNSIGNED-PAYLOAD" if rng.random() < 0.3
               else hashlib.sha256(body).hexdigest())
    date = "%04d%02d%02dT%02d%02d%02dZ" % (
        rng.randint(2013, 2030), rng.randint(1, 12), rng.randint(1, 28),
        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
    headers.append(("X-Amz-Date", date))
    headers.append(("x-amz-content-sha256", payload))
    token = None
    if rng.random() < 0.3:
        token = rand_text(rng, "ABCdef0123456789+/=", 20, 60)
        headers.append(("X-Amz-Security-Token", token))
    rng.shuffle(headers)
    return {
        "method": method, "path": path, "params": params, "headers": headers,
        "payload": payload, "date": date, "token": token,
        "region": rng.choice(REGIONS),
        "akid": rand_text(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, 20),
        "secret": rand_text(rng, "abcdefABCDEF0123456789+/", 30, 40),
    }


def hx(s):
    return s.encode("utf-8").hex()


def encode_for_pgkeep(r):
    lines = ["method " + hx(r["method"]), "path " + hx(r["path"]),
             "payload " + hx(r["payload"]), "date " + hx(r["date"]),
             "akid " + hx(r["akid"]), "secret " + hx(r["secret"]),
             "region " + hx(r["region"]), "service " + hx("s3")]
    for name, value in r["params"]:
        lines.append("query %s %s" % (hx(name), "-" if value is None else hx(value)))
    for name, value in r["headers"]:
        lines.append("header %s %s" % (hx(name), hx(value)))
    lines.append("end")
    return "\n".join(lines) + "\n"


def botocore_authorization(r):
    """Sign with botocore alone: its canonicalization, hashing and keys."""
    # botocore's S3 serializer encodes keys this way before signing.
    url = "https://%s%s" % (dict((n.lower(), v) for n, v in r["headers"])["host"],
                            quote(r["path"], safe="/~"))
    params = [(n, "" if v is None else v) for n, v in r["params"]]
    req = AWSRequest(method=r["method"], url=url, params=params)
    for name, value in r["headers"]:
        req.headers[name] = value
    req.context["timestamp"] = r["date"]
    auth = S3SigV4Auth(Credentials(r["akid"], r["secret"], r["token"]),
                       "s3", r["region"])
    creq = auth.canonical_request(req)
    sts = auth.string_to_sign(req, creq)
    auth._inject_signature_to_request(req, auth.signature(sts, req))
    return req.headers["Authorization"], creq


def main():
    signer = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20240601
    rng = random.Random(seed)
    reqs = [gen_request(rng) for _ in range(count)]
    stdin = "".join(encode_for_pgkeep(r) for r in reqs)
    out = subprocess.run([signer, "--sign"], input=stdin.encode(),
                         stdout=subprocess.PIPE, check=True).stdout.decode()
    got = out.splitlines()
    print("1..%d" % (count + 1))
    print("%sok 1 - pgkeep signed %d of %d requests" %
          ("" if len(got) == count else "not ", len(got), count))
    failed = len(got) != count
    for i, r in enumerate(reqs):
        want, creq = botocore_authorization(r)
        mine = got[i] if i < len(got) else "(missing)"
        good = mine == want
        failed |= not good
        print("%sok %d - %s %s%s (%d params, %d headers%s)" % (
            "" if good else "not ", i + 2, r["method"],
            ascii(r["path"])[:50], "", len(r["params"]), len(r["headers"]),
            ", session token" if r["token"] else ""))
        if not good:
            print("#   pgkeep:   %s\n#   botocore: %s" % (mine, want))
            for line in creq.split("\n"):
                print("#   botocore canonical: %s" % ascii(line))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
