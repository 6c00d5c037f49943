/*
 * copy's worker threads: fn(arg, i, bufs) for i in [0, n) on up to c->jobs
 * threads, each with its own buffers; the first failure stops the others
 * and is returned with its message.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/copy.h"
#include "common/error.h"
#include "common/log.h"
#include "common/mem.h"
#include "pg/walname.h"
#include "pipeline/pipeline.h"
#include "repo/lists.h"
#include "repo/manifest.h"

struct par {
	struct copy *c;
	void *arg;
	par_fn fn;
	size_t n, next;
	int err;
	char errmsg[PGKEEP_ERRLEN];
	pthread_mutex_t mu;
};

static void *par_worker(void *p_)
{
	struct par *p = p_;
	struct par_bufs b = { PGK_BUF_INIT, PGK_BUF_INIT, PGK_BUF_INIT };
	size_t i;
	int ret;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->err || p->next >= p->n) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		ret = p->fn(p->c, p->arg, i, &b);
		if (ret) {
			pthread_mutex_lock(&p->mu);
			if (!p->err) {
				p->err = ret;
				snprintf(p->errmsg, sizeof(p->errmsg), "%s", pgk_errmsg());
			}
			pthread_mutex_unlock(&p->mu);
		}
	}
	buf_free(&b.obj);
	buf_free_secure(&b.plain);
	buf_free(&b.sealed);
	return NULL;
}

int copy_par_run(struct copy *c, size_t n, par_fn fn, void *arg)
{
	struct par p = { .c = c, .arg = arg, .fn = fn, .n = n };
	pthread_t threads[COPY_MAX_JOBS];
	int i, nthreads = 0, ret = 0;

	pthread_mutex_init(&p.mu, NULL);
	for (i = 0; i < c->jobs && (size_t)i < n; i++) {
		ret = pthread_create(&threads[i], NULL, par_worker, &p);
		if (ret) {
			pthread_mutex_lock(&p.mu);
			p.err = pgk_error(PGKEEP_ENOMEM, "cannot start a copy thread: %s", strerror(ret));
			snprintf(p.errmsg, sizeof(p.errmsg), "%s", pgk_errmsg());
			pthread_mutex_unlock(&p.mu);
			break;
		}
		nthreads++;
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&p.mu);
	if (p.err)
		return pgk_error(p.err, "%s", p.errmsg);
	return 0;
}
