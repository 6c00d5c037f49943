/*
 * pgkeep storage plugin ABI, version 1.
 *
 * This is the only header a storage plugin needs.  A plugin is a shared
 * object that exports exactly one symbol, PGKEEP_STORAGE_INIT_SYMBOL, which
 * receives the host's table and returns a pointer to a static ops table.
 *
 * Versioning follows the SQLite VFS / nbdkit model: the ops table starts with
 * the ABI version and the size of the table the plugin was compiled with.
 * Fields are only ever appended; the host copies at most its own size into a
 * zeroed table, so a plugin built against an older header simply has NULL in
 * the newer slots.  A plugin that reports a newer ABI than the host knows is
 * refused.
 *
 * Ownership: every pointer passed to a call is owned by the caller and valid
 * only for the duration of that call, unless stated otherwise.  Handles and
 * put contexts are allocated by the plugin and freed by it in close / commit /
 * abort.
 *
 * Concurrency: open and close are never called concurrently with anything
 * else on the same handle.  Every other call on one handle may be made
 * concurrently from several threads, so a plugin must make its handle
 * thread-safe.  A single put context is used by one thread at a time.
 *
 * Errors: every call that can fail returns PGKEEP_OK (0) or a negative
 * PGKEEP_E* code, and on failure writes a one-line, human-readable message
 * (no trailing newline, no secrets) into the caller's buffer `err` of
 * PGKEEP_ERRLEN bytes.  A plugin never exits the process, never writes to
 * stdout, and only logs through host->log.
 *
 * Retries: the plugin owns them, and the host adds none.  A plugin knows what
 * is safe to send again and how to resume (a download from the byte it
 * reached, one part of a multipart upload, a fresh upload URL, a new SSH
 * session), so every call retries transient failures (a dropped or refused
 * connection, a stall, HTTP 5xx or 429) inside itself, with exponential
 * backoff and jitter, making at most PGKEEP_RETRY_ATTEMPTS attempts of any
 * one request unless the repository's options set another count.  Failures
 * that retrying cannot change (EAUTH, ENOTFOUND, EEXISTS, ENOSPC, EINVAL,
 * EUNSUPPORTED, ECORRUPT) are returned at once.  PGKEEP_ERETRY therefore
 * means "still failing after the plugin's own attempts": the host does not
 * call again, it fails the command, which is what lets `wal-fetch` report a
 * store that stays unreachable (exit above 125) rather than an archive that
 * has ended.
 *
 * Transport security: a plugin that talks to a network store warns through
 * host->log, on every open, when the connection is not both encrypted and
 * authenticated (plain HTTP, certificate checks off), and refuses to send
 * credentials over an unencrypted connection unless the repository sets
 * allow_insecure = yes.
 */
#ifndef PGKEEP_STORAGE_H
#define PGKEEP_STORAGE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PGKEEP_STORAGE_ABI_VERSION 1
#define PGKEEP_STORAGE_INIT_SYMBOL "pgkeep_storage_plugin_init"
#define PGKEEP_ERRLEN 512
/* Attempts of one request a plugin makes by default, the first included. */
#define PGKEEP_RETRY_ATTEMPTS 5

/* Return codes.  Only the codes below are part of the ABI. */
enum pgkeep_status {
	PGKEEP_OK = 0,
	PGKEEP_ENOTFOUND = -1,	 /* the object does not exist (confirmed) */
	PGKEEP_EEXISTS = -2,	 /* put with PGKEEP_PUT_IF_ABSENT, object exists */
	PGKEEP_EAUTH = -3,	 /* credentials refused; retrying will not help */
	PGKEEP_ERETRY = -4,	 /* transient, and still so after the plugin's retries */
	PGKEEP_EIO = -5,	 /* any other failure of the store */
	PGKEEP_ECORRUPT = -6,	 /* data read back is damaged */
	PGKEEP_ENOMEM = -7,
	PGKEEP_EINVAL = -8,	 /* bad option or argument */
	PGKEEP_EUNSUPPORTED = -9, /* the call or flag is not supported */
	PGKEEP_ENOSPC = -10,	 /* the store is full */
};

/* Feature bits reported in pgkeep_storage_ops.features. */
#define PGKEEP_FEAT_IF_ABSENT_ATOMIC (1u << 0) /* if-absent holds under races */
/* open accepts the option lock_days=N (1 to 36500), which the host passes
 * when, and only when, the repository sets lock_days: then every object the
 * plugin writes is protected from deletion at the store for N days, and
 * locked_until reports it.  A plugin without this bit gets lock_days all the
 * same and refuses it as it refuses any unknown option; the host then
 * refuses the repository, as it refuses a plugin that accepts lock_days
 * without reporting this bit. */
#define PGKEEP_FEAT_LOCK (1u << 1)
#define PGKEEP_FEAT_RANGE_GET (1u << 2)	       /* get honours offset/length */
/* open accepts the option create=yes, which the host passes from `pgkeep
 * init` only: then, and only then, the plugin makes the repository's root
 * (a directory).  Without it a missing root is an error from open or from
 * the call that finds it gone, never "not found", and never re-created. */
#define PGKEEP_FEAT_CREATE_ROOT (1u << 3)

/* Flags for put_begin. */
#define PGKEEP_PUT_IF_ABSENT (1u << 0)

/* Log levels for host->log. */
enum pgkeep_log_level {
	PGKEEP_LOG_ERROR = 0,
	PGKEEP_LOG_WARNING = 1,
	PGKEEP_LOG_INFO = 2,
	PGKEEP_LOG_DEBUG = 3,
};

/* One repository option, from the [repo:NAME] section of the config. */
struct pgkeep_option {
	const char *key;
	const char *value;
};

/* What stat and list report about an object. */
struct pgkeep_stat {
	uint64_t size;	 /* bytes */
	int64_t mtime;	 /* seconds since the epoch, 0 when unknown */
};

/* The host's services, handed to the plugin's init function. */
struct pgkeep_host {
	uint32_t abi_version;
	uint32_t struct_size;
	void (*log)(int level, const char *fmt, va_list ap);
};

/*
 * get delivers the object's bytes in order through this callback.  Returning
 * non-zero aborts the transfer; get then returns that value unchanged.
 */
typedef int (*pgkeep_sink_fn)(void *payload, const void *buf, size_t len);

/*
 * list calls this once per object.  The key is the full key (prefix
 * included).  Returning non-zero stops the listing; list returns that value.
 * Calls may come in any order.
 */
typedef int (*pgkeep_list_fn)(void *payload, const char *key,
			      const struct pgkeep_stat *st);

/*
 * Keys.  A key is one or more segments joined by single '/'; a segment is one
 * or more of [A-Za-z0-9._-] and is neither "." nor "..".  No key contains
 * PGKEEP_TEMP_INFIX, which plugins keep for the names of the temporary files
 * a put writes before it commits.  pgkeep passes no other key, and every
 * plugin refuses any other with PGKEEP_EINVAL before it reaches the store
 * (so no key names a file outside a plugin's root), testing it with
 * pgkeep_key_valid() below so that all apply the same rule.
 *
 * A prefix for list is a plain string prefix of keys: "" (every key), or a
 * valid key that may end in a single '/' ("wal/", "chunks/ab", "pins/x/");
 * pgkeep_prefix_valid() tests it.
 */
#define PGKEEP_TEMP_INFIX ".tmp."

static inline int pgkeep_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* Non-zero when the first len bytes of key are a valid key. */
static inline int pgkeep_key_valid_len(const char *key, size_t len)
{
	size_t infix = sizeof(PGKEEP_TEMP_INFIX) - 1;
	size_t i, seg = 0;	/* where the current segment starts */

	if (len == 0)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i == len || key[i] == '/') {
			size_t n = i - seg;

			if (n == 0 || (n <= 2 && key[seg] == '.' && key[i - 1] == '.'))
				return 0;	/* empty, "." or ".." */
			seg = i + 1;
		} else if (!pgkeep_key_char(key[i])) {
			return 0;
		} else if (len - i >= infix && memcmp(key + i, PGKEEP_TEMP_INFIX, infix) == 0) {
			return 0;
		}
	}
	return 1;
}

/* Non-zero when key is a valid key. */
static inline int pgkeep_key_valid(const char *key)
{
	return key && pgkeep_key_valid_len(key, strlen(key));
}

/* Non-zero when prefix is a valid prefix for list. */
static inline int pgkeep_prefix_valid(const char *prefix)
{
	size_t n;

	if (!prefix)
		return 0;
	n = strlen(prefix);
	if (n == 0)
		return 1;
	if (prefix[n - 1] == '/')
		n--;
	return pgkeep_key_valid_len(prefix, n);
}

struct pgkeep_storage_ops {
	uint32_t abi_version;	/* PGKEEP_STORAGE_ABI_VERSION when built */
	uint32_t struct_size;	/* sizeof(struct pgkeep_storage_ops) when built */
	const char *name;	/* short plugin name, e.g. "local" */
	uint64_t features;	/* PGKEEP_FEAT_* */

	/* Mandatory.  Parse options, connect, return a handle in *handle.
	 * The options are the keys of the repository's section of the config
	 * but pgkeep's own (plugin, lock_days, keep_*), then lock_days=N
	 * (PGKEEP_FEAT_LOCK) and create=yes (PGKEEP_FEAT_CREATE_ROOT) when the
	 * host passes them.  Unknown option keys must be refused with
	 * PGKEEP_EINVAL and a message naming the key. */
	int (*open)(void **handle, const struct pgkeep_option *opts, size_t nopts,
		    char *err);
	/* Mandatory.  Release everything; never fails. */
	void (*close)(void *handle);

	/* Mandatory.  Start writing `key`.  size_hint is the final size when
	 * known, else UINT64_MAX.  Nothing is visible to readers before commit.
	 * With PGKEEP_PUT_IF_ABSENT, commit fails with PGKEEP_EEXISTS when the
	 * key already exists (put_begin may already report it). */
	int (*put_begin)(void *handle, const char *key, uint64_t size_hint,
			 unsigned flags, void **put, char *err);
	/* Mandatory.  Append bytes. */
	int (*put_write)(void *put, const void *buf, size_t len, char *err);
	/* Mandatory.  Make the object durably stored and visible, atomically,
	 * then free the put context (whatever the outcome). */
	int (*put_commit)(void *put, char *err);
	/* Mandatory.  Discard everything written; free the put context. */
	void (*put_abort)(void *put);

	/* Mandatory.  Stream bytes [offset, offset+length) of `key` to sink;
	 * length UINT64_MAX means to the end.  PGKEEP_ENOTFOUND only when the
	 * store confirms the key does not exist. */
	int (*get)(void *handle, const char *key, uint64_t offset, uint64_t length,
		   pgkeep_sink_fn sink, void *payload, char *err);
	/* Mandatory.  PGKEEP_ENOTFOUND when absent. */
	int (*stat)(void *handle, const char *key, struct pgkeep_stat *st,
		    char *err);
	/* Mandatory.  Every object whose key starts with prefix ("" = all);
	 * never a temporary file of a put. */
	int (*list)(void *handle, const char *prefix, pgkeep_list_fn cb,
		    void *payload, char *err);
	/* Mandatory.  Deleting a missing key succeeds. */
	int (*remove)(void *handle, const char *key, char *err);

	/* Optional, and not called by pgkeep: protect `key` from deletion until
	 * `until` (seconds since the epoch).  pgkeep sets retention at the
	 * store only through lock_days at write time (PGKEEP_FEAT_LOCK); the
	 * slot stays because slots are never removed, and may be NULL. */
	int (*lock_until)(void *handle, const char *key, int64_t until,
			  char *err);
	/* Optional.  When the object is locked, *until receives the date, else
	 * 0.  expire asks before it deletes an object, and keeps one still
	 * locked.  NULL means the plugin cannot tell (nothing is locked). */
	int (*locked_until)(void *handle, const char *key, int64_t *until,
			    char *err);
};

/* The one symbol a plugin exports, named PGKEEP_STORAGE_INIT_SYMBOL; the
 * declaration lets the compiler check a plugin's definition against it.  The
 * host keeps the pointer for the plugin's life: store it to call host->log. */
typedef const struct pgkeep_storage_ops *(*pgkeep_storage_init_fn)(
	const struct pgkeep_host *host);
const struct pgkeep_storage_ops *pgkeep_storage_plugin_init(const struct pgkeep_host *host);

/* Fill the error buffer; returns code so that `return pgkeep_fail(...)` works. */
static inline int pgkeep_fail(char *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline int pgkeep_fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, PGKEEP_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Initialiser so authors cannot forget the version fields. */
#define PGKEEP_STORAGE_OPS_INIT                                                \
	.abi_version = PGKEEP_STORAGE_ABI_VERSION,                             \
	.struct_size = sizeof(struct pgkeep_storage_ops)

#ifdef __cplusplus
}
#endif

#endif /* PGKEEP_STORAGE_H */
