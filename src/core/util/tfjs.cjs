// tfjs, loaded once per thread through require, the way it loads fastest: imported from an ES
// module, Node would first scan its megabytes of CommonJS (and every package it re-exports) for the
// names it exports, and tsx's source maps would read its .map files; that was ~220 ms of each
// process's and each device thread's start. Every module of the project imports tfjs from here
// (`import tf from './tfjs.cjs'`; tfjs.d.cts gives it tfjs's own types).
'use strict';
const maps = process.sourceMapsEnabled;
process.setSourceMapsEnabled(false); // tfjs's source maps are not ours to read
let tf;
try {
  tf = require('@tensorflow/tfjs');
} finally {
  process.setSourceMapsEnabled(maps);
}
module.exports = tf; // not `= require(...)`: Node would then scan tfjs for names after all
