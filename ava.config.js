// ava's configuration. Files start longest first, so that with two at a time (scripts/test.mjs) the
// long ones overlap instead of one running alone at the end; the rest alphabetically.
const LONGEST_FIRST = ['shipped-sweeps', 'backends', 'search', 'queue', 'worker-idle', 'sweep', 'megatron-args', 'spmd', 'threads',
  'kernels-train', 'hf-config', 'routers-train', 'worker-file', 'worker-poll', 'calibrate', 'dispatch-bench', 'simulate', 'cli'];
const rank = (file) => {
  const i = LONGEST_FIRST.findIndex((name) => file.endsWith(`/${name}.test.ts`));
  return i < 0 ? LONGEST_FIRST.length : i;
};

export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  files: ['test/**/*.test.ts'],
  timeout: '3m',
  concurrency: 1,
  sortTestFiles: (a, b) => rank(a) - rank(b) || a.localeCompare(b),
};
