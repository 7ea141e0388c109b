// tuneHeap: V8's sizing for the threads started after it (src/core/util/heap.ts). This file's process calls
// it once, between the two measurements, and nothing else here does.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { HEAP_FLAGS, tuneHeap } from '../src/core/util/heap.js';

// a thread that builds a ~33 MB live set (40,000 arrays of 100 numbers) and counts its full collections
const BUILD = `
const { parentPort } = require('node:worker_threads');
const { GCProfiler } = require('node:v8');
const profiler = new GCProfiler();
profiler.start();
const live = [];
for (let i = 0; i < 40000; i++) live.push(new Array(100).fill(i));
const full = profiler.stop().statistics.filter((s) => s.gcType !== 'Scavenge').length;
parentPort.postMessage(live.length === 40000 ? full : -1);`;

const fullCollections = () => new Promise<number>((done, fail) =>
  new Worker(BUILD, { eval: true }).once('message', done).once('error', fail));

test('a thread started after tuneHeap grows its old generation to 64 MB before a full collection', async (t) => {
  t.true(HEAP_FLAGS.includes('--initial-old-space-size=64'));
  const before = await fullCollections();
  t.true(before >= 1, `V8's own sizing collects on the way to 33 MB (got ${before})`);
  tuneHeap();
  t.is(await fullCollections(), 0);
});
