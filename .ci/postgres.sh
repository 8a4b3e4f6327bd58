#!/usr/bin/env bash
# Starts a throw-away Postgres cluster for the test suite and exports NODEAI_TEST_DATABASE_URL.
# Source it (`. .ci/postgres.sh`): the export must reach the shell that runs the tests. The
# cluster lives in a temp dir, listens on a free local port, and is stopped and removed when
# that shell exits. Durability is switched off (fsync, synchronous_commit): it holds test data.

nodeai_pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"; return 0
  fi
  return 1
}

. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
if ! nodeai_pg_bindir >/dev/null; then
  nodeai_apt_install postgresql || { return 1 2>/dev/null || exit 1; }
fi

NODEAI_PG_BIN="$(nodeai_pg_bindir)"
NODEAI_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/nodeai-pg.XXXXXX")"
# Postgres refuses to run as root: as root, run it as the postgres user the package creates.
if [ "$(id -u)" = 0 ]; then
  chown postgres "$NODEAI_PG_DIR"
  nodeai_pg_as() { runuser -u postgres -- "$@"; }
else
  nodeai_pg_as() { "$@"; }
fi
NODEAI_PG_PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"

nodeai_pg_stop() {
  nodeai_pg_as "$NODEAI_PG_BIN/pg_ctl" -D "$NODEAI_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$NODEAI_PG_DIR"
}

if ! nodeai_pg_as "$NODEAI_PG_BIN/initdb" -D "$NODEAI_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$NODEAI_PG_DIR/initdb.log" 2>&1; then
  cat "$NODEAI_PG_DIR/initdb.log" >&2
  echo "postgres.sh: initdb failed." >&2
  rm -rf "$NODEAI_PG_DIR"
  return 1 2>/dev/null || exit 1
fi
if ! nodeai_pg_as "$NODEAI_PG_BIN/pg_ctl" -D "$NODEAI_PG_DIR/data" -l "$NODEAI_PG_DIR/server.log" -w -t 60 \
  -o "-p $NODEAI_PG_PORT -c listen_addresses=127.0.0.1 -k $NODEAI_PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null; then
  cat "$NODEAI_PG_DIR/server.log" >&2
  echo "postgres.sh: pg_ctl start failed." >&2
  nodeai_pg_stop
  return 1 2>/dev/null || exit 1
fi
trap nodeai_pg_stop EXIT
nodeai_pg_as "$NODEAI_PG_BIN/createdb" -h 127.0.0.1 -p "$NODEAI_PG_PORT" -U postgres nodeai_test
export NODEAI_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$NODEAI_PG_PORT/nodeai_test"
echo "postgres.sh: Postgres $("$NODEAI_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$NODEAI_PG_PORT, NODEAI_TEST_DATABASE_URL set" >&2
