// The emulated device's profile: scaling to a CPU quota, and the overheads or speed factor fitted to measured steps.
import t from 'tap';
import { type ModelledRun, fitOverheads, scaleToQuota, speedFactorFor } from '../../tools/lib/emulated-profile.js';

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

const run = (kernelSeconds: number, elements: number, layerPasses: number, measuredSeconds: number): ModelledRun =>
  ({ grid: '1x1', grouping: 'all', kernelSeconds, elements, layerPasses, measuredSeconds });

t.test('the overhead fit recovers a per-element and a per-layer-pass cost', async (t) => {
  // 1 ns per element and 10 ms per layer pass, on top of the kernels' seconds.
  const fit = fitOverheads([run(5, 1e9, 32, 5 + 1 + 0.32), run(6, 1e9, 128, 6 + 1 + 1.28), run(4, 2e9, 32, 4 + 2 + 0.32)]);
  t.ok(Math.abs(fit.perElement - 1e-9) < 1e-15, `per element ${fit.perElement}`);
  t.ok(Math.abs(fit.perLayerPass - 0.01) < 1e-9, `per layer pass ${fit.perLayerPass}`);
});

t.test('a cost the runs would make negative is fixed at zero and the other refitted', async (t) => {
  // More passes but less time: per pass would come out negative.
  const fit = fitOverheads([run(0, 1e9, 32, 2), run(0, 1e9, 128, 1)]);
  t.equal(fit.perLayerPass, 0);
  t.ok(Math.abs(fit.perElement - 1.5e-9) < 1e-15, `per element ${fit.perElement}`);
  // Only passes explain the time: 2 and 4 s over 100 and 200 passes.
  t.same(fitOverheads([run(1, 0, 100, 3), run(1, 0, 200, 5)]), { perElement: 0, perLayerPass: 0.02 });
  // The kernels alone take longer: nothing to charge.
  t.same(fitOverheads([run(3, 1e9, 32, 2), run(3, 1e9, 128, 2.5)]), { perElement: 0, perLayerPass: 0 });
});
