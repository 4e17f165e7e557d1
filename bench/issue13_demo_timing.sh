#!/bin/sh
# Issue 13's figures (docs/benchmarks.md, "Issue 13: data-parallel"): `quantsim demo --quick
# --retrain --timing` as 2 ranks x 1 thread, 1 rank x 2 threads and 1 rank x 1 thread, the three
# alternated REPEATS times (default 3), each run's timing lines summarised as min-max over the runs:
# the training steps (float and QAT) with, for 2 ranks, the wait for the slower rank and
# average_gradients per step; each calibration's forward, statistics merge and ranges. Each figure
# is printed as its median, [min-max] and every run's value.
#
#     sh bench/issue13_demo_timing.sh build/apps/quantsim [REPEATS]
#
# Before every run waits for the machine to be quiet (90 % idle over 3 s, at most QUIET_WAIT s) and
# prints how idle it was and /proc/loadavg.
set -eu
quantsim=${1:?usage: issue13_demo_timing.sh path/to/quantsim [repeats]}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Waits (at most QUIET_WAIT seconds, default 600) until the CPUs were at least 90 % idle over 3 s,
# and says how idle they were.
idle_percent() {
  a=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
  sleep 3
  b=$(awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
  echo "$a $b" | awk '{printf "%d", 100 * ($3 - $1) / ($4 - $2)}'
}
wait_quiet() {
  waited=0
  while idle=$(idle_percent) && [ "$idle" -lt 90 ] && [ "$waited" -lt "${QUIET_WAIT:-600}" ]; do
    waited=$((waited + 3))
  done
}

i=1
while [ "$i" -le "$repeats" ]; do
  for config in "2x1:--nproc 2 --threads 1" "1x2:--threads 2" "1x1:--threads 1"; do
    name=${config%%:*}
    flags=${config#*:}
    wait_quiet
    echo "run $i $name: $idle % idle before, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    # shellcheck disable=SC2086
    start=$(date +%s)
    "$quantsim" demo --quick --retrain --timing $flags --out "$work/out-$name" \
      > "$work/$name.$i.log" 2>&1
    echo "  $(($(date +%s) - start)) s, load after $(cut -d' ' -f1 /proc/loadavg)" >&2
  done
  i=$((i + 1))
done

python3 - "$work" <<'EOF'
import collections, glob, os, re, sys
work = sys.argv[1]
figures = collections.defaultdict(list)  # (config, what) -> [ms]
for path in sorted(glob.glob(os.path.join(work, "*.log"))):
    config = os.path.basename(path).split(".")[0]  # sorted: runs 1, 2, ... in order
    for line in open(path):
        m = re.match(r"timing (train|QAT W4A8): (\d+) steps of ([\d.]+) ms", line)
        if m:
            phase = m.group(1)
            figures[(config, phase + " step")].append(float(m.group(3)))
            for part in ("waiting for the slowest rank", "average_gradients"):
                p = re.search(part + r" ([\d.]+) ms", line)
                if p:
                    figures[(config, phase + " " + part)].append(float(p.group(1)))
            continue
        m = re.match(r"timing calibrate (.+?): (.*)", line)
        if m:
            for part, value in re.findall(r"([a-z_ ]+?) ([\d.]+) ms", m.group(2)):
                figures[(config, "calibrate " + m.group(1) + ": " + part.strip(" ,"))].append(
                    float(value))
print("%-6s %-62s %s" % ("config", "what", "ms: median [min-max] (runs, in run order)"))
for (config, what), values in sorted(figures.items()):
    v = sorted(values)
    median = (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2
    print("%-6s %-62s %.2f [%.2f-%.2f] (%s)" % (config, what, median, v[0], v[-1],
                                                " ".join("%.1f" % x for x in values)))
EOF
