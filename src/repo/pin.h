/*
 * Pins: a backup named in pins/ID is kept forever, whatever the retention
 * policy says, together with the WAL it needs.
 */
#ifndef PGK_PIN_H
#define PGK_PIN_H

#include <stdbool.h>
#include <stddef.h>

#include "repo/repo.h"

struct pin {
	char *id;
	char *note;	/* may be empty */
	long long created;
};

int pin_add(struct repo *r, const char *id, const char *note);
/* PGKEEP_ENOTFOUND when the backup was not pinned. */
int pin_remove(struct repo *r, const char *id);
/* Every pin; free with pin_list_free. */
int pin_list(struct repo *r, struct pin **out, size_t *n);
void pin_list_free(struct pin *p, size_t n);
bool pin_find(const struct pin *p, size_t n, const char *id);

#endif
