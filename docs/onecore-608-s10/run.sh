#!/usr/bin/env bash
# (scratch/dist-bench was a copy of dist/ built at 2370e42.)
# One core of an emulated device (a quarter of the 0.3-core quota) at 608: the reference's "over one core" baseline.
cd /work/main
date
node scratch/dist-bench/emulator.js --devices 1 --cpus 0.075 --cpu-period 10 --rate 100mbit --memory 1G --metrics-port 0 --report /tmp/onecore/run-rank{rank}.json --model yolov2-front --input 608x608 --steps 3 --memory-limit 1G --batch 1 --grid 1x1 --forward-groups all --backward-groups all
echo "exit $?"; date
