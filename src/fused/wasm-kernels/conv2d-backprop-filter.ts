// Conv2DBackpropFilter for the wasm backend (not shipped by tfjs, issue 8474).
// dW[kh,kw,ci,co] = sum_p x_patch[p][kh,kw,ci] * dy[p][co]. We write the patches (im2col) into the wasm
// heap a chunk of output positions at a time and let XNNPACK's untransposed batch-1 matmul compute
// dyT[co][p] x cols[p][k]; chunks bound the im2col buffer to a few MB whatever the map size. The
// products add up in float64, also across calls (accumulateFilterGradient: a layer's bands).
import { backend_util, getKernel, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { allocate, heapFloats, heapOffset, release } from './heap.js';
import { type FilterGradientKernels, filterGradientKernels } from './simd/filter-gradient-kernels.js';

const CHUNK_FLOATS = 1 << 22; // 16 MiB of im2col per chunk: one chunk covers a 104x104x32 3x3 layer

export interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

/**
 * Adds dW of one convolution to `sums`, laid out [out][kh][kw][in] as the matmul yields it: a layer
 * computed in bands adds every band into the same float64 sums, paying no filter-sized result per band.
 */
export function accumulateFilterGradient(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, attrs: BackpropFilterAttrs, sums: Float64Array): void {
  if (attrs.dataFormat !== 'NHWC') throw new Error(`wasm Conv2DBackpropFilter supports NHWC only, got ${attrs.dataFormat}`);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const patch = filterHeight * filterWidth * inChannels;
  if (sums.length !== outChannels * patch) throw new Error(`filter gradient sums hold ${sums.length} floats, the filter has ${outChannels * patch}`);
  const positions = batchSize * outHeight * outWidth;
  const matMul = getKernel('BatchMatMul', 'wasm')!.kernelFunc as KernelFunc;
  const addProduct = (product: TensorInfo): void => {
    const view = heapFloats(backend);
    const at = heapOffset(backend, product);
    for (let i = 0; i < sums.length; i++) sums[i] = sums[i]! + view[at + i]!;
  };
  const unpadded = padTop === 0 && padLeft === 0 && info.padInfo.bottom === 0 && info.padInfo.right === 0;
  const direct = patch <= DIRECT_MAX_PATCH && outChannels % 16 === 0 && unpadded && info.dilationHeight === 1 && info.dilationWidth === 1 ? filterGradientKernels(backend) : null;
  if (direct) {
    directFilterGradient(backend, direct, x, dy, info, sums);
    return;
  }
  if (filterHeight === 1 && filterWidth === 1 && strideHeight === 1 && strideWidth === 1 && padTop === 0 && padLeft === 0 && outHeight === inHeight && outWidth === inWidth) {
    pointwiseFilterGradient(backend, x, dy, positions, inChannels, outChannels, matMul, addProduct);
    return;
  }
  const chunk = Math.max(1, Math.min(positions, Math.floor(CHUNK_FLOATS / patch)));

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
    addProduct(product);
    release(backend, product, cols, dyT);
  }
}

/** Sums of accumulateFilterGradient ([out][patch]) as float32 in the filter's layout [kh, kw, in, out]. */
export function filterFromSums(sums: Float64Array, outChannels: number, target: Float32Array, offset = 0): void {
  const patch = sums.length / outChannels;
  // A transpose in 32x32 blocks: neither side strides through the whole filter per element.
  for (let co0 = 0; co0 < outChannels; co0 += 32) {
    const coEnd = Math.min(outChannels, co0 + 32);
    for (let k0 = 0; k0 < patch; k0 += 32) {
      const kEnd = Math.min(patch, k0 + 32);
      for (let k = k0; k < kEnd; k++) {
        for (let co = co0; co < coEnd; co++) target[offset + k * outChannels + co] = sums[co * patch + k]!;
      }
    }
  }
}

function conv2DBackpropFilter(args: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: BackendWasm; attrs: BackpropFilterAttrs }): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const [kh, kw, inChannels, outChannels] = attrs.filterShape;
  const sums = new Float64Array(kh * kw * inChannels * outChannels);
  accumulateFilterGradient(backend, x, dy, attrs, sums);
  const dw = allocate(backend, attrs.filterShape);
  filterFromSums(sums, outChannels, heapFloats(backend), heapOffset(backend, dw));
  return dw;
}

/**
 * Patches of at most this many values (a first layer on RGB: 3x3x3 = 27) with a multiple of 16
 * output channels skip im2col, the dy transpose and the matmul: one SIMD pass over x and dy
 * (filter-gradient.wat). im2col of a 3-channel input moves 9 times the input to feed a 27-wide
 * matmul operand, which held that layer's filter gradient to 6 GFLOP/s.
 */
export const DIRECT_MAX_PATCH = 32;

/** The direct kernel's sums ([tap][out], float64) added into `sums` ([out][tap]). */
function directFilterGradient(backend: BackendWasm, kernels: FilterGradientKernels, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo, sums: Float64Array): void {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const patch = filterHeight * filterWidth * inChannels;
  const tapCount = patch + (patch % 2);
  const taps = allocate(backend, [tapCount]);
  const tapSums = allocate(backend, [2 * tapCount * outChannels]);
  const heap = heapFloats(backend);
  const tapsAt = heapOffset(backend, taps);
  const sumsAt = heapOffset(backend, tapSums);
  if (sumsAt % 2 !== 0) throw new Error('the wasm heap gave float64 sums a misaligned block');
  const offsets = new Int32Array(heap.buffer, tapsAt * 4, tapCount);
  let t = 0;
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let ci = 0; ci < inChannels; ci++) offsets[t++] = ((kh * inWidth + kw) * inChannels + ci) * 4;
    }
  }
  if (t < tapCount) offsets[t] = 0;
  heap.fill(0, sumsAt, sumsAt + 2 * tapCount * outChannels);
  const rowBytes = inWidth * inChannels * 4;
  kernels.filterGradient(
    heapOffset(backend, x) * 4, heapOffset(backend, dy) * 4, sumsAt * 4, tapsAt * 4, tapCount, batchSize, outHeight, outWidth, outChannels,
    rowBytes, strideHeight, inHeight * rowBytes, strideWidth * inChannels * 4,
  );
  const computed = new Float64Array(heap.buffer, sumsAt * 4, tapCount * outChannels);
  for (let tap = 0; tap < patch; tap++) {
    for (let co = 0; co < outChannels; co++) sums[co * patch + tap] = sums[co * patch + tap]! + computed[tap * outChannels + co]!;
  }
  release(backend, taps, tapSums);
}

/**
 * A 1x1, stride-1, unpadded conv's patches are the input itself: dW^T = dy^T x, with x used in place
 * as the matmul's right operand (no im2col) and only dy transposed.
 */
function pointwiseFilterGradient(
  backend: BackendWasm, x: TensorInfo, dy: TensorInfo, positions: number, inChannels: number, outChannels: number, matMul: KernelFunc,
  addProduct: (product: TensorInfo) => void,
): void {
  const dyT = allocate(backend, [1, outChannels, positions]);
  const heap = heapFloats(backend);
  const dyAt = heapOffset(backend, dy);
  const dyTAt = heapOffset(backend, dyT);
  for (let co = 0; co < outChannels; co++) {
    const dst = dyTAt + co * positions;
    let src = dyAt + co;
    for (let p = 0; p < positions; p++, src += outChannels) heap[dst + p] = heap[src]!;
  }
  const xAsMatrix = { ...x, shape: [1, positions, inChannels] };
  const product = matMul({ inputs: { a: dyT, b: xAsMatrix }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  addProduct(product);
  release(backend, product, dyT);
}

export const conv2DBackpropFilterWasm: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};
