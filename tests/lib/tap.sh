# TAP output for pgkeep's shell tests: results, diagnostics, the plan, and
# skipping a whole test.  Needs nothing but a POSIX shell (bash works too);
# tests/lib/integration.sh sources it, the plugin suites source it alone.
#
#   pass DESC / fail DESC   record a result directly
#   ok DESC CMD...          pass when CMD exits 0
#   fails DESC CMD...       pass when CMD exits non-zero
#   is GOT WANT DESC        string equality
#   cmp_ok GOT OP WANT DESC numeric test: OP is -eq -ne -lt -le -gt -ge
#   like GOT ERE DESC       GOT matches the extended regular expression
#   contains GOT STR DESC   GOT contains the fixed string STR
#   diag MSG...             comment lines, one per argument line
#   diag_file FILE          FILE as comment lines
#   bail_out MSG            abort the whole test (TAP "Bail out!")
#   skip_all REASON         no tests at all: "1..0 # SKIP REASON", exit 0
#   require_root [WHY]      skip_all unless running as root, saying why root
#   done_testing            print the plan; exit 1 when anything failed
#
# And waiting for a condition (the deadline only bounds a hang, so it is
# generous: a test never measures the machine's speed with it):
#   wait_until SECS CMD...  run CMD every 0.2 s until it succeeds; 1 after SECS
#
# Results that fail return 1, so "is ... || diag ..." adds context.  A
# function t_failure_diag, when defined, is called by done_testing after a
# failure (tests/lib/pg.sh shows the server log there).

t_count=0
t_failed=0

t_result() {
	# $1: 0 for pass; $2: description
	t_count=$((t_count + 1))
	if [ "$1" -eq 0 ]; then
		printf 'ok %d - %s\n' "$t_count" "$2"
	else
		t_failed=$((t_failed + 1))
		printf 'not ok %d - %s\n' "$t_count" "$2"
	fi
	return "$1"
}

pass() { t_result 0 "$1"; }
fail() { t_result 1 "$1"; }

diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

diag_file() {
	sed 's/^/# /' "$1"
}

ok() {
	local desc=$1
	shift
	if "$@"; then t_result 0 "$desc"; else t_result 1 "$desc"; fi
}

fails() {
	local desc=$1
	shift
	if "$@"; then t_result 1 "$desc"; else t_result 0 "$desc"; fi
}

is() {
	if [ "$1" = "$2" ]; then
		t_result 0 "$3"
	else
		t_result 1 "$3"
		diag "   got: '$1'" "  want: '$2'"
		return 1
	fi
}

cmp_ok() {
	if [ "$1" "$2" "$3" ] 2>/dev/null; then
		t_result 0 "$4"
	else
		t_result 1 "$4"
		diag "   got: '$1'" "  want: $2 '$3'"
		return 1
	fi
}

like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		t_result 0 "$3"
	else
		t_result 1 "$3"
		diag "   got: '$1'" "  want match: /$2/"
		return 1
	fi
}

contains() {
	if printf '%s\n' "$1" | grep -Fq -- "$2"; then
		t_result 0 "$3"
	else
		t_result 1 "$3"
		diag "   got: '$1'" "  want: ...$2..."
		return 1
	fi
}

bail_out() {
	printf 'Bail out! %s\n' "$*"
	exit 1
}

skip_all() {
	printf '1..0 # SKIP %s\n' "$*"
	exit 0
}

require_root() {
	[ "$(id -u)" -eq 0 ] ||
		skip_all "needs root (${1:-it runs PostgreSQL and servers as other users})"
}

wait_until() {
	local deadline=$(( $(date +%s) + $1 ))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

done_testing() {
	printf '1..%d\n' "$t_count"
	if [ "$t_failed" -ne 0 ]; then
		diag "$t_failed of $t_count failed"
		if command -v t_failure_diag >/dev/null 2>&1; then
			t_failure_diag
		fi
		exit 1
	fi
	exit 0
}
