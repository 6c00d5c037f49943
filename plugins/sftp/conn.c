/*
 * SSH side of the sftp plugin: TCP connect with a deadline, host key check
 * against known_hosts, public key authentication (file or ssh-agent), and a
 * small pool of sessions, because a libssh2 session is not thread-safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "sftp.h"

const struct pgkeep_host *sftp_host;

void sftp_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!sftp_host || !sftp_host->log)
		return;
	va_start(ap, fmt);
	sftp_host->log(level, fmt, ap);
	va_end(ap);
}

/* ---- small helpers ---------------------------------------------------- */

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

/* Decode base64 (padding allowed); returns the length or -1. */
static long b64_decode(unsigned char *out, size_t outlen, const char *in, size_t len)
{
	size_t pad = 0;
	int n;

	if (len == 0 || len % 4 || len / 4 * 3 > outlen)
		return -1;
	if (in[len - 1] == '=')
		pad++;
	if (len > 1 && in[len - 2] == '=')
		pad++;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	return (long)n - (long)pad;
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

static const char *ssh_errname(int e)
{
	switch (e) {
	case LIBSSH2_ERROR_SOCKET_SEND: return "LIBSSH2_ERROR_SOCKET_SEND";
	case LIBSSH2_ERROR_SOCKET_RECV: return "LIBSSH2_ERROR_SOCKET_RECV";
	case LIBSSH2_ERROR_SOCKET_DISCONNECT: return "LIBSSH2_ERROR_SOCKET_DISCONNECT";
	case LIBSSH2_ERROR_SOCKET_TIMEOUT: return "LIBSSH2_ERROR_SOCKET_TIMEOUT";
	case LIBSSH2_ERROR_TIMEOUT: return "LIBSSH2_ERROR_TIMEOUT";
	case LIBSSH2_ERROR_CHANNEL_CLOSED: return "LIBSSH2_ERROR_CHANNEL_CLOSED";
	case LIBSSH2_ERROR_CHANNEL_EOF_SENT: return "LIBSSH2_ERROR_CHANNEL_EOF_SENT";
	case LIBSSH2_ERROR_CHANNEL_FAILURE: return "LIBSSH2_ERROR_CHANNEL_FAILURE";
	case LIBSSH2_ERROR_KEX_FAILURE: return "LIBSSH2_ERROR_KEX_FAILURE";
	case LIBSSH2_ERROR_DECRYPT: return "LIBSSH2_ERROR_DECRYPT";
	case LIBSSH2_ERROR_BAD_USE: return "LIBSSH2_ERROR_BAD_USE";
	case LIBSSH2_ERROR_EAGAIN: return "LIBSSH2_ERROR_EAGAIN";
	default: return "libssh2 error";
	}
}

const char *sftp_status_name(unsigned long s)
{
	static const char *const names[] = {
		"SSH_FX_OK", "SSH_FX_EOF", "SSH_FX_NO_SUCH_FILE",
		"SSH_FX_PERMISSION_DENIED", "SSH_FX_FAILURE", "SSH_FX_BAD_MESSAGE",
		"SSH_FX_NO_CONNECTION", "SSH_FX_CONNECTION_LOST",
		"SSH_FX_OP_UNSUPPORTED", "SSH_FX_INVALID_HANDLE",
		"SSH_FX_NO_SUCH_PATH", "SSH_FX_FILE_ALREADY_EXISTS",
		"SSH_FX_WRITE_PROTECT", "SSH_FX_NO_MEDIA",
		"SSH_FX_NO_SPACE_ON_FILESYSTEM", "SSH_FX_QUOTA_EXCEEDED",
		"SSH_FX_UNKNOWN_PRINCIPAL", "SSH_FX_LOCK_CONFLICT",
		"SSH_FX_DIR_NOT_EMPTY", "SSH_FX_NOT_A_DIRECTORY",
		"SSH_FX_INVALID_FILENAME", "SSH_FX_LINK_LOOP",
	};

	return s < sizeof(names) / sizeof(names[0]) ? names[s] : "SSH_FX_UNKNOWN";
}

static int status_code(unsigned long s)
{
	switch (s) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return PGKEEP_ENOTFOUND;
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return PGKEEP_EEXISTS;
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return PGKEEP_ENOSPC;
	case LIBSSH2_FX_NO_CONNECTION:
	case LIBSSH2_FX_CONNECTION_LOST:
		return PGKEEP_ERETRY;
	default:
		return PGKEEP_EIO;
	}
}

long sftp_status(struct sftp_conn *c)
{
	if (libssh2_session_last_errno(c->session) != LIBSSH2_ERROR_SFTP_PROTOCOL)
		return -1;
	return (long)libssh2_sftp_last_error(c->sftp);
}

int sftp_fail(struct sftp_store *st, struct sftp_conn *c, char *err,
	      const char *verb, const char *path)
{
	int e = libssh2_session_last_errno(c->session);
	char *msg = NULL;

	if (e == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long s = libssh2_sftp_last_error(c->sftp);
		int code = status_code(s);

		if (code == PGKEEP_ERETRY)
			c->broken = true;
		return pgkeep_fail(err, code, "sftp: %s %s:%s: %s", verb,
				   st->where, path, sftp_status_name(s));
	}
	if (e == LIBSSH2_ERROR_ALLOC)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: %s %s:%s: out of memory",
				   verb, st->where, path);
	/* Below SFTP the session's state is unknown: never reuse it. */
	c->broken = true;
	libssh2_session_last_error(c->session, &msg, NULL, 0);
	return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: %s %s:%s: connection failed: %s (%s)",
			   verb, st->where, path, msg && *msg ? msg : "no detail",
			   ssh_errname(e));
}

/* ---- identity file ---------------------------------------------------- */

static char *read_small_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, max, f);
	if (ferror(f)) {
		int saved = errno;

		fclose(f);
		free(buf);
		errno = saved;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Step over one SSH "string"; false when it runs past the end. */
static bool ssh_string(const unsigned char **p, const unsigned char *end,
		       const unsigned char **s, uint32_t *slen)
{
	uint32_t n;

	if (end - *p < 4)
		return false;
	n = get_u32(*p);
	if ((size_t)(end - *p - 4) < n)
		return false;
	*s = *p + 4;
	*slen = n;
	*p += 4 + n;
	return true;
}

/*
 * The key type of an "openssh-key-v1" private key.  Its public half is stored
 * in clear even when the private half is encrypted, so no passphrase is needed.
 */
static char *openssh_key_type(const char *pem)
{
	static const char magic[] = "openssh-key-v1";
	const char *b = strstr(pem, "-----BEGIN OPENSSH PRIVATE KEY-----");
	const char *e = strstr(pem, "-----END OPENSSH PRIVATE KEY-----");
	const unsigned char *p, *end, *s, *pub, *type;
	uint32_t slen, publen, typelen;
	char *b64, *out = NULL;
	unsigned char *raw;
	size_t n = 0, cap;
	long rawlen;

	if (!b || !e || e < b)
		return NULL;
	b += strlen("-----BEGIN OPENSSH PRIVATE KEY-----");
	cap = (size_t)(e - b) + 1;
	b64 = malloc(cap);
	raw = malloc(cap);
	if (!b64 || !raw)
		goto out_free;
	for (; b < e; b++)
		if (!strchr(" \t\r\n", *b))
			b64[n++] = *b;
	rawlen = b64_decode(raw, cap, b64, n);
	if (rawlen < (long)sizeof(magic) || memcmp(raw, magic, sizeof(magic)))
		goto out_free;
	p = raw + sizeof(magic);
	end = raw + rawlen;
	/* cipher, kdf name, kdf options, key count, first public key */
	if (!ssh_string(&p, end, &s, &slen) || !ssh_string(&p, end, &s, &slen) ||
	    !ssh_string(&p, end, &s, &slen) || end - p < 4)
		goto out_free;
	p += 4;
	if (!ssh_string(&p, end, &pub, &publen))
		goto out_free;
	p = pub;
	if (!ssh_string(&p, pub + publen, &type, &typelen))
		goto out_free;
	out = strndup((const char *)type, typelen);
out_free:
	free(b64);
	free(raw);
	return out;
}

static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return 0;
}

/* The SSH key type of a private key file, or NULL when it cannot be told. */
static char *private_key_type(const char *pem)
{
	char *t = openssh_key_type(pem);
	BIO *bio;
	EVP_PKEY *pkey;

	if (t)
		return t;
	if (strstr(pem, "-----BEGIN RSA PRIVATE KEY-----"))
		return strdup("ssh-rsa");
	if (strstr(pem, "-----BEGIN DSA PRIVATE KEY-----"))
		return strdup("ssh-dss");
	if (strstr(pem, "-----BEGIN EC PRIVATE KEY-----"))
		return strdup("ecdsa");
	if (!strstr(pem, "-----BEGIN PRIVATE KEY-----"))
		return NULL;
	/* Unencrypted PKCS#8: let OpenSSL say what it holds. */
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return NULL;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase_cb, NULL);
	BIO_free(bio);
	if (!pkey)
		return NULL;
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA: t = strdup("ssh-rsa"); break;
	case EVP_PKEY_DSA: t = strdup("ssh-dss"); break;
	case EVP_PKEY_EC: t = strdup("ecdsa"); break;
	case EVP_PKEY_ED25519: t = strdup("ssh-ed25519"); break;
	default: t = NULL;
	}
	EVP_PKEY_free(pkey);
	return t;
}

/* The first word of IDENTITY.pub, when there is one. */
static char *public_key_type(const char *identity)
{
	char path[4096], *buf, *t = NULL;
	size_t n;

	if (snprintf(path, sizeof(path), "%s.pub", identity) >= (int)sizeof(path))
		return NULL;
	buf = read_small_file(path, 16384, NULL);
	if (!buf)
		return NULL;
	n = strcspn(buf, " \t\r\n");
	if (n)
		t = strndup(buf, n);
	free(buf);
	return t;
}

/*
 * libssh2 before 1.11 signs user authentication only with "ssh-rsa" (SHA-1),
 * which OpenSSH 8.8 and later refuse; the failure it reports is a bare
 * "authentication failed".  Tell the user what is wrong before connecting.
 */
int sftp_check_identity(const struct sftp_settings *set, char *err)
{
	char *pem, *type;
	int rc = PGKEEP_OK;

	if (!set->identity_file)
		return PGKEEP_OK;
	pem = read_small_file(set->identity_file, 65536, NULL);
	if (!pem)
		return pgkeep_fail(err, PGKEEP_EINVAL, "sftp: cannot read identity_file %s: %s",
				   set->identity_file, strerror(errno));
	type = private_key_type(pem);
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	if (!type)
		type = public_key_type(set->identity_file);
	if (!type) {
		sftp_log(PGKEEP_LOG_DEBUG, "sftp: cannot tell the key type of %s; "
			 "leaving it to libssh2", set->identity_file);
		return PGKEEP_OK;
	}
	if (!strcmp(type, "ssh-rsa") && !libssh2_version(0x010b00))
		rc = pgkeep_fail(err, PGKEEP_EINVAL,
				 "sftp: identity_file %s is an RSA key, which libssh2 %s cannot use: "
				 "it signs only with ssh-rsa (SHA-1), which OpenSSH 8.8 and later refuse, "
				 "and has no rsa-sha2-256/512; use an ed25519 key (ssh-keygen -t ed25519) "
				 "or an ECDSA key", set->identity_file, libssh2_version(0));
	else if (!strcmp(type, "ssh-dss"))
		rc = pgkeep_fail(err, PGKEEP_EINVAL,
				 "sftp: identity_file %s is a DSA key, which current OpenSSH refuses; "
				 "use an ed25519 key (ssh-keygen -t ed25519)", set->identity_file);
	free(type);
	return rc;
}

/* ---- known_hosts ------------------------------------------------------ */

struct known {
	LIBSSH2_KNOWNHOSTS *kh;
	char prefs[256];	/* key types on file for this host, comma-separated */
	char **revoked;		/* base64 keys of @revoked lines */
	size_t nrevoked;
	bool missing;		/* the file does not exist */
};

static void known_free(struct known *k)
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
		sl = b64_decode(salt, sizeof(salt), ent + 3, (size_t)(bar - ent - 3));
		hl = b64_decode(hash, sizeof(hash), bar + 1, (size_t)(ent + len - bar - 1));
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

static int revoked_add(struct known *k, const char *key, size_t len)
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
static int known_load(struct known *k, LIBSSH2_SESSION *s,
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
static void known_set_prefs(const struct known *k, LIBSSH2_SESSION *s)
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

static int known_check(struct sftp_store *st, struct known *k, LIBSSH2_SESSION *s, char *err)
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

/* ---- TCP ---------------------------------------------------------------- */

static int connect_one(const struct addrinfo *ai, int timeout_ms, int *out)
{
	int fd, one = 1, soerr = 0, flags;
	socklen_t sl = sizeof(soerr);
	struct pollfd pfd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			soerr = errno;
			goto out_close;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			flags = poll(&pfd, 1, timeout_ms);
		} while (flags < 0 && errno == EINTR);
		if (flags == 0) {
			soerr = ETIMEDOUT;
			goto out_close;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr)
			goto out_close;
	}
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	*out = fd;
	return 0;
out_close:
	close(fd);
	return soerr;
}

static int tcp_connect(struct sftp_store *st, int *fd, char *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	char port[16];
	int rc, e = ECONNREFUSED;

	snprintf(port, sizeof(port), "%d", st->set.port);
	rc = getaddrinfo(st->set.host, port, &hints, &res);
	if (rc)
		return pgkeep_fail(err, rc == EAI_AGAIN ? PGKEEP_ERETRY : PGKEEP_EIO,
				   "sftp: cannot resolve %s: %s", st->set.host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		e = connect_one(ai, st->set.connect_timeout * 1000, fd);
		if (!e)
			break;
	}
	freeaddrinfo(res);
	if (e)
		return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: cannot connect to %s:%d: %s",
				   st->set.host, st->set.port, strerror(e));
	return PGKEEP_OK;
}

/* ---- authentication ----------------------------------------------------- */

static int auth_agent(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	LIBSSH2_AGENT *agent = libssh2_agent_init(s);
	int rc = PGKEEP_EAUTH, n = 0;

	if (!agent)
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	if (libssh2_agent_connect(agent)) {
		pgkeep_fail(err, PGKEEP_EAUTH, "sftp: use_agent is on but no ssh-agent answers "
			    "(is SSH_AUTH_SOCK set for this user?)");
		goto out_free;
	}
	if (libssh2_agent_list_identities(agent)) {
		pgkeep_fail(err, PGKEEP_EAUTH, "sftp: cannot list the ssh-agent's keys");
		goto out_disconnect;
	}
	while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
		n++;
		if (!libssh2_agent_userauth(agent, st->set.user, id)) {
			rc = PGKEEP_OK;
			goto out_disconnect;
		}
		prev = id;
	}
	pgkeep_fail(err, PGKEEP_EAUTH, "sftp: %s refused all %d key(s) of the ssh-agent "
		    "(RSA keys cannot work with libssh2 %s against OpenSSH >= 8.8)",
		    st->where, n, libssh2_version(0));
out_disconnect:
	libssh2_agent_disconnect(agent);
out_free:
	libssh2_agent_free(agent);
	return rc;
}

static int auth_file(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	const struct sftp_settings *set = &st->set;
	char *msg = NULL;
	int e;

	if (!libssh2_userauth_publickey_fromfile_ex(s, set->user, (unsigned)strlen(set->user),
						    NULL, set->identity_file, set->passphrase))
		return PGKEEP_OK;
	e = libssh2_session_last_error(s, &msg, NULL, 0);
	switch (e) {
	case LIBSSH2_ERROR_AUTHENTICATION_FAILED:
	case LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
		return pgkeep_fail(err, PGKEEP_EAUTH,
				   "sftp: %s refused the key in identity_file %s "
				   "(is its public key in the authorized_keys of user %s?)",
				   st->where, set->identity_file, set->user);
	case LIBSSH2_ERROR_FILE:
	case LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
		return pgkeep_fail(err, PGKEEP_EAUTH, "sftp: cannot use identity_file %s: %s%s",
				   set->identity_file, msg ? msg : "unreadable key",
				   set->passphrase ? "" : " (encrypted keys need identity_passphrase_file)");
	default:
		return pgkeep_fail(err, PGKEEP_ERETRY, "sftp: authentication with %s failed: %s (%s)",
				   st->where, msg ? msg : "no detail", ssh_errname(e));
	}
}

static int auth(struct sftp_store *st, LIBSSH2_SESSION *s, char *err)
{
	int rc = PGKEEP_EAUTH;

	if (st->set.use_agent) {
		rc = auth_agent(st, s, err);
		if (rc == PGKEEP_OK || !st->set.identity_file)
			return rc;
		sftp_log(PGKEEP_LOG_DEBUG, "%s; trying identity_file", err);
	}
	return auth_file(st, s, err);
}

/* ---- one connection ------------------------------------------------------ */

static void conn_close(struct sftp_conn *c)
{
	if (!c)
		return;
	/* A dead peer must not make libssh2 wait for a goodbye. */
	if (c->broken && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->sftp)
		libssh2_sftp_shutdown(c->sftp);
	if (c->session) {
		if (!c->broken)
			libssh2_session_disconnect(c->session, "pgkeep done");
		libssh2_session_free(c->session);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->iobuf);
	free(c);
}

static int conn_open(struct sftp_store *st, struct sftp_conn **out, char *err)
{
	struct sftp_conn *c = calloc(1, sizeof(*c));
	struct known k;
	char *msg = NULL;
	int rc, e;

	memset(&k, 0, sizeof(k));
	if (!c || !(c->iobuf = malloc(SFTP_IOBUF_SIZE))) {
		free(c);
		return pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
	}
	c->fd = -1;
	rc = tcp_connect(st, &c->fd, err);
	if (rc)
		goto out_close;
	c->session = libssh2_session_init();
	if (!c->session) {
		rc = pgkeep_fail(err, PGKEEP_ENOMEM, "sftp: out of memory");
		goto out_close;
	}
	libssh2_session_set_blocking(c->session, 1);
	libssh2_session_set_timeout(c->session, (long)st->set.connect_timeout * 1000);
	rc = known_load(&k, c->session, &st->set, err);
	if (rc)
		goto out_close;
	known_set_prefs(&k, c->session);
	if (libssh2_session_handshake(c->session, c->fd)) {
		e = libssh2_session_last_error(c->session, &msg, NULL, 0);
		c->broken = true;
		rc = pgkeep_fail(err, PGKEEP_ERETRY, "sftp: ssh handshake with %s failed: %s (%s)",
				 st->where, msg ? msg : "no detail", ssh_errname(e));
		goto out_close;
	}
	rc = known_check(st, &k, c->session, err);
	if (rc)
		goto out_close;
	rc = auth(st, c->session, err);
	if (rc)
		goto out_close;
	libssh2_session_set_timeout(c->session, (long)st->set.timeout * 1000);
	if (st->set.keepalive > 0)
		libssh2_keepalive_config(c->session, 1, (unsigned)st->set.keepalive);
	c->sftp = libssh2_sftp_init(c->session);
	if (!c->sftp) {
		e = libssh2_session_last_error(c->session, &msg, NULL, 0);
		c->broken = true;
		rc = pgkeep_fail(err, PGKEEP_ERETRY, "sftp: cannot start the sftp subsystem on %s: %s (%s)",
				 st->where, msg ? msg : "no detail", ssh_errname(e));
		goto out_close;
	}
	known_free(&k);
	sftp_log(PGKEEP_LOG_DEBUG, "sftp: connected to %s: kex %s, cipher %s, mac %s",
		 st->where, libssh2_session_methods(c->session, LIBSSH2_METHOD_KEX),
		 libssh2_session_methods(c->session, LIBSSH2_METHOD_CRYPT_CS),
		 libssh2_session_methods(c->session, LIBSSH2_METHOD_MAC_CS));
	*out = c;
	return PGKEEP_OK;
out_close:
	known_free(&k);
	conn_close(c);
	return rc;
}

/* ---- the pool ------------------------------------------------------------ */

/*
 * Hand out an idle session or open a new one, up to max_connections; wait at
 * most `timeout` seconds for one to come back, so that a caller holding
 * several puts open cannot hang forever.
 */
int sftp_conn_acquire(struct sftp_store *st, struct sftp_conn **out, char *err)
{
	struct sftp_conn *c = NULL;
	struct timespec deadline;
	int rc = 0, next;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += st->set.timeout;
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (st->idle) {
			c = st->idle;
			st->idle = c->next;
			break;
		}
		if (st->nconns < st->set.max_connections) {
			st->nconns++;
			break;
		}
		if (rc == ETIMEDOUT) {
			pthread_mutex_unlock(&st->lock);
			return pgkeep_fail(err, PGKEEP_ERETRY,
					   "sftp: all %d connections to %s stayed busy for %d s",
					   st->set.max_connections, st->where, st->set.timeout);
		}
		rc = pthread_cond_timedwait(&st->cond, &st->lock, &deadline);
	}
	pthread_mutex_unlock(&st->lock);

	if (c) {
		c->next = NULL;
		if (st->set.keepalive <= 0 || !libssh2_keepalive_send(c->session, &next)) {
			*out = c;
			return PGKEEP_OK;
		}
		/* the idle session died; replace it, keeping its slot */
		c->broken = true;
		conn_close(c);
	}
	rc = conn_open(st, out, err);
	if (rc) {
		pthread_mutex_lock(&st->lock);
		st->nconns--;
		pthread_cond_signal(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	return rc;
}

void sftp_conn_release(struct sftp_store *st, struct sftp_conn *c)
{
	if (!c)
		return;
	if (c->broken) {
		conn_close(c);
		pthread_mutex_lock(&st->lock);
		st->nconns--;
	} else {
		pthread_mutex_lock(&st->lock);
		c->next = st->idle;
		st->idle = c;
	}
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void sftp_pool_drain(struct sftp_store *st)
{
	struct sftp_conn *c, *next;

	pthread_mutex_lock(&st->lock);
	c = st->idle;
	st->idle = NULL;
	pthread_mutex_unlock(&st->lock);
	for (; c; c = next) {
		next = c->next;
		conn_close(c);
		st->nconns--;
	}
}
