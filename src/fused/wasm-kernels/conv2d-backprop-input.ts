// Conv2DBackpropInput for the wasm backend at stride 1: the input gradient is the forward XNNPACK
// convolution of dy with the filter rotated 180 degrees and its channel axes swapped, padded by
// (size - 1 - pad) before. Other strides fall back to the shipped (slow, correct) kernel.
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo, getKernel } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { allocate, heapFloats, heapOffset, release } from './heap.js';

export interface BackpropInputAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

type Args = { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: BackpropInputAttrs };

/** The filter [kh, kw, in, out] rotated 180 degrees with its channel axes swapped: [kh, kw, out, in]. */
export function rotateFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kh, kw, inChannels, outChannels] = filter.shape as [number, number, number, number];
  const rotated = allocate(backend, [kh, kw, outChannels, inChannels]);
  const heap = heapFloats(backend);
  const src = heapOffset(backend, filter);
  const dst = heapOffset(backend, rotated);
  for (let a = 0; a < kh; a++)
    for (let b = 0; b < kw; b++)
      for (let ci = 0; ci < inChannels; ci++) {
        const from = src + (((kh - 1 - a) * kw + (kw - 1 - b)) * inChannels + ci) * outChannels;
        for (let co = 0; co < outChannels; co++) heap[dst + ((a * kw + b) * outChannels + co) * inChannels + ci] = heap[from + co]!;
      }
  return rotated;
}

export function makeConv2DBackpropInputWasm(shipped: KernelConfig): KernelConfig {
  const fallback = shipped.kernelFunc as KernelFunc;
  const kernelFunc = (args: Args): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const { dy, filter } = inputs;
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape, filter.shape as [number, number, number, number], attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
    );
    const { filterHeight: kh, filterWidth: kw, inChannels, outChannels, inHeight, inWidth, outHeight, outWidth } = info;
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = inHeight + kh - 1 - outHeight - top;
    const right = inWidth + kw - 1 - outWidth - left;
    if (info.strideHeight !== 1 || info.strideWidth !== 1 || attrs.dataFormat !== 'NHWC' || Math.min(top, left, bottom, right) < 0) {
      return fallback(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
    }
    const rotated = rotateFilter(backend, filter);
    const conv = getKernel('Conv2D', 'wasm')!.kernelFunc as KernelFunc;
    const dx = conv({
      inputs: { x: dy, filter: rotated },
      backend,
      attrs: { strides: [1, 1], pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dataFormat: 'NHWC', dilations: [1, 1] },
    }) as TensorInfo;
    release(backend, rotated);
    return dx;
  };
  return { ...shipped, kernelFunc: kernelFunc as unknown as KernelFunc };
}
