#!/bin/sh
# Whom pgkeep trusts, and what root leaves behind.  A config, passphrase
# file or plugin that another user could have written is refused before
# anything in it runs; root never runs a user's passphrase_command as root
# but becomes that user; root's backup and pin in postgres's repository
# leave only postgres's files; a running pgkeep is not dumpable and has no
# core-file allowance; child programs get no PGKEEP_* or store credentials;
# a conninfo URI password is a secret, kept out of error messages.

. "${top_srcdir:-.}/tests/lib/integration.sh"

pg_init "$T/pg"
pgkeep_conf
pgkeep_init || bail_out "init"
pg_start
psql_q "create table t as select g from generate_series(1, 1000) g" || bail_out "create table"
pg_uid=$(id -u postgres)
# Where postgres's commands leave what they observed.
t_mkdir "$T/m"

# variant SED-EXPRESSION FILE: a copy of the config, edited, postgres's, 0600.
variant() {
	as_pg sh -c 'sed "$2" "$1" >"$3" && chmod 600 "$3"' sh "$PGKEEP_CONF" "$1" "$2" ||
		bail_out "cannot write $2"
}

# --------------------------------------------------------------- a config others may write

variant "s|^passphrase_file = .*|passphrase_command = id -u >$T/m/uid; cat $T/passphrase|" \
	"$T/cmd.conf"
chmod 666 "$T/cmd.conf"
run "$PGKEEP" --config "$T/cmd.conf" list
cmp_ok "$rc" -ne 0 "root: a config anyone may write is refused"
like "$err" "config $T/cmd.conf is writable by group or others \(owner postgres, mode 0666\)" \
	"... in one line naming the file, its owner and its mode"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... one line"
ok "... and its passphrase_command never ran" [ ! -e "$T/m/uid" ]

chmod 600 "$T/cmd.conf"
run "$PGKEEP" --config "$T/cmd.conf" list
is "$rc" 0 "root: the same config, postgres's and 0600, is used"
is "$(cat "$T/m/uid" 2>/dev/null)" "$pg_uid" \
	"... and its passphrase_command runs as postgres, the config's owner, not as root"

# Root's own config naming a passphrase file of postgres's.
sed "s|^passphrase_file = .*|passphrase_file = $T/passphrase|" "$PGKEEP_CONF" >"$T/root-pass.conf"
chmod 600 "$T/root-pass.conf"
run "$PGKEEP" --config "$T/root-pass.conf" list
cmp_ok "$rc" -ne 0 "root's config with postgres's passphrase file is refused"
like "$err" "passphrase file $T/passphrase is owned by postgres \(mode 0600\), not by root" \
	"... naming the file, its owner and its mode"

# --------------------------------------------------------------- plugins

t_mkdir "$T/plugins"
cp "$PGKEEP_TEST_PLUGIN_DIR/local.so" "$T/plugins/" || bail_out "cannot copy local.so"
chown postgres "$T/plugins/local.so"
chmod 755 "$T/plugins" "$T/plugins/local.so"
variant "s|^plugin_dir = .*|plugin_dir = $T/plugins|" "$T/plug.conf"
run as_pg "$PGKEEP" --config "$T/plug.conf" list
is "$rc" 0 "a plugin from postgres's own 0755 directory loads"
chmod 777 "$T/plugins"
run as_pg "$PGKEEP" --config "$T/plug.conf" list
cmp_ok "$rc" -ne 0 "a plugin directory anyone may write is refused"
like "$err" "plugin directory $T/plugins is writable by group or others \(owner postgres, mode 0777\)" \
	"... naming the directory, its owner and its mode"
chmod 755 "$T/plugins"
chmod 666 "$T/plugins/local.so"
run as_pg "$PGKEEP" --config "$T/plug.conf" list
like "$err" "storage plugin $T/plugins/local.so is writable by group or others" \
	"a plugin anyone may write is refused"
chmod 755 "$T/plugins/local.so"

# Root's own repository, config and passphrase: PGKEEP_PLUGIN_DIR is not for root.
mkdir -m 700 "$T/rootdir" "$T/rootdir/empty"
cp "$T/passphrase" "$T/rootdir/pass" && chown root "$T/rootdir/pass"
cat >"$T/rootdir/root.conf" <<EOF
[global]
passphrase_file = $T/rootdir/pass
plugin_dir = $T/rootdir/empty
spool_dir = $T/rootdir

[repo:mine]
plugin = local
path = $T/rootdir/repo
EOF
chmod 600 "$T/rootdir/root.conf"
run env PGKEEP_PLUGIN_DIR="$PGKEEP_TEST_PLUGIN_DIR" "$PGKEEP" --config "$T/rootdir/root.conf" \
	init --kdf-n 1024
cmp_ok "$rc" -ne 0 "root: PGKEEP_PLUGIN_DIR is ignored"
like "$err" "storage plugin 'local' not found \(looked for local.so in $T/rootdir/empty," \
	"... it is not even searched"
sed -i "s|^plugin_dir = .*|plugin_dir = $PGKEEP_TEST_PLUGIN_DIR|" "$T/rootdir/root.conf"
run "$PGKEEP" --config "$T/rootdir/root.conf" init --kdf-n 1024
is "$rc" 0 "root: init of its own repository in a root-owned directory"
is "$(find "$T/rootdir/repo" ! -user root | wc -l)" 0 "... stays root's"

# --------------------------------------------------------------- root's writes in postgres's repository

# The conninfo names its user: as root, the connection is still postgres's.
variant "s|^conninfo = .*|& user=postgres|" "$T/user.conf"
run "$PGKEEP" --config "$T/user.conf" backup --type=dump
is "$rc" 0 "root: a dump backup into postgres's repository"
id=$(pgkeep_run list | awk 'NR == 2 {print $1}')
run "$PGKEEP" --config "$T/user.conf" pin "$id" --note "pinned by root"
is "$rc" 0 "root: pin"
# Root's own config this time: it reads its passphrase, then acts as the
# repository's owner.
sed "s|^passphrase_file = .*|passphrase_file = $T/rootdir/pass|" "$T/user.conf" >"$T/rootdir/pg.conf"
chmod 600 "$T/rootdir/pg.conf"
run "$PGKEEP" --config "$T/rootdir/pg.conf" backup --type=dump
is "$rc" 0 "root, with root's config: another dump backup into postgres's repository"
run "$PGKEEP" --config "$T/rootdir/pg.conf" unpin "$id"
is "$rc" 0 "... and unpin"
is "$(find "$TEST_REPO_PATH" ! -user postgres | wc -l)" 0 \
	"every file and directory in the repository is still postgres's"
run pgkeep_run verify
is "$rc" 0 "postgres verifies the repository after root's commands"
run pgkeep_run list
is "$(printf '%s\n' "$out" | grep -c '^[0-9]')" 2 "... and lists both backups"
run pgkeep_run expire --grace 0
is "$rc" 0 "... and can expire in it"
is "$(printf '%s\n' "$err" | grep -c 'Permission denied')" 0 "... without a Permission denied"

# --------------------------------------------------------------- no core files, not dumpable

# The passphrase command runs in the shell popen starts, a child of pgkeep.
cat >"$T/m/probe.sh" <<EOF
grep 'Max core file size' /proc/\$PPID/limits >$T/m/limits
if cat /proc/\$PPID/environ >/dev/null 2>&1; then echo readable; else echo closed; fi >$T/m/environ
cat $T/passphrase
EOF
chown postgres "$T/m/probe.sh"
variant "s|^passphrase_file = .*|passphrase_command = . $T/m/probe.sh|" "$T/probe.conf"
run as_pg sh -c 'ulimit -c unlimited && exec "$1" --config "$2" list' sh "$PGKEEP" "$T/probe.conf"
is "$rc" 0 "list with a probing passphrase_command, started with ulimit -c unlimited"
like "$(cat "$T/m/limits")" "^Max core file size +0 +0 +bytes" \
	"a running pgkeep has a core file size limit of 0, soft and hard"
is "$(cat "$T/m/environ")" closed \
	"and is not dumpable: another postgres process cannot read its memory or environment"

# --------------------------------------------------------------- what child programs get

t_mkdir "$T/bin"
cat >"$T/bin/pg_dump" <<EOF
#!/bin/sh
env >$T/m/child.env
exec "$PG_BINDIR/pg_dump" "\$@"
EOF
chown postgres "$T/bin/pg_dump"
chmod 755 "$T/bin/pg_dump"
run as_pg env PGKEEP_PASSPHRASE="$(cat "$T/passphrase")" AWS_SECRET_ACCESS_KEY=Aws-Secret-5e6f7a8b \
	B2_APPLICATION_KEY=B2-Key-1c2d3e4f PGKEEP_PG_BINDIR="$T/bin" \
	"$PGKEEP" --config "$PGKEEP_CONF" backup --type=dump
is "$rc" 0 "dump backup through a pg_dump that records its environment"
ok "pg_dump ran" [ -s "$T/m/child.env" ]
is "$(grep -c '^PGKEEP_\|^AWS_\|^B2_\|Aws-Secret-5e6f7a8b\|B2-Key-1c2d3e4f' "$T/m/child.env")" 0 \
	"it saw no PGKEEP_PASSPHRASE, AWS_SECRET_ACCESS_KEY or B2_APPLICATION_KEY"
is "$(grep -c "^PGHOST=$SOCKDIR\$\|^PGPORT=$PGPORT\$\|^PATH=" "$T/m/child.env")" 3 \
	"but PATH and the connection's PGHOST and PGPORT"

# --------------------------------------------------------------- a conninfo URI password

variant "s|^conninfo = .*|conninfo = postgresql://postgres:Uri-Pw-4c3b%zz@/postgres?host=$SOCKDIR\\&port=$PGPORT|" \
	"$T/uri.conf"
chmod 644 "$T/uri.conf"
run as_pg "$PGKEEP" --config "$T/uri.conf" list
cmp_ok "$rc" -ne 0 "a config whose conninfo URI holds a password, mode 0644, is refused"
like "$err" "holds a secret \(conninfo on line [0-9]+\)" "... as holding a secret"
chmod 600 "$T/uri.conf"
run as_pg "$PGKEEP" --config "$T/uri.conf" -v -v backup --type=dump
cmp_ok "$rc" -ne 0 "a backup with a malformed conninfo URI fails"
like "$err" "percent-encoded|conninfo" "... saying why"
is "$(printf '%s\n%s\n' "$out" "$err" | grep -c 'Uri-Pw-4c3b')" 0 \
	"... without the password, which libpq's message quotes"
run as_pg "$PGKEEP" --config "$T/uri.conf" check
cmp_ok "$rc" -ne 0 "check with that conninfo fails"
like "$out" "postgresql +FAILED: cannot connect \(.*percent-encoded" "... saying why on stdout"
is "$(printf '%s\n%s\n' "$out" "$err" | grep -c 'Uri-Pw-4c3b')" 0 "... without the password"

done_testing
