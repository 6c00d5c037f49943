/*
 * pgkeep daemon / pgkeep schedule: the built-in scheduler for hosts without
 * systemd.  Jobs come from the config's [schedule] section; each run is the
 * one-shot command (this very binary, exec'd), so the daemon adds timing
 * and nothing else.  A job never overlaps itself; SIGTERM stops the daemon
 * after passing SIGTERM to the running jobs and waiting for them.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/context.h"
#include "cmd/options.h"
#include "common/cron.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"

#define JOB_ARGS_MAX 12
#define STOP_GRACE 120 /* seconds a stopping job gets before SIGKILL */

struct job {
	const char *name;
	const char *spec_text;
	struct cron_spec spec;
	char *argv[JOB_ARGS_MAX];
	time_t next;
	pid_t pid;	/* 0 when not running */
	time_t started;
	unsigned runs;
};

static const char *const job_names[] = { "dump", "base", "expire", "drill", "copy" };

static bool known_job(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(job_names) / sizeof(job_names[0]); i++)
		if (strcmp(name, job_names[i]) == 0)
			return true;
	return false;
}

static void fmt_local(time_t t, char *out, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

/* The command line of one run: this binary, the same config and repository. */
static void job_argv(struct job *j, const char *self, const struct pgk_globals *g,
		     const struct pgk_config *cfg)
{
	int n = 0;

	j->argv[n++] = xstrdup(self);
	j->argv[n++] = xstrdup("--config");
	j->argv[n++] = xstrdup(cfg->path);
	if (g->repo_name) {
		j->argv[n++] = xstrdup("--repo");
		j->argv[n++] = xstrdup(g->repo_name);
	}
	if (strcmp(j->name, "dump") == 0 || strcmp(j->name, "base") == 0) {
		j->argv[n++] = xstrdup("backup");
		j->argv[n++] = xasprintf("--type=%s", j->name);
	} else if (strcmp(j->name, "copy") == 0) {
		j->argv[n++] = xstrdup("copy");
		j->argv[n++] = xstrdup("--missing");
		if (cfg->schedule_copy_from) {
			j->argv[n++] = xstrdup("--from");
			j->argv[n++] = xstrdup(cfg->schedule_copy_from);
		}
		j->argv[n++] = xstrdup("--to");
		j->argv[n++] = xstrdup(cfg->schedule_copy_to);
	} else if (strcmp(j->name, "expire") == 0 && !g->repo_name) {
		/* Every repository, each with its own keep_* settings. */
		j->argv[n++] = xstrdup("expire");
		j->argv[n++] = xstrdup("--all-repos");
	} else {
		j->argv[n++] = xstrdup(j->name);
	}
	j->argv[n] = NULL;
}

static void jobs_free(struct job *jobs, size_t n)
{
	size_t i;
	char **a;

	for (i = 0; i < n; i++)
		for (a = jobs[i].argv; *a; a++)
			free(*a);
	free(jobs);
}

static int load_jobs(const struct pgk_globals *g, const struct pgk_config *cfg, struct job **out,
		     size_t *n)
{
	char self[PATH_MAX];
	struct job *jobs;
	ssize_t len;
	size_t i;

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0)
		return pgk_error(PGKEEP_EIO, "cannot find the pgkeep binary: %s", strerror(errno));
	self[len] = '\0';
	if (cfg->nschedule == 0)
		return pgk_error(PGKEEP_EINVAL, "%s has no [schedule] section: nothing to run", cfg->path);
	jobs = xzalloc(cfg->nschedule * sizeof(*jobs));
	for (i = 0; i < cfg->nschedule; i++) {
		struct job *j = &jobs[i];

		j->name = cfg->schedule[i].key;
		j->spec_text = cfg->schedule[i].value;
		if (!known_job(j->name)) {
			jobs_free(jobs, i);
			return pgk_error(PGKEEP_EINVAL,
					 "%s:%d: unknown job '%s' in [schedule] (jobs: dump, base, expire, drill, copy)",
					 cfg->path, cfg->schedule_lines[i], j->name);
		}
		if (strcmp(j->name, "copy") == 0 && !cfg->schedule_copy_to) {
			jobs_free(jobs, i);
			return pgk_error(PGKEEP_EINVAL,
					 "%s:%d: the copy job needs copy_to = REPOSITORY in [schedule]",
					 cfg->path, cfg->schedule_lines[i]);
		}
		if (cron_parse(j->spec_text, &j->spec) < 0) {
			jobs_free(jobs, i);
			return pgk_error_wrap(PGKEEP_EINVAL, "%s:%d", cfg->path, cfg->schedule_lines[i]);
		}
		job_argv(j, self, g, cfg);
	}
	*out = jobs;
	*n = cfg->nschedule;
	return 0;
}

const struct opt_spec schedule_cli = {
	.command = "schedule",
	.summary = "print the next run of every job in [schedule]",
	.synopsis = "",
};

int cmd_schedule(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_config cfg = { 0 };
	struct job *jobs = NULL;
	size_t n = 0, i;
	time_t now = time(NULL);
	struct opt_args pos;

	if (opt_parse(&schedule_cli, argc, argv, NULL, &pos) < 0)
		return opt_fail(&schedule_cli);
	if (ctx_load_config(g, &cfg) < 0 || load_jobs(g, &cfg, &jobs, &n) < 0) {
		config_free(&cfg);
		return ctx_fail();
	}
	printf("%-8s %-22s %s\n", "job", "schedule", "next run");
	for (i = 0; i < n; i++) {
		time_t next = cron_next(&jobs[i].spec, now);
		char when[64] = "never";

		if (next != (time_t)-1)
			fmt_local(next, when, sizeof(when));
		printf("%-8s %-22s %s\n", jobs[i].name, jobs[i].spec_text, when);
	}
	jobs_free(jobs, n);
	config_free(&cfg);
	return PGK_EXIT_OK;
}

static void start_job(struct job *j, const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid < 0) {
		pgk_log_error("job %s: cannot start: %s", j->name, strerror(errno));
		return;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, orig, NULL);
		execv(j->argv[0], j->argv);
		pgk_log_error("job %s: cannot run %s: %s", j->name, j->argv[0], strerror(errno));
		_exit(127);
	}
	j->pid = pid;
	j->started = time(NULL);
	j->runs++;
	pgk_log_info("job %s started (run %u, pid %ld)", j->name, j->runs,
		(long)pid);
}

/* Collect finished jobs and log their outcome. */
static void reap(struct job *jobs, size_t n)
{
	int status;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < n; i++) {
			if (jobs[i].pid != pid)
				continue;
			jobs[i].pid = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				pgk_log_info("job %s finished: ok after %lld s", jobs[i].name,
					     (long long)(time(NULL) - jobs[i].started));
			else if (WIFEXITED(status))
				pgk_log_error("job %s failed with exit status %d after %lld s", jobs[i].name,
					      WEXITSTATUS(status), (long long)(time(NULL) - jobs[i].started));
			else
				pgk_log_error("job %s killed by signal %d after %lld s", jobs[i].name,
					      WTERMSIG(status), (long long)(time(NULL) - jobs[i].started));
		}
	}
}

static size_t running(const struct job *jobs, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		c += jobs[i].pid != 0;
	return c;
}

/* SIGTERM to every running job, then wait (SIGKILL after STOP_GRACE). */
static void stop_jobs(struct job *jobs, size_t n, const sigset_t *wait_set)
{
	time_t deadline = time(NULL) + STOP_GRACE;
	size_t i;

	for (i = 0; i < n; i++)
		if (jobs[i].pid) {
			pgk_log_info("stopping job %s (pid %ld)", jobs[i].name, (long)jobs[i].pid);
			kill(jobs[i].pid, SIGTERM);
		}
	while (running(jobs, n)) {
		struct timespec ts = { 1, 0 };

		sigtimedwait(wait_set, NULL, &ts);
		reap(jobs, n);
		if (time(NULL) >= deadline) {
			for (i = 0; i < n; i++)
				if (jobs[i].pid)
					kill(jobs[i].pid, SIGKILL);
			deadline = time(NULL) + 5;
		}
	}
}

const struct opt_spec daemon_cli = {
	.command = "daemon",
	.summary = "run the jobs of the [schedule] section (for hosts without systemd)",
	.synopsis = "",
	.notes = "SIGTERM stops it after the running jobs.",
};

int cmd_daemon(const struct pgk_globals *g, int argc, char **argv)
{
	struct pgk_config cfg = { 0 };
	struct job *jobs = NULL;
	sigset_t set, orig;
	size_t n = 0, i;
	struct opt_args pos;
	int ret = PGK_EXIT_OK;

	if (opt_parse(&daemon_cli, argc, argv, NULL, &pos) < 0)
		return opt_fail(&daemon_cli);
	if (ctx_load_config(g, &cfg) < 0 || load_jobs(g, &cfg, &jobs, &n) < 0) {
		config_free(&cfg);
		return ctx_fail();
	}
	/* Signals are taken synchronously with sigtimedwait, never in a handler. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &orig);

	if (pgk_log_level < PGKEEP_LOG_INFO)
		pgk_log_level = PGKEEP_LOG_INFO;
	for (i = 0; i < n; i++) {
		char when[64] = "never";

		jobs[i].next = cron_next(&jobs[i].spec, time(NULL));
		if (jobs[i].next != (time_t)-1)
			fmt_local(jobs[i].next, when, sizeof(when));
		pgk_log_info("job %s scheduled '%s', next run %s", jobs[i].name, jobs[i].spec_text, when);
	}

	for (;;) {
		time_t now = time(NULL), wake = now + 3600;
		struct timespec ts;
		int sig;

		for (i = 0; i < n; i++) {
			if (jobs[i].next == (time_t)-1)
				continue;
			if (jobs[i].next <= now) {
				if (jobs[i].pid)
					pgk_log_warning("job %s is still running (since %lld s): this run is skipped",
							jobs[i].name, (long long)(now - jobs[i].started));
				else
					start_job(&jobs[i], &orig);
				jobs[i].next = cron_next(&jobs[i].spec, now);
			}
			if (jobs[i].next != (time_t)-1 && jobs[i].next < wake)
				wake = jobs[i].next;
		}
		ts.tv_sec = wake > now ? wake - now : 0;
		ts.tv_nsec = 0;
		sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGCHLD) {
			reap(jobs, n);
		} else if (sig == SIGTERM || sig == SIGINT) {
			pgk_log_info("received %s: stopping after %zu running job(s)",
				     sig == SIGTERM ? "SIGTERM" : "SIGINT", running(jobs, n));
			stop_jobs(jobs, n, &set);
			break;
		}
	}
	pgk_log_info("stopped");
	jobs_free(jobs, n);
	config_free(&cfg);
	return ret;
}
