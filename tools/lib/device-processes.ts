// Runs one process per device, relays their logs with a rank prefix, and stops them all on Ctrl-C or
// at the first failure, naming it (the line a device prints as "edge: ..."). Shared by the loopback
// launcher (tools/cluster.ts) and the emulator (tools/emulator.ts).
import { type ChildProcess, spawn } from 'node:child_process';

export interface DeviceCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * How to start a device process for the least memory: glibc's malloc keeps one arena instead of one
 * per thread that allocates, and V8's young generation stays at 1 MiB semi-spaces instead of growing
 * to 16 MiB per isolate. Both must be set before the process starts. On 4 local devices (608x608,
 * 2x2) peak RSS 281-301 -> 236-255 MiB per device, step time within this machine's noise (+0-6%).
 */
const LEAN_RUNTIME = { nodeFlags: ['--max-semi-space-size=1'], env: { MALLOC_ARENA_MAX: '1' } };
const DEFAULT_RUNTIME = { nodeFlags: [], env: {} };

/** Node flags (before the script) and environment of a device process, lean or as Node defaults them. */
export const deviceRuntime = (lean: boolean): { readonly nodeFlags: readonly string[]; readonly env: Readonly<Record<string, string>> } =>
  (lean ? LEAN_RUNTIME : DEFAULT_RUNTIME);

export interface RunOptions {
  readonly devices: number;
  readonly command: (rank: number) => DeviceCommand;
  /** Prefix of the launcher's own lines ("cluster", "emulator"). */
  readonly name: string;
  /** Receives every device line instead of the terminal (which then shows only what this prints). */
  readonly onLine?: (rank: number, line: string) => void;
}

/** Resolves with the exit code for the launcher: 0 when every device exited 0. */
export async function runDevices(options: RunOptions): Promise<number> {
  const children: ChildProcess[] = [];
  let stopping = false;
  let exitCode = 0;
  const stopAll = (reason: string, code: number): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    console.error(`${options.name}: stopping all devices: ${reason}`);
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  const onInterrupt = () => stopAll('interrupted', 130);
  const onTerminate = () => stopAll('terminated', 143);
  // Whoever read our output went away (a benchmark that was stopped): nobody sees the devices any more.
  const onOutputGone = () => stopAll('the launcher\'s output was closed', 141);
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  process.stdout.on('error', onOutputGone);
  process.stderr.on('error', onOutputGone);

  const exits = Array.from({ length: options.devices }, (_, rank) => {
    const command = options.command(rank);
    const child = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'pipe'], env: command.env ?? process.env });
    children.push(child);
    let lastError = '';
    const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) => {
      let pending = '';
      stream.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('edge: ')) lastError = line.slice(6);
          // Device logs already carry "[rank i]"; anything else gets the prefix here.
          const prefixed = line.startsWith('[rank ') ? line : `[rank ${rank}] ${line}`;
          if (options.onLine) options.onLine(rank, prefixed);
          else out.write(`${prefixed}\n`);
        }
      });
    };
    relay(child.stdout!, process.stdout);
    relay(child.stderr!, process.stderr);
    return new Promise<void>((resolve) => child.on('exit', (code, signal) => {
      if (code !== 0 && !stopping) stopAll(`rank ${rank} failed (${signal ?? `exit ${code}`})${lastError ? `: ${lastError}` : ''}`, code ?? 1);
      resolve();
    }));
  });
  await Promise.all(exits);
  process.off('SIGINT', onInterrupt);
  process.off('SIGTERM', onTerminate);
  process.stdout.off('error', onOutputGone);
  process.stderr.off('error', onOutputGone);
  if (exitCode === 0) console.error(`${options.name}: all ${options.devices} devices finished`);
  return exitCode;
}
