// The per-group arenas of one device: one SharedArrayBuffer per planned arena, allocated once before
// the first step, and named views into them. Compute workers get the same buffers and build the same
// views, so a buffer written by a worker is read by the scheduler without a copy.
import type { ArenaLayout } from './arena-plan.js';

/** Where a buffer lives: enough for another thread to build the same view. */
export interface BufferLocation {
  readonly arena: number;
  readonly offset: number;
  readonly floats: number;
}

export class DeviceArenas {
  private readonly locations = new Map<string, BufferLocation>();

  constructor(
    readonly layouts: readonly ArenaLayout[],
    /** One per layout; shared with compute workers. */
    readonly buffers: readonly SharedArrayBuffer[] = layouts.map((a) => new SharedArrayBuffer(a.floats * 4)),
  ) {
    if (buffers.length !== layouts.length) throw new Error(`${layouts.length} arena layouts but ${buffers.length} buffers`);
    layouts.forEach((layout, arena) => {
      if (buffers[arena]!.byteLength !== layout.floats * 4) throw new Error(`arena ${layout.name} needs ${layout.floats * 4} bytes, its buffer has ${buffers[arena]!.byteLength}`);
      for (const b of layout.buffers) this.locations.set(b.key, { arena, offset: b.offset, floats: b.floats });
    });
  }

  has(key: string): boolean {
    return this.locations.has(key);
  }

  locate(key: string): BufferLocation {
    const location = this.locations.get(key);
    if (!location) throw new Error(`no buffer "${key}" in the memory plan`);
    return location;
  }

  view(key: string): Float32Array {
    return this.viewAt(this.locate(key));
  }

  viewAt(location: BufferLocation): Float32Array {
    return new Float32Array(this.buffers[location.arena]!, location.offset * 4, location.floats);
  }

  get reservedBytes(): number {
    return this.buffers.reduce((sum, b) => sum + b.byteLength, 0);
  }
}
