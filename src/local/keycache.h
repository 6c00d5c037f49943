/*
 * The key cache: a per-user agent, forked on demand like ssh-agent, that
 * keeps unwrapped repository master keys in memory (never on disk) for a
 * while after their last use, so that short commands such as wal-push, run
 * once per WAL segment, skip scrypt.
 *
 * An entry is found by an id only a holder of the passphrase can compute:
 * PBKDF2 over the passphrase with the exact key-slot bytes (which hold the
 * slot's random salt) as salt, so repositories and slots never collide and
 * the agent never sees a passphrase.  Every failure on the client side is a
 * miss, logged at debug level: the caller then unwraps with scrypt.
 *
 * Where: BASE/keycache/agent.sock, BASE the spool's base directory (see
 * local/spool.h), keycache/ made 0700 and checked to be ours.
 */
#ifndef PGK_KEYCACHE_H
#define PGK_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/keys.h"

#define KEYCACHE_DIR "keycache"
#define KEYCACHE_SOCKET "agent.sock"
#define KEYCACHE_LOCK "agent.lock"
/* Entries the agent holds at most; the least recently used one goes. */
#define KEYCACHE_ENTRIES 64
/* Connect and reply, client and agent alike. */
#define KEYCACHE_TIMEOUT_MS 500

struct keycache {
	char *base;	/* the spool base; NULL = its default */
	int ttl;	/* seconds an entry lives after its last use; <= 0: off */
	int dfd;	/* BASE/keycache; -1 until opened, -2 when unusable */
};

/* Settings only; nothing is opened yet.  ttl <= 0 disables the cache. */
void keycache_init(struct keycache *kc, const char *base, int ttl);
void keycache_close(struct keycache *kc);

static inline bool keycache_enabled(const struct keycache *kc)
{
	return kc->ttl > 0 && kc->dfd != -2;
}

/*
 * The master key cached for (pass, slot): 0 and master filled on a hit,
 * PGKEEP_ENOTFOUND on a miss, another negative code when no agent answers.
 * The caller still checks the key it gets.
 */
int keycache_lookup(struct keycache *kc, const char *pass, const void *slot, size_t len,
		    uint8_t master[PGK_KEY_LEN]);

/* Remember master for (pass, slot), starting the agent when none runs.
 * Best effort: failures are logged at debug level only. */
void keycache_store(struct keycache *kc, const char *pass, const void *slot, size_t len,
		    const uint8_t master[PGK_KEY_LEN]);

/*
 * The program the agent runs as: set by the pgkeep binary (to itself), so
 * that the agent starts from a fresh address space holding nothing of the
 * command that started it (its passphrase, a plugin's secrets).  NULL (a
 * library user, the unit tests): the agent stays a plain fork.
 */
extern const char *keycache_agent_exe;
/* The argument that makes the pgkeep binary run as the agent: argv[1]. */
#define KEYCACHE_AGENT_ARG "--keycache-agent"
/* The agent's entry point after exec: pgkeep --keycache-agent TTL, with the
 * cache directory on fd 3 and the ready pipe on fd 4. */
int keycache_agent_exec_main(int argc, char **argv);

/*
 * The peer check the agent applies to every client: the agent's own user,
 * or root.  Exposed for the unit test.
 */
bool keycache_peer_allowed(unsigned peer_uid, unsigned agent_uid);

#endif
