// Transport counters: bytes and messages per peer, user-space copies of payload bytes, rejections.

export interface PeerTraffic {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  messagesReceived: number;
}

export class TransportCounters {
  readonly perPeer = new Map<number, PeerTraffic>();
  /** Payload bytes handed to / received from the wire (floats x 4). */
  payloadBytesSent = 0;
  payloadBytesReceived = 0;
  /** Payload bytes copied in user space on each side (gather into the builder, scatter or stash out). */
  copiedBytesSending = 0;
  copiedBytesReceiving = 0;
  /** Extra copies of payloads that arrived before their consumer was registered (stashed, then scattered). */
  stashedBytesReceiving = 0;
  /** Times send() reported backpressure, and messages queued while a link drained. */
  backpressureEvents = 0;
  readonly rejected = new Map<string, number>();

  peer(rank: number): PeerTraffic {
    let t = this.perPeer.get(rank);
    if (!t) this.perPeer.set(rank, (t = { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesReceived: 0 }));
    return t;
  }

  reject(reason: string): void {
    const kind = reason.split(':')[0]!;
    this.rejected.set(kind, (this.rejected.get(kind) ?? 0) + 1);
  }

  get rejectedTotal(): number {
    let total = 0;
    for (const n of this.rejected.values()) total += n;
    return total;
  }

  /**
   * User-space copies per payload byte: the gather on the sending side, the scatter on the receiving
   * side, and, apart, the extra stash copy of payloads that arrived early (timing dependent).
   */
  copiesPerPayloadByte(): { sending: number; receiving: number; receivingEarly: number } {
    const received = this.payloadBytesReceived;
    return {
      sending: this.payloadBytesSent ? this.copiedBytesSending / this.payloadBytesSent : 0,
      receiving: received ? this.copiedBytesReceiving / received : 0,
      receivingEarly: received ? this.stashedBytesReceiving / received : 0,
    };
  }
}
