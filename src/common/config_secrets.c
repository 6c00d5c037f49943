/*
 * Secrets in the configuration: which keys hold one, and the values kept
 * out of every message (conninfo passwords, plugin credentials).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/config_int.h"
#include "common/mem.h"

bool config_is_secret_key(const char *key)
{
	return strstr(key, "secret") || strstr(key, "password") || strstr(key, "token") ||
	       strcmp(key, "application_key") == 0 || strcmp(key, "passphrase") == 0;
}

bool config_is_file_option(const char *key)
{
	size_t n = strlen(key);

	return n > 5 && strcmp(key + n - 5, "_file") == 0;
}

/* ---- secrets kept out of messages ---- */

#define SCRUB_MIN 4		/* shorter values would blank ordinary words */
#define SCRUB_MAX 64

static char *scrub_list[SCRUB_MAX];
static size_t scrub_n;

static void scrub_add(const char *s, size_t len)
{
	size_t i;

	if (len < SCRUB_MIN || scrub_n == SCRUB_MAX)
		return;
	for (i = 0; i < scrub_n; i++)
		if (strlen(scrub_list[i]) == len && memcmp(scrub_list[i], s, len) == 0)
			return;
	scrub_list[scrub_n++] = xstrndup(s, len);
}

void config_scrub_secrets(char *s)
{
	size_t i, len;
	char *p;

	for (i = 0; i < scrub_n; i++) {
		len = strlen(scrub_list[i]);
		while ((p = strstr(s, scrub_list[i]))) {
			memcpy(p, "***", 3);
			memmove(p + 3, p + len, strlen(p + len) + 1);
		}
	}
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A URI part as scrub_add's secret: as written, and percent-decoded. */
static void scrub_add_uri_part(const char *s, size_t len)
{
	char *dec = xmalloc(len + 1);
	size_t i, n = 0;

	scrub_add(s, len);
	for (i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			dec[n++] = (char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]));
			i += 2;
		} else {
			dec[n++] = s[i];
		}
	}
	scrub_add(dec, n);
	secure_free(dec, len + 1);
}

/*
 * The password of a conninfo URI (postgresql://user:PASSWORD@host/db, or
 * ?password=...): its start and length, false when it has none.
 */
static bool uri_password(const char *ci, const char **pw, size_t *len)
{
	const char *p, *at, *colon, *q;

	if (strncmp(ci, "postgresql://", 13) == 0)
		p = ci + 13;
	else if (strncmp(ci, "postgres://", 11) == 0)
		p = ci + 11;
	else
		return false;
	/* libpq: the user info ends at the first '@' before any '/'. */
	at = p + strcspn(p, "@/");
	colon = memchr(p, ':', (size_t)(at - p));
	if (*at == '@' && colon) {
		*pw = colon + 1;
		*len = (size_t)(at - colon - 1);
		return *len > 0;
	}
	for (q = strchr(p, '?'); q && (q = strstr(q, "password=")); q += 9) {
		if (q[-1] == '?' || q[-1] == '&') {
			*pw = q + 9;
			*len = strcspn(q + 9, "&");
			return *len > 0;
		}
	}
	return false;
}

/* password = value in a keyword conninfo, quoted or not. */
static bool keyword_password(const char *ci, const char **pw, size_t *len)
{
	const char *p = ci;

	while ((p = strstr(p, "password"))) {
		const char *v = p + 8;

		if (p > ci && !strchr(" \t\n", p[-1])) {
			p = v;
			continue;
		}
		v += strspn(v, " \t");
		if (*v != '=') {
			p = v;
			continue;
		}
		v++;
		v += strspn(v, " \t");
		if (*v == '\'') {
			*pw = v + 1;
			*len = strcspn(v + 1, "'");
		} else {
			*pw = v;
			*len = strcspn(v, " \t\n");
		}
		return *len > 0;
	}
	return false;
}

bool config_conninfo_has_password(const char *conninfo)
{
	const char *pw;
	size_t len;

	return uri_password(conninfo, &pw, &len) || keyword_password(conninfo, &pw, &len);
}

void config_scrub_loaded(const struct pgk_config *cfg)
{
	const char *pw;
	size_t i, j, len;

	if (cfg->conninfo) {
		if (uri_password(cfg->conninfo, &pw, &len))
			scrub_add_uri_part(pw, len);
		else if (keyword_password(cfg->conninfo, &pw, &len))
			scrub_add(pw, len);
	}
	for (i = 0; i < cfg->nrepos; i++)
		for (j = 0; j < cfg->repos[i].nopts; j++) {
			const struct pgkeep_option *o = &cfg->repos[i].opts[j];

			/* A *_file option names where a secret is, not the secret. */
			if (config_is_secret_key(o->key) && !config_is_file_option(o->key))
				scrub_add(o->value, strlen(o->value));
		}
}
