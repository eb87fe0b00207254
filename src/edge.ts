// edgefuse command-line entry point (bundled to dist/edge.js).
import { UsageError } from './cli/usage-error.js';
import { TRAIN_HELP, trainCommand } from './cli/train-command.js';

const HELP = `edgefuse: exact tile-parallel training of a CNN's front across small devices

${TRAIN_HELP}

Other commands:
  edge verify ...    check that tiled training equals unpartitioned tf.grad (edge verify --help)
  edge plan ...      choose grid and groupings by predicted step time under a memory limit (edge plan --help)
  edge detect ...    run a trained detector ([region] tail) on an image (edge detect --help)
  edge profile ...   measure this device and print a profile for --profile FILE (edge profile --help)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'verify') return (await import('./cli/verify-command.js')).verifyCommand(rest);
  if (command === 'plan') return (await import('./cli/plan-command.js')).planCommand(rest);
  if (command === 'detect') return (await import('./cli/detect-command.js')).detectCommand(rest);
  if (command === 'profile') return (await import('./cli/profile-command.js')).profileCommand(rest);
  if (command.startsWith('--')) return trainCommand(argv);
  throw new UsageError(`unknown command "${command}"\n\n${HELP}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`edge: ${error.message}`);
      process.exit(2);
    }
    // Failures the runtime explains itself (a dead peer, diverged weights, a full disk) need no stack.
    const known = ['PeerFailure', 'WeightsDivergedError', 'DataError'].includes((error as Error).name) || /^(could not write |checkpoint )/.test((error as Error).message);
    console.error(known ? `edge: ${(error as Error).message}` : error);
    process.exit(1);
  },
);
