// tfjs, loaded once per thread through require, the way it loads fastest: imported from an ES
// module, Node would first scan its megabytes of CommonJS (and every package it re-exports) for the
// names it exports, and tsx's source maps would read its .map files; that was ~220 ms of each
// process's and each device thread's start. Every module of the project imports tfjs from here
// (`import tf from './tfjs.cjs'`; tfjs.d.cts gives it tfjs's own types).
//
// The union package @tensorflow/tfjs is what registers the gradients and chained ops on top of
// tfjs-core, so it is the one loaded; but it also requires tfjs-layers, tfjs-converter, tfjs-data and
// tfjs-backend-webgl only to re-export them (and their version strings), and switch-sim uses none of
// them (Node has no WebGL: that backend never registers here). While tfjs loads, require.cache (Node's
// documented module cache) holds an empty module for each, so tfjs re-exports nothing of them and they
// are not read: tfjs loads in ~60–75 ms instead of ~150 (BENCHMARKS.md, "Starting device threads"), in
// every process and device thread. The entries are removed afterwards: a later require of one of those
// packages gets the real one; but @tensorflow/tfjs itself stays the cut-down union for the process (the
// types, tfjs.d.cts, still show all of it): src/core/util/tfjs-full.cjs adds the rest to it, for what
// needs the whole union (tfjs-node).
'use strict';
const Module = require('node:module');
const { dirname } = require('node:path');

const UNUSED = ['@tensorflow/tfjs-layers', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-data',
  '@tensorflow/tfjs-backend-webgl'];

/** puts an empty, loaded module where tfjs would find each unused package; returns what it put */
function stubUnused() {
  const from = { paths: [dirname(require.resolve('@tensorflow/tfjs'))] }; // resolved as tfjs resolves them
  const stubs = [];
  for (const name of UNUSED) {
    let file;
    try {
      file = require.resolve(name, from);
    } catch {
      continue; // not installed: tfjs's own require will say so
    }
    if (require.cache[file]) continue; // already loaded for real: tfjs gets that
    const m = new Module(file, null);
    m.filename = file;
    m.loaded = true;
    m.exports = {};
    require.cache[file] = m;
    stubs.push([file, m]);
  }
  return stubs;
}

const maps = process.sourceMapsEnabled;
process.setSourceMapsEnabled(false); // tfjs's source maps are not ours to read
let stubs = [];
let tf;
try {
  stubs = stubUnused();
  tf = require('@tensorflow/tfjs');
} finally {
  process.setSourceMapsEnabled(maps);
  for (const [file, m] of stubs) if (require.cache[file] === m) delete require.cache[file];
}
module.exports = tf; // not `= require(...)`: Node would then scan tfjs for names after all
