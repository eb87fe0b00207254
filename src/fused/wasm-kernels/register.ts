// Registers the training kernels the wasm backend lacks or gets wrong. Must run before
// tf.setBackend('wasm') so that kept setup functions (cwrap bindings) run at backend start.
import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { conv2DBackpropFilterWasm } from './conv2d-backprop-filter.js';
import { makeConv2DBackpropInputWasm } from './conv2d-backprop-input.js';
import { makeMaxPoolGradWasm } from './max-pool-grad.js';

let registered = false;

function replace(kernelName: string, make: (shipped: KernelConfig) => KernelConfig): void {
  const shipped = getKernel(kernelName, 'wasm');
  if (!shipped) throw new Error(`the wasm backend has no ${kernelName} kernel to replace; is @tensorflow/tfjs-backend-wasm loaded?`);
  unregisterKernel(kernelName, 'wasm');
  registerKernel(make(shipped));
}

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  if (!getKernel('Conv2DBackpropFilter', 'wasm')) registerKernel(conv2DBackpropFilterWasm);
  replace('Conv2DBackpropInput', makeConv2DBackpropInputWasm);
  replace('MaxPoolGrad', makeMaxPoolGradWasm);
}
