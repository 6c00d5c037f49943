#!/usr/bin/python3
"""A SigV4-checking reverse proxy in front of s3rver, for pgkeep's tests.

s3rver checks no signatures at all, so this proxy does: for every request it
recomputes the signature with botocore (S3SigV4Auth, the request's own
x-amz-date, the fixed secret) and the payload hash with hashlib, and answers
403 SignatureDoesNotMatch (or 400 XAmzContentSHA256Mismatch) like S3 when
they differ; otherwise it forwards the request to s3rver and relays the reply.
One line per request goes to the log file: "METHOD TARGET STATUS VERDICT".

It also makes writes to one key take turns.  S3 makes every PUT atomic, but
s3rver truncates and rewrites the object's file in place, so two concurrent
PUTs of one key can leave a mix of both bodies; serializing them here gives
the tests S3's semantics without hiding anything the plugin does.

usage: sigcheck-proxy.py --upstream HOST:PORT --port-file FILE --log FILE
                         [--access-key S3RVER] [--secret S3RVER]
                         [--fault-file FILE]
Run with /usr/bin/python3 (Debian's python3-botocore).
"""
import argparse
import datetime
import hashlib
import hmac
import os
import http.client
import http.server
import socketserver
import sys
import threading
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect",
              "proxy-connection", "te", "upgrade"}
OPTS = None
LOG_LOCK = threading.Lock()
KEY_LOCKS = {}
KEY_LOCKS_LOCK = threading.Lock()


def key_lock(target):
    """The lock for the object a write targets (query string ignored)."""
    path = target.partition("?")[0]
    with KEY_LOCKS_LOCK:
        return KEY_LOCKS.setdefault(path, threading.Lock())


def parse_authorization(value):
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        return None
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[3] != "s3" or scope[4] != "aws4_request":
        return None
    return {"akid": scope[0], "date": scope[1], "region": scope[2],
            "signed": fields["SignedHeaders"].split(";"),
            "signature": fields["Signature"]}


def s3_error(code, message, extra=""):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
            "<Message>%s</Message>%s</Error>" % (code, message, extra)).encode()


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def check(method, target, headers, body):
    """None when the request is signed right, else (status, code, message, extra)."""
    auth = parse_authorization(headers.get("Authorization"))
    if auth is None:
        return 403, "AccessDenied", "missing or malformed SigV4 Authorization", ""
    if auth["akid"] != OPTS.access_key:
        return 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", ""
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(auth["date"]):
        return 403, "SignatureDoesNotMatch", "x-amz-date does not match the credential scope", ""
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return 403, "AccessDenied", "bad x-amz-date", ""
    skew = abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds())
    if skew > 900:
        return 403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", ""
    signed = auth["signed"]
    for must in ("host", "x-amz-date", "x-amz-content-sha256"):
        if must not in signed:
            return 403, "AccessDenied", "header %s is not signed" % must, ""
    for name in headers.keys():
        if name.lower().startswith("x-amz-") and name.lower() not in signed:
            return 403, "AccessDenied", "header %s is sent but not signed" % name, ""
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        return 400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", ""
    if declared != "UNSIGNED-PAYLOAD" and declared != hashlib.sha256(body).hexdigest():
        return 400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", ""

    # What S3 does: decode the path and query, then canonicalize them anew.
    path, _, query = target.partition("?")
    url = "http://%s%s" % (headers.get("host", ""), quote(unquote(path), safe="/~"))
    params = []
    if query:
        for pair in query.split("&"):
            k, _, v = pair.partition("=")
            params.append((unquote(k), unquote(v)))
    req = AWSRequest(method=method, url=url, params=params or None)
    for name in signed:
        for value in headers.get_all(name) or []:
            req.headers[name] = value
    req.context["timestamp"] = amz_date
    signer = S3SigV4Auth(Credentials(OPTS.access_key, OPTS.secret), "s3", auth["region"])
    creq = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, creq), req)
    if not hmac.compare_digest(want, auth["signature"]):
        return (403, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                "<CanonicalRequest>%s</CanonicalRequest>" % xml_escape(creq))
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status, verdict):
        with LOG_LOCK, open(OPTS.log, "a") as f:
            f.write("%s %s %s %s\n" % (self.command, self.path, status, verdict))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body, verdict):
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(status, verdict)

    def injected_fault(self):
        """A line "STATUS COUNT" in the fault file fails the next COUNT
        requests with that HTTP status; "cut COUNT" forwards them but drops
        the connection halfway through the reply body."""
        if not OPTS.fault_file:
            return None
        with LOG_LOCK:
            try:
                with open(OPTS.fault_file) as f:
                    status, count = f.read().split()
            except (OSError, ValueError):
                return None
            if int(count) <= 0:
                return None
            with open(OPTS.fault_file, "w") as f:
                f.write("%s %d\n" % (status, int(count) - 1))
            return status if status == "cut" else int(status)

    def handle_any(self):
        body = self.read_body()
        fault = self.injected_fault()
        if fault == "cut":
            self.forward(body, cut=True)
            return
        if fault:
            code = "SlowDown" if fault == 503 else "InternalError"
            self.reply(fault, s3_error(code, "injected by the test"), "injected:%d" % fault)
            return
        if self.command in ("PUT", "POST", "DELETE") and "partNumber=" not in self.path:
            with key_lock(self.path):
                self.forward_checked(body)
            return
        self.forward_checked(body)

    def forward_checked(self, body):
        bad = check(self.command, self.path, self.headers, body)
        if bad:
            status, code, message, extra = bad
            self.reply(status, s3_error(code, message, extra), "rejected:" + code)
            return
        self.forward(body)

    def forward(self, body, cut=False):
        host, _, port = OPTS.upstream.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            self.reply(502, s3_error("BadGateway", "s3rver unreachable: %s" % e), "upstream-down")
            return
        length = resp.getheader("Content-Length")
        data = None
        if length is None and self.command != "HEAD":
            data = resp.read()
            length = str(len(data))
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            if cut:
                # Half the body, then a dropped connection.
                whole = data if data is not None else resp.read()
                self.wfile.write(whole[:len(whole) // 2])
                self.wfile.flush()
                self.close_connection = True
                conn.close()
                self.log_line(resp.status, "cut")
                return
            if data is not None:
                self.wfile.write(data)
            else:
                while True:
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
        conn.close()
        self.log_line(resp.status, "forwarded")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global OPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--access-key", default="S3RVER")
    ap.add_argument("--secret", default="S3RVER")
    ap.add_argument("--fault-file")
    OPTS = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    with open(OPTS.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(OPTS.port_file + ".tmp", OPTS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
