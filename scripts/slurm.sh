#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the tests (Debian/Ubuntu, as root).
#
#   bash scripts/slurm.sh start    install (when missing) and start munge, Slurm and,
#                                  with accounting, MariaDB + slurmdbd; wait until idle
#   bash scripts/slurm.sh stop     stop what `start` started (nothing if Slurm was
#                                  already up when `start` ran)
#   bash scripts/slurm.sh status   say whether Slurm answers
#
# QME_SLURM_ACCOUNTING=slurmdbd (default) gives full `sacct` through slurmdbd and
# MariaDB; `filetxt` only the job-completion log (`sacct -c`); both keep that log.
# If slurmdbd cannot be installed, start falls back to filetxt and says so.
# Works without systemd: daemons are started directly, their files under
# QME_SLURM_DIR (default /var/lib/qme-slurm). `start` does nothing when `sinfo`
# already answers, so an existing cluster is used as it is and never stopped.
set -euo pipefail

DIR=${QME_SLURM_DIR:-/var/lib/qme-slurm}
ACCOUNTING=${QME_SLURM_ACCOUNTING:-slurmdbd}
CONF=/etc/slurm/slurm.conf
MARK="# written by qme scripts/slurm.sh"
HOST=$(hostname -s)
STARTED="$DIR/started" # one line per daemon this script started: name pidfile

say() { echo "slurm.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

answers() {
    command -v sinfo >/dev/null 2>&1 && [ -e "$CONF" ] || return 1
    # Our own cluster with its controller's port closed: no need to let sinfo retry.
    if grep -qF "$MARK" "$CONF" && ! (exec 3<>/dev/tcp/127.0.0.1/6817) 2>/dev/null; then
        return 1
    fi
    timeout 10 sinfo -h -o %T >/dev/null 2>&1
}

# shellcheck source=scripts/packages.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/packages.sh"

WAIT_HINT=" (logs in $DIR)"

started() { echo "$1 $2" >>"$STARTED"; }

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    install -d -o munge -g munge -m 0755 /run/munge
    [ -s /etc/munge/munge.key ] || as_root mungekey --create
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    started munged /run/munge/munged.pid
    wait_for 10 munged sh -c 'munge -n | unmunge'
}

start_mariadb() {
    if mariadb-admin ping >/dev/null 2>&1; then return 0; fi
    install -d -o mysql -g mysql /run/mysqld
    (mariadbd-safe --skip-syslog >/dev/null 2>&1 &)
    started mariadb /run/mysqld/mysqld.pid
    wait_for 30 MariaDB mariadb-admin ping
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'qme';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
}

start_slurmdbd() {
    cat >/etc/slurm/slurmdbd.conf <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=qme
StorageLoc=slurm_acct_db
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
    slurmdbd
    started slurmdbd "$DIR/slurmdbd.pid"
    wait_for 30 slurmdbd bash -c '</dev/tcp/127.0.0.1/6819'
}

write_conf() {
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: not touching it"
    fi
    local accounting=""
    if [ "$ACCOUNTING" = slurmdbd ]; then
        accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
    fi
    # Memory is a consumable resource (cons_tres' CR_Core_Memory): the node says how
    # much it has (a little under what the kernel sees, or slurmd drains it) and a job
    # that asks for none gets its CPUs' share, so jobs are bounded by CPUs, as before.
    local memory
    memory=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
    cat >"$CONF" <<EOF
$MARK
ClusterName=qme
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Sample each job's processes every second: sacct's MaxRSS and TotalCPU hold real values.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
SelectType=select/cons_tres
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MinJobAge=3600
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
$accounting
DefMemPerCPU=$((memory / $(nproc)))
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    if answers; then
        say "Slurm already answers: using it as it is"
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "starting Slurm needs root"
    install_packages sinfo:slurm-wlm munged:munge
    if [ "$ACCOUNTING" = slurmdbd ] &&
        ! install_packages slurmdbd:slurmdbd mariadbd:mariadb-server; then
        say "warning: cannot install slurmdbd and MariaDB: accounting falls back to filetxt"
        ACCOUNTING=filetxt
    fi
    install -d "$DIR/state" "$DIR/spool"
    : >"$STARTED"
    start_munge
    if [ "$ACCOUNTING" = slurmdbd ]; then
        start_mariadb
        start_slurmdbd
    fi
    write_conf
    slurmctld
    started slurmctld "$DIR/slurmctld.pid"
    slurmd
    started slurmd "$DIR/slurmd.pid"
    wait_for 30 "the node" sh -c 'sinfo -h -o %T | grep -qx idle'
    say "Slurm is up ($HOST, $(nproc) CPUs, accounting: $ACCOUNTING)"
}

stop_daemons() { # stop_daemons NAME... : those of them this script started
    local pids=() name pidfile pid
    while read -r name pidfile; do
        [[ " $* " == *" $name "* ]] || continue
        pid=$(cat "$pidfile" 2>/dev/null) || continue
        if [ "$name" = mariadb ]; then
            mariadb-admin shutdown >/dev/null 2>&1 &
        else
            kill "$pid" 2>/dev/null || continue
        fi
        pids+=("$pid")
    done <"$STARTED"
    for pid in "${pids[@]}"; do
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    wait
}

stop() {
    if [ ! -s "$STARTED" ]; then
        say "nothing to stop (this script did not start Slurm)"
        return 0
    fi
    # Slurm's daemons together (each takes a second or two to save its state), then
    # what they depend on.
    stop_daemons slurmd slurmctld slurmdbd
    stop_daemons mariadb munged
    rm -f "$STARTED"
    say "Slurm stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) if answers; then say "Slurm answers"; else say "Slurm does not answer"; exit 1; fi ;;
*) die "usage: $0 start|stop|status" ;;
esac
