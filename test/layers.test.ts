import test from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The import rules of .dependency-cruiser.cjs: src/'s layers run one way and no folders import each other.
const ROOT = new URL('..', import.meta.url).pathname;
const CRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const cruise = (cwd: string) => spawnSync(process.execPath, [CRUISE, 'src', '--config', join(ROOT, '.dependency-cruiser.cjs')], { cwd, encoding: 'utf8' });

test('src/ keeps the layers: no import runs up (core → runtime → training → apps → cli) and no folder cycle', (t) => {
  const r = cruise(ROOT);
  t.is(r.status, 0, r.stdout + r.stderr);
});

test('the rules refuse an upward import, a folder cycle and an import of the CLI, naming each rule', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layers-'));
  try {
    cpSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
    const file = (path: string, text: string) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    file('src/core/model/up.ts', "import { x } from '../../runtime/devices/x.js';\nexport const y = x;\n");
    file('src/runtime/devices/x.ts', 'export const x = 1;\n');
    file('src/core/router/a.ts', "import { b } from '../optim/b.js';\nexport const a = 1 + b;\n");
    file('src/core/optim/b.ts', "import { c } from '../router/c.js';\nexport const b = c;\n");
    file('src/core/router/c.ts', 'export const c = 1;\n');
    file('src/apps/sweep/s.ts', "import { m } from '../../cli/m.js';\nexport const s = m;\n");
    file('src/cli/m.ts', 'export const m = 1;\n');
    const r = cruise(dir);
    t.not(r.status, 0);
    t.regex(r.stdout, /core-imports-only-below: src\/core\/model\/up\.ts → src\/runtime\/devices\/x\.ts/);
    t.regex(r.stdout, /no-folder-cycles: src\/core\/(router|optim)/);
    t.regex(r.stdout, /apps-imports-only-below: src\/apps\/sweep\/s\.ts → src\/cli\/m\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
