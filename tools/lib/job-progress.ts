// The default job's terminal: a progress bar from rank 0's step lines (updated in place on a
// terminal, a line per step otherwise), the lines a user must see (evaluations, notes, failures),
// and every device's full log in a file of the run directory.
import { type WriteStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';

const STEP = /\[rank 0\] step (\d+)\/(\d+) loss ([\d.e+-]+) .*? ([\d.]+) s \(/;
const SHOWN = /mAP|accuracy|evaluat|edge: |error|failed|note: |resumed|data: |skipped/i;

export class JobProgress {
  private readonly logs: WriteStream[];
  private readonly started = Date.now();
  private lastBar = '';

  constructor(
    private readonly runDir: string,
    devices: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.logs = Array.from({ length: devices }, (_, rank) => createWriteStream(join(runDir, `rank${rank}.log`)));
  }

  line(rank: number, line: string): void {
    this.logs[rank]!.write(`${line}\n`);
    const step = STEP.exec(line);
    if (step) this.bar(Number(step[1]), Number(step[2]), Number(step[3]), Number(step[4]));
    else if (rank === 0 ? SHOWN.test(line) : /edge: |error|failed/i.test(line)) this.print(line);
  }

  private bar(done: number, total: number, loss: number, seconds: number): void {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : 0;
    this.lastBar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] step ${done}/${total}  loss ${loss.toFixed(4)}  ${seconds.toFixed(2)} s/step  ETA ${Math.round(eta)} s`;
    if (this.out.isTTY) this.out.write(`\r${this.lastBar}\x1b[K`);
    else this.out.write(`${this.lastBar}\n`);
  }

  private print(line: string): void {
    if (this.out.isTTY && this.lastBar) this.out.write(`\r\x1b[K${line}\n${this.lastBar}`);
    else this.out.write(`${line}\n`);
  }

  async close(): Promise<void> {
    if (this.out.isTTY && this.lastBar) this.out.write('\n');
    await Promise.all(this.logs.map((log) => new Promise((resolve) => log.end(resolve))));
    this.out.write(`full device logs: ${join(this.runDir, 'rank*.log')}\n`);
  }
}
