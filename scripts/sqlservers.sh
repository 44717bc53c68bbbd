#!/usr/bin/env bash
# PostgreSQL and MariaDB on this machine, for the tests of qme's SQL stores
# (Debian/Ubuntu, as root, no systemd needed).
#
#   bash scripts/sqlservers.sh start    install (when missing) and start both servers,
#                                       then create the test role/user and database
#   bash scripts/sqlservers.sh stop     stop what `start` started (a server that was
#                                       already up when `start` ran is left alone)
#   bash scripts/sqlservers.sh status   say whether each server answers
#
# The tests reach them through QME_TEST_POSTGRESQL and QME_TEST_MYSQL, whose
# defaults (tests/sqlservers.py) are the user, password and database made here:
#   postgresql+psycopg://qme:qme-test-pw@127.0.0.1/qme_test
#   mysql+pymysql://qme:qme-test-pw@127.0.0.1/qme_test   (and databases qme_test_* for it)
# Both commands are idempotent.
set -euo pipefail

DIR=${QME_SQL_DIR:-/var/lib/qme-sqlservers}
STARTED="$DIR/started" # one line per server this script started
MYSQL_SOCKET=/run/mysqld/mysqld.sock

say() { echo "sqlservers.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck source=scripts/packages.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/packages.sh"

pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
mysql_answers() { mariadb-admin --socket="$MYSQL_SOCKET" ping >/dev/null 2>&1; }

start_postgresql() {
    if ! pg_answers; then
        local cluster
        cluster=$(pg_lsclusters -h | awk 'NR == 1 {print $1 " " $2}')
        if [ -z "$cluster" ]; then
            pg_createcluster "$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' |
                sort -n | tail -1)" main >/dev/null
            cluster=$(pg_lsclusters -h | awk 'NR == 1 {print $1 " " $2}')
        fi
        # shellcheck disable=SC2086 # "VERSION NAME", two words
        pg_ctlcluster $cluster start
        echo "postgresql $cluster" >>"$STARTED"
        wait_for 30 PostgreSQL pg_answers
    fi
    runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'EOF'
SELECT 'CREATE ROLE qme LOGIN'
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'qme') \gexec
ALTER ROLE qme PASSWORD 'qme-test-pw';
SELECT 'CREATE DATABASE qme_test OWNER qme'
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'qme_test') \gexec
EOF
    say "PostgreSQL answers on 127.0.0.1:5432"
}

start_mariadb() {
    if ! mysql_answers; then
        install -d -o mysql -g mysql /run/mysqld
        setsid /usr/sbin/mariadbd --user=mysql --socket="$MYSQL_SOCKET" \
            --pid-file=/run/mysqld/mysqld.pid --bind-address=127.0.0.1 \
            >>"$DIR/mariadb.log" 2>&1 </dev/null &
        echo "mariadb /run/mysqld/mysqld.pid" >>"$STARTED"
        wait_for 30 MariaDB mysql_answers
    fi
    mariadb --socket="$MYSQL_SOCKET" <<'EOF'
CREATE USER IF NOT EXISTS 'qme'@'%' IDENTIFIED BY 'qme-test-pw';
ALTER USER 'qme'@'%' IDENTIFIED BY 'qme-test-pw';
CREATE DATABASE IF NOT EXISTS qme_test;
GRANT ALL ON `qme\_test%`.* TO 'qme'@'%';
EOF
    say "MariaDB answers on 127.0.0.1:3306"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "starting the servers needs root"
    install_packages pg_ctlcluster:postgresql mariadbd:mariadb-server
    install -d "$DIR"
    touch "$STARTED"
    start_postgresql
    start_mariadb
}

stop() {
    [ -s "$STARTED" ] || { say "nothing to stop (this script started no server)"; return 0; }
    local name rest
    while read -r name rest; do
        case $name in
        postgresql) # shellcheck disable=SC2086
            pg_ctlcluster $rest stop -m fast || true ;;
        mariadb)
            local pid
            pid=$(cat "$rest" 2>/dev/null) || continue
            mariadb-admin --socket="$MYSQL_SOCKET" shutdown >/dev/null 2>&1 || kill "$pid" || true
            for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done ;;
        esac
        say "$name stopped"
    done <"$STARTED"
    rm -f "$STARTED"
}

status() {
    local code=0
    if pg_answers; then say "PostgreSQL answers"; else say "PostgreSQL does not answer"; code=1; fi
    if mysql_answers; then say "MariaDB answers"; else say "MariaDB does not answer"; code=1; fi
    return $code
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
