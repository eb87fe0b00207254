// Challenge/response proof of the shared cluster secret. The secret never travels: each side proves
// it by an HMAC over the other side's fresh challenge, both ranks and the plan hash.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const CHALLENGE_BYTES = 32;

export function newChallenge(): Uint8Array {
  return new Uint8Array(randomBytes(CHALLENGE_BYTES));
}

export function authProof(secret: string, challenge: Uint8Array, fromRank: number, toRank: number, planHash: string): Uint8Array {
  const hmac = createHmac('sha256', secret);
  hmac.update(challenge);
  hmac.update(`|${fromRank}>${toRank}|${planHash}`);
  return new Uint8Array(hmac.digest());
}

export function proofMatches(expected: Uint8Array, received: Uint8Array): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}
