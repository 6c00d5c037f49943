#!/bin/sh
# The shipped Prometheus alert rules and Grafana dashboard: promtool accepts
# the rules, their unit tests (tests/prometheus/pgkeep-rules.test.yml) pass,
# the dashboard is valid JSON whose every query is valid PromQL, and a
# broken threshold is caught by the rule tests.  That every metric they use
# is really written by `pgkeep metrics` is checked in metrics.sh, against a
# live output.

. "${top_srcdir:-.}/tests/lib/integration.sh"

src=${top_srcdir:-.}
rules=$src/contrib/prometheus/pgkeep-rules.yml
dash=$src/contrib/grafana/pgkeep.json

command -v promtool >/dev/null 2>&1 || bail_out "promtool not found (install Debian's prometheus package)"

ok "promtool check rules accepts pgkeep-rules.yml" promtool check rules "$rules"
ok "the rules' unit tests pass" promtool test rules "$src/tests/prometheus/pgkeep-rules.test.yml"
ok "the dashboard is JSON" python3 -m json.tool "$dash"
# No live metrics here: an empty file makes every name "missing", so only
# the PromQL side-output is used.
: >"$T/empty.prom"
python3 "$src/tests/integration/promnames.py" "$T/empty.prom" "$dash" "$rules" "$T/dashboard-rules.yml" >/dev/null
ok "every dashboard query is valid PromQL" promtool check rules "$T/dashboard-rules.yml"
cmp_ok "$(grep -c '^      - record:' "$T/dashboard-rules.yml")" -ge 10 "the dashboard has its queries"

# The rule tests must catch a threshold that drifts: a copy that alerts on
# archive lag after 1 minute instead of 10 fails them.
sed 's/pgkeep_wal_archive_lag_seconds > 600/pgkeep_wal_archive_lag_seconds > 60/' "$rules" >"$T/drift.yml"
sed "s|../../contrib/prometheus/pgkeep-rules.yml|$T/drift.yml|" \
	"$src/tests/prometheus/pgkeep-rules.test.yml" >"$T/drift.test.yml"
ok "the drifted copy is still valid" promtool check rules "$T/drift.yml"
fails "the rule tests catch the drifted threshold" promtool test rules "$T/drift.test.yml"

done_testing
