/*
 * The identity file of the sftp plugin, checked at open: its key type read
 * from the OpenSSH or PEM private key (or its .pub), so that a key libssh2
 * cannot use, or a passphrase that does not fit, is refused by name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sftp.h"

/* Decode base64 (padding allowed); returns the length or -1. */
long sftp_b64_decode(unsigned char *out, size_t outlen, const char *in, size_t len)
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
	rawlen = sftp_b64_decode(raw, cap, b64, n);
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
