// Cutting a strip's region into bands of whole rows so that no message exceeds the payload limit.
import { type Region, regionHeight } from '../tiles/region.js';

export function rowBands(region: Region, floats: number, maxFloats: number): Region[] {
  const rows = regionHeight(region);
  if (rows === 0) return [];
  const perRow = floats / rows;
  const rowsPerBand = Math.max(1, Math.floor(maxFloats / perRow));
  if (perRow > maxFloats) throw new Error(`one row of a strip holds ${perRow} floats, more than the ${maxFloats}-float message limit`);
  const bands: Region[] = [];
  for (let r = region.rows.start; r < region.rows.end; r += rowsPerBand) {
    bands.push({ rows: { start: r, end: Math.min(region.rows.end, r + rowsPerBand) }, cols: region.cols });
  }
  return bands;
}
