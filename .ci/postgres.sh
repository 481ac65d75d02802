# Sourced by .ci/run: starts one throw-away PostgreSQL server for the
# test run and exports RESUB_TEST_POSTGRES (a URL of its superuser on the
# "postgres" database; tests create a database each). The server runs as
# the unprivileged postgres user (PostgreSQL refuses root), listens on
# 127.0.0.1 on a free port, keeps its data under a temporary folder, and
# is stopped when the calling shell exits.

resub_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}

if [ -z "$(resub_pg_bin)" ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the package from starting its own cluster.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    rm -f /usr/sbin/policy-rc.d
  else
    echo "missing package: postgresql (install it or run as root)" >&2
    exit 1
  fi
fi
RESUB_PG_BIN=$(resub_pg_bin)

# As root the server runs as the postgres user (created by the package);
# otherwise as ourselves.
resub_pg_as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  resub_pg_as=(runuser -u postgres --)
fi

RESUB_PG_DIR=$(mktemp -d /tmp/resub-pg.XXXXXX)
chmod 755 "$RESUB_PG_DIR"
mkdir -p "$RESUB_PG_DIR/data" "$RESUB_PG_DIR/sock"
[ "$(id -u)" = 0 ] && chown -R postgres: "$RESUB_PG_DIR"

# A free port: ask the kernel for one.
RESUB_PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)))

"${resub_pg_as[@]}" "$RESUB_PG_BIN/initdb" -D "$RESUB_PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$RESUB_PG_DIR/initdb.log" 2>&1 ||
  { cat "$RESUB_PG_DIR/initdb.log" >&2; exit 1; }
# A test server: durability off (the data is thrown away), enough
# connections for the packages that run in parallel.
"${resub_pg_as[@]}" "$RESUB_PG_BIN/pg_ctl" -D "$RESUB_PG_DIR/data" -l "$RESUB_PG_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $RESUB_PG_PORT -k $RESUB_PG_DIR/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || { cat "$RESUB_PG_DIR/server.log" >&2; exit 1; }

resub_pg_stop() {
  "${resub_pg_as[@]}" "$RESUB_PG_BIN/pg_ctl" -D "$RESUB_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$RESUB_PG_DIR"
}
trap resub_pg_stop EXIT

export RESUB_TEST_POSTGRES="postgres://postgres@127.0.0.1:$RESUB_PG_PORT/postgres?sslmode=disable"
export RESUB_TEST_POSTGRES_BIN="$RESUB_PG_BIN"
echo "== PostgreSQL test server on 127.0.0.1:$RESUB_PG_PORT"
