#!/usr/bin/python3
"""A fake Backblaze B2 server for pgkeep's tests.

It serves Backblaze's own in-process model of B2 (b2sdk's RawSimulator, from
Debian's python3-b2sdk) over HTTP, so that the plugin is checked against
Backblaze's behaviour rather than ours, and adds switches to inject the faults
a real B2 produces: expired tokens, 503 bursts, 429 with Retry-After, refused
upload URLs, a storage cap.  See tests/b2/README.md for what it covers.

Usage: fake_b2.py [--port N] [--bucket NAME] [--info-file PATH]
Prints one JSON line {port, api_url, key_id, application_key, bucket} on
stdout (and into --info-file), then serves until killed.
"""

import argparse
import base64
import itertools
import json
import random
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from b2sdk.raw_simulator import RawSimulator
from b2sdk.encryption.setting import EncryptionSetting, EncryptionMode
from b2sdk.file_lock import FileRetentionSetting, RetentionMode, LegalHold
from b2sdk import exception as bx
from b2sdk.utils import b2_url_decode, b2_url_encode

API = '/b2api/v2/'


def json_default(o):
    """The simulator answers with a few sets and enums; B2 sends lists and strings."""
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, 'value'):
        return o.value
    raise TypeError(type(o).__name__)


class B2Fail(Exception):
    """An error answered as B2 does: {status, code, message}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def translate(exc):
    """Map a simulator exception to the status and code B2 sends for it.

    The pairs follow b2sdk's interpret_b2_error, read backwards.
    """
    if isinstance(exc, B2Fail):
        return exc
    msg = str(exc)
    if isinstance(exc, bx.InvalidAuthToken):
        code = getattr(exc, 'code', None) or 'bad_auth_token'
        # The simulator spells it auth_token_expired; B2 sends expired_auth_token.
        if code == 'auth_token_expired':
            code = 'expired_auth_token'
        return B2Fail(401, code, msg)
    if isinstance(exc, bx.Unauthorized):
        return B2Fail(401, 'unauthorized', msg or 'not authorized')
    if isinstance(exc, bx.FileNotPresent):
        return B2Fail(404, 'not_found', msg)
    if isinstance(exc, bx.NonExistentBucket):
        return B2Fail(400, 'bad_bucket_id', msg)
    if isinstance(exc, bx.UnsatisfiableRange):
        return B2Fail(416, 'range_not_satisfiable', msg)
    if isinstance(exc, bx.PartSha1Mismatch):
        return B2Fail(400, 'part_sha1_mismatch', msg)
    if isinstance(exc, bx.MissingPart):
        return B2Fail(400, 'missing_part', msg)
    if isinstance(exc, (bx.FileSha1Mismatch, bx.ChecksumMismatch,
                        bx.BadRequest, bx.BadJson, ValueError)):
        return B2Fail(400, 'bad_request', msg)
    if isinstance(exc, KeyError):
        return B2Fail(400, 'file_not_present', 'file not present: %s' % msg)
    return B2Fail(500, 'internal_error', '%s: %s' % (type(exc).__name__, msg))


class Fake:
    """State around the simulator: switches, counters, URL and token maps."""

    def __init__(self, bucket_name):
        self.lock = threading.RLock()
        self.sim = RawSimulator()
        self.key_id, self.app_key = self.sim.create_account()
        auth = self.sim.authorize_account('', self.key_id, self.app_key)
        b = self.sim.create_bucket(RawSimulator.API_URL,
                                   auth['authorizationToken'], self.key_id,
                                   bucket_name, 'allPrivate',
                                   is_file_lock_enabled=True)
        self.bucket = self.sim.bucket_id_to_bucket[b['bucketId']]
        # The simulator's counters run out after 200 upload URLs and 9999
        # files, and its timestamps are small integers; a test suite needs
        # more, and real times make mtime checkable.  Nine-digit ids keep
        # its string ordering of ids consistent.
        self.bucket.upload_url_counter = itertools.count()
        self.bucket.file_id_counter = iter(range(999999999, 100000000, -1))
        self.bucket.upload_timestamp_counter = (
            int(time.time() * 1000) for _ in itertools.count())
        self.setup_token = auth['authorizationToken']
        # our upload token -> (simulator upload URL, account token, is_part)
        self.uploads = {}
        self.upload_busy = {}
        self.dead_uploads = set()
        self.counter = itertools.count(1)
        self.sw = dict(fail_503=0, fail_503_path='', fail_429=0, retry_after=1,
                       refuse_upload=0, cap_exceeded=False, upload_hold_ms=0,
                       delay_ms=0, expire_after=0, token_uses=0)
        self.stats = {}
        self.token_uses = {}

    def count(self, what, n=1):
        with self.lock:
            self.stats[what] = self.stats.get(what, 0) + n

    def expire_all(self):
        """Every token issued so far expires now, upload tokens included."""
        self.sim.expired_auth_tokens.update(self.sim.auth_token_to_key)
        self.sim.expired_auth_tokens.discard(self.setup_token)
        self.count('expiries')

    def account_token(self, token):
        """Check an account token the way the simulator's auth check does."""
        if token not in self.sim.auth_token_to_key:
            raise B2Fail(401, 'bad_auth_token', 'invalid authorization token')
        # token_uses: a token expires on its next use after that many, so
        # every client that makes more calls than that meets an expiry in
        # the middle of its work, whatever else runs.
        with self.lock:
            limit = self.sw['token_uses']
            if (limit > 0 and token != self.setup_token and
                    token not in self.sim.expired_auth_tokens):
                self.token_uses[token] = self.token_uses.get(token, 0) + 1
                if self.token_uses[token] > limit:
                    self.sim.expired_auth_tokens.add(token)
                    self.count('expiries')
        if token in self.sim.expired_auth_tokens:
            self.count('expired_rejected')
            raise B2Fail(401, 'expired_auth_token', 'authorization token expired')
        return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'fake-b2'

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write('fake_b2: ' + (fmt % args) + '\n')

    # --- plumbing -------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get('Content-Length') or 0)
        if self.headers.get('Transfer-Encoding'):
            # B2 refuses chunked uploads; so do we.
            raise B2Fail(400, 'bad_request', 'Content-Length is required')
        data = b''
        while len(data) < n:
            part = self.rfile.read(n - len(data))
            if not part:
                break
            data += part
        return data

    def send(self, status, body=b'', headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if 'Content-Length' not in (headers or {}):
            self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def send_json(self, obj, status=200):
        self.send(status, json.dumps(obj, default=json_default).encode(),
                  {'Content-Type': 'application/json'})

    def send_fail(self, f, head=False):
        hdr = {'Content-Type': 'application/json'}
        hdr.update(f.headers)
        body = json.dumps({'status': f.status, 'code': f.code,
                           'message': f.message}).encode()
        self.fake.count('status_%d' % f.status)
        self.send(f.status, body, hdr, head=head)

    @property
    def fake(self):
        return self.server.fake

    def injected(self, path):
        """Apply the 503 and 429 switches to every B2 request (the 503 one
        only to paths containing fail_503_path, when that is set)."""
        sw = self.fake.sw
        with self.fake.lock:
            if sw['delay_ms']:
                time.sleep(sw['delay_ms'] / 1000.0)
            if sw['expire_after'] > 0:
                sw['expire_after'] -= 1
                if sw['expire_after'] == 0:
                    self.fake.expire_all()
            if sw['fail_503'] > 0 and sw['fail_503_path'] in path:
                sw['fail_503'] -= 1
                self.fake.count('injected_503')
                return B2Fail(503, 'service_unavailable', 'injected 503')
            if sw['fail_429'] > 0:
                sw['fail_429'] -= 1
                self.fake.count('injected_429')
                return B2Fail(429, 'too_many_requests', 'injected 429',
                              {'Retry-After': sw['retry_after']})
        return None

    def dispatch(self, method):
        path = urllib.parse.urlsplit(self.path).path
        head = method == 'HEAD'
        try:
            body = self.read_body() if method == 'POST' else b''
        except B2Fail as f:
            self.close_connection = True
            return self.send_fail(f)
        if path.startswith('/__'):
            return self.control(path, body)
        self.fake.count('requests')
        try:
            f = self.injected(path)
            if f:
                raise f
            if path.startswith(API):
                self.api_call(method, path[len(API):], body)
            elif path.startswith('/upload/'):
                self.upload(path[len('/upload/'):], body)
            elif path.startswith('/file/'):
                self.download(path[len('/file/'):], head)
            else:
                raise B2Fail(404, 'not_found', 'no such path: ' + path)
        except Exception as exc:  # every failure is answered as B2 does
            f = translate(exc)
            if f.status == 500:
                sys.stderr.write('fake_b2: %s %s: %r\n' % (method, path, exc))
            self.send_fail(f, head=head)

    def do_GET(self):
        self.dispatch('GET')

    def do_HEAD(self):
        self.dispatch('HEAD')

    def do_POST(self):
        self.dispatch('POST')

    # --- the control endpoint -------------------------------------------

    def control(self, path, body):
        fk = self.fake
        if path == '/__stats':
            with fk.lock:
                return self.send_json(dict(fk.stats))
        if path == '/__files':
            with fk.lock:
                out = [dict(name=f.name, id=f.file_id, action=f.action,
                            size=getattr(f, 'content_length', 0))
                       for f in fk.bucket.file_id_to_file.values()]
            return self.send_json(out)
        if path != '/__control':
            return self.send(404)
        req = json.loads(body or b'{}')
        with fk.lock:
            for k in ('fail_503', 'fail_503_path', 'fail_429', 'retry_after', 'refuse_upload',
                      'cap_exceeded', 'upload_hold_ms', 'delay_ms',
                      'expire_after', 'token_uses'):
                if k in req:
                    fk.sw[k] = req[k]
            if req.get('expire_tokens'):
                fk.expire_all()
            if req.get('reset_stats'):
                fk.stats = {}
            if 'corrupt' in req:
                if not self.corrupt(req['corrupt'], req.get('offset')):
                    return self.send_json({'error': 'no such file'}, 404)
            return self.send_json({'switches': fk.sw, 'stats': fk.stats})

    def corrupt(self, name, offset):
        """Flip one byte of the newest version, as bit rot would."""
        files = self.fake.bucket.list_file_names(self.fake.setup_token, name, 1)
        if not files['files'] or files['files'][0]['fileName'] != name:
            return False
        fs = self.fake.bucket.file_id_to_file[files['files'][0]['fileId']]
        data = bytearray(fs.data_bytes)
        if not data:
            return False
        i = len(data) // 2 if offset is None else int(offset) % len(data)
        data[i] ^= 0x01
        fs.data_bytes = bytes(data)
        self.fake.count('corrupted')
        return True

    # --- the API calls --------------------------------------------------

    def authorize(self):
        hdr = self.headers.get('Authorization', '')
        if not hdr.startswith('Basic '):
            raise B2Fail(401, 'bad_auth_token', 'Basic authorization required')
        try:
            kid, key = base64.b64decode(hdr[6:]).decode().split(':', 1)
        except Exception:
            raise B2Fail(400, 'bad_request', 'malformed Basic authorization')
        fk = self.fake
        with fk.lock:
            r = fk.sim.authorize_account('', kid, key)
        fk.count('authorize')
        base = 'http://%s:%d' % self.server.server_address[:2]
        r['apiUrl'] = base
        r['downloadUrl'] = base
        r['s3ApiUrl'] = base + '/s3-not-served'
        # The simulator recommends its 200-byte minimum as the part size;
        # B2 recommends 100 MB.  Say what B2 says, keep the small minimum so
        # tests can still ask for tiny parts.
        r['recommendedPartSize'] = self.server.recommended_part_size
        return r

    def api_call(self, method, op, body):
        fk = self.fake
        if op == 'b2_authorize_account':
            return self.send_json(self.authorize())
        if method == 'POST':
            try:
                p = json.loads(body or b'{}')
            except ValueError:
                raise B2Fail(400, 'bad_json', 'body is not JSON')
        else:
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            p = {k: v[0] for k, v in q.items()}
        fk.count('op_' + op)
        with fk.lock:
            tok = fk.account_token(self.headers.get('Authorization', ''))
            r = self.api_op(op, tok, p)
        self.send_json(r)

    def api_op(self, op, tok, p):
        fk, sim, url = self.fake, self.fake.sim, RawSimulator.API_URL
        acct = fk.sim.auth_token_to_key[tok].account_id
        if op == 'b2_list_buckets':
            if p.get('accountId') != acct:
                raise B2Fail(401, 'unauthorized', 'accountId does not match the token')
            return sim.list_buckets(url, tok, acct, p.get('bucketId'),
                                    p.get('bucketName'))
        if op == 'b2_get_upload_url':
            r = sim.get_upload_url(url, tok, p['bucketId'])
            fk.count('upload_urls')
            return self.our_upload(r, tok, False)
        if op == 'b2_start_large_file':
            if fk.sw['cap_exceeded']:
                raise self.cap()
            ret = None
            if p.get('fileRetention') and p['fileRetention'].get('mode'):
                fr = p['fileRetention']
                ret = FileRetentionSetting(RetentionMode(fr['mode']),
                                           fr.get('retainUntilTimestamp'))
            return sim.start_large_file(url, tok, p['bucketId'], p['fileName'],
                                        p.get('contentType', 'b2/x-auto'),
                                        p.get('fileInfo') or {},
                                        file_retention=ret)
        if op == 'b2_get_upload_part_url':
            r = sim.get_upload_part_url(url, tok, p['fileId'])
            fk.count('upload_part_urls')
            return self.our_upload(r, tok, True)
        if op == 'b2_finish_large_file':
            return sim.finish_large_file(url, tok, p['fileId'],
                                         p['partSha1Array'])
        if op == 'b2_cancel_large_file':
            fk.count('cancelled')
            return sim.cancel_large_file(url, tok, p['fileId'])
        if op in ('b2_list_file_names', 'b2_list_file_versions'):
            prefix = p.get('prefix') or None
            # B2 starts a prefixed listing at the prefix; the simulator
            # expects the caller to say so.
            start = p.get('startFileName') or prefix
            n = int(p.get('maxFileCount') or 100)
            if n < 1 or n > 10000:
                raise B2Fail(400, 'bad_request', 'maxFileCount out of range')
            if op == 'b2_list_file_names':
                return sim.list_file_names(url, tok, p['bucketId'], start, n,
                                           prefix)
            return sim.list_file_versions(url, tok, p['bucketId'], start,
                                          p.get('startFileId'), n, prefix)
        if op == 'b2_delete_file_version':
            self.check_retention(p, 'b2_delete_file_version')
            return sim.delete_file_version(url, tok, p['fileId'], p['fileName'])
        if op == 'b2_hide_file':
            return sim.hide_file(url, tok, p['bucketId'], p['fileName'])
        if op == 'b2_update_file_retention':
            fr = p.get('fileRetention') or {}
            self.check_retention(p, op, fr.get('retainUntilTimestamp'))
            ret = FileRetentionSetting(RetentionMode(fr.get('mode')),
                                       fr.get('retainUntilTimestamp'))
            return sim.update_file_retention(url, tok, p['fileId'],
                                             p['fileName'], ret,
                                             p.get('bypassGovernance', False))
        raise B2Fail(400, 'bad_request', 'operation not served by the fake: ' + op)

    def check_retention(self, p, op, new_until=None):
        """The simulator records retention but does not enforce it; B2 does."""
        fs = self.fake.bucket.file_id_to_file.get(p.get('fileId'))
        if fs is None or fs.file_retention is None:
            return
        fr = fs.file_retention
        until = fr.retain_until or 0
        if until <= time.time() * 1000:
            return
        bypass = p.get('bypassGovernance') and fr.mode == RetentionMode.GOVERNANCE
        if new_until is not None and new_until >= until:
            return  # extending is always allowed
        if not bypass:
            self.fake.count('lock_refused')
            raise B2Fail(401, 'access_denied',
                         '%s: file %s is locked (%s) until %d' %
                         (op, fs.name, fr.mode.value, until))

    def cap(self):
        self.fake.count('cap_rejected')
        return B2Fail(403, 'storage_cap_exceeded',
                      'Cannot upload files, storage cap exceeded.')

    def our_upload(self, r, account_token, is_part):
        """Hand out our own URL and opaque token for a simulator upload URL."""
        fk = self.fake
        n = next(fk.counter)
        token = 'upl_%d_%08x' % (n, random.getrandbits(32))
        fk.uploads[token] = (r['uploadUrl'], account_token, is_part)
        fk.upload_busy[token] = threading.Lock()
        base = 'http://%s:%d' % self.server.server_address[:2]
        out = dict(r)
        out['uploadUrl'] = '%s/upload/%d' % (base, n)
        out['authorizationToken'] = token
        return out

    # --- upload and download --------------------------------------------

    def upload(self, n, body):
        fk = self.fake
        token = self.headers.get('Authorization', '')
        with fk.lock:
            entry = fk.uploads.get(token)
            busy = fk.upload_busy.get(token)
        if entry is None or not self.path.endswith('/upload/' + n):
            raise B2Fail(401, 'bad_auth_token', 'invalid upload authorization token')
        sim_url, acct_token, is_part = entry
        # One upload at a time per URL, as B2 enforces (b2sdk's reading of
        # the error: 400, "more than one upload using auth token ...").
        if not busy.acquire(False):
            fk.count('upload_busy')
            raise B2Fail(400, 'auth_token_limit',
                         'more than one upload using auth token %s' % token)
        try:
            if fk.sw['upload_hold_ms']:
                time.sleep(fk.sw['upload_hold_ms'] / 1000.0)
            with fk.lock:
                if token in fk.dead_uploads:
                    fk.count('dead_url_used')
                    raise B2Fail(503, 'service_unavailable', 'upload URL refused earlier')
                if fk.sw['refuse_upload'] > 0:
                    fk.sw['refuse_upload'] -= 1
                    fk.dead_uploads.add(token)
                    fk.count('refused_upload')
                    raise B2Fail(503, 'service_unavailable', 'c001 too busy; get a new upload URL')
                if acct_token in fk.sim.expired_auth_tokens:
                    fk.count('expired_rejected')
                    raise B2Fail(401, 'expired_auth_token', 'upload authorization token expired')
                if fk.sw['cap_exceeded']:
                    raise self.cap()
                r = self.upload_sim(sim_url, is_part, body)
            fk.count('part_uploads' if is_part else 'file_uploads')
        finally:
            busy.release()
        self.send_json(r)

    def upload_sim(self, sim_url, is_part, body):
        import io
        h = self.headers
        length = int(h.get('Content-Length') or -1)
        if length != len(body):
            raise B2Fail(400, 'bad_request', 'body shorter than Content-Length')
        sha1 = h.get('X-Bz-Content-Sha1')
        if not sha1:
            raise B2Fail(400, 'bad_request', 'X-Bz-Content-Sha1 is required')
        stream = io.BytesIO(body)
        sim = self.fake.sim
        if is_part:
            pn = int(h.get('X-Bz-Part-Number') or 0)
            if pn < 1:
                raise B2Fail(400, 'bad_request', 'bad X-Bz-Part-Number')
            return sim.upload_part(sim_url, sim_url, pn, length, sha1, stream)
        raw = h.get('X-Bz-File-Name')
        if not raw:
            raise B2Fail(400, 'bad_request', 'X-Bz-File-Name is required')
        name = b2_url_decode(raw)
        infos = {k[len('X-Bz-Info-'):]: b2_url_decode(v) for k, v in h.items()
                 if k.lower().startswith('x-bz-info-')}
        ret = None
        mode = h.get('X-Bz-File-Retention-Mode')
        if mode:
            until = h.get('X-Bz-File-Retention-Retain-Until-Timestamp')
            ret = FileRetentionSetting(RetentionMode(mode), int(until))
        return sim.upload_file(sim_url, sim_url, name, length,
                               h.get('Content-Type') or 'b2/x-auto', sha1,
                               infos, stream, file_retention=ret)

    def download(self, rest, head):
        fk = self.fake
        fk.count('downloads')
        with fk.lock:
            fk.account_token(self.headers.get('Authorization', ''))
            bucket, _, enc = rest.partition('/')
            url = '%s/file/%s/%s' % (RawSimulator.DOWNLOAD_URL, bucket, enc)
            rng = self.parse_range(bucket, enc)
            with fk.sim.download_file_from_url(None, url, rng) as resp:
                data = resp.data_bytes
                hdr = {k: v for k, v in resp.headers.items()}
        hdr = {k.title(): v for k, v in hdr.items()}
        hdr['Content-Length'] = len(data)
        if rng is not None:
            total = hdr.pop('Content-Range', '').rpartition('/')[2]
            hdr['Content-Range'] = 'bytes %d-%d/%s' % (
                rng[0], rng[0] + len(data) - 1, total)
        self.send(206 if rng is not None else 200, data, hdr, head=head)

    def parse_range(self, bucket, enc):
        """Turn a Range header into the simulator's inclusive pair."""
        h = self.headers.get('Range')
        if not h:
            return None
        m = re.fullmatch(r'bytes=(\d+)-(\d*)', h.strip())
        if not m:
            raise B2Fail(400, 'bad_request', 'unsupported Range: ' + h)
        b = self.fake.sim.bucket_name_to_bucket.get(bucket)
        if b is None:
            raise B2Fail(404, 'not_found', 'no such bucket')
        name = b2_url_decode(enc)
        files = b.list_file_names(self.fake.setup_token, name, 1)['files']
        if not files or files[0]['fileName'] != name:
            raise B2Fail(404, 'not_found', 'file not present: ' + name)
        size = files[0]['contentLength']
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        end = min(end, size - 1)
        if start > end:
            raise B2Fail(416, 'range_not_satisfiable',
                         'range %s not satisfiable for %d bytes' % (h, size))
        return (start, end)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--bucket', default='pgkeep-test')
    ap.add_argument('--info-file')
    ap.add_argument('--recommended-part-size', type=int, default=100000000)
    ap.add_argument('--verbose', action='store_true')
    a = ap.parse_args()
    srv = ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    srv.daemon_threads = True
    srv.fake = Fake(a.bucket)
    srv.verbose = a.verbose
    srv.recommended_part_size = a.recommended_part_size
    port = srv.server_address[1]
    info = json.dumps(dict(port=port, api_url='http://127.0.0.1:%d' % port,
                           key_id=srv.fake.key_id,
                           application_key=srv.fake.app_key,
                           bucket=a.bucket))
    if a.info_file:
        with open(a.info_file + '.tmp', 'w') as f:
            f.write(info + '\n')
        import os
        os.rename(a.info_file + '.tmp', a.info_file)
    print(info, flush=True)
    srv.serve_forever()


if __name__ == '__main__':
    main()
