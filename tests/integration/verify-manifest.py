#!/usr/bin/python3
# What pg_verifybackup -n checks, for a data directory whose backup_manifest
# is newer than the pg_verifybackup at hand (Debian 12 has only 15's, which
# refuses the version 2 manifests of PostgreSQL 17 and later): every file
# the manifest lists is there with its size and checksum, no other file is,
# and the manifest's own checksum holds.  Usage: verify-manifest.py PGDATA
# [IGNORED...] (more names ignored, as pg_verifybackup -i)
import hashlib, json, os, sys

# Files pg_verifybackup ignores: restore rewrites or adds them.
IGNORED = {"backup_manifest", "postgresql.auto.conf", "recovery.signal", "standby.signal"}

CRC32C_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC32C_TABLE.append(c)


def crc32c(path):
    t, c = CRC32C_TABLE, 0xFFFFFFFF
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            for b in block:
                c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    # PostgreSQL writes the final value's bytes in memory order.
    return (c ^ 0xFFFFFFFF).to_bytes(4, "little").hex()


def checksum(path, alg):
    if alg == "CRC32C":
        return crc32c(path)
    h = hashlib.new(alg.lower().replace("-", ""))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    root = sys.argv[1]
    IGNORED.update(sys.argv[2:])
    raw = open(os.path.join(root, "backup_manifest"), "rb").read()
    m = json.loads(raw)
    errors = []
    # The manifest's checksum covers everything before its own line.
    body = raw[:raw.rindex(b'"Manifest-Checksum"')]
    if hashlib.sha256(body).hexdigest() != m["Manifest-Checksum"]:
        errors.append("the manifest's own checksum does not match")
    listed = set()
    for f in m["Files"]:
        name = f["Path"]
        listed.add(name)
        if name in IGNORED:
            continue
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            errors.append("%s is missing" % name)
        elif os.path.getsize(path) != f["Size"]:
            errors.append("%s has size %d, not %d" % (name, os.path.getsize(path), f["Size"]))
        elif "Checksum-Algorithm" in f and f["Checksum-Algorithm"] != "NONE" and \
                checksum(path, f["Checksum-Algorithm"]) != f["Checksum"]:
            errors.append("%s has another %s checksum" % (name, f["Checksum-Algorithm"]))
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel == "pg_wal" or rel.startswith("pg_wal/"):
            continue
        for name in files:
            p = name if rel == "." else os.path.join(rel, name)
            if p not in listed and p not in IGNORED:
                errors.append("%s is not in the manifest" % p)
    for e in errors:
        print("verify-manifest.py: %s" % e, file=sys.stderr)
    print("%d files checked, manifest version %s" % (len(listed),
          m["PostgreSQL-Backup-Manifest-Version"]))
    return 1 if errors else 0


sys.exit(main())
