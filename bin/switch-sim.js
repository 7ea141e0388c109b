#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (worker threads get the same loader).
import { register } from 'tsx/esm/api';
register();
const { main, quietOnEpipe } = await import('../src/cli/main.ts');
quietOnEpipe();
process.exitCode = await main(process.argv.slice(2));
