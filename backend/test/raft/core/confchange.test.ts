import test from 'ava';
import {
  ConfChangeError,
  ConfChangeType,
  applyChange,
  decodeConfChange,
  encodeConfChange,
  membershipToConfState,
  restoreMembership,
} from '../../../src/raft/core/index.ts';
import type { ConfChange, ConfState, MembershipAndProgress } from '../../../src/raft/core/index.ts';
import { confOf } from './harness.ts';

const ctx = { lastIndex: 10, limits: { maxInflightMsgs: 4, maxInflightBytes: 0 } };
const add = (nodeId: number) => ({ type: ConfChangeType.AddNode, nodeId });
const remove = (nodeId: number) => ({ type: ConfChangeType.RemoveNode, nodeId });
const learner = (nodeId: number) => ({ type: ConfChangeType.AddLearnerNode, nodeId });
const cc = (changes: ConfChange['changes'], joint = false, autoLeave?: boolean): ConfChange =>
  autoLeave === undefined ? { changes, joint } : { changes, joint, autoLeave };

function start(cs: ConfState): MembershipAndProgress {
  return restoreMembership(cs, ctx);
}
const conf = (m: MembershipAndProgress) => membershipToConfState(m.membership);

test('simple change: one voter at a time; learners freely', (t) => {
  const c = applyChange(start(confOf([1, 2, 3])), cc([add(4)]), ctx);
  t.deepEqual(conf(c).voters, [1, 2, 3, 4]);
  t.is(c.progress.get(4)!.next, 11);
  const l = applyChange(c, cc([learner(5)]), ctx);
  t.deepEqual(conf(l).learners, [5]);
  t.true(l.progress.get(5)!.isLearner);
  // Promote the learner: one voter changes.
  const p = applyChange(l, cc([add(5)]), ctx);
  t.deepEqual(conf(p).voters, [1, 2, 3, 4, 5]);
  t.deepEqual(conf(p).learners, []);
  t.false(p.progress.get(5)!.isLearner);
  // Demote a voter to learner.
  const d = applyChange(p, cc([learner(1)]), ctx);
  t.deepEqual(conf(d).voters, [2, 3, 4, 5]);
  t.deepEqual(conf(d).learners, [1]);
  const r = applyChange(d, cc([remove(1)]), ctx);
  t.false(r.progress.has(1));
});

test('several changes go through a joint configuration; removing every voter is refused', (t) => {
  const c = start(confOf([1, 2, 3]));
  const j = conf(applyChange(c, { changes: [add(4), add(5)], joint: false, autoLeave: false }, ctx));
  t.deepEqual(j.voters, [1, 2, 3, 4, 5]);
  t.deepEqual(j.votersOutgoing, [1, 2, 3], 'two voters changed: joint even without joint: true');
  const one = start(confOf([1]));
  t.throws(() => applyChange(one, cc([remove(1)]), ctx), { instanceOf: ConfChangeError, message: /all voters/ });
});

test('§4.3 joint consensus: enter, then leave; outgoing voters keep progress until then', (t) => {
  const c0 = start(confOf([1, 2, 3]));
  const joint = applyChange(c0, cc([add(4), remove(1)]), ctx);
  const cs = conf(joint);
  t.deepEqual(cs.voters, [2, 3, 4]);
  t.deepEqual(cs.votersOutgoing, [1, 2, 3]);
  t.true(cs.autoLeave);
  t.true(joint.progress.has(1));
  // No second change while joint, except leaving.
  t.throws(() => applyChange(joint, cc([add(5)]), ctx), { instanceOf: ConfChangeError });
  const left = applyChange(joint, cc([]), ctx);
  t.deepEqual(conf(left), confOf([2, 3, 4]));
  t.false(left.progress.has(1));
  t.throws(() => applyChange(left, cc([]), ctx), { instanceOf: ConfChangeError, message: /non-joint/ });
  // Inputs are untouched.
  t.deepEqual(conf(c0), confOf([1, 2, 3]));
  t.deepEqual(conf(joint).votersOutgoing, [1, 2, 3]);
});

test('joint: demoting an outgoing voter parks it in learnersNext until leaving', (t) => {
  const joint = applyChange(start(confOf([1, 2, 3])), cc([learner(3)], true, false), ctx);
  const cs = conf(joint);
  t.deepEqual(cs.voters, [1, 2]);
  t.deepEqual(cs.votersOutgoing, [1, 2, 3]);
  t.deepEqual(cs.learnersNext, [3]);
  t.deepEqual(cs.learners, []);
  t.false(cs.autoLeave);
  t.false(joint.progress.get(3)!.isLearner);
  const left = conf(applyChange(joint, cc([]), ctx));
  t.deepEqual(left.voters, [1, 2]);
  t.deepEqual(left.learners, [3]);
  t.deepEqual(left.learnersNext, []);
});

test('joint: a zero-voter configuration cannot be made joint; bootstrap by a simple change works', (t) => {
  const empty = start(confOf([]));
  t.throws(() => applyChange(empty, cc([add(1), add(2)]), ctx), { message: /zero-voter/ });
  t.deepEqual(conf(applyChange(empty, cc([add(1)]), ctx)).voters, [1]);
});

test('restoreMembership rejects a node both voter and learner', (t) => {
  t.throws(() => restoreMembership(confOf([1, 2], [2]), ctx), { instanceOf: ConfChangeError });
  const cs: ConfState = { voters: [1], learners: [], votersOutgoing: [1, 2], learnersNext: [2], autoLeave: true };
  t.deepEqual(conf(restoreMembership(cs, ctx)), cs);
});

test('encode/decode round-trip and rejection of malformed bytes', (t) => {
  const cases: ConfChange[] = [
    { changes: [], joint: false, autoLeave: true },
    { changes: [add(1)], joint: false, autoLeave: true },
    { changes: [add(2 ** 40), remove(7), learner(3)], joint: true, autoLeave: false },
  ];
  for (const c of cases) t.deepEqual(decodeConfChange(encodeConfChange(c)), c);
  t.deepEqual(decodeConfChange(encodeConfChange({ changes: [add(1)], joint: false })).autoLeave, true);
  const good = encodeConfChange(cases[1]!);
  t.throws(() => decodeConfChange(new Uint8Array(0)), { instanceOf: ConfChangeError });
  t.throws(() => decodeConfChange(good.subarray(0, good.length - 1)), { instanceOf: ConfChangeError });
  const badVersion = good.slice();
  badVersion[0] = 9;
  t.throws(() => decodeConfChange(badVersion), { instanceOf: ConfChangeError });
  const badType = good.slice();
  badType[6] = 200;
  t.throws(() => decodeConfChange(badType), { instanceOf: ConfChangeError });
  const zeroId = encodeConfChange(cases[1]!);
  zeroId.fill(0, 7);
  t.throws(() => decodeConfChange(zeroId), { instanceOf: ConfChangeError });
  t.throws(() => encodeConfChange({ changes: [add(0)], joint: false }), { instanceOf: ConfChangeError });
  // Decoding a view into a larger buffer works (no assumption about byteOffset).
  const big = new Uint8Array(good.length + 5);
  big.set(good, 5);
  t.deepEqual(decodeConfChange(big.subarray(5)), cases[1]);
});
