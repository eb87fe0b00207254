// Decoding PNG and JPEG files into RGB floats in [0, 1], height x width x 3 (HWC), with pure-JS
// codecs (pngjs, jpeg-js) so devices need no native build. Alpha is dropped, as Darknet's stb
// loader does when it asks for 3 channels; grey and palette images are expanded to RGB.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError } from './data-error.js';
import { readDataFile } from './read-data-file.js';

export interface RgbImage {
  readonly height: number;
  readonly width: number;
  /** height * width * 3 values in [0, 1], row-major, channels last. */
  readonly data: Float32Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// A Pi has 1 GB: refuse images whose decoded RGBA would not fit comfortably.
const MAX_JPEG_MEGAPIXELS = 50;

export type ImageFormat = 'png' | 'jpeg';

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Decodes PNG or JPEG bytes (recognised by their signature, not the file name); `file` names them in errors. */
export function decodeImage(bytes: Uint8Array, file: string): RgbImage {
  const format = sniffFormat(bytes);
  if (format === undefined) {
    const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(file, undefined, `not a PNG or JPEG file (${bytes.length} bytes, starting ${head || 'with nothing'})`);
  }
  let rgba: { width: number; height: number; data: Uint8Array };
  let channels: 3 | 4;
  try {
    if (format === 'png') {
      rgba = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      channels = 4;
    } else {
      // Not tolerant: a truncated JPEG is a corrupt sample, not an image with a grey bottom.
      rgba = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP: MAX_JPEG_MEGAPIXELS });
      channels = 3;
    }
  } catch (error) {
    throw new DataError(file, undefined, `corrupt ${format === 'png' ? 'PNG' : 'JPEG'}: ${(error as Error).message}`);
  }
  const { width, height } = rgba;
  if (!(width > 0 && height > 0) || rgba.data.length < width * height * channels) {
    throw new DataError(file, undefined, `corrupt ${format === 'png' ? 'PNG' : 'JPEG'}: decoded ${rgba.data.length} bytes for ${width}x${height}`);
  }
  const data = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) data[p * 3 + c] = rgba.data[p * channels + c]! / 255;
  }
  return { height, width, data };
}

/** Reads and decodes an image file; a missing or unreadable file is a DataError naming it. */
export function readImage(file: string): RgbImage {
  return decodeImage(readDataFile(file, 'image'), file);
}
