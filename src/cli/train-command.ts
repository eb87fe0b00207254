// `edge --peers host:port,...`: one device of a training cluster. Every device runs the same command
// (with its own --rank, or inferred), builds the same plan, proves the same plan hash, and trains.
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { type BackendName, parseBackend } from '../fused/backend-name.js';
import { planHash, planValidator } from '../loop/plan-messages.js';
import { createDeviceRuntime } from '../loop/device-runtime.js';
import { shareParams } from '../model/shared-params.js';
import { train } from '../loop/trainer.js';
import { arenaBytes, arenaUseByGroup } from '../memory/arena-plan.js';
import { estimateDeviceMemory, formatBytes, formatEstimate, parseByteSize } from '../memory/estimate.js';
import { type DeviceStatus, serveTelemetry } from '../metrics/telemetry.js';
import type { Network } from '../model/layers.js';
import { loadModel } from '../model/load.js';
import { withInputSize } from '../model/presets.js';
import { parseTail } from '../model/tail-cfg.js';
import { type TailLayer, describeTail, limitFront, tailClasses } from '../model/tail-layers.js';
import { type FrontParams, type TailParams, OBJECTNESS_PRIOR, decodeWeights, frontOutput, initialParams, initialTailParams, setObjectnessPrior } from '../model/weights.js';
import { createInMemoryCluster } from '../peers/in-memory.js';
import { parsePeers } from '../peers/peer-list.js';
import { type PeerAddress, PeerNode } from '../peers/peer-node.js';
import { type LinkMeasurement, describeLinks } from '../peers/link-probe.js';
import { parseGrid } from '../tiles/grid.js';
import { formatGrouping, parseGrouping } from '../tiles/groups.js';
import { HEAD_RANK, buildTilePlan, clusterSize, stripEndpoints, tilesOfDevice } from '../tiles/plan.js';
import { loadCheckpoint, writeAtomically } from '../train/checkpoint.js';
import { newOptimizerState } from '../train/optimizer.js';
import { openEvaluation, openTrainingData } from '../train/open-data.js';
import type { TrainingData } from '../train/training-data.js';
import type { OnBadSample } from '../data/data-error.js';
import { UsageError, asUsage, parseNonNegativeInt, parsePositiveInt, parseSize, parseSwitch } from './usage-error.js';

export const TRAIN_HELP = `Usage: edge --peers host:port[,host:port...] [options]

Runs one device of a training cluster. Start the same command on every device (one per board);
devices find each other through --peers (in rank order), authenticate with the shared secret, and
check that they all built the same plan.

Cluster
  --peers LIST             host:port of every device, in rank order                [required]
  --rank I                 this device's index in --peers       [inferred from local addresses]
  --secret S               shared cluster secret (or EDGE_SECRET)        [required for 2+ devices]
  --listen HOST            address to listen on                                       [0.0.0.0]
  --metrics-port P         serve GET /metrics and /status on this port (0: off)  [peer port + 1000]
  --peer-timeout S         seconds of silence before a peer is declared dead                 [5]
  --measure-links on|off   at start, measure round trip and send rate to every peer and log
                           them (a few ms each on a LAN, at most 5 s)         [on, 2+ devices]
Model and plan
  --model M                Darknet .cfg file or preset (yolov2-front, yolov2-shapes, tiny,
                           tiny-classifier)                                     [yolov2-front]
  --input HxW              input size                                               [from cfg]
  --front N                tile-partition only the first N layers; with a tail, the others
                           run first in the tail                   [every leading conv/maxpool]
  --weights FILE           initial Darknet .weights of the whole model   [seeded init: initialParams]
  --grid RxC|auto          tile grid over the front's output          [near-square, >= devices]
  --forward-groups S|auto  each | all | start layers such as 0,8,10,12,14
                           (auto: the planner chooses by predicted step time under
                           --memory-limit; every device must pass the same flags and profile)
                                                              [auto; each with --parallel data]
  --backward-groups S|auto same syntax                                [the forward grouping]
  --profile P              device profile for auto: this-machine | pi3 | FILE   [this-machine]
  --memory-limit SIZE      refuse plans whose predicted per-device peak exceeds this        [1G]
  --backend B              tensorflow | wasm | cpu                          [best available]
  --workers N              compute worker threads (0: compute on the main thread)           [1]
  --overlap on|off         overlap communication with compute (off: to measure its gain)   [on]
  --parallel tiles|data    tiles: every feature map split over the devices; data: the baseline
                           where each device trains --batch / devices whole images (grid 1x1)
                           and the devices sum their gradients                             [tiles]
Training
  --steps N                optimizer steps                                                 [10]
  --batch N                images per step                                         [cfg batch]
  --learning-rate X, --momentum X, --decay X                                         [from cfg]
  --data synthetic|LIST    seeded random images and targets or labels, or a Darknet list file
                           of images (detection: a .txt of boxes beside each image;
                           classification: the class name in the path, with --names)  [synthetic]
  --names FILE             class names, one a line (classification lists)
  --bad-samples skip|fail  a missing or corrupt image or label line: skip it with a warning
                           naming file and line, or stop                               [skip]
  --data-local             every device reads --data itself (default: the head reads it and
                           sends every tile its input region)
  --valid LIST             head: evaluate on this list (mAP@0.5 for [region], accuracy for
                           softmax) before training, every --eval-every steps and at the end
  --eval-every N           steps between evaluations                               [only at the end]
  --seed N                 seed of weights and data                                         [1]
  --checksum-every N       compare weight checksums across devices every N steps           [5]
  --checkpoint DIR         write this device's checkpoints (Darknet .weights + optimizer state);
                           {rank} in DIR becomes the rank
  --checkpoint-every N     steps between checkpoints                          [10 with --checkpoint]
  --resume                 continue from the latest checkpoint in --checkpoint
  --report FILE            at the end, write a JSON report (plan, predicted and measured memory,
                           every step's loss and phase times); {rank} in FILE becomes the rank
  --help                   this text

The front (the leading [convolutional]/[maxpool] layers) trains tile-parallel on every device. Layers
after it ([convolutional], [maxpool], [avgpool], [connected], ending in [softmax] or [region]) are the
tail: rank 0 gathers the front's output, runs them with the loss layer (softmax's cross-entropy on
class labels, [region]'s YOLOv2 loss on boxes; seeded labels with --data synthetic) and sends each
tile its gradient back. Rank 0's checkpoints hold the whole network (a full Darknet file); the others'
hold the front. A model without a tail trains its front against a seeded random target with a
squared-error loss (the front-only setting of the reference measurements).`;

/** The index of the single --peers entry that is an address of this machine. */
function inferRank(peers: readonly PeerAddress[]): number {
  const local = new Set(['localhost', ...Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))]);
  const mine = peers.flatMap((p, i) => (local.has(p.host) ? [i] : []));
  if (mine.length === 1) return mine[0]!;
  if (mine.length === 0) throw new UsageError(`none of --peers (${peers.map((p) => `${p.host}:${p.port}`).join(', ')}) is an address of this machine: pass --rank`);
  throw new UsageError(`several --peers entries are addresses of this machine (ranks ${mine.join(', ')}): pass --rank`);
}

function defaultGrid(devices: number): string {
  const rows = Math.max(1, Math.floor(Math.sqrt(devices)));
  return `${rows}x${Math.ceil(devices / rows)}`;
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        peers: { type: 'string' }, rank: { type: 'string' }, secret: { type: 'string' }, listen: { type: 'string' },
        'metrics-port': { type: 'string' }, 'peer-timeout': { type: 'string' }, 'measure-links': { type: 'string' },
        model: { type: 'string' }, input: { type: 'string' }, front: { type: 'string' }, weights: { type: 'string' },
        grid: { type: 'string' }, 'forward-groups': { type: 'string' }, 'backward-groups': { type: 'string' }, profile: { type: 'string' },
        'memory-limit': { type: 'string' }, backend: { type: 'string' }, workers: { type: 'string' }, overlap: { type: 'string' }, parallel: { type: 'string' },
        steps: { type: 'string' }, batch: { type: 'string' }, 'learning-rate': { type: 'string' }, momentum: { type: 'string' }, decay: { type: 'string' },
        data: { type: 'string' }, valid: { type: 'string' }, 'eval-every': { type: 'string' }, names: { type: 'string' }, 'bad-samples': { type: 'string' }, 'data-local': { type: 'boolean' }, seed: { type: 'string' }, 'checksum-every': { type: 'string' },
        checkpoint: { type: 'string' }, 'checkpoint-every': { type: 'string' }, resume: { type: 'boolean' }, report: { type: 'string' }, help: { type: 'boolean' },
      },
      strict: true,
    }),
  );
  if (values.help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  if (!values.peers) throw new UsageError(`--peers is required\n\n${TRAIN_HELP}`);
  // The planner chooses the groupings unless they are given (data-parallel has none to choose); it
  // loads only when used.
  const forwardText = values['forward-groups'] ?? (values.parallel === 'data' ? 'each' : 'auto');
  const autoPlan = [values.grid, forwardText, values['backward-groups']].some((v) => v?.trim().toLowerCase() === 'auto')
    ? await import('./train-auto-plan.js')
    : null;
  if (values.profile !== undefined && !autoPlan) throw new UsageError('--profile is used only with --grid, --forward-groups or --backward-groups auto');
  const setup = asUsage(() => {
    const peers = parsePeers(values.peers!);
    const rank = values.rank !== undefined ? Number(values.rank) : inferRank(peers);
    if (!Number.isInteger(rank) || rank < 0 || rank >= peers.length) throw new UsageError(`--rank must be 0..${peers.length - 1}, got "${values.rank}"`);
    const secret = values.secret ?? process.env.EDGE_SECRET ?? '';
    if (peers.length > 1 && secret === '') throw new UsageError('a cluster of 2 or more devices needs --secret or EDGE_SECRET (the same on every device)');
    const badSamples = values['bad-samples'] ?? 'skip';
    if (badSamples !== 'skip' && badSamples !== 'fail') throw new UsageError(`--bad-samples must be skip or fail, got "${badSamples}"`);
    const parsed = loadModel(values.model ?? 'yolov2-front');
    let net: Network = parsed.network;
    let tail: TailLayer[] = parseTail(parsed.tail, parsed.file);
    if (values.front !== undefined) {
      const front = parsePositiveInt('--front', values.front, net.layers.length);
      if (front > net.layers.length) throw new UsageError(`--front ${front}: the model has ${net.layers.length} leading conv/maxpool layers`);
      ({ net, tail } = limitFront(net, tail, front));
    }
    if (values.input) {
      const size = parseSize('--input', values.input);
      net = withInputSize(net, size.height, size.width);
    }
    const number = (flag: string, text: string | undefined, fallback: number) => {
      if (text === undefined) return fallback;
      const v = Number(text);
      if (!Number.isFinite(v) || v < 0) throw new UsageError(`${flag} must be a non-negative number, got "${text}"`);
      return v;
    };
    const batch = parsePositiveInt('--batch', values.batch, net.hyper.batch);
    net = {
      ...net,
      hyper: {
        ...net.hyper,
        batch,
        learningRate: number('--learning-rate', values['learning-rate'], net.hyper.learningRate),
        momentum: number('--momentum', values.momentum, net.hyper.momentum),
        decay: number('--decay', values.decay, net.hyper.decay),
      },
    };
    const parallel = values.parallel ?? 'tiles';
    if (parallel !== 'tiles' && parallel !== 'data') throw new UsageError(`--parallel must be tiles or data, got "${parallel}"`);
    if (parallel === 'data') {
      // Each device is a replica holding whole images: nothing to split, so nothing to plan.
      if (autoPlan) throw new UsageError('--parallel data trains whole images on every device: there is no grid or grouping to choose (auto)');
      if (values.grid !== undefined && values.grid.trim() !== '1x1') throw new UsageError(`--parallel data trains whole images: --grid must be 1x1, got "${values.grid}"`);
      if (batch % peers.length !== 0) throw new UsageError(`--parallel data splits the batch over the devices: --batch ${batch} is not a multiple of the ${peers.length} devices`);
    }
    const replicas = parallel === 'data' ? peers.length : 1;
    const chosen = autoPlan?.choosePlan({
      net, devices: peers.length, batch, rank, memoryLimit: values['memory-limit'] ?? '1G', profile: values.profile, workers: values.workers,
      grid: values.grid ?? defaultGrid(peers.length), forward: forwardText, backward: values['backward-groups'] ?? forwardText,
    });
    const plan = buildTilePlan({
      net, grid: chosen?.grid ?? parseGrid(values.grid ?? defaultGrid(peers.length / replicas)), devices: peers.length / replicas, batch: batch / replicas, replicas,
      forwardGroups: chosen?.forwardGroups ?? parseGrouping(forwardText, net.layers.length),
      backwardGroups: chosen?.backwardGroups ?? parseGrouping(values['backward-groups'] ?? forwardText, net.layers.length),
      tail,
    });
    if (values.resume && !values.checkpoint) throw new UsageError('--resume needs --checkpoint DIR');
    const me = peers[rank]!;
    return {
      peers, rank, secret, plan, net, tail,
      steps: parsePositiveInt('--steps', values.steps, 10),
      seed: parsePositiveInt('--seed', values.seed, 1),
      memoryLimit: parseByteSize(values['memory-limit'] ?? '1G'),
      metricsPort: values['metrics-port'] !== undefined ? Number(values['metrics-port']) : me.port + 1000,
      peerTimeoutMs: number('--peer-timeout', values['peer-timeout'], 5) * 1000,
      checksumEvery: values['checksum-every'] === undefined ? 5 : Number(values['checksum-every']),
      checkpointEvery: parsePositiveInt('--checkpoint-every', values['checkpoint-every'], 10),
      backend: values.backend ? parseBackend(values.backend) as BackendName : undefined,
      workers: values.workers === undefined ? 1 : parseNonNegativeInt('--workers', values.workers),
      badSamples: badSamples as OnBadSample,
      checkpoint: values.checkpoint?.replaceAll('{rank}', String(rank)),
      overlap: parseSwitch('--overlap', values.overlap ?? 'on'),
      measureLinks: parseSwitch('--measure-links', values['measure-links'] ?? 'on'),
    };
  });
  const { plan, rank, net, tail } = setup;
  // A data-parallel replica is device 0 of its own one-device plan, and runs the tail itself.
  const tileRank = plan.replicas > 1 ? 0 : rank;
  const isHead = tail.length > 0 && (rank === HEAD_RANK || plan.replicas > 1);
  const log = (line: string) => console.error(`[rank ${rank}] ${line}`);
  const hash = planHash(plan);

  // Refuse a plan that cannot fit before touching the network or allocating anything large.
  const runtimeBytes = process.memoryUsage().rss;
  const estimate = estimateDeviceMemory(plan, tileRank, { runtimeBytes, workers: setup.workers });
  log(`plan ${hash}: ${net.name} ${net.input.height}x${net.input.width}, grid ${plan.grid.rows}x${plan.grid.cols}, tiles ${tilesOfDevice(plan, tileRank).join(',')} of ${plan.tiles}, forward ${formatGrouping(plan.forwardGroups)}, backward ${formatGrouping(plan.backwardGroups)}, batch ${plan.batch}` +
    (plan.replicas > 1 ? ` (data-parallel replica ${rank} of ${plan.replicas}: images ${rank * plan.batch}..${(rank + 1) * plan.batch - 1} of every batch of ${plan.batch * plan.replicas})` : ''));
  if (isHead) log(`tail on this device: ${describeTail(tail)} (${tailClasses(frontOutput(net), tail)} classes)`);
  else if (tail.length > 0) log(`tail (${describeTail(tail)}) on rank ${HEAD_RANK}`);
  log(`predicted peak memory of this device:\n${formatEstimate(estimate, setup.memoryLimit)}`);
  if (estimate.totalBytes > setup.memoryLimit) {
    throw new UsageError(`the plan needs about ${formatBytes(estimate.totalBytes)} on device ${rank}, over --memory-limit ${formatBytes(setup.memoryLimit)}: use more devices, a finer grid, a smaller --batch or --input, or other groupings`);
  }


  const status: DeviceStatus = {
    rank, devices: clusterSize(plan), backend: setup.backend ?? 'best available',
    plan: {
      model: net.name, input: `${net.input.height}x${net.input.width}`, grid: `${plan.grid.rows}x${plan.grid.cols}`,
      forwardGroups: formatGrouping(plan.forwardGroups), backwardGroups: formatGrouping(plan.backwardGroups), batch: plan.batch,
      tiles: tilesOfDevice(plan, tileRank), hash, predictedPeakBytes: estimate.totalBytes,
    },
    links: null, step: 0, stepsTotal: setup.steps, loss: null, learningRate: null, lastStepSeconds: null, phases: null, state: 'starting', error: null,
    arena: {
      reservedBytes: arenaBytes(estimate.arenas),
      peakLiveBytes: estimate.arenas.reduce((sum, a) => sum + a.peakLiveFloats * 4, 0),
      byGroup: Object.assign({}, ...estimate.arenas.map(arenaUseByGroup)),
    },
  };

  // With a tail, --weights must be a file of the whole model (checked on every rank, so a bad file
  // stops them all); only the head keeps the tail's part.
  let params: FrontParams;
  let tailParams: TailParams;
  if (values.weights) {
    const loaded = asUsage(() => decodeWeights(net, new Uint8Array(readFileSync(values.weights!)), values.weights!, tail.length > 0 ? tail : undefined));
    params = loaded.params;
    tailParams = isHead ? loaded.tailParams! : [];
  } else {
    params = initialParams(net, setup.seed);
    tailParams = isHead ? initialTailParams(net, tail, setup.seed) : [];
    // A [region]'s objectness starts at OBJECTNESS_PRIOR (README, Detection); no-op for other tails.
    setObjectnessPrior(params, tailParams, tail, OBJECTNESS_PRIOR);
  }
  const state = newOptimizerState(params, net.hyper);
  const tailState = newOptimizerState(tailParams, net.hyper);
  let firstStep = 0;
  if (values.resume) {
    const loaded = asUsage(() => loadCheckpoint(setup.checkpoint!, net, state, hash, isHead ? { layers: tail, state: tailState } : undefined));
    if (!loaded) log(`no checkpoint in ${setup.checkpoint} yet: starting at step 0`);
    else {
      params = loaded.params;
      if (loaded.tailParams) tailParams = loaded.tailParams;
      firstStep = loaded.meta.step;
      log(`resumed from ${setup.checkpoint} at step ${firstStep}`);
    }
  }
  const stepsLeft = Math.max(0, setup.steps - firstStep);
  // Into the buffer the compute threads share before anything awaits: the runtime then adopts these
  // arrays instead of copying them, and no suspended frame keeps a second copy of every parameter.
  params = shareParams(net, params).params;

  // The data set is opened (every image checked once) where it is read: the head, or every device
  // with --data-local. The others receive their input regions from the head.
  const source = values.data ?? 'synthetic';
  const readsData = source === 'synthetic' || isHead || values['data-local'] === true;
  const sendsInputs = isHead && plan.replicas === 1 && values['data-local'] !== true;
  const data: TrainingData = readsData
    ? asUsage(() => openTrainingData({
        source, ...(values.names ? { names: values.names } : {}), onBadSample: setup.badSamples, net, frontOutput: frontOutput(net), tail, batch: plan.batch * plan.replicas, seed: setup.seed, log,
      }))
    : { description: `${source} (read on rank ${HEAD_RANK})`, synthetic: false, batch: () => { throw new Error(`rank ${rank} does not read ${source}`); } };
  log(`data: ${data.description}${source !== 'synthetic' ? (readsData ? (sendsInputs ? ', sent to every tile from here' : ', read on every device') : '') : ''}`);

  let node: PeerNode | null = null;
  let links: LinkMeasurement[] | null = null;
  let closeRuntime = async (): Promise<void> => undefined;
  let computeHeapBytes = (): number | null => null;
  const telemetry = setup.metricsPort > 0
    ? await serveTelemetry(values.listen ?? '0.0.0.0', setup.metricsPort, { status, get counters() { return node?.counters ?? null; }, wasmHeapBytes: () => computeHeapBytes() })
    : null;
  if (telemetry) log(`telemetry on http://${values.listen ?? '0.0.0.0'}:${telemetry.port}/metrics and /status`);
  try {
    const exchange = clusterSize(plan) === 1
      ? createInMemoryCluster(1, stripEndpoints(plan))[0]!
      : (node = await PeerNode.start({
          rank, peers: setup.peers, secret: setup.secret, planHash: hash, validator: planValidator(plan, tailParams.reduce((n, p) => n + (p ? p.filter.length + p.biases.length + (p.bn ? p.bn.scales.length : 0) : 0), 0)), tileDevice: stripEndpoints(plan),
          listenHost: values.listen ?? '0.0.0.0', peerTimeoutMs: setup.peerTimeoutMs, log: (line) => console.error(line),
        }));
    if (node) log(`connected to ${clusterSize(plan) - 1} peers`);
    // Before the compute threads start, while nothing else uses the links. The plan is fixed
    // already (its hash is part of the handshake): the values are for the next device profile.
    if (node && setup.measureLinks) {
      links = await node.measureLinks();
      status.links = links;
      for (const line of describeLinks(links)) log(line);
    }
    const runtime = await createDeviceRuntime({ plan, rank: tileRank, params, threads: setup.workers, ...(setup.backend ? { backend: setup.backend } : {}), overlap: setup.overlap });
    closeRuntime = () => runtime.engine.close();
    const backend = runtime.backend;
    for (const note of backend.notes) log(`note: ${note}`);
    log(`backend: ${backend.name}`);
    // Memory settings that only take effect at process start (the launchers' --lean-runtime sets both).
    log(`runtime: node ${process.version}, flags ${process.execArgv.join(' ') || 'none'}, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? 'unset'}`);
    status.backend = backend.name;
    if (backend.name === 'wasm') computeHeapBytes = () => runtime.engine.backendHeapBytes();
    log(`compute: ${setup.workers === 0 ? 'on the main thread' : `${setup.workers} worker thread${setup.workers > 1 ? 's' : ''}`}, overlap ${setup.overlap ? 'on' : 'off'}; arena ${formatBytes(runtime.arenas.reservedBytes)}; rss ${formatBytes(process.memoryUsage().rss)} before the first step`);
    status.state = 'training';
    const steps: object[] = [];
    const evaluations: { step: number; name: string; value: number }[] = [];
    // The head runs the tail (and evaluation) on this thread: give it the compute backend too.
    if (isHead && tail.length > 0) await (await import('../fused/backend.js')).ensureBackend(setup.backend);
    const evaluate = isHead && rank === HEAD_RANK && values.valid ? await openEvaluation(values.valid, {
      net, tail, params: runtime.params, tailParams, names: values.names, onBadSample: setup.badSamples, log,
    }) : null;
    // CPU time of the whole process (every thread) per step: under a CPU quota, what the step consumed of it.
    let cpuMark = process.cpuUsage();
    await train({
      ...(evaluate ? { evaluate: { every: values['eval-every'] ? parsePositiveInt('--eval-every', values['eval-every'], 0) : 0, run: evaluate } } : {}),
      onEvaluation: (step, results) => {
        for (const r of results) {
          evaluations.push({ step, ...r });
          log(`evaluation at step ${step}: ${r.name} ${r.value.toFixed(4)}`);
        }
      },
      runtime, exchange, params: runtime.params, state, data, dataOnEveryDevice: values['data-local'] === true, firstStep, steps: stepsLeft, seed: setup.seed, checksumEvery: setup.checksumEvery,
      ...(isHead ? { tail: { params: tailParams, state: tailState } } : {}),
      ...(setup.checkpoint ? { checkpoint: { dir: setup.checkpoint, every: setup.checkpointEvery } } : {}),
      onStep: (r) => {
        const { compute, computeIdle, exchangeWait, send, reduce } = r.phases;
        Object.assign(status, { step: r.step, loss: r.loss, learningRate: r.learningRate, lastStepSeconds: r.seconds, phases: { compute, computeIdle, exchangeWait, send, reduce } });
        const cpu = process.cpuUsage(cpuMark);
        cpuMark = process.cpuUsage();
        steps.push({ step: r.step, loss: r.loss, seconds: r.seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, phases: r.phases });
        log(`step ${r.step}/${setup.steps} loss ${r.loss.toFixed(5)} lr ${r.learningRate.toExponential(2)} ${r.seconds.toFixed(2)} s ` +
          `(compute ${compute.toFixed(2)}, idle ${computeIdle.toFixed(2)}, wait ${exchangeWait.toFixed(2)}, send ${send.toFixed(2)}, reduce ${reduce.toFixed(2)}${isHead ? `, tail ${r.tailSeconds.toFixed(2)}` : ''})  rss ${formatBytes(process.memoryUsage().rss)}, compute heap ${formatBytes(runtime.engine.backendHeapBytes())}, arena ${formatBytes(runtime.arenas.reservedBytes)}`);
      },
      onCheckpoint: (step, dir) => log(`checkpoint of step ${step} in ${dir}`),
    });
    status.state = 'done';
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    log(`done: ${setup.steps} steps; peak RSS ${formatBytes(peakRssBytes)} (predicted ${formatBytes(estimate.totalBytes)})`);
    if (values.report) {
      const file = values.report.replaceAll('{rank}', String(rank));
      writeAtomically(file, new TextEncoder().encode(JSON.stringify({
        rank, backend: backend.name, workers: setup.workers, overlap: setup.overlap, plan: status.plan, links,
        // Everything sent and received over the run (strips, reductions, handshake, heartbeats).
        transport: node
          ? { bytesSent: [...node.counters.perPeer.values()].reduce((sum, p) => sum + p.bytesSent, 0), bytesReceived: [...node.counters.perPeer.values()].reduce((sum, p) => sum + p.bytesReceived, 0) }
          : { bytesSent: 0, bytesReceived: 0 },
        memory: {
          predicted: { totalBytes: estimate.totalBytes, rows: estimate.rows },
          // What one device training the same batch unpartitioned would need, by the same model.
          unpartitionedPredictedBytes: estimateDeviceMemory(
            buildTilePlan({ net, grid: { rows: 1, cols: 1 }, devices: 1, batch: plan.batch * plan.replicas, forwardGroups: plan.forwardGroups, backwardGroups: plan.backwardGroups, tail }),
            0, { runtimeBytes, workers: setup.workers },
          ).totalBytes,
          measured: { peakRssBytes, computeHeapBytes: runtime.engine.backendHeapBytes(), arenaBytes: runtime.arenas.reservedBytes },
        },
        steps,
        evaluations,
      }, null, 1)), 'report');
      log(`report written to ${file}`);
    }
    if (node) await node.barrier(1 << 30);
    return 0;
  } catch (error) {
    status.state = 'failed';
    status.error = (error as Error).message;
    if (node && !node.failed) node.abort(`rank ${rank} stopped: ${(error as Error).message}`);
    throw error;
  } finally {
    node?.close();
    telemetry?.close();
    await closeRuntime();
  }
}
