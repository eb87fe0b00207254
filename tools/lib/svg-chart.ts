// A small dependency-free SVG chart for the cluster benchmark: speedup (left) and peak memory per
// device (right) against the number of devices, one line per grouping.

export interface ChartPoint {
  readonly series: string;
  readonly devices: number;
  readonly speedup: number;
  readonly memoryMiB: number;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function panel(points: readonly ChartPoint[], value: (p: ChartPoint) => number, title: string, x0: number): string {
  const width = 360;
  const height = 240;
  const left = x0 + 50;
  const top = 40;
  const maxDevices = Math.max(...points.map((p) => p.devices));
  const maxValue = Math.max(...points.map(value)) * 1.1;
  const px = (d: number) => left + ((d - 1) / Math.max(1, maxDevices - 1)) * width;
  const py = (v: number) => top + height - (v / maxValue) * height;
  const series = [...new Set(points.map((p) => p.series))];
  const parts: string[] = [
    `<text x="${left + width / 2}" y="24" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<line x1="${left}" y1="${top + height}" x2="${left + width}" y2="${top + height}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + height}" stroke="#333"/>`,
  ];
  for (let d = 1; d <= maxDevices; d++) parts.push(`<text x="${px(d)}" y="${top + height + 16}" text-anchor="middle">${d}</text>`);
  parts.push(`<text x="${left + width / 2}" y="${top + height + 34}" text-anchor="middle">devices</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (maxValue * i) / 4;
    parts.push(`<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v < 10 ? v.toFixed(1) : Math.round(v)}</text>`);
  }
  series.forEach((name, s) => {
    const own = points.filter((p) => p.series === name || p.devices === 1).sort((a, b) => a.devices - b.devices);
    const colour = COLOURS[s % COLOURS.length]!;
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${own.map((p) => `${px(p.devices)},${py(value(p))}`).join(' ')}"/>`);
    for (const p of own) parts.push(`<circle cx="${px(p.devices)}" cy="${py(value(p))}" r="3" fill="${colour}"/>`);
  });
  return parts.join('\n');
}

export function speedupChart(points: readonly ChartPoint[]): string {
  const series = [...new Set(points.map((p) => p.series))];
  const legend = series.map((name, s) => `<rect x="${20 + s * 175}" y="330" width="12" height="12" fill="${COLOURS[s % COLOURS.length]}"/><text x="${36 + s * 175}" y="341">${name.replace(/&/g, '&amp;')}</text>`);
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="900" height="360" font-family="sans-serif" font-size="12">',
    '<rect width="100%" height="100%" fill="white"/>',
    panel(points, (p) => p.speedup, 'speedup over one device', 0),
    panel(points, (p) => p.memoryMiB, 'peak memory per device (MiB)', 450),
    ...legend,
    '</svg>',
  ].join('\n');
}
