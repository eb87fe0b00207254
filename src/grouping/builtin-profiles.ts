// Built-in profiles. Every number is an estimate; each says where it comes from. `edge plan
// --profile FILE` takes the same fields as JSON (print one with `edge plan --show-profile NAME`).
import { type DeviceProfile, ProfileError, parseProfile } from './profile.js';

/**
 * This machine (AMD EPYC, 2 cores, shared) running the tfjs wasm backend, one thread per worker,
 * with the 100 Mbit/s links of the emulated cluster.
 */
const THIS_MACHINE = {
  name: 'this-machine',
  description: 'this 2-core development machine, wasm backend, 1 worker, 100 Mbit/s veth links (README benchmarks)',
  compute: {
    // README "Kernel benchmark": GFLOP/s per distinct conv shape of the YOLOv2 front at 608x608, one
    // run (best of 5). The rules reproduce that table shape class by shape class; the catch-all is a
    // typical value of the 3x3 rows. Rates at tile sizes are assumed equal to whole-map rates.
    conv: [
      { maxInChannels: 3, forwardGflops: 3.9, inputGradientGflops: 8.8, filterGradientGflops: 3.6 },
      { maxInChannels: 32, kernel: 3, forwardGflops: 21.0, inputGradientGflops: 24.9, filterGradientGflops: 11.0 },
      { maxInChannels: 64, kernel: 3, forwardGflops: 28.9, inputGradientGflops: 29.0, filterGradientGflops: 12.5 },
      { maxInChannels: 128, kernel: 3, forwardGflops: 27.4, inputGradientGflops: 25.2, filterGradientGflops: 16.0 },
      { kernel: 3, forwardGflops: 28.6, inputGradientGflops: 21.6, filterGradientGflops: 20.3 },
      { maxInChannels: 128, kernel: 1, forwardGflops: 22.5, inputGradientGflops: 24.3, filterGradientGflops: 14.1 },
      { maxInChannels: 256, kernel: 1, forwardGflops: 27.0, inputGradientGflops: 24.2, filterGradientGflops: 24.2 },
      { kernel: 1, forwardGflops: 26.4, inputGradientGflops: 22.1, filterGradientGflops: 23.1 },
      { forwardGflops: 27.0, inputGradientGflops: 24.0, filterGradientGflops: 16.0 },
    ],
    // Not benchmarked: maxpool forward is an XNNPACK pass over memory, maxpool backward our plain
    // loop, elementwise passes (padding, BN, leaky, copies) run at memory speed in wasm or JS.
    // Guesses of the right order; together they are a few percent of a step at 608x608.
    maxpoolForwardGflops: 2,
    maxpoolBackwardGflops: 0.5,
    elementwiseGflops: 1,
    // Guess: creating tensors from arena views, the worker message, kernel setup per layer.
    layerOverheadMs: 0.3,
    // Fitted to README "Cost of tiling on one core" (320x320, 2x2): \`each\` runs 120 more tile
    // tasks than \`all\` and took 0.24 s more than this model without a task cost predicts.
    taskOverheadMs: 2,
    workers: 1,
    // FACTS.md: one wasm worker 15.2 GFLOP/s, two workers 25.5 on this 2-core machine: 25.5 / 30.4.
    parallelEfficiency: 0.84,
  },
  link: {
    // README "Transport benchmark": raw TCP and strips both 11.4 MiB/s over the veth pair shaped to
    // 100 Mbit/s (the all-reduce, sending both ways at once, 10.8-11.0).
    mibPerSecond: 11.4,
    // Not measured: a guess for veth plus uWS, FlatBuffers encoding and the scatter on receipt.
    latencyMs: 0.2,
    // src/peers/peer-node.ts: strips and reduce chunks are cut to 64 Ki floats.
    maxMessageFloats: 65536,
    // Emulated devices at 0.4 cores (README "Emulated cluster benchmark"): a device of a 2-device
    // tile plan used 0.41 CPU-seconds per step more than half of one device's step, for 27 MiB
    // sent and received (the veth, bridge and tbf path of the kernel is charged to the sender).
    cpuMsPerMiB: 15,
  },
  // RSS of `node dist/edge.js` when it prints its memory prediction, measured here (63.6 MiB).
  memory: { runtimeMiB: 64 },
};

/**
 * Raspberry Pi 3 Model B: BCM2837, 4x Cortex-A53 at 1.2 GHz, 1 GB LPDDR2, 100 Mbit/s Ethernet
 * behind USB 2.0 (LAN9514), one wasm thread per worker, one worker per core. No Pi was measured:
 * every figure below is derived from public specifications and this machine's measurements.
 */
const PI3 = {
  name: 'pi3',
  description: 'Raspberry Pi 3 Model B (estimated from public figures, not measured): 4 workers, 100 Mbit/s Ethernet',
  compute: {
    // Peak: the A53 executes 128-bit NEON FP ops at half rate (64-bit datapath), and wasm SIMD has
    // no fused multiply-add, so XNNPACK's wasm GEMM kernels issue a mul and an add per 4 lanes:
    // 8 FLOP per 4 cycles = 2 FLOP/cycle = 2.4 GFLOP/s per core at 1.2 GHz. On this machine the
    // same kernels reach about 60% of their (128-bit mul+add) peak; an in-order core and V8's arm64
    // code are assumed to reach about 50%: 1.2 GFLOP/s forward. The other ops and shape classes keep
    // this machine's ratios to the forward conv (input gradient ~ forward; filter gradient ~0.5, a
    // little lower than here because its im2col packing is memory-bound and LPDDR2 is slow; the
    // 3-channel first layer 0.14 / 0.32 / 0.2 of the typical rates; 1x1 layers skip im2col).
    conv: [
      { maxInChannels: 3, forwardGflops: 0.17, inputGradientGflops: 0.38, filterGradientGflops: 0.13 },
      { kernel: 1, forwardGflops: 1.0, inputGradientGflops: 1.0, filterGradientGflops: 0.8 },
      { forwardGflops: 1.2, inputGradientGflops: 1.1, filterGradientGflops: 0.6 },
    ],
    // Memory-bound passes: the Pi 3 copies at about 1-2 GB/s against 10+ here, so about a tenth of
    // this machine's (guessed) rates.
    maxpoolForwardGflops: 0.2,
    maxpoolBackwardGflops: 0.05,
    elementwiseGflops: 0.1,
    // JS on an A53 runs roughly 10x slower than on this machine: 10x its per-layer and per-task costs.
    layerOverheadMs: 3,
    taskOverheadMs: 20,
    workers: 4,
    // Four cores share a 512 KB L2 and a 32-bit LPDDR2 bus: assumed worse than this machine's 0.84.
    parallelEfficiency: 0.7,
  },
  link: {
    // iperf over the Pi's onboard 10/100 LAN: 94.4 Mbit/s = 11.25 MiB/s (Jeff Geerling, "Getting
    // Gigabit Networking on a Raspberry Pi"); Node, uWS and the USB interrupts on the same cores
    // are assumed to cost about 7%.
    mibPerSecond: 10.5,
    // A LAN round trip is 0.3-0.5 ms between Pis; plus encoding and handling a message in JS on an A53.
    latencyMs: 0.5,
    maxMessageFloats: 65536,
    // Guess: the Ethernet sits behind USB 2.0 (an interrupt per frame) and JS on an A53 runs ~10x
    // slower than here, of which the kernel part less: 40 against this machine's 15.
    cpuMsPerMiB: 40,
  },
  // Node 20 on 64-bit Raspberry Pi OS: assumed close to the 64 MiB measured here.
  memory: { runtimeMiB: 60 },
};

const BUILTIN: Readonly<Record<string, unknown>> = { 'this-machine': THIS_MACHINE, pi3: PI3 };

export const builtinProfileNames = (): string[] => Object.keys(BUILTIN);

export function builtinProfile(name: string): DeviceProfile {
  const raw = BUILTIN[name];
  if (raw === undefined) throw new ProfileError(`unknown profile "${name}"; built-in profiles: ${builtinProfileNames().join(', ')} (or a JSON file)`);
  return parseProfile(raw, `profile ${name}`);
}
