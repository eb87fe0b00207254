// `--peers host:port,host:port,...`: the cluster, in rank order.
import type { PeerAddress } from './peer-node.js';

export function parsePeers(text: string): PeerAddress[] {
  const entries = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) throw new Error('--peers needs at least one host:port');
  const peers = entries.map((entry) => {
    const match = /^(.+):(\d+)$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) throw new Error(`peer "${entry}" must look like host:port with a port in 1..65535`);
    return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
  const seen = new Set<string>();
  for (const p of peers) {
    const key = `${p.host}:${p.port}`;
    if (seen.has(key)) throw new Error(`peer ${key} is listed twice`);
    seen.add(key);
  }
  return peers;
}
