// The seeded weights, input batch and linear loss that `verify` and the multi-process checks share,
// so every process of a cluster derives the same problem from the same seed.
import type { StepInputs } from '../loop/device-step.js';
import { type Network, mapShapes } from '../model/layers.js';
import { type FrontParams, fillUniform, randomParams, seededRandom } from '../model/weights.js';
import { type RegionLayout, copySubRegion, extractSubRegion } from '../tiles/layout.js';
import { wholeMap } from '../tiles/region.js';

export interface VerifyData {
  readonly params: FrontParams;
  /** The input batch, [batch, H, W, C]. */
  readonly input: Float32Array;
  /** loss = sum(front output * outputWeights), so these are also the output gradient. */
  readonly outputWeights: Float32Array;
  readonly inputLayout: RegionLayout;
  readonly outputLayout: RegionLayout;
  readonly stepInputs: StepInputs;
}

export function verifyData(net: Network, batch: number, seed: number): VerifyData {
  const maps = mapShapes(net);
  const params = randomParams(net, seed);
  const random = seededRandom(seed ^ 0x9e3779b9);
  const inputMap = maps[0]!;
  const outputMap = maps[maps.length - 1]!;
  const input = fillUniform(new Float32Array(batch * inputMap.height * inputMap.width * inputMap.channels), random, -1, 1);
  const outputWeights = fillUniform(new Float32Array(batch * outputMap.height * outputMap.width * outputMap.channels), random, -1, 1);
  const inputLayout = { region: wholeMap(inputMap.height, inputMap.width), batch, channels: inputMap.channels };
  const outputLayout = { region: wholeMap(outputMap.height, outputMap.width), batch, channels: outputMap.channels };
  return {
    params, input, outputWeights, inputLayout, outputLayout,
    stepInputs: {
      input: (_tile, region, into) => copySubRegion(input, inputLayout, into, { ...inputLayout, region }, region),
      outputGradient: async (_tile, core) => extractSubRegion(outputWeights, outputLayout, core),
    },
  };
}
