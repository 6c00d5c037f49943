#!/bin/sh
# Files wal-push and wal-fetch must refuse, quickly and storing nothing:
# a FIFO (or a symlink) given as the WAL file, a FIFO planted in the
# repository as an object, and timeline history or backup history files
# that are empty or garbled (stored once, they would block the real ones
# forever).  Real ones are still archived.  No PostgreSQL needed.

. "${top_srcdir:-.}/tests/lib/integration.sh"

[ -z "$PGKEEP_TEST_REPO_CONF" ] || { echo "1..0 # SKIP needs the default local repository"; exit 0; }

pgkeep_conf
ok "pgkeep init" pgkeep_init
W=$T/pg_wal
t_mkdir "$W" "$T/out"

# push NAME: wal-push $W/NAME as postgres, within 20 seconds; rc and err set.
push() {
	run timeout 20 runuser -u postgres -- "$PGKEEP" --config "$PGKEEP_CONF" wal-push "$W/$1"
}

stored() {
	local key
	case $1 in
	*.history) key=wal/history/$1 ;;
	*) key=wal/$(printf '%.8s' "$1")/$1 ;;
	esac
	[ -e "$TEST_REPO_PATH/$key" ]
}

# ---------------------------------------------------------------- FIFOs and links

as_pg mkfifo "$W/000000010000000000000001" "$W/00000002.history"
push 000000010000000000000001
is "$rc" 2 "wal-push of a FIFO fails at once (not a hang)"
is "$err" "pgkeep: wal-push: error: $W/000000010000000000000001 is not a regular file" \
	"... with one line saying what it is"
ok "... and stores nothing" sh -c "! ls '$TEST_REPO_PATH/wal' 2>/dev/null | grep -q ."
push 00000002.history
is "$rc:$err" "2:pgkeep: wal-push: error: $W/00000002.history is not a regular file" \
	"a FIFO named as a history file too"

printf 'x' >"$T/elsewhere"
as_pg ln -s "$T/elsewhere" "$W/000000010000000000000002"
push 000000010000000000000002
is "$rc:$err" "2:pgkeep: wal-push: error: $W/000000010000000000000002 is a symbolic link, not a WAL file" \
	"a symlink given as the WAL file is refused, not followed"

# A FIFO where an object should be: an error (not "absent", which would end
# recovery), at once.
t_mkdir "$TEST_REPO_PATH/wal" "$TEST_REPO_PATH/wal/00000001"
as_pg mkfifo "$TEST_REPO_PATH/wal/00000001/000000010000000000000003"
run timeout 20 runuser -u postgres -- "$PGKEEP" --config "$PGKEEP_CONF" wal-fetch \
	000000010000000000000003 "$T/out/x"
cmp_ok "$rc" -gt 125 "wal-fetch of a FIFO planted in the repository fails at once, above 125"
cmp_ok "$rc" -ne 124 "... not by the timeout"
like "$err" "is not a regular file" "... saying what it found"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... in one line"
rm -f "$TEST_REPO_PATH/wal/00000001/000000010000000000000003"

# ---------------------------------------------------------------- history files

# bad_meta NAME DESC MESSAGE: write $W/NAME from stdin, push it, expect a
# one-line refusal matching MESSAGE and nothing stored.
bad_meta() {
	as_pg sh -c 'cat >"$1"' sh "$W/$1"
	push "$1"
	is "$rc" 2 "$2: refused"
	like "$err" "^pgkeep: wal-push: error: $W/$1[ :].*($3)" "... saying why ($err)"
	is "$(printf '%s\n' "$err" | wc -l)" 1 "... in one line"
	fails "... and not stored" stored "$1"
	rm -f "$W/$1"
}

bad_meta 00000003.history "an empty history file" "is empty" </dev/null
# (Input through a file: a pipe would run bad_meta in a subshell.)
head -c 300 /dev/urandom >"$T/in"
bad_meta 00000003.history "a binary history file" "not text|expected" <"$T/in"
printf 'hello world\n' >"$T/in"
bad_meta 00000003.history "a history file of garbage" "line 1: expected a timeline number" <"$T/in"
printf '1\t0/3000158\tok\n3\t0/5000000\tlater\n' >"$T/in"
bad_meta 00000003.history "a history file listing its own timeline" \
	"not an ancestor of timeline 3" <"$T/in"
printf '2\t0/3000158\tok\n1\t0/5000000\tlater\n' >"$T/in"
bad_meta 00000003.history "a history file out of order" "does not follow" <"$T/in"

printf '1\t0/3000158\tno recovery target specified\n\n2\t0/5000060\tat restore point "x"\n' |
	as_pg sh -c 'cat >"$1"' sh "$W/00000003.history"
push 00000003.history
is "$rc:$err" "0:" "a good history file is archived"
ok "... and stored" stored 00000003.history

# ---------------------------------------------------------------- backup history files

B=000000010000000000000005.00000028.backup
bad_meta $B "an empty backup history file" "is empty" </dev/null
printf 'garbage\n' >"$T/in"
bad_meta $B "a backup history file of garbage" "expected 'KEY: value'" <"$T/in"
printf 'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nSTOP WAL LOCATION: 0/6000100 (file 000000010000000000000006)\n' >"$T/in"
bad_meta $B "a backup history file for another segment" "not the one its name says" <"$T/in"
printf 'START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\n' >"$T/in"
bad_meta $B "a backup history file with no stop location" "has no STOP WAL LOCATION" <"$T/in"

as_pg sh -c 'cat >"$1"' sh "$W/$B" <<'EOF'
START WAL LOCATION: 0/5000028 (file 000000010000000000000005)
STOP WAL LOCATION: 0/5000138 (file 000000010000000000000005)
CHECKPOINT LOCATION: 0/5000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-12-07 22:00:00 UTC
LABEL: pgkeep base backup
START TIMELINE: 1
STOP TIME: 2026-12-07 22:00:01 UTC
STOP TIMELINE: 1
EOF
push $B
is "$rc:$err" "0:" "a good backup history file is archived"
ok "... and stored" stored $B

done_testing
