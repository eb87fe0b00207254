// The emulated device's profile: scaling to a CPU quota and the speed factor fitted to measured steps.
import t from 'tap';
import { scaleToQuota, speedFactorFor } from '../../tools/lib/emulated-profile.js';

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
