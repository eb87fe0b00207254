// Conv2DBackpropFilter for the wasm backend (not shipped by tfjs, issue 8474).
// dW[kh,kw,ci,co] = sum_p x_patch[p][kh,kw,ci] * dy[p][co]. We write the patches (im2col) into the wasm
// heap a chunk of output positions at a time and let XNNPACK's untransposed batch-1 matmul compute
// dyT[co][p] x cols[p][k]; chunks bound the im2col buffer to a few MB whatever the map size.
import { backend_util, getKernel, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { allocate, heapFloats, heapOffset, release } from './heap.js';

const CHUNK_FLOATS = 1 << 22; // 16 MiB of im2col per chunk: one chunk covers a 104x104x32 3x3 layer

export interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm; attrs: BackpropFilterAttrs }): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  if (attrs.dataFormat !== 'NHWC') throw new Error(`wasm Conv2DBackpropFilter supports NHWC only, got ${attrs.dataFormat}`);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const patch = filterHeight * filterWidth * inChannels;
  const positions = batchSize * outHeight * outWidth;
  const matMul = getKernel('BatchMatMul', 'wasm')!.kernelFunc as KernelFunc;
  if (filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && padTop === 0 && padLeft === 0 && outHeight === inHeight && outWidth === inWidth) {
    return pointwiseFilterGradient(backend, x, dy, positions, inChannels, outChannels, matMul);
  }
  const chunk = Math.max(1, Math.min(positions, Math.floor(CHUNK_FLOATS / patch)));

  const acc = new Float64Array(outChannels * patch);
  for (let p0 = 0; p0 < positions; p0 += chunk) {
    const count = Math.min(chunk, positions - p0);
    // Fresh tensors per chunk: the wasm matmul caches XNNPACK's packed right operand by tensor id.
    const cols = allocate(backend, [1, chunk, patch]);
    const dyT = allocate(backend, [1, outChannels, chunk]);
    const heap = heapFloats(backend);
    const xAt = heapOffset(backend, x);
    const dyAt = heapOffset(backend, dy);
    const colsAt = heapOffset(backend, cols);
    const dyTAt = heapOffset(backend, dyT);
    for (let j = 0; j < chunk; j++) {
      const row = colsAt + j * patch;
      if (j >= count) {
        heap.fill(0, row, row + patch);
        continue;
      }
      const p = p0 + j;
      const ow = p % outWidth;
      const oh = Math.floor(p / outWidth) % outHeight;
      const n = Math.floor(p / (outWidth * outHeight));
      const iw0 = ow * strideWidth - padLeft;
      // Columns of the kernel row that fall inside the map, copied as one run.
      const kwFrom = Math.max(0, -iw0);
      const kwTo = Math.min(filterWidth, inWidth - iw0);
      for (let kh = 0; kh < filterHeight; kh++) {
        const ih = oh * strideHeight - padTop + kh;
        const dst = row + kh * filterWidth * inChannels;
        if (ih < 0 || ih >= inHeight || kwFrom >= kwTo) {
          heap.fill(0, dst, dst + filterWidth * inChannels);
          continue;
        }
        if (kwFrom > 0) heap.fill(0, dst, dst + kwFrom * inChannels);
        const src = xAt + ((n * inHeight + ih) * inWidth + iw0 + kwFrom) * inChannels;
        heap.copyWithin(dst + kwFrom * inChannels, src, src + (kwTo - kwFrom) * inChannels);
        if (kwTo < filterWidth) heap.fill(0, dst + kwTo * inChannels, dst + filterWidth * inChannels);
      }
    }
    for (let co = 0; co < outChannels; co++) {
      const dst = dyTAt + co * chunk;
      let src = dyAt + p0 * outChannels + co;
      for (let j = 0; j < count; j++, src += outChannels) heap[dst + j] = heap[src]!;
      if (count < chunk) heap.fill(0, dst + count, dst + chunk);
    }
    const product = matMul({ inputs: { a: dyT, b: cols }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
    const view = heapFloats(backend);
    const at = heapOffset(backend, product);
    for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + view[at + i]!;
    release(backend, product, cols, dyT);
  }

  const dw = allocate(backend, [filterHeight, filterWidth, inChannels, outChannels]);
  const heap = heapFloats(backend);
  const dwAt = heapOffset(backend, dw);
  for (let co = 0; co < outChannels; co++) {
    for (let k = 0; k < patch; k++) heap[dwAt + k * outChannels + co] = acc[co * patch + k]!;
  }
  return dw;
}

/**
 * A 1x1, stride-1, unpadded conv's patches are the input itself: dW^T = dy^T x, with x used in place
 * as the matmul's right operand (no im2col) and only dy transposed.
 */
function pointwiseFilterGradient(
  backend: BackendWasm, x: TensorInfo, dy: TensorInfo, positions: number, inChannels: number, outChannels: number, matMul: KernelFunc,
): TensorInfo {
  const dyT = allocate(backend, [1, outChannels, positions]);
  let heap = heapFloats(backend);
  const dyAt = heapOffset(backend, dy);
  const dyTAt = heapOffset(backend, dyT);
  for (let co = 0; co < outChannels; co++) {
    const dst = dyTAt + co * positions;
    let src = dyAt + co;
    for (let p = 0; p < positions; p++, src += outChannels) heap[dst + p] = heap[src]!;
  }
  const xAsMatrix = { ...x, shape: [1, positions, inChannels] };
  const product = matMul({ inputs: { a: dyT, b: xAsMatrix }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  const dw = allocate(backend, [1, 1, inChannels, outChannels]);
  heap = heapFloats(backend);
  const at = heapOffset(backend, product);
  const dwAt = heapOffset(backend, dw);
  for (let co = 0; co < outChannels; co++) for (let ci = 0; ci < inChannels; ci++) heap[dwAt + ci * outChannels + co] = heap[at + co * inChannels + ci]!;
  release(backend, product, dyT);
  return dw;
}

export const conv2DBackpropFilterWasm: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};
