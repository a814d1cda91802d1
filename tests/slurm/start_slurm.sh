#!/usr/bin/env bash
# Start a real single-node SLURM (munge + slurmctld + slurmd) on this machine for the
# SLURM profile test. Idempotent: returns at once when the node is already up.
# Needs root and the Debian packages slurmctld, slurmd, slurm-client and munge
# (.ci/run installs them). No accounting database: the profile's status command
# falls back to squeue, as snakemake-executor-plugin-slurm does without sacct.
set -euo pipefail

if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' \
    && [ "$(sinfo -h -o %c | head -1)" = "$(nproc --all)" ]; then
  echo "slurm already up"; exit 0
fi
# a node started with fewer CPUs than the machine has (nproc under OMP_NUM_THREADS=1) is
# started again with the right configuration
pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
sleep 1

host=$(hostname -s)
cpus=$(nproc --all)  # not nproc: it follows OMP_NUM_THREADS
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
chown munge:munge /run/munge

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged --force

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=phonion-ci
SlurmctldHost=${host}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=slurm
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MinJobAge=600
JobCompType=jobcomp/none
# memory limits enforced without cgroups: slurmd samples each job's RSS every second and
# kills a job above its --mem (state OUT_OF_MEMORY), as a cluster's cgroup limit would
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd

for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    scontrol update nodename="${host}" state=resume >/dev/null 2>&1 || true
    echo "slurm up: $(sinfo -h -o '%P %D %T %c CPUs')"; exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
