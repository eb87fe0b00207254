// Rectangles of a feature map in map coordinates: rows and columns as half-open spans [start, end).

export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface Region {
  readonly rows: Span;
  readonly cols: Span;
}

export const span = (start: number, end: number): Span => ({ start, end });
export const region = (rows: Span, cols: Span): Region => ({ rows, cols });

export const spanLength = (s: Span): number => Math.max(0, s.end - s.start);
export const regionHeight = (r: Region): number => spanLength(r.rows);
export const regionWidth = (r: Region): number => spanLength(r.cols);
export const regionArea = (r: Region): number => regionHeight(r) * regionWidth(r);
export const isEmptyRegion = (r: Region): boolean => regionArea(r) === 0;

export function intersectSpans(a: Span, b: Span): Span {
  return { start: Math.max(a.start, b.start), end: Math.min(a.end, b.end) };
}

export function intersectRegions(a: Region, b: Region): Region {
  return { rows: intersectSpans(a.rows, b.rows), cols: intersectSpans(a.cols, b.cols) };
}

export function containsRegion(outer: Region, inner: Region): boolean {
  if (isEmptyRegion(inner)) return true;
  return (
    outer.rows.start <= inner.rows.start && inner.rows.end <= outer.rows.end &&
    outer.cols.start <= inner.cols.start && inner.cols.end <= outer.cols.end
  );
}

export function sameRegion(a: Region, b: Region): boolean {
  return a.rows.start === b.rows.start && a.rows.end === b.rows.end && a.cols.start === b.cols.start && a.cols.end === b.cols.end;
}

export function wholeMap(height: number, width: number): Region {
  return { rows: span(0, height), cols: span(0, width) };
}

/** Rows/columns of `outer` on each side of `inner` (inner must lie inside outer). */
export function margins(outer: Region, inner: Region): { top: number; bottom: number; left: number; right: number } {
  return {
    top: inner.rows.start - outer.rows.start,
    bottom: outer.rows.end - inner.rows.end,
    left: inner.cols.start - outer.cols.start,
    right: outer.cols.end - inner.cols.end,
  };
}

export function formatRegion(r: Region): string {
  return `rows [${r.rows.start},${r.rows.end}) cols [${r.cols.start},${r.cols.end})`;
}
