/*
 * The key cache: its client (one request per connection, short timeouts,
 * any failure a miss) and its agent, a double-forked copy of the client
 * that serves a small table of id -> master key from locked, non-dumpable
 * memory until it has been idle for its time, is told to stop, or finds
 * its socket gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "local/keycache.h"
#include "local/spool.h"

#define ID_LEN 32
/* Enough to make guessing a passphrase from a leaked id slow, cheap
 * enough (about a millisecond) not to matter for one command. */
#define ID_ITERATIONS 2048
#define ID_DOMAIN "pgkeep key cache id v1"
#define MSG_MAGIC "PGK1"
#define OP_GET 'G'
#define OP_PUT 'P'
#define REPLY_HIT 'H'
#define REPLY_MISS 'M'
#define REPLY_STORED 'S'
#define READY_OK 'R'
#define READY_LOST 'L'
/* How often the agent checks that its socket is still in place. */
#define AGENT_TICK_MS 1000

/* One request, one reply per connection; both fixed-size. */
struct kc_request {
	char magic[4];
	uint8_t op;
	uint8_t pad[3];
	uint32_t ttl;
	uint8_t id[ID_LEN];
	uint8_t key[PGK_KEY_LEN];
};

struct kc_reply {
	uint8_t status;
	uint8_t key[PGK_KEY_LEN];
};

bool keycache_peer_allowed(unsigned peer_uid, unsigned agent_uid)
{
	return peer_uid == agent_uid || peer_uid == 0;
}

/* ---- the directory ---- */

/* Ours alone: a socket others could replace would hand keys to them. */
static int check_dir(int fd, const char *path, unsigned forbidden)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return pgk_error(PGKEEP_EIO, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return pgk_error(PGKEEP_EINVAL, "%s is not a directory", path);
	if (st.st_uid != geteuid())
		return pgk_error(PGKEEP_EAUTH, "%s is owned by uid %u, not by us (%u)", path,
				 (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & forbidden)
		return pgk_error(PGKEEP_EAUTH, "%s has mode %04o, too open", path,
				 (unsigned)(st.st_mode & 07777));
	return 0;
}

static int open_dir_at(int at, const char *name, const char *path, unsigned forbidden)
{
	int fd, ret;

	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return pgk_error(PGKEEP_EIO, "cannot create %s: %s", path, strerror(errno));
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot open %s: %s", path, strerror(errno));
	ret = check_dir(fd, path, forbidden);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

/* The spool's base, as spool_open finds it (the same order of fallbacks). */
static int open_base(const char *base)
{
	char *fallback;
	int fd;

	if (base)
		return open_dir_at(AT_FDCWD, base, base, 022);
	fd = open_dir_at(AT_FDCWD, SPOOL_DEFAULT_DIR, SPOOL_DEFAULT_DIR, 022);
	if (fd >= 0)
		return fd;
	fallback = xasprintf("/var/tmp/pgkeep-%u", (unsigned)geteuid());
	fd = open_dir_at(AT_FDCWD, fallback, fallback, 022);
	free(fallback);
	return fd;
}

static int open_cache_dir(struct keycache *kc)
{
	int bfd, fd;

	if (kc->dfd >= 0)
		return 0;
	if (kc->dfd == -2)
		return PGKEEP_EUNSUPPORTED;
	bfd = open_base(kc->base);
	if (bfd < 0)
		goto out_unusable;
	fd = open_dir_at(bfd, KEYCACHE_DIR, KEYCACHE_DIR " in the spool directory", 077);
	close(bfd);
	if (fd < 0)
		goto out_unusable;
	kc->dfd = fd;
	return 0;
out_unusable:
	pgk_log_debug("key cache not used: %s", pgk_errmsg());
	kc->dfd = -2;
	return PGKEEP_EUNSUPPORTED;
}

/* Through the checked directory descriptor: the socket is the one in the
 * directory we checked, whatever happens to the path meanwhile. */
static int socket_address(int dfd, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dfd,
		     KEYCACHE_SOCKET);
	return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -1;
}

void keycache_init(struct keycache *kc, const char *base, int ttl)
{
	kc->base = base ? xstrdup(base) : NULL;
	kc->ttl = ttl;
	kc->dfd = -1;
}

void keycache_close(struct keycache *kc)
{
	if (kc->dfd >= 0)
		close(kc->dfd);
	free(kc->base);
	kc->base = NULL;
	kc->dfd = -1;
}

/* ---- wire ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_timeouts(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static bool msg_read(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool msg_write(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static uid_t peer_uid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr))
		return (uid_t)-1;
	return cr.uid;
}

/* ---- client ---- */

static int cache_id(const char *pass, const void *slot, size_t len, uint8_t id[ID_LEN])
{
	struct pgk_buf salt = PGK_BUF_INIT;
	int ok;

	buf_append(&salt, ID_DOMAIN, sizeof(ID_DOMAIN));
	buf_append(&salt, slot, len);
	ok = PKCS5_PBKDF2_HMAC(pass, (int)strlen(pass), salt.data, (int)salt.len, ID_ITERATIONS,
			       EVP_sha256(), ID_LEN, id);
	buf_free(&salt);
	return ok == 1 ? 0 : pgk_error(PGKEEP_EIO, "cannot compute a key cache id");
}

static int agent_connect(struct keycache *kc)
{
	struct sockaddr_un sa;
	int fd;

	if (socket_address(kc->dfd, &sa) < 0)
		return pgk_error(PGKEEP_EINVAL, "key cache socket path too long");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pgk_error(PGKEEP_EIO, "cannot make a socket: %s", strerror(errno));
	/* SO_SNDTIMEO also bounds a connect to a full backlog. */
	set_timeouts(fd, KEYCACHE_TIMEOUT_MS);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return pgk_error(PGKEEP_ENOTFOUND, "no key cache agent: %s", strerror(err));
	}
	if (peer_uid(fd) != geteuid()) {
		close(fd);
		return pgk_error(PGKEEP_EAUTH, "key cache agent runs as another user");
	}
	return fd;
}

/* Send req on a connected fd, read the reply; 0 when one came. */
static int exchange(int fd, const struct kc_request *req, struct kc_reply *rep)
{
	if (!msg_write(fd, req, sizeof(*req)) || !msg_read(fd, rep, sizeof(*rep)))
		return pgk_error(PGKEEP_EIO, "no answer from the key cache agent: %s",
				 errno ? strerror(errno) : "connection closed");
	return 0;
}

static void fill_request(struct kc_request *req, uint8_t op, int ttl)
{
	memset(req, 0, sizeof(*req));
	memcpy(req->magic, MSG_MAGIC, sizeof(req->magic));
	req->op = op;
	req->ttl = (uint32_t)ttl;
}

int keycache_lookup(struct keycache *kc, const char *pass, const void *slot, size_t len,
		    uint8_t master[PGK_KEY_LEN])
{
	struct kc_request req;
	struct kc_reply rep;
	int fd, ret;

	if (kc->ttl <= 0)
		return PGKEEP_EUNSUPPORTED;
	ret = open_cache_dir(kc);
	if (ret < 0)
		return ret;
	fill_request(&req, OP_GET, kc->ttl);
	ret = cache_id(pass, slot, len, req.id);
	if (ret < 0)
		goto out_log;
	fd = agent_connect(kc);
	if (fd < 0) {
		ret = fd;
		goto out_log;
	}
	ret = exchange(fd, &req, &rep);
	close(fd);
	if (ret < 0)
		goto out_log;
	if (rep.status == REPLY_HIT) {
		memcpy(master, rep.key, PGK_KEY_LEN);
		ret = 0;
	} else {
		ret = PGKEEP_ENOTFOUND;
	}
	goto out_wipe;
out_log:
	pgk_log_debug("key cache: %s", pgk_errmsg());
	/* A store or a lookup must not meet an unexpected "not found". */
	if (ret == PGKEEP_ENOTFOUND)
		ret = PGKEEP_EIO;
out_wipe:
	secure_zero(&rep, sizeof(rep));
	secure_zero(&req, sizeof(req));
	return ret;
}

/* ---- the agent ---- */

struct entry {
	uint8_t id[ID_LEN];
	uint8_t key[PGK_KEY_LEN];
	int64_t used;		/* ms, monotonic */
	int64_t expires;
	bool live;
};

/* Static: the agent runs in a fork of a process that may have had other
 * threads, so it allocates nothing. */
static struct entry table[KEYCACHE_ENTRIES];
static volatile sig_atomic_t agent_stop;

static void on_term(int sig)
{
	agent_stop = 1;
}

static void table_wipe(void)
{
	OPENSSL_cleanse(table, sizeof(table));
}

static struct entry *table_find(const uint8_t id[ID_LEN])
{
	int i;

	for (i = 0; i < KEYCACHE_ENTRIES; i++)
		if (table[i].live && memcmp(table[i].id, id, ID_LEN) == 0)
			return &table[i];
	return NULL;
}

static struct entry *table_slot(void)
{
	struct entry *e = &table[0];
	int i;

	for (i = 0; i < KEYCACHE_ENTRIES; i++) {
		if (!table[i].live)
			return &table[i];
		if (table[i].used < e->used)
			e = &table[i];
	}
	return e;
}

/* Drop expired entries; how long until the next expires (-1: none live). */
static int64_t table_expire(int64_t now)
{
	int64_t next = -1;
	int i;

	for (i = 0; i < KEYCACHE_ENTRIES; i++) {
		if (!table[i].live)
			continue;
		if (table[i].expires <= now) {
			OPENSSL_cleanse(&table[i], sizeof(table[i]));
			continue;
		}
		if (next < 0 || table[i].expires - now < next)
			next = table[i].expires - now;
	}
	return next;
}

static int64_t ttl_ms(uint32_t ttl)
{
	if (ttl > PGK_KEY_CACHE_MAX)
		ttl = PGK_KEY_CACHE_MAX;
	return (int64_t)ttl * 1000;
}

static void serve(int fd, int64_t now)
{
	struct kc_request req;
	struct kc_reply rep;
	struct entry *e;

	memset(&rep, 0, sizeof(rep));
	if (!keycache_peer_allowed((unsigned)peer_uid(fd), (unsigned)geteuid()))
		return;
	set_timeouts(fd, KEYCACHE_TIMEOUT_MS);
	if (!msg_read(fd, &req, sizeof(req)) || memcmp(req.magic, MSG_MAGIC, 4) != 0)
		goto out_wipe;
	e = table_find(req.id);
	if (req.op == OP_GET) {
		rep.status = e ? REPLY_HIT : REPLY_MISS;
		if (e)
			memcpy(rep.key, e->key, PGK_KEY_LEN);
	} else if (req.op == OP_PUT) {
		if (!e)
			e = table_slot();
		memcpy(e->id, req.id, ID_LEN);
		memcpy(e->key, req.key, PGK_KEY_LEN);
		e->live = true;
		rep.status = REPLY_STORED;
	} else {
		goto out_wipe;
	}
	if (e) {
		e->used = now;
		e->expires = now + ttl_ms(req.ttl);
	}
	msg_write(fd, &rep, sizeof(rep));
out_wipe:
	OPENSSL_cleanse(&req, sizeof(req));
	OPENSSL_cleanse(&rep, sizeof(rep));
}

/* Does the name still lead to our socket?  Gone or replaced: time to go. */
static bool socket_is_ours(int dfd, const struct stat *mine)
{
	struct stat st;

	return fstatat(dfd, KEYCACHE_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       st.st_ino == mine->st_ino && st.st_dev == mine->st_dev;
}

/* Field n (1-based, as proc(5) counts) of /proc/self/stat. */
static unsigned long stat_field(const char *text, int n)
{
	const char *p = strrchr(text, ')');
	int field = 2;

	if (!p)
		return 0;
	while (*p && field < n) {
		p++;
		if (*p == ' ')
			field++;
	}
	return *p ? strtoul(p + 1, NULL, 10) : 0;
}

/*
 * The agent is a copy of the client: its argv and environment would show
 * the client's command (pgrep -f and pkill -f would match it) and maybe a
 * passphrase in $PGKEEP_PASSPHRASE.  Blank both where the kernel reads them,
 * but only when that memory is ours: under valgrind it is the tool's.
 */
static void wipe_args_env(void)
{
	static const char name[] = "pgkeep-keycache";
	char text[2048];
	unsigned long as, ae, es, ee;
	ssize_t n;
	int fd;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	as = stat_field(text, 48);
	ae = stat_field(text, 49);
	es = stat_field(text, 50);
	ee = stat_field(text, 51);
	if (!as || ae <= as || as != (unsigned long)program_invocation_name)
		return;
	if (es && ee > es)
		OPENSSL_cleanse((void *)es, ee - es);
	OPENSSL_cleanse((void *)as, ae - as);
	memcpy((void *)as, name, ae - as > sizeof(name) ? sizeof(name) : ae - as - 1);
}

static void close_from(unsigned lo, unsigned hi)
{
	unsigned fd;

	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	if (hi > 65535)
		hi = 65535;
	for (fd = lo; fd <= hi; fd++)
		close((int)fd);
}

/*
 * Keep only a and b (both >= 3) and /dev/null on 0, 1 and 2: a test harness
 * or PostgreSQL waiting for EOF on a pipe must not wait for the agent.
 */
static void keep_only(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a, null;

	close_from(3, (unsigned)lo - 1);
	close_from((unsigned)lo + 1, (unsigned)hi - 1);
	close_from((unsigned)hi + 1, ~0U);
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
}

static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Lock, socket, listen; the listening fd or -1 (another agent holds the lock: -2). */
static int agent_listen(int dfd, struct stat *mine)
{
	struct sockaddr_un sa;
	int lfd, sfd;

	lfd = openat(dfd, KEYCACHE_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return -1;
	/* Held for life: the kernel lets go of it however the agent ends. */
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return -2;
	}
	if (socket_address(dfd, &sa) < 0)
		return -1;
	/* Nobody holds the lock, so whatever socket is there is stale. */
	unlinkat(dfd, KEYCACHE_SOCKET, 0);
	sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (sfd < 0)
		return -1;
	if (bind(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(sfd, 16) < 0 ||
	    fstatat(dfd, KEYCACHE_SOCKET, mine, AT_SYMLINK_NOFOLLOW) < 0) {
		close(sfd);
		return -1;
	}
	return sfd;
}

static void agent_loop(int dfd, int sfd, const struct stat *mine, int ttl)
{
	int64_t idle_since = now_ms(), now, next, wait;
	struct pollfd pfd = { .fd = sfd, .events = POLLIN };
	int cfd;

	while (!agent_stop) {
		now = now_ms();
		next = table_expire(now);
		if (next < 0 && now - idle_since >= ttl_ms((uint32_t)ttl))
			break;
		if (!socket_is_ours(dfd, mine))
			break;
		wait = next < 0 ? ttl_ms((uint32_t)ttl) - (now - idle_since) : next;
		if (wait > AGENT_TICK_MS)
			wait = AGENT_TICK_MS;
		if (poll(&pfd, 1, (int)wait + 1) <= 0)
			continue;
		cfd = accept4(sfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		now = now_ms();
		serve(cfd, now);
		close(cfd);
		idle_since = now;
	}
}

static void agent_main(int dfd, int ready, int ttl) __attribute__((noreturn));
static void agent_main(int dfd, int ready, int ttl)
{
	struct stat mine;
	char c;
	int sfd;

	/* First: same-user processes must not read this one's memory. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NAME, "pgkeep-keycache", 0, 0, 0);
	wipe_args_env();
	reset_signals();
	umask(077);
	if (chdir("/") < 0)
		_exit(1);
	dfd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	ready = fcntl(ready, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0 || ready < 0)
		_exit(1);
	keep_only(dfd, ready);
	mlock(table, sizeof(table));
	sfd = agent_listen(dfd, &mine);
	c = sfd >= 0 ? READY_OK : sfd == -2 ? READY_LOST : 0;
	/* A pipe, not a socket: write, not send. */
	if (c && write(ready, &c, 1) != 1)
		_exit(1);
	close(ready);
	if (sfd < 0)
		_exit(sfd == -2 ? 0 : 1);
	agent_loop(dfd, sfd, &mine, ttl);
	/* Refuse newcomers first, then take the name away, then the keys. */
	close(sfd);
	if (socket_is_ours(dfd, &mine))
		unlinkat(dfd, KEYCACHE_SOCKET, 0);
	table_wipe();
	_exit(0);
}

const char *keycache_agent_exe;

/*
 * Run the agent as a fresh program: the directory on fd 3, the pipe on
 * fd 4, no environment.  Returns only when exec fails (the caller then
 * runs the agent in this fork).
 */
static void exec_agent(int dfd, int ready, int ttl)
{
	char *const envp[] = { NULL };
	char ttlbuf[16];
	int a, b;

	snprintf(ttlbuf, sizeof(ttlbuf), "%d", ttl);
	/* Out of the way of 3 and 4 first, then into place, inheritable. */
	a = fcntl(dfd, F_DUPFD, 10);
	b = fcntl(ready, F_DUPFD, 10);
	if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
		return;
	close(a);
	close(b);
	execle(keycache_agent_exe, "pgkeep-keycache", KEYCACHE_AGENT_ARG, ttlbuf, (char *)NULL,
	       envp);
	/* Not exec'd: the caller's fds dfd and ready are still open. */
}

int keycache_agent_exec_main(int argc, char **argv)
{
	char *end;
	long ttl;

	if (argc != 3)
		return 2;
	ttl = strtol(argv[2], &end, 10);
	if (*end || ttl <= 0 || ttl > 604800 || fcntl(3, F_GETFD) < 0 || fcntl(4, F_GETFD) < 0)
		return 2;
	agent_main(3, 4, (int)ttl);
}

/* Fork the agent, detached; 0 when one is (or already was) listening. */
static int start_agent(struct keycache *kc)
{
	struct pollfd pfd;
	int p[2], status;
	pid_t pid, grand;
	char c = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return pgk_error(PGKEEP_EIO, "cannot make a pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (setsid() < 0)
			_exit(1);
		grand = fork();
		if (grand != 0)
			_exit(grand < 0);
		if (keycache_agent_exe)
			exec_agent(kc->dfd, p[1], kc->ttl);
		agent_main(kc->dfd, p[1], kc->ttl);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return pgk_error(PGKEEP_EIO, "cannot fork the key cache agent: %s", strerror(errno));
	}
	waitpid(pid, &status, 0);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	if (poll(&pfd, 1, KEYCACHE_TIMEOUT_MS) == 1 && read(p[0], &c, 1) != 1)
		c = 0;
	close(p[0]);
	if (c == READY_OK) {
		pgk_log_debug("key cache agent started");
		return 0;
	}
	if (c == READY_LOST)
		return 0;	/* another client's agent won; it will answer */
	return pgk_error(PGKEEP_EIO, "the key cache agent did not start");
}

/* Connect, starting an agent when none listens. */
static int connect_or_start(struct keycache *kc)
{
	int64_t deadline;
	int fd, ret;

	fd = agent_connect(kc);
	if (fd >= 0 || fd != PGKEEP_ENOTFOUND)
		return fd;
	ret = start_agent(kc);
	if (ret < 0)
		return ret;
	/* A racing agent may still be on its way to listen(). */
	deadline = now_ms() + KEYCACHE_TIMEOUT_MS;
	for (;;) {
		fd = agent_connect(kc);
		if (fd >= 0 || fd != PGKEEP_ENOTFOUND || now_ms() >= deadline)
			return fd;
		usleep(10000);
	}
}

void keycache_store(struct keycache *kc, const char *pass, const void *slot, size_t len,
		    const uint8_t master[PGK_KEY_LEN])
{
	struct kc_request req;
	struct kc_reply rep;
	int fd, ret;

	if (kc->ttl <= 0 || open_cache_dir(kc) < 0)
		return;
	fill_request(&req, OP_PUT, kc->ttl);
	memcpy(req.key, master, PGK_KEY_LEN);
	ret = cache_id(pass, slot, len, req.id);
	if (ret < 0)
		goto out_log;
	fd = connect_or_start(kc);
	if (fd < 0)
		goto out_log;
	ret = exchange(fd, &req, &rep);
	close(fd);
	if (ret < 0)
		goto out_log;
	if (rep.status == REPLY_STORED)
		pgk_log_debug("key kept by the key cache agent for %d s", kc->ttl);
	goto out_wipe;
out_log:
	pgk_log_debug("key cache: %s", pgk_errmsg());
out_wipe:
	secure_zero(&req, sizeof(req));
	secure_zero(&rep, sizeof(rep));
}
