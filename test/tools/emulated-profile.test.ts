// The emulated device's profile: scaling to a CPU quota, the speed factor and per-pass overhead fitted to measured steps, the latency solve.
import t from 'tap';
import { type ModelledRun, fitSteps, scaleToQuota, solveIncreasing, speedFactorFor } from '../../tools/lib/emulated-profile.js';

t.test('scaleToQuota multiplies rates and divides fixed costs', async (t) => {
  const scaled = scaleToQuota({ elementwiseGflops: 2, taskOverheadMs: 3, workers: 1, conv: [{ forwardGflops: 10, name: 'x' }] }, 0.5);
  t.same(scaled, { elementwiseGflops: 1, taskOverheadMs: 6, workers: 1, conv: [{ forwardGflops: 5, name: 'x' }] });
});

t.test('the speed factor makes the predicted total the measured total', async (t) => {
  // Predicted 3 + 3.2 = 6.2 s against 2.4 + 2.6 = 5 s measured: rates x1.24.
  t.equal(speedFactorFor([{ measuredSeconds: 2.4, predictedSeconds: 3 }, { measuredSeconds: 2.6, predictedSeconds: 3.2 }]), 1.24);
  t.equal(speedFactorFor([{ measuredSeconds: 4, predictedSeconds: 2 }]), 0.5);
  t.throws(() => speedFactorFor([{ measuredSeconds: 0, predictedSeconds: 2 }]), /no time to fit/);
});

const run = (profileSeconds: number, layerPasses: number, measuredSeconds: number): ModelledRun =>
  ({ grid: '1x1', grouping: 'all', profileSeconds, layerPasses, measuredSeconds });

t.test('the step fit recovers a slowdown of every rate and a per-layer-pass cost', async (t) => {
  // Everything 25% slower than the profile says (speed factor 0.8), and 10 ms per layer pass.
  const fit = fitSteps([run(10, 32, 12.5 + 0.32), run(10.2, 32, 12.75 + 0.32), run(10.4, 128, 13 + 1.28)]);
  t.equal(fit.speedFactor, 0.8);
  t.ok(Math.abs(fit.perLayerPass - 0.01) < 1e-9, `per layer pass ${fit.perLayerPass}`);
});

t.test('without a per-pass cost to fit, the speed factor alone matches the total', async (t) => {
  // More passes but no more time: the per-pass cost would be negative.
  t.same(fitSteps([run(10, 32, 12), run(10, 128, 11)]), { speedFactor: 0.87, perLayerPass: 0 });
  // Passes in proportion to the profile's seconds: the runs cannot tell the two apart.
  t.same(fitSteps([run(10, 32, 5), run(20, 64, 10)]), { speedFactor: 2, perLayerPass: 0 });
});

t.test('solveIncreasing finds where a non-decreasing function reaches the target, clamped to its range', async (t) => {
  const calls: number[] = [];
  // A step prediction: 2 s plus 30 messages of x ms each (the latency fit's shape).
  const f = (x: number) => {
    calls.push(x);
    return 2 + (30 * x) / 1000;
  };
  t.ok(Math.abs(solveIncreasing(f, 2.15, 0.2, 50, 0.01) - 5) <= 0.01, 'the 5 ms that make 2.15 s');
  t.ok(calls.every((x) => x >= 0.2 && x <= 50), 'only inside the range');
  t.equal(solveIncreasing(f, 1.9, 0.2, 50, 0.01), 0.2, 'already slower than measured at the low end: the low end');
  t.equal(solveIncreasing(f, 9, 0.2, 50, 0.01), 50, 'out of reach: the high end');
  // Flat stretches (a latency hidden behind compute) do not stop the search.
  const flat = (x: number) => Math.max(3, 2 + x / 10);
  t.ok(Math.abs(solveIncreasing(flat, 4, 0, 40, 0.01) - 20) <= 0.01);
});
