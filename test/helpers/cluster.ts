// Start real device processes (dist/peer-step.js) on loopback and collect their JSON results.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ports that were free a moment ago (the OS picks them). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<import('node:net').Server>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The bundled compute-worker entry, for tests that start worker threads from source (npm test builds it first). */
export const WORKER_SCRIPT = new URL('../../dist/compute-worker.js', import.meta.url);

/** The bundle runs as users run it: without the test runner's loader and coverage hooks. */
export function bundleEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_V8_COVERAGE;
  return env;
}

export interface DeviceRun {
  readonly rank: number;
  readonly child: ChildProcess;
  readonly exit: Promise<number | null>;
  readonly stderr: () => string;
  readonly result: () => Record<string, unknown> | null;
}

export async function startCluster(devices: number, args: (rank: number) => string[]): Promise<{ peers: string; runs: DeviceRun[] }> {
  const ports = await freePorts(devices);
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-cluster-'));
  const runs = Array.from({ length: devices }, (_, rank) => {
    const out = join(dir, `rank${rank}.json`);
    const child = spawn(process.execPath, ['dist/peer-step.js', '--rank', String(rank), '--peers', peers, '--out', out, ...args(rank)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: bundleEnv(),
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return {
      rank, child, exit,
      stderr: () => stderr,
      result: () => (existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : null),
    };
  });
  return { peers, runs };
}

export const fromBase64 = (text: string): Float32Array => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

/** Resolves once every device has printed "ready" (connected and authenticated). */
export function allReady(runs: readonly DeviceRun[]): Promise<void[]> {
  return Promise.all(runs.map((r) => new Promise<void>((resolve) => {
    const check = setInterval(() => r.stderr().includes('ready') && (clearInterval(check), resolve()), 50);
  })));
}

/** Runs `node dist/edge.js` once per rank on loopback with per-rank flags; resolves with each exit code and log. */
export async function runEdgeCluster(devices: number, flags: (rank: number) => string[], timeoutMs = 240_000): Promise<{ code: number | null; log: string }[]> {
  const peers = (await freePorts(devices)).map((p) => `127.0.0.1:${p}`).join(',');
  return Promise.all(Array.from({ length: devices }, (_, rank) => new Promise<{ code: number | null; log: string }>((resolve) => {
    const child = spawn(process.execPath, ['dist/edge.js', '--peers', peers, '--rank', String(rank), '--metrics-port', '0', ...flags(rank)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...bundleEnv(), EDGE_SECRET: 'test-cluster' },
    });
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, log });
    });
  })));
}
