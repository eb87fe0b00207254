// Runs a local cluster (dist/cluster.js) with --report and returns every device's JSON report: the
// measurement path of the benchmarks, so they time exactly what users run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StepRecord {
  readonly step: number;
  readonly seconds: number;
  /** CPU time of the device process (all threads) during the step; absent in reports of older builds. */
  readonly cpuSeconds?: number;
  readonly phases: { readonly step: number; readonly compute: number; readonly computeIdle: number; readonly exchangeWait: number; readonly reduce: number };
}

export interface DeviceReport {
  readonly rank: number;
  readonly memory: {
    readonly predicted: { readonly totalBytes: number };
    readonly measured: { readonly peakRssBytes: number; readonly computeHeapBytes: number; readonly arenaBytes: number };
  };
  readonly steps: readonly StepRecord[];
  readonly transport: { readonly bytesSent: number; readonly bytesReceived: number };
}

export interface Launcher {
  /** `cluster` (loopback processes) or `emulator` (namespaces, shaped links, cgroups; root). */
  readonly name: 'cluster' | 'emulator';
  /** The launcher's own flags, e.g. ['--cpus', '0.33'] for the emulator. */
  readonly flags?: readonly string[];
}

const scratch = mkdtempSync(join(tmpdir(), 'edgefuse-bench-'));
const dist = join(dirname(fileURLToPath(import.meta.url)));
let runs = 0;

/** `flags` go to every device; --report and --metrics-port are added here. */
export function runClusterWithReports(devices: number, flags: readonly string[], launcher: Launcher = { name: 'cluster' }, log = (line: string) => console.error(line)): DeviceReport[] {
  const reports = join(scratch, `run${runs++}-rank{rank}.json`);
  const all = ['--devices', String(devices), ...(launcher.flags ?? []), '--metrics-port', '0', '--report', reports, ...flags];
  log(`bench: node dist/${launcher.name}.js ${all.join(' ')}`);
  const result = spawnSync(process.execPath, [join(dist, `${launcher.name}.js`), ...all], { encoding: 'utf8', timeout: 1_800_000 });
  if (result.status !== 0) throw new Error(`cluster failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  return Array.from({ length: devices }, (_, rank) => JSON.parse(readFileSync(reports.replace('{rank}', String(rank)), 'utf8')) as DeviceReport);
}

/** Steps after the first (which includes warm-up: heap growth, first kernel runs); all of them if there is one. */
export const steadySteps = (r: DeviceReport): readonly StepRecord[] => (r.steps.length > 1 ? r.steps.slice(1) : r.steps);
export const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The median, the lower of the two middle values for an even count. */
export const lowerMedian = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
export const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
