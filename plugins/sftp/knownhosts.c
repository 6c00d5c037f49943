/*
 * known_hosts for the sftp plugin: load the file (plain and hashed host
 * patterns, @revoked lines), prefer the key types on file for our host in
 * the handshake, and check the key the server presents.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sftp.h"

/* Base64 without the trailing '=', the way OpenSSH prints fingerprints. */
static void b64_nopad(char *out, size_t outlen, const unsigned char *in, size_t len)
{
	char *tmp = malloc(4 * ((len + 2) / 3) + 1);
	size_t n;

	if (!tmp) {
		snprintf(out, outlen, "?");
		return;
	}
	n = (size_t)EVP_EncodeBlock((unsigned char *)tmp, in, (int)len);
	while (n > 0 && tmp[n - 1] == '=')
		n--;
	tmp[n] = '\0';
	snprintf(out, outlen, "%s", tmp);
	free(tmp);
}

static const char *hostkey_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
	default: return "unknown";
	}
}

static int hostkey_type_mask(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

/* The key types libssh2 1.10's known_hosts parser understands. */
static bool known_key_type(const char *t, size_t len)
{
	static const char *const types[] = {
		"ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
		"ecdsa-sha2-nistp521", "ssh-rsa", "ssh-dss",
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == len && !memcmp(types[i], t, len))
			return true;
	return false;
}

void sftp_known_free(struct sftp_known *k)
{
	if (k->kh)
		libssh2_knownhost_free(k->kh);
	for (size_t i = 0; i < k->nrevoked; i++)
		free(k->revoked[i]);
	free(k->revoked);
	memset(k, 0, sizeof(*k));
}

/* Does one comma-separated host pattern name our host (plain or hashed)? */
static bool host_entry_matches(const char *ent, size_t len, const char *name)
{
	unsigned char salt[64], hash[64], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	const char *bar;
	long sl, hl;

	if (len > 3 && !memcmp(ent, "|1|", 3)) {
		bar = memchr(ent + 3, '|', len - 3);
		if (!bar)
			return false;
		sl = sftp_b64_decode(salt, sizeof(salt), ent + 3, (size_t)(bar - ent - 3));
		hl = sftp_b64_decode(hash, sizeof(hash), bar + 1, (size_t)(ent + len - bar - 1));
		if (sl <= 0 || hl != 20)
			return false;
		if (!HMAC(EVP_sha1(), salt, (int)sl, (const unsigned char *)name,
			  strlen(name), mac, &maclen) || maclen != 20)
			return false;
		return !memcmp(mac, hash, 20);
	}
	return strlen(name) == len && !strncasecmp(ent, name, len);
}

static bool hosts_field_matches(const char *f, size_t len, const struct sftp_settings *set)
{
	char bracket[300];
	const char *p = f, *end = f + len;

	snprintf(bracket, sizeof(bracket), "[%s]:%d", set->host, set->port);
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);

		if (host_entry_matches(p, n, bracket) || host_entry_matches(p, n, set->host))
			return true;
		p += n + 1;
	}
	return false;
}

static void prefs_add(char *prefs, size_t size, const char *t, size_t len)
{
	size_t cur = strlen(prefs);
	const char *p = prefs;

	while (*p) {	/* already listed? */
		size_t n = strcspn(p, ",");

		if (n == len && !memcmp(p, t, len))
			return;
		p += n + (p[n] == ',');
	}
	if (cur + len + 2 > size)
		return;
	if (cur)
		prefs[cur++] = ',';
	memcpy(prefs + cur, t, len);
	prefs[cur + len] = '\0';
}

static int revoked_add(struct sftp_known *k, const char *key, size_t len)
{
	char **r = realloc(k->revoked, (k->nrevoked + 1) * sizeof(*r));

	if (!r)
		return -1;
	k->revoked = r;
	r[k->nrevoked] = strndup(key, len);
	if (!r[k->nrevoked])
		return -1;
	k->nrevoked++;
	return 0;
}

/*
 * Feed known_hosts to libssh2 one line at a time.  libssh2 1.10 gives up on
 * the whole file at the first line it cannot parse (markers, sk-* and
 * certificate keys), so such lines are filtered out here; @revoked lines are
 * kept aside and enforced by us.
 */
int sftp_known_load(struct sftp_known *k, LIBSSH2_SESSION *s,
		      const struct sftp_settings *set, char *err)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0;

	memset(k, 0, sizeof(*k));
	k->kh = libssh2_knownhost_init(s);
	if (!k->kh)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	f = fopen(set->known_hosts, "re");
	if (!f) {
		if (errno == ENOENT) {
			k->missing = true;
			return PGKEEP_OK;
		}
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot read known_hosts %s: %s",
				   set->known_hosts, strerror(errno));
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *p = line, *fields[4];
		size_t flen[4];
		bool revoked = false;
		int nf = 0;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		p += strspn(p, " \t");
		if (!*p || *p == '#')
			continue;
		if (*p == '@') {
			if (strncmp(p, "@revoked", 8) || !strchr(" \t", p[8]))
				continue;	/* @cert-authority: not supported */
			revoked = true;
			p += 8 + strspn(p + 8, " \t");
		}
		while (*p && nf < 4) {
			fields[nf] = p;
			flen[nf] = strcspn(p, " \t");
			p += flen[nf];
			p += strspn(p, " \t");
			nf++;
		}
		if (nf < 3)
			continue;
		if (revoked) {
			if (revoked_add(k, fields[2], flen[2])) {
				free(line);
				fclose(f);
				return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
			}
			continue;
		}
		if (!known_key_type(fields[1], flen[1]))
			continue;
		if (libssh2_knownhost_readline(k->kh, fields[0], (size_t)(line + len - fields[0]),
					       LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
			sftp_log(PGKEEP_LOG_DEBUG, "sftp: %s:%d: line skipped, libssh2 cannot parse it",
				 set->known_hosts, lineno);
			continue;
		}
		if (hosts_field_matches(fields[0], flen[0], set))
			prefs_add(k->prefs, sizeof(k->prefs), fields[1], flen[1]);
	}
	free(line);
	fclose(f);
	return PGKEEP_OK;
}

/*
 * Offer the host key types we have on file first, as OpenSSH does, so that
 * a server with several host keys presents the one we can check.
 */
void sftp_known_set_prefs(const struct sftp_known *k, LIBSSH2_SESSION *s)
{
	const char **algs = NULL;
	char prefs[512];
	int n;

	if (!k->prefs[0])
		return;
	n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
	if (n <= 0)
		return;
	prefs[0] = '\0';
	/* ours first, each only if libssh2 supports it */
	for (const char *p = k->prefs; *p;) {
		size_t len = strcspn(p, ",");

		for (int i = 0; i < n; i++)
			if (strlen(algs[i]) == len && !memcmp(algs[i], p, len))
				prefs_add(prefs, sizeof(prefs), p, len);
		p += len + (p[len] == ',');
	}
	for (int i = 0; i < n; i++)
		prefs_add(prefs, sizeof(prefs), algs[i], strlen(algs[i]));
	libssh2_free(s, algs);
	if (prefs[0] && libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, prefs))
		sftp_log(PGKEEP_LOG_DEBUG, "sftp: host key preference %s refused", prefs);
}

int sftp_known_check(struct sftp_store *st, struct sftp_known *k, LIBSSH2_SESSION *s, char *err)
{
	const struct sftp_settings *set = &st->set;
	const unsigned char *hash;
	const char *key, *tname;
	char fp[64], *keyb64;
	size_t klen;
	int ktype, rc;

	key = libssh2_session_hostkey(s, &klen, &ktype);
	hash = (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!key || !hash)
		return pgkeep_fail(err, PGKEEP_EIO, "sftp: %s sent no usable host key", st->where);
	tname = hostkey_type_name(ktype);
	b64_nopad(fp, sizeof(fp), hash, 32);

	keyb64 = malloc(4 * ((klen + 2) / 3) + 1);
	if (!keyb64)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	EVP_EncodeBlock((unsigned char *)keyb64, (const unsigned char *)key, (int)klen);
	for (size_t i = 0; i < k->nrevoked; i++) {
		if (!strcmp(k->revoked[i], keyb64)) {
			free(keyb64);
			return pgkeep_fail(err, PGKEEP_EAUTH,
					   "sftp: host key of %s:%d (%s SHA256:%s) is marked @revoked in %s; refusing to connect",
					   set->host, set->port, tname, fp, set->known_hosts);
		}
	}
	free(keyb64);

	rc = libssh2_knownhost_checkp(k->kh, set->host, set->port, key, klen,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
				      hostkey_type_mask(ktype), NULL);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		return PGKEEP_OK;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		return pgkeep_fail(err, PGKEEP_EAUTH,
				   "sftp: host key of %s:%d has CHANGED: the server offers %s SHA256:%s, "
				   "which does not match the key in %s; someone may be intercepting the "
				   "connection (or the host was reinstalled): refusing to connect",
				   set->host, set->port, tname, fp, set->known_hosts);
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		return pgkeep_fail(err, PGKEEP_EAUTH,
				   "sftp: host key of %s:%d is unknown: the server offers %s SHA256:%s, "
				   "which is not in %s%s; check the fingerprint and add the key "
				   "(e.g. ssh-keyscan -p %d %s >> %s)",
				   set->host, set->port, tname, fp, set->known_hosts,
				   k->missing ? " (no such file)" : "", set->port, set->host,
				   set->known_hosts);
	default:
		return pgkeep_fail(err, PGKEEP_EIO, "sftp: cannot check the host key of %s:%d against %s",
				   set->host, set->port, set->known_hosts);
	}
}
