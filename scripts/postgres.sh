#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on a free loopback port (trust auth, fsync off:
# its data is thrown away), creates the database sluice_test, and runs a command with
# SLUICE_TEST_POSTGRES set to its URL; stops the cluster and deletes its files when the
# command ends, whatever happens, and exits with the command's status.
#
#   bash scripts/postgres.sh go test ./postgres/
#   bash scripts/postgres.sh              # no command: print the variable and wait for ^C
#
# The binaries are Debian's postgresql-15 (PGBIN, default /usr/lib/postgresql/15/bin);
# when they are missing and we are root, the package is installed. PostgreSQL refuses to
# run as root, so as root the cluster runs as the user postgres, which the package makes.
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

if [[ ! -x "$PGBIN/initdb" ]]; then
	if [[ "$(id -u)" != 0 ]]; then
		echo "postgres.sh: $PGBIN/initdb is missing; install PostgreSQL 15 (Debian: apt-get install postgresql-15) or set PGBIN" >&2
		exit 1
	fi
	echo "postgres.sh: installing postgresql-15..." >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sluice-postgres.XXXXXX")"
chmod 755 "$TMP"
STARTED=""

# as runs a command as the cluster's user: postgres when we are root, else ourselves.
as() {
	if [[ "$(id -u)" == 0 ]]; then
		local cmd
		printf -v cmd '%q ' "$@"
		su postgres -s /bin/sh -c "$cmd"
	else
		"$@"
	fi
}

if [[ "$(id -u)" == 0 ]]; then
	chown postgres:postgres "$TMP"
fi

stop() {
	if [[ -n "$STARTED" ]]; then
		as "$PGBIN/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
}
trap stop EXIT
trap 'exit 130' INT TERM

as "$PGBIN/initdb" -D "$TMP/data" -A trust -U postgres -E UTF8 --no-sync >"$TMP/initdb.log" 2>&1 || {
	echo "postgres.sh: initdb failed" >&2
	cat "$TMP/initdb.log" >&2
	exit 1
}

# A port that nothing listens on; if another process takes it before the cluster does,
# the start fails and another port is tried.
free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

PORT=""
STARTED=1 # from here on, stop() stops whatever pg_ctl may have left running
for _ in 1 2 3 4 5; do
	try="$(free_port)"
	if as "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/postgres.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $try -k $TMP -c fsync=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null 2>&1; then
		PORT="$try"
		break
	fi
done
if [[ -z "$PORT" ]]; then
	echo "postgres.sh: PostgreSQL did not start" >&2
	cat "$TMP/postgres.log" >&2 || true
	exit 1
fi

"$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
	-c 'CREATE DATABASE sluice_test' >/dev/null

export SLUICE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PORT/sluice_test?sslmode=disable"

if [[ $# -eq 0 ]]; then
	echo "PostgreSQL is listening on 127.0.0.1:$PORT; ^C stops it and deletes its data."
	echo "export SLUICE_TEST_POSTGRES='$SLUICE_TEST_POSTGRES'"
	while true; do sleep 3600; done
fi

status=0
"$@" || status=$?
exit "$status"
