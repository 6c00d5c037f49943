# The library every integration test sources, first thing:
#
#   . "$top_srcdir/tests/lib/integration.sh"
#
# It brings in tests/lib/tap.sh (results and the plan), tests/lib/pg.sh (the
# test directory, clusters, the archiver), tests/lib/pgkeep.sh (config,
# repository, run) and tests/lib/stores.sh (other stores).  A test that needs
# root is skipped with a reason when not run as root.  With
# PGKEEP_TEST_STORE=s3|sftp|b2 set, the test is run against that store
# instead (stores.sh); nothing of the test itself changes.
#
# Environment (exported by `make check`, see Makefile.am): top_srcdir,
# PGKEEP, PG_BINDIR, PGKEEP_TEST_PLUGIN_DIR.  Optional: KEEP_TEST_DIR,
# PGKEEP_TEST_PG_SERVER_BINDIR, PGKEEP_TEST_STORE.  See tests/README.md.

set -u
: "${top_srcdir:?top_srcdir must name the source tree (run through make check)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stores.sh"
case ${PGKEEP_TEST_STORE:-local} in
local | "${PGKEEP_TEST_STORE_UP:-}") ;;
*) store_run "$PGKEEP_TEST_STORE" "$0" ;;
esac
. "$top_srcdir/tests/lib/pg.sh"
. "$top_srcdir/tests/lib/pgkeep.sh"
