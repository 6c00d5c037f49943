/*
 * libpq, opened the first time a command talks to PostgreSQL (see
 * common/lazylib.h).  Include this, never <libpq-fe.h>: the types are
 * libpq's own, and each function is #defined to its slot in a table that
 * loading fills, so call sites read as plain, documented libpq.
 */
#ifndef PGK_LIBPQ_API_H
#define PGK_LIBPQ_API_H

#include <libpq-fe.h>

#include "common/lazylib.h"

/*
 * Every libpq function pgkeep calls.  A new one takes a line here and its
 * #define below; forget the #define and the call does not link (pgkeep does
 * not link libpq), forget this line and it does not compile.
 */
#define PGK_LIBPQ_FUNCS(X) \
	X(PQclear) \
	X(PQconnectdbParams) \
	X(PQconsumeInput) \
	X(PQconninfoFree) \
	X(PQconninfoParse) \
	X(PQerrorMessage) \
	X(PQescapeIdentifier) \
	X(PQexec) \
	X(PQexecParams) \
	X(PQfinish) \
	X(PQfreemem) \
	X(PQgetCopyData) \
	X(PQgetResult) \
	X(PQgetisnull) \
	X(PQgetvalue) \
	X(PQisBusy) \
	X(PQnfields) \
	X(PQntuples) \
	X(PQparameterStatus) \
	X(PQresStatus) \
	X(PQresultErrorField) \
	X(PQresultErrorMessage) \
	X(PQresultStatus) \
	X(PQserverVersion) \
	X(PQsendQuery) \
	X(PQsetNoticeProcessor) \
	X(PQsocket) \
	X(PQstatus)

/* The slots take their types from libpq-fe.h, so a call is type-checked. */
struct pgk_libpq {
#define PGK_LIBPQ_SLOT(f) __typeof__(f) *fn_##f;
	PGK_LIBPQ_FUNCS(PGK_LIBPQ_SLOT)
#undef PGK_LIBPQ_SLOT
};
extern struct pgk_libpq pgk_libpq;
/* What libpq_load() opens; not static only so that a test can break it. */
extern struct lazylib libpq_lazylib;

/* 0, or "cannot load libpq.so.5 (needed to talk to PostgreSQL): why". */
int libpq_load(void);

/*
 * The only ways to get anything out of libpq: both load it first, so a
 * PGconn or a PQconninfoOption in hand proves the table is filled, and every
 * other function takes one of those (or what came from one).  They fail
 * only when libpq cannot be loaded (or memory runs out); otherwise they
 * return what libpq does, for the caller to judge: a connection whose
 * PQstatus() may be bad, or NULL options with *errmsg set.
 */
int libpq_connect(PGconn **out, const char *const *keys, const char *const *vals,
		  int expand_dbname);
int libpq_conninfo_parse(PQconninfoOption **out, const char *conninfo, char **errmsg);

#define PQclear			(pgk_libpq.fn_PQclear)
#define PQconninfoFree		(pgk_libpq.fn_PQconninfoFree)
#define PQconsumeInput		(pgk_libpq.fn_PQconsumeInput)
#define PQerrorMessage		(pgk_libpq.fn_PQerrorMessage)
#define PQescapeIdentifier	(pgk_libpq.fn_PQescapeIdentifier)
#define PQexec			(pgk_libpq.fn_PQexec)
#define PQexecParams		(pgk_libpq.fn_PQexecParams)
#define PQfinish		(pgk_libpq.fn_PQfinish)
#define PQfreemem		(pgk_libpq.fn_PQfreemem)
#define PQgetCopyData		(pgk_libpq.fn_PQgetCopyData)
#define PQgetResult		(pgk_libpq.fn_PQgetResult)
#define PQgetisnull		(pgk_libpq.fn_PQgetisnull)
#define PQgetvalue		(pgk_libpq.fn_PQgetvalue)
#define PQisBusy		(pgk_libpq.fn_PQisBusy)
#define PQnfields		(pgk_libpq.fn_PQnfields)
#define PQntuples		(pgk_libpq.fn_PQntuples)
#define PQparameterStatus	(pgk_libpq.fn_PQparameterStatus)
#define PQresStatus		(pgk_libpq.fn_PQresStatus)
#define PQresultErrorField	(pgk_libpq.fn_PQresultErrorField)
#define PQresultErrorMessage	(pgk_libpq.fn_PQresultErrorMessage)
#define PQresultStatus		(pgk_libpq.fn_PQresultStatus)
#define PQserverVersion		(pgk_libpq.fn_PQserverVersion)
#define PQsendQuery		(pgk_libpq.fn_PQsendQuery)
#define PQsetNoticeProcessor	(pgk_libpq.fn_PQsetNoticeProcessor)
#define PQsocket		(pgk_libpq.fn_PQsocket)
#define PQstatus		(pgk_libpq.fn_PQstatus)

/*
 * Calls that need no handle from libpq (constructors, pings): through a
 * slot they could run before anything loaded it.  Use the wrappers above, or
 * add one like them.
 */
#pragma GCC poison PQconnectdb PQconnectdbParams PQconnectStart PQconnectStartParams \
	PQsetdbLogin PQconninfoParse PQconndefaults PQping PQpingParams

#endif
