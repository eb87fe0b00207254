// Float arrays that hold a region of a map as [batch, rows, cols, channels] (NHWC, row-major), and
// copies of sub-regions between them. Pure data movement: the only place strips are gathered/scattered.
import { type Region, containsRegion, formatRegion, regionArea, regionHeight, regionWidth } from './region.js';

export interface RegionLayout {
  readonly region: Region;
  readonly batch: number;
  readonly channels: number;
}

export const layoutLength = (l: RegionLayout): number => l.batch * regionArea(l.region) * l.channels;

function check(layout: RegionLayout, data: Float32Array, sub: Region, role: string): void {
  if (data.length !== layoutLength(layout)) {
    throw new Error(`${role} holds ${data.length} floats, its layout ${formatRegion(layout.region)} x${layout.batch}x${layout.channels} needs ${layoutLength(layout)}`);
  }
  if (!containsRegion(layout.region, sub)) throw new Error(`${role} ${formatRegion(layout.region)} does not contain ${formatRegion(sub)}`);
}

/** Copy (or add) `sub` from one region array into another; both must contain `sub`. */
export function copySubRegion(
  src: Float32Array, srcLayout: RegionLayout,
  dst: Float32Array, dstLayout: RegionLayout,
  sub: Region, mode: 'set' | 'add' = 'set',
): void {
  check(srcLayout, src, sub, 'source');
  check(dstLayout, dst, sub, 'destination');
  const channels = srcLayout.channels;
  if (dstLayout.channels !== channels || dstLayout.batch !== srcLayout.batch) {
    throw new Error(`layouts disagree: ${srcLayout.batch}x${channels} channels against ${dstLayout.batch}x${dstLayout.channels}`);
  }
  const rowFloats = regionWidth(sub) * channels;
  const srcH = regionHeight(srcLayout.region), srcW = regionWidth(srcLayout.region);
  const dstH = regionHeight(dstLayout.region), dstW = regionWidth(dstLayout.region);
  for (let n = 0; n < srcLayout.batch; n++) {
    for (let r = sub.rows.start; r < sub.rows.end; r++) {
      const from = ((n * srcH + r - srcLayout.region.rows.start) * srcW + sub.cols.start - srcLayout.region.cols.start) * channels;
      const to = ((n * dstH + r - dstLayout.region.rows.start) * dstW + sub.cols.start - dstLayout.region.cols.start) * channels;
      if (mode === 'set') dst.set(src.subarray(from, from + rowFloats), to);
      else for (let i = 0; i < rowFloats; i++) dst[to + i] = dst[to + i]! + src[from + i]!;
    }
  }
}

/** A new array holding `sub` of the source. */
export function extractSubRegion(src: Float32Array, srcLayout: RegionLayout, sub: Region): Float32Array {
  const layout = { ...srcLayout, region: sub };
  const out = new Float32Array(layoutLength(layout));
  copySubRegion(src, srcLayout, out, layout, sub);
  return out;
}
