import t from 'tap';
import { batchesOf, epochOrder, splitTrainValid } from '../../src/data/sampling.js';

const sorted = (a: readonly number[]) => [...a].sort((x, y) => x - y);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

t.test('each epoch is a permutation fixed by seed and epoch', async (t) => {
  const a = epochOrder(50, 7, 0);
  t.same(sorted(a), range(50), 'a permutation');
  t.same(epochOrder(50, 7, 0), a, 'same seed and epoch, same order');
  t.notSame(epochOrder(50, 7, 1), a, 'the next epoch differs');
  t.notSame(epochOrder(50, 8, 0), a, 'another seed differs');
  t.notSame(a, range(50), 'shuffled');
  // Every position is reached: over many epochs each sample comes first at least once.
  const firsts = new Set(range(400).map((e) => epochOrder(10, 7, e)[0]));
  t.equal(firsts.size, 10);
});

t.test('train/validation split: disjoint, complete, sized by the fraction, fixed by the seed', async (t) => {
  const { train, valid } = splitTrainValid(103, 0.2, 5);
  t.equal(valid.length, 21);
  t.equal(train.length, 82);
  t.same(sorted([...train, ...valid]), range(103));
  t.same(train, sorted(train), 'ascending');
  t.same(splitTrainValid(103, 0.2, 5), { train, valid });
  t.notSame(splitTrainValid(103, 0.2, 6).valid, valid);
  t.same(splitTrainValid(10, 0, 1), { train: range(10), valid: [] });
  t.throws(() => splitTrainValid(10, 1.5, 1), { message: 'validation fraction must be in 0..1, got 1.5' });
});

t.test('batches of N; the incomplete last batch is dropped', async (t) => {
  t.same(batchesOf([5, 4, 3, 2, 1, 0, 9], 3), [[5, 4, 3], [2, 1, 0]]);
  t.same(batchesOf([1, 2], 3), []);
  t.throws(() => batchesOf([1], 0), { message: 'batch size must be a positive integer, got 0' });
});
