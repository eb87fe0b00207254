// The default job's closing summary, from the devices' --report files and rank 0's checkpoint: loss
// (and evaluation, when the job evaluates) at the start and the end, step time, per-device peak
// memory against one unpartitioned device, and where the weights are.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Report {
  plan: { model: string; input: string; grid: string; forwardGroups: string };
  memory: { measured: { peakRssBytes: number }; predicted: { totalBytes: number }; unpartitionedPredictedBytes?: number };
  steps: { step: number; loss: number; seconds: number }[];
  evaluations?: { step: number; name: string; value: number }[];
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

export function summarise(runDir: string, devices: number): string {
  const reports = Array.from({ length: devices }, (_, rank) => JSON.parse(readFileSync(join(runDir, `report-rank${rank}.json`), 'utf8')) as Report);
  const head = reports[0]!;
  const steps = head.steps;
  const steady = steps.length > 1 ? steps.slice(1) : steps;
  const lines = [
    '',
    `Summary: ${head.plan.model} ${head.plan.input} on ${devices} devices (grid ${head.plan.grid}, groups ${head.plan.forwardGroups})`,
    `  loss           ${steps[0]!.loss.toFixed(4)} at step 1 -> ${steps[steps.length - 1]!.loss.toFixed(4)} at step ${steps[steps.length - 1]!.step}`,
  ];
  const evaluations = head.evaluations ?? [];
  for (const name of [...new Set(evaluations.map((e) => e.name))]) {
    const of = evaluations.filter((e) => e.name === name);
    lines.push(`  ${name.padEnd(14)} ${of[0]!.value.toFixed(4)} at step ${of[0]!.step} -> ${of[of.length - 1]!.value.toFixed(4)} at step ${of[of.length - 1]!.step}`);
  }
  lines.push(`  step time      ${(steady.reduce((a, s) => a + s.seconds, 0) / steady.length).toFixed(2)} s (mean after the first step)`);
  const peaks = reports.map((r) => r.memory.measured.peakRssBytes);
  const single = head.memory.unpartitionedPredictedBytes;
  const ratio = single ? single / Math.max(...peaks) : 0;
  const against = single
    ? `; one device unpartitioned: ${mib(single)} (predicted), ${ratio >= 1 ? `${ratio.toFixed(1)}x the largest device's` : `less than the largest device (the head also evaluates; at this input size the fixed runtime dominates)`}`
    : '';
  lines.push(`  peak memory    ${peaks.map(mib).join(', ')} per device${against}`);
  const latest = join(runDir, 'rank0', 'latest.json');
  if (existsSync(latest)) {
    const meta = JSON.parse(readFileSync(latest, 'utf8')) as { weightsFile: string };
    lines.push(`  weights        ${join(runDir, 'rank0', meta.weightsFile)} (front and tail; Darknet format)`);
  }
  return lines.join('\n');
}
