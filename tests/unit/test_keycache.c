/*
 * The key cache against a real agent in a private directory: store and
 * look up, misses for another passphrase or slot, a bounded table, agents
 * started by racing clients, a stale socket after SIGKILL, the idle exit,
 * the caller's descriptors left alone, and a client of another user
 * refused (the test runs as root and drops to nobody in a child).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "local/keycache.h"
#include "tap.h"

#define NOBODY 65534

static char base[64];
static char sock_path[100];

static void key_for(int n, uint8_t key[PGK_KEY_LEN])
{
	int i;

	for (i = 0; i < PGK_KEY_LEN; i++)
		key[i] = (uint8_t)(n * 31 + i);
}

static int connect_path(void)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sock_path, sizeof(sock_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The agent's pid, from the kernel's record of who listens; 0 when none. */
static pid_t agent_pid(void)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd = connect_path();
	pid_t pid = 0;

	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
		pid = cr.pid;
	close(fd);
	return pid;
}

/* Running: a zombie waiting for whoever adopted it to reap it is not. */
static bool alive(pid_t pid)
{
	char path[64], text[512], *p;
	FILE *f;
	bool running = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(text, sizeof(text), f) && (p = strrchr(text, ')')) && p[1] == ' ')
		running = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return running;
}

static bool wait_gone(pid_t pid, int ms)
{
	for (; ms > 0 && alive(pid); ms -= 20)
		usleep(20000);
	return !alive(pid);
}

static int lookup(struct keycache *kc, const char *pass, const char *slot, uint8_t *out)
{
	return keycache_lookup(kc, pass, slot, strlen(slot), out);
}

static void store(struct keycache *kc, const char *pass, const char *slot, int n)
{
	uint8_t key[PGK_KEY_LEN];

	key_for(n, key);
	keycache_store(kc, pass, slot, strlen(slot), key);
}

static void peer_rule(void)
{
	ok(keycache_peer_allowed(1000, 1000), "the agent's own user is served");
	ok(keycache_peer_allowed(0, 1000), "root is served");
	ok(!keycache_peer_allowed(1001, 1000), "another user is not");
	ok(!keycache_peer_allowed(1000, 0), "a user is not served by root's agent");
}

static void round_trip(void)
{
	struct keycache kc;
	uint8_t got[PGK_KEY_LEN], want[PGK_KEY_LEN];
	struct stat st;
	char dir[PATH_MAX];
	int ret;

	keycache_init(&kc, base, 60);
	ret = lookup(&kc, "pass", "{\"slot\":1}", got);
	ok(ret < 0 && ret != PGKEEP_ENOTFOUND, "no agent yet: the lookup says so (%d)", ret);
	store(&kc, "pass", "{\"slot\":1}", 1);
	ok(agent_pid() > 0, "storing started an agent (pid %d)", (int)agent_pid());
	snprintf(dir, sizeof(dir), "%s/" KEYCACHE_DIR, base);
	memset(&st, 0, sizeof(st));
	ret = stat(dir, &st);
	ok(ret == 0 && (st.st_mode & 0777) == 0700, "its directory is mode 0700 (%o)",
	   (unsigned)(st.st_mode & 0777));
	memset(&st, 0, sizeof(st));
	ret = stat(sock_path, &st);
	ok(ret == 0 && S_ISSOCK(st.st_mode) && !(st.st_mode & 077),
	   "its socket is closed to others (%o)", (unsigned)(st.st_mode & 0777));
	key_for(1, want);
	memset(got, 0, sizeof(got));
	ret = lookup(&kc, "pass", "{\"slot\":1}", got);
	ok(ret == 0 && memcmp(got, want, PGK_KEY_LEN) == 0, "the same passphrase and slot: the key");
	is_int(lookup(&kc, "Pass", "{\"slot\":1}", got), PGKEEP_ENOTFOUND,
	       "another passphrase: a miss");
	is_int(lookup(&kc, "pass", "{\"slot\":2}", got), PGKEEP_ENOTFOUND, "another slot: a miss");
	is_int(lookup(&kc, "pass", "{\"slot\":1} ", got), PGKEEP_ENOTFOUND,
	       "a slot one byte longer: a miss");
	keycache_close(&kc);

	keycache_init(&kc, base, 0);
	is_int(lookup(&kc, "pass", "{\"slot\":1}", got), PGKEEP_EUNSUPPORTED,
	       "key_cache = 0: the agent is not even asked");
	keycache_close(&kc);
}

/* More entries than the table holds: the least recently used goes. */
static void bounded(void)
{
	uint8_t got[PGK_KEY_LEN], want[PGK_KEY_LEN];
	struct keycache kc;
	char slot[32];
	int i, hits = 0;

	keycache_init(&kc, base, 60);
	for (i = 0; i < KEYCACHE_ENTRIES + 1; i++) {
		snprintf(slot, sizeof(slot), "lru-%d", i);
		store(&kc, "pass", slot, 100 + i);
	}
	for (i = 1; i < KEYCACHE_ENTRIES + 1; i++) {
		snprintf(slot, sizeof(slot), "lru-%d", i);
		key_for(100 + i, want);
		if (lookup(&kc, "pass", slot, got) == 0 && memcmp(got, want, PGK_KEY_LEN) == 0)
			hits++;
	}
	is_int(hits, KEYCACHE_ENTRIES, "the newest %d entries are all kept", KEYCACHE_ENTRIES);
	is_int(lookup(&kc, "pass", "lru-0", got), PGKEEP_ENOTFOUND, "the oldest one was dropped");
	keycache_close(&kc);
}

/* Racing clients, no agent: each key ends up in the one agent that won. */
static void race(void)
{
	uint8_t got[PGK_KEY_LEN], want[PGK_KEY_LEN];
	struct keycache kc;
	pid_t pids[8], old = agent_pid();
	char slot[32];
	int i, hits = 0;

	kill(old, SIGTERM);
	ok(wait_gone(old, 3000), "SIGTERM ends the agent");
	ok(access(sock_path, F_OK) < 0, "... and it removes its socket");
	for (i = 0; i < 8; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			keycache_init(&kc, base, 60);
			snprintf(slot, sizeof(slot), "race-%d", i);
			store(&kc, "pass", slot, 200 + i);
			_exit(0);
		}
	}
	for (i = 0; i < 8; i++)
		waitpid(pids[i], NULL, 0);
	keycache_init(&kc, base, 60);
	for (i = 0; i < 8; i++) {
		snprintf(slot, sizeof(slot), "race-%d", i);
		key_for(200 + i, want);
		if (lookup(&kc, "pass", slot, got) == 0 && memcmp(got, want, PGK_KEY_LEN) == 0)
			hits++;
	}
	/* A client that lost the race by more than the timeout may have given up;
	 * most must not. */
	ok(hits >= 6, "after 8 clients raced to start an agent, %d of 8 keys are there", hits);
	ok(agent_pid() > 0, "one agent answers");
	keycache_close(&kc);
}

static void stale_socket(void)
{
	uint8_t got[PGK_KEY_LEN];
	struct keycache kc;
	pid_t old = agent_pid(), now;
	int ret;

	kill(old, SIGKILL);
	ok(wait_gone(old, 3000), "SIGKILL ends the agent");
	ok(access(sock_path, F_OK) == 0, "... leaving its socket behind");
	keycache_init(&kc, base, 60);
	ret = lookup(&kc, "pass", "{\"slot\":1}", got);
	ok(ret < 0 && ret != PGKEEP_ENOTFOUND, "a stale socket is no agent (%d)", ret);
	store(&kc, "pass", "{\"slot\":1}", 1);
	now = agent_pid();
	ok(now > 0 && now != old, "a new agent replaced it (%d)", (int)now);
	is_int(lookup(&kc, "pass", "{\"slot\":1}", got), 0, "and answers");
	keycache_close(&kc);
}

/* The agent must hold no descriptor of its caller: a pipe the caller
 * leaves open reaches EOF once the caller closes its own end. */
static void no_inherited_fds(void)
{
	char path[64], link[PATH_MAX], mine[64];
	struct keycache kc;
	struct dirent *de;
	struct stat st;
	pid_t pid = agent_pid();
	int p[2], pipes = 0, nulls = 0, n;
	DIR *d;

	kill(pid, SIGTERM);
	wait_gone(pid, 3000);
	if (pipe(p) < 0 || fstat(p[1], &st) < 0) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	snprintf(mine, sizeof(mine), "pipe:[%lu]", (unsigned long)st.st_ino);
	keycache_init(&kc, base, 60);
	store(&kc, "pass", "fds", 3);
	keycache_close(&kc);
	pid = agent_pid();
	close(p[1]);
	n = (int)read(p[0], link, 1);
	is_int(n, 0, "a pipe the caller held open is at EOF once the caller closes it");
	close(p[0]);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d)) != NULL) {
		char fdpath[PATH_MAX];
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		len = readlink(fdpath, link, sizeof(link) - 1);
		if (len < 0)
			continue;
		link[len] = '\0';
		if (strcmp(link, mine) == 0)
			pipes++;
		if (atoi(de->d_name) <= 2 && strcmp(link, "/dev/null") == 0)
			nulls++;
	}
	if (d)
		closedir(d);
	ok(d != NULL, "the agent's descriptors are listed (%s)", path);
	is_int(pipes, 0, "the agent does not hold the caller's pipe");
	is_int(nulls, 3, "its stdin, stdout and stderr are /dev/null");
}

/* A raw request, as a client of another user would send it. */
static void other_user(void)
{
	char dir[PATH_MAX];
	uint8_t req[76] = { 'P', 'G', 'K', '1', 'G' }, rep[33];
	pid_t pid;
	int status, fd, n;

	if (geteuid() != 0) {
		ok(0, "the other-user check needs root (it drops to uid %d)", NOBODY);
		return;
	}
	/* Open the way to the socket; the agent itself must still refuse. */
	snprintf(dir, sizeof(dir), "%s/" KEYCACHE_DIR, base);
	chmod(base, 0711);
	chmod(dir, 0711);
	chmod(sock_path, 0777);
	fd = connect_path();
	n = fd >= 0 && write(fd, req, sizeof(req)) == (ssize_t)sizeof(req) ?
		(int)read(fd, rep, sizeof(rep)) : -1;
	if (fd >= 0)
		close(fd);
	ok(n == 33 && rep[0] == 'M', "root, raw: a reply (a miss) (%d bytes)", n);
	pid = fork();
	if (pid == 0) {
		/* The agent may hang up before our write: that is a refusal too. */
		signal(SIGPIPE, SIG_IGN);
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(3);
		fd = connect_path();
		if (fd < 0)
			_exit(4);
		if (write(fd, req, sizeof(req)) < 0) {
			/* refused before reading: fine, as long as nothing comes back */
		}
		n = (int)read(fd, rep, sizeof(rep));
		_exit(n <= 0 ? 0 : 5);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "uid %d connects and gets no answer (child status %d)", NOBODY,
	   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	chmod(sock_path, 0700);
	chmod(dir, 0700);
	chmod(base, 0700);
}

static void idle_exit(void)
{
	uint8_t got[PGK_KEY_LEN];
	struct keycache kc;
	pid_t pid = agent_pid();
	struct timespec t0, t1;
	double secs;

	kill(pid, SIGTERM);
	wait_gone(pid, 3000);
	keycache_init(&kc, base, 2);
	store(&kc, "pass", "idle", 4);
	pid = agent_pid();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	is_int(lookup(&kc, "pass", "idle", got), 0, "key_cache = 2: the key is there at first");
	ok(wait_gone(pid, 6000), "the agent exits by itself");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok(secs > 1.5 && secs < 4.5, "about 2 s after its last use (%.1f s)", secs);
	ok(access(sock_path, F_OK) < 0, "its socket is gone");
	keycache_close(&kc);
}

int main(void)
{
	struct keycache kc;
	pid_t pid;

	snprintf(base, sizeof(base), "/tmp/pgkeep-kc.XXXXXX");
	if (!mkdtemp(base)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	snprintf(sock_path, sizeof(sock_path), "%s/" KEYCACHE_DIR "/" KEYCACHE_SOCKET, base);
	peer_rule();
	round_trip();
	bounded();
	race();
	stale_socket();
	no_inherited_fds();
	other_user();
	idle_exit();

	/* An agent whose directory disappears goes too. */
	keycache_init(&kc, base, 60);
	store(&kc, "pass", "gone", 5);
	keycache_close(&kc);
	pid = agent_pid();
	unlink(sock_path);
	ok(pid > 0 && wait_gone(pid, 3000), "an agent whose socket is removed exits");
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			diag("could not remove %s", base);
	}
	return done_testing();
}
