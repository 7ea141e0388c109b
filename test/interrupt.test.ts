import test from 'ava';
import { spawn } from 'node:child_process';

const MODULE = new URL('../src/core/util/interrupt.ts', import.meta.url).pathname;

// a process with the handler installed: it says "ready", then reports each stage on stdout
const SCRIPT = `
import { onCtrlC } from ${JSON.stringify(MODULE)};
onCtrlC({ first: 'finishing', second: 'children stop too', onFirst: () => console.log('first'), onSecond: () => console.log('second') });
setInterval(() => {}, 1000);
console.log('ready');
`;

test('Ctrl-C: the first stops gracefully with one line on stderr, the second ends the process at once, by SIGINT', async (t) => {
  const cwd = new URL('..', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], { cwd });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const answered = new Set<string>();
  child.stdout.on('data', (d) => {
    stdout += d;
    // each SIGINT answers the child's report of the stage before: no timers
    for (const stage of ['ready', 'first']) {
      if (stdout.includes(stage) && !answered.has(stage)) {
        answered.add(stage);
        child.kill('SIGINT');
      }
    }
  });
  type Exit = { code: number | null; signal: NodeJS.Signals | null };
  const exit = await new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.deepEqual(exit, { code: null, signal: 'SIGINT' }, stderr);
  t.deepEqual(stdout.trim().split('\n'), ['ready', 'first', 'second']);
  t.is(stderr.trim(), 'Ctrl-C: finishing (Ctrl-C again to quit now: children stop too)');
});
