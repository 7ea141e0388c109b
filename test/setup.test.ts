import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.js';

const SETUP = new URL('../scripts/test-setup.sh', import.meta.url).pathname;

test('the test set-up stops at once with one line naming what to install, away from Debian and Ubuntu', (t) => {
  const osRelease = join(tempDir(t), 'os-release');
  writeFileSync(osRelease, 'ID=fedora\nID_LIKE="rhel centos"\n');
  const r = spawnSync('bash', [SETUP], { encoding: 'utf8', env: { ...process.env, SWITCH_SIM_OS_RELEASE: osRelease, SWITCH_SIM_CHROMIUM: '/nowhere/chromium' } });
  t.is(r.status, 1);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.regex(r.stderr, /^test setup: missing chromium \(or SWITCH_SIM_CHROMIUM=\/path\/to\/chromium\): install them \(on Debian or Ubuntu: apt-get install -y chromium libegl1 libegl-mesa0 libgles2 mesa-vulkan-drivers redis-server; /);
  // with all of them present (this machine, as the suite runs) it says nothing and lets the tests run
  const ok = spawnSync('bash', [SETUP], { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
  t.is(ok.stderr, '');
});
