// MaxPoolGrad for the wasm backend. The shipped kernel starts its running max at the smallest positive
// float, so windows of only negative values (common after leaky ReLU) route the gradient wrongly.
// This plain loop takes the first maximum in row-major window order, as the cpu backend does.
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { allocate, heapFloats, heapOffset } from './heap.js';

interface MaxPoolGradAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

type Args = { inputs: { dy: TensorInfo; input: TensorInfo }; backend: BackendWasm; attrs: MaxPoolGradAttrs };

function maxPoolGrad({ inputs, backend, attrs }: Args): TensorInfo {
  const { dy, input } = inputs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const dx = allocate(backend, input.shape);
  const heap = heapFloats(backend);
  const xAt = heapOffset(backend, input);
  const dyAt = heapOffset(backend, dy);
  const dxAt = heapOffset(backend, dx);
  heap.fill(0, dxAt, dxAt + batchSize * inHeight * inWidth * channels);
  const best = new Float32Array(channels);
  const where = new Int32Array(channels);
  for (let n = 0; n < batchSize; n++)
    for (let oh = 0; oh < outHeight; oh++)
      for (let ow = 0; ow < outWidth; ow++) {
        where.fill(-1);
        for (let fh = 0; fh < filterHeight; fh++) {
          const ih = oh * strideHeight - padTop + fh;
          if (ih < 0 || ih >= inHeight) continue;
          for (let fw = 0; fw < filterWidth; fw++) {
            const iw = ow * strideWidth - padLeft + fw;
            if (iw < 0 || iw >= inWidth) continue;
            const base = ((n * inHeight + ih) * inWidth + iw) * channels;
            for (let c = 0; c < channels; c++) {
              const value = heap[xAt + base + c]!;
              if (where[c] === -1 || value > best[c]!) {
                best[c] = value;
                where[c] = base + c;
              }
            }
          }
        }
        const gradAt = dyAt + ((n * outHeight + oh) * outWidth + ow) * channels;
        for (let c = 0; c < channels; c++) if (where[c]! >= 0) heap[dxAt + where[c]!] = heap[dxAt + where[c]!]! + heap[gradAt + c]!;
      }
  return dx;
}

export function makeMaxPoolGradWasm(shipped: KernelConfig): KernelConfig {
  return { ...shipped, kernelFunc: maxPoolGrad as unknown as KernelFunc };
}
