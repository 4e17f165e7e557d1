#!/bin/sh
# Issue 13's figures (docs/benchmarks.md, "Issue 13: data-parallel"): `quantsim demo --quick
# --retrain --timing` as 2 ranks x 1 thread, 1 rank x 2 threads and 1 rank x 1 thread, the three
# alternated REPEATS times (default 3), each run's timing lines summarised as min-max over the runs:
# the training steps (float and QAT) with, for 2 ranks, the wait for the slower rank and
# average_gradients per step; each calibration's forward, statistics merge and ranges.
#
#     sh bench/issue13_demo_timing.sh build/apps/quantsim [REPEATS]
#
# Prints /proc/loadavg before every run: measure on a quiet machine.
set -eu
quantsim=${1:?usage: issue13_demo_timing.sh path/to/quantsim [repeats]}
repeats=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

i=1
while [ "$i" -le "$repeats" ]; do
  for config in "2x1:--nproc 2 --threads 1" "1x2:--threads 2" "1x1:--threads 1"; do
    name=${config%%:*}
    flags=${config#*:}
    echo "run $i $name: load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    # shellcheck disable=SC2086
    "$quantsim" demo --quick --retrain --timing $flags --out "$work/out-$name" \
      > "$work/$name.$i.log" 2>&1
  done
  i=$((i + 1))
done

python3 - "$work" <<'EOF'
import collections, glob, os, re, sys
work = sys.argv[1]
figures = collections.defaultdict(list)  # (config, what) -> [ms]
for path in sorted(glob.glob(os.path.join(work, "*.log"))):
    config = os.path.basename(path).split(".")[0]
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
print("%-8s %-70s %s" % ("config", "what", "ms: min-max (runs)"))
for (config, what), values in sorted(figures.items()):
    print("%-8s %-70s %.2f-%.2f (%d)" % (config, what, min(values), max(values), len(values)))
EOF
