// KIP-320 fencing shared by both backends: a read names the leader epoch its client believes current, and a
// node whose epoch differs refuses it, so a client never mixes up data from two leaderships without knowing.
import { ErrorCode, KafkaError } from '../protocol/errors.ts';

/**
 * Throws when the client's current_leader_epoch (-1 or undefined: unchecked) differs from `current`:
 * older is FENCED_LEADER_EPOCH (the client must refresh its metadata), newer is UNKNOWN_LEADER_EPOCH (this
 * node has not learned of that leader yet; the client retries).
 */
export function checkLeaderEpoch(requested: number | undefined, current: number, what: string): void {
  if (requested === undefined || requested < 0 || requested === current) return;
  if (requested < current) {
    throw new KafkaError(ErrorCode.FENCED_LEADER_EPOCH, `${what}: leader epoch ${requested} is older than the current ${current}`);
  }
  throw new KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH, `${what}: leader epoch ${requested} is newer than this node's ${current}`);
}
