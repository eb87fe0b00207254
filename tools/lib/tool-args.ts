// Command-line options of the tools: node's parseArgs plus --help (the tool's purpose and every
// option with its default) and, for an unknown option or a missing value, that one message and the
// usage with exit status 2 instead of a stack trace.
import { parseArgs } from 'node:util';

interface ToolOption {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly short?: string;
}

type ToolValues<O extends Record<string, ToolOption>> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'];

export function toolUsage(tool: string, about: string, options: Record<string, ToolOption>): string {
  const lines = Object.entries(options).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ' X' : ''}`;
    return `  ${flag.padEnd(24)}${o.default === undefined || o.default === false ? '' : `[${String(o.default)}]`}`;
  });
  return `Usage: node dist/${tool}.js [options]\n\n${about}\n\n${lines.join('\n')}\n  --help`;
}

/** Parses process.argv for `tool`; prints the usage and exits on --help (0) or a bad option (2). */
export function toolArgs<const O extends Record<string, ToolOption>>(tool: string, about: string, options: O): ToolValues<O> {
  const usage = () => toolUsage(tool, about, options);
  if (process.argv.slice(2).includes('--help')) {
    console.log(usage());
    process.exit(0);
  }
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values as ToolValues<O>;
  } catch (error) {
    console.error(`${tool}: ${(error as Error).message}\n\n${usage()}`);
    process.exit(2);
  }
}
