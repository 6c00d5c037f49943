/*
 * Shared between the files of the configuration reader (config.c,
 * config_secrets.c, config_trust.c); not for use outside src/common/config*.
 */
#ifndef PGK_CONFIG_INT_H
#define PGK_CONFIG_INT_H

#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"

/* A plugin or conninfo key whose value is a secret (secret, password, token...). */
bool config_is_secret_key(const char *key);
/* A key ending in _file: it names where a value is, not the value. */
bool config_is_file_option(const char *key);
/* Add the secrets of a loaded config to what config_scrub_secrets blanks. */
void config_scrub_loaded(const struct pgk_config *cfg);

/* The config file f: owned by whoever runs pgkeep (or root), writable by no one else. */
int config_check_file(const struct pgk_config *cfg, FILE *f);
/* A config holding a secret (secret_key on secret_line, 0: none) is private,
 * and so is the passphrase file it names. */
int config_check_modes(const struct pgk_config *cfg, int fd, const char *secret_key,
		       int secret_line);

#endif
