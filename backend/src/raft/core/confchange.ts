// Membership changes (Raft thesis chapter 4): computing the next configuration from a ConfChange, restoring
// a configuration from a ConfState, and the byte encoding of ConfChange entries.
//
// A change of at most one voter may go directly from one majority configuration to the next (any two
// majorities of configurations that differ by one voter intersect). Anything else goes through a joint
// configuration: first C_old,new (decisions need majorities of both), then, once that is applied, C_new
// (the "leave joint" change, an empty ConfChange). A change takes effect when it is applied, never when
// it is appended, and the leader keeps one change in flight at a time.
//
// Every function here is pure: it returns a new Membership and ProgressMap and leaves its inputs alone, so
// a change that fails validation leaves the tracker untouched.

import { ConfChangeError } from './errors.ts';
import type { Progress } from './progress.ts';
import { cloneMembership, isJoint, newProgress } from './tracker.ts';
import type { InflightLimits, Membership, ProgressMap } from './tracker.ts';
import { ConfChangeType } from './types.ts';
import type { ConfChange, ConfChangeSingle, ConfState, NodeId } from './types.ts';
import { NONE } from './types.ts';

export interface MembershipAndProgress {
  membership: Membership;
  progress: ProgressMap;
}

/** Context a change needs: the leader's last index (where a new member's progress starts) and window sizes. */
export interface ChangeContext {
  lastIndex: number;
  limits: InflightLimits;
}

/** Whether a ConfChange is the empty one that leaves a joint configuration. */
export function isLeaveJoint(cc: ConfChange): boolean {
  return cc.changes.length === 0;
}

/** Whether applying `cc` enters a joint configuration (more than one single, or joint forced). */
export function entersJoint(cc: ConfChange): boolean {
  return !isLeaveJoint(cc) && (cc.joint || cc.changes.length > 1);
}

/**
 * The configuration after applying `cc` to `current`. Throws ConfChangeError when the change is not
 * allowed (entering a joint configuration twice, leaving a non-joint one, changing more than one voter
 * without joint consensus, removing every voter).
 */
export function applyChange(current: MembershipAndProgress, cc: ConfChange, ctx: ChangeContext): MembershipAndProgress {
  let next: MembershipAndProgress;
  if (isLeaveJoint(cc)) next = leaveJoint(current);
  else if (entersJoint(cc)) next = enterJoint(current, cc.autoLeave ?? true, cc.changes, ctx);
  else next = simpleChange(current, cc.changes, ctx);
  checkMembership(next);
  return next;
}

function copy(current: MembershipAndProgress): MembershipAndProgress {
  // Progress objects are cloned so that a change never mutates the live ones it may later be discarded for.
  const progress: ProgressMap = new Map();
  for (const [id, pr] of current.progress) progress.set(id, pr.clone());
  return { membership: cloneMembership(current.membership), progress };
}

function enterJoint(
  current: MembershipAndProgress,
  autoLeave: boolean,
  changes: readonly ConfChangeSingle[],
  ctx: ChangeContext,
): MembershipAndProgress {
  if (isJoint(current.membership)) throw new ConfChangeError('configuration is already joint');
  if (current.membership.incoming.size === 0) {
    // A node that has no configuration yet (awaiting a snapshot) cannot have one changed.
    throw new ConfChangeError('cannot make a zero-voter configuration joint');
  }
  const next = copy(current);
  next.membership.outgoing = new Set(next.membership.incoming);
  applySingles(next, changes, ctx);
  next.membership.autoLeave = autoLeave;
  return next;
}

function leaveJoint(current: MembershipAndProgress): MembershipAndProgress {
  if (!isJoint(current.membership)) throw new ConfChangeError('cannot leave a non-joint configuration');
  const next = copy(current);
  const m = next.membership;
  for (const id of m.learnersNext) {
    m.learners.add(id);
    next.progress.get(id)!.isLearner = true;
  }
  m.learnersNext.clear();
  for (const id of m.outgoing) {
    if (!m.incoming.has(id) && !m.learners.has(id)) next.progress.delete(id);
  }
  m.outgoing.clear();
  m.autoLeave = false;
  return next;
}

function simpleChange(
  current: MembershipAndProgress,
  changes: readonly ConfChangeSingle[],
  ctx: ChangeContext,
): MembershipAndProgress {
  if (isJoint(current.membership)) {
    throw new ConfChangeError('cannot apply a simple change in a joint configuration');
  }
  const next = copy(current);
  applySingles(next, changes, ctx);
  const before = current.membership.incoming;
  const after = next.membership.incoming;
  let changed = 0;
  for (const id of before) if (!after.has(id)) changed++;
  for (const id of after) if (!before.has(id)) changed++;
  if (changed > 1) throw new ConfChangeError('more than one voter changed without joint consensus');
  return next;
}

function applySingles(next: MembershipAndProgress, changes: readonly ConfChangeSingle[], ctx: ChangeContext): void {
  for (const c of changes) {
    if (!Number.isSafeInteger(c.nodeId) || c.nodeId <= NONE) throw new ConfChangeError(`invalid node id ${c.nodeId}`);
    switch (c.type) {
      case ConfChangeType.AddNode:
        makeVoter(next, c.nodeId, ctx);
        break;
      case ConfChangeType.AddLearnerNode:
        makeLearner(next, c.nodeId, ctx);
        break;
      case ConfChangeType.RemoveNode:
        removeNode(next, c.nodeId);
        break;
      default:
        throw new ConfChangeError(`unknown change type ${String(c.type)}`);
    }
  }
  if (next.membership.incoming.size === 0) throw new ConfChangeError('removed all voters');
}

function makeVoter(next: MembershipAndProgress, id: NodeId, ctx: ChangeContext): void {
  const m = next.membership;
  const pr = next.progress.get(id);
  if (pr === undefined) {
    next.progress.set(id, newProgress(ctx.lastIndex, false, ctx.limits));
  } else {
    pr.isLearner = false;
  }
  m.learners.delete(id);
  m.learnersNext.delete(id);
  m.incoming.add(id);
}

function makeLearner(next: MembershipAndProgress, id: NodeId, ctx: ChangeContext): void {
  const m = next.membership;
  const pr = next.progress.get(id);
  if (pr === undefined) {
    next.progress.set(id, newProgress(ctx.lastIndex, true, ctx.limits));
    m.learners.add(id);
    return;
  }
  if (pr.isLearner) return;
  m.incoming.delete(id);
  if (m.outgoing.has(id)) {
    // Still a voter of the outgoing half: it becomes a learner only when the joint configuration is left.
    m.learnersNext.add(id);
  } else {
    pr.isLearner = true;
    m.learners.add(id);
  }
}

function removeNode(next: MembershipAndProgress, id: NodeId): void {
  const m = next.membership;
  if (!next.progress.has(id)) return;
  m.incoming.delete(id);
  m.learners.delete(id);
  m.learnersNext.delete(id);
  // An outgoing voter keeps its progress: it still counts in the outgoing half until the joint config ends.
  if (!m.outgoing.has(id)) next.progress.delete(id);
}

/** Throws ConfChangeError if the membership breaks an invariant written on Membership (tracker.ts). */
export function checkMembership(c: MembershipAndProgress): void {
  const m = c.membership;
  const need = (id: NodeId, learner: boolean | undefined, what: string): void => {
    const pr: Progress | undefined = c.progress.get(id);
    if (pr === undefined) throw new ConfChangeError(`no progress for ${what} ${id}`);
    if (learner !== undefined && pr.isLearner !== learner) {
      throw new ConfChangeError(`${what} ${id} has isLearner=${pr.isLearner}`);
    }
  };
  for (const id of m.incoming) need(id, false, 'voter');
  for (const id of m.outgoing) need(id, false, 'outgoing voter');
  for (const id of m.learners) {
    need(id, true, 'learner');
    if (m.incoming.has(id) || m.outgoing.has(id)) throw new ConfChangeError(`${id} is both voter and learner`);
  }
  for (const id of m.learnersNext) {
    need(id, false, 'next learner');
    if (!m.outgoing.has(id)) throw new ConfChangeError(`next learner ${id} is not an outgoing voter`);
    if (m.incoming.has(id)) throw new ConfChangeError(`next learner ${id} is an incoming voter`);
  }
  for (const id of c.progress.keys()) {
    if (!m.incoming.has(id) && !m.outgoing.has(id) && !m.learners.has(id) && !m.learnersNext.has(id)) {
      throw new ConfChangeError(`progress for non-member ${id}`);
    }
  }
  if (!isJoint(m)) {
    if (m.learnersNext.size > 0) throw new ConfChangeError('learnersNext outside a joint configuration');
    if (m.autoLeave) throw new ConfChangeError('autoLeave outside a joint configuration');
  }
}

/** The membership and fresh progress described by a ConfState (from a snapshot or from storage). */
export function restoreMembership(cs: ConfState, ctx: ChangeContext): MembershipAndProgress {
  const membership: Membership = {
    incoming: new Set(cs.voters),
    outgoing: new Set(cs.votersOutgoing),
    learners: new Set(cs.learners),
    learnersNext: new Set(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
  const progress: ProgressMap = new Map();
  for (const id of [...cs.voters, ...cs.votersOutgoing, ...cs.learnersNext]) {
    if (!progress.has(id)) progress.set(id, newProgress(ctx.lastIndex, false, ctx.limits));
  }
  for (const id of cs.learners) {
    if (progress.has(id)) throw new ConfChangeError(`${id} is both voter and learner`);
    progress.set(id, newProgress(ctx.lastIndex, true, ctx.limits));
  }
  for (const id of progress.keys()) {
    if (!Number.isSafeInteger(id) || id <= NONE) throw new ConfChangeError(`invalid node id ${id}`);
  }
  const result = { membership, progress };
  checkMembership(result);
  return result;
}

// Encoding (version 1), big-endian:
//   u8 version (1) | u8 flags (bit 0 joint, bit 1 autoLeave) | u32 count |
//   count x ( u8 type | u64 nodeId )
const VERSION = 1;
const HEADER_BYTES = 6;
const SINGLE_BYTES = 9;
const FLAG_JOINT = 1;
const FLAG_AUTO_LEAVE = 2;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + SINGLE_BYTES * cc.changes.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, (cc.joint ? FLAG_JOINT : 0) | ((cc.autoLeave ?? true) ? FLAG_AUTO_LEAVE : 0));
  view.setUint32(2, cc.changes.length);
  let at = HEADER_BYTES;
  for (const c of cc.changes) {
    if (!(c.type in ConfChangeType) || typeof c.type !== 'number') throw new ConfChangeError(`unknown change type ${String(c.type)}`);
    if (!Number.isSafeInteger(c.nodeId) || c.nodeId <= NONE) throw new ConfChangeError(`invalid node id ${c.nodeId}`);
    view.setUint8(at, c.type);
    view.setBigUint64(at + 1, BigInt(c.nodeId));
    at += SINGLE_BYTES;
  }
  return out;
}

/** Decodes what encodeConfChange produced; throws ConfChangeError on anything else. */
export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.byteLength < HEADER_BYTES) throw new ConfChangeError(`conf change too short (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== VERSION) throw new ConfChangeError(`unknown conf change version ${version}`);
  const flags = view.getUint8(1);
  if ((flags & ~(FLAG_JOINT | FLAG_AUTO_LEAVE)) !== 0) throw new ConfChangeError(`unknown conf change flags ${flags}`);
  const count = view.getUint32(2);
  if (bytes.byteLength !== HEADER_BYTES + SINGLE_BYTES * count) {
    throw new ConfChangeError(`conf change of ${count} changes has ${bytes.byteLength} bytes`);
  }
  const changes: ConfChangeSingle[] = [];
  let at = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const type = view.getUint8(at);
    if (!(type in ConfChangeType)) throw new ConfChangeError(`unknown change type ${type}`);
    const id = view.getBigUint64(at + 1);
    if (id === 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new ConfChangeError(`invalid node id ${id}`);
    changes.push({ type: type as ConfChangeType, nodeId: Number(id) });
    at += SINGLE_BYTES;
  }
  return { changes, joint: (flags & FLAG_JOINT) !== 0, autoLeave: (flags & FLAG_AUTO_LEAVE) !== 0 };
}
