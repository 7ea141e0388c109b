import { rngFor } from '../util/rng.js';

/**
 * Hash layers (Roller et al. 2021, "Hash Layers For Large Sparse Models"): no router; token id v
 * always goes to the expert table[v], a fixed function of the id drawn once from the run's seed.
 * The table is balanced over ids, a seeded permutation of the vocabulary dealt round-robin
 * (ids of the permutation's position i go to expert i mod E): every expert gets ⌊V/E⌋ or ⌈V/E⌉ ids;
 * how many tokens it gets then depends on how often its ids occur (characters are far from uniform).
 * Each Switch layer has its own table (its own stream), as each hash layer of the paper has its own hash.
 */
export function hashTable(seed: number, layer: number, vocabSize: number, experts: number): Int32Array {
  const perm = rngFor(seed, 'hash', layer).permutation(vocabSize);
  const table = new Int32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) table[perm[i]!] = i % experts;
  return table;
}

/** The expert of every token: [N] for token ids [N]. */
export function hashExperts(table: Int32Array, tokens: Int32Array): Int32Array {
  return Int32Array.from(tokens, (v) => {
    const e = table[v];
    if (e === undefined) throw new Error(`hash routing: token id ${v} is outside the table's ${table.length} ids`);
    return e;
  });
}
