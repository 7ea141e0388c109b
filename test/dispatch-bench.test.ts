import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchDispatch, CSV_COLUMNS, toCsv } from '../src/apps/bench/dispatch.js';
import { cli, tempDir } from './helpers.js';


test.serial('bench dispatch: every payload moves the rows losslessly and reports the call against its limits', async (t) => {
  const cases = (['shared', 'transfer', 'clone'] as const).flatMap((payload) => ['uniform', 'one-hot:1'].map((skew) =>
    ({ tokens: 64, d_model: 16, devices: 2, experts: 4, payload, skew })));
  const rows = await benchDispatch(cases); // throws if a kept row comes back changed
  t.is(rows.length, 6);
  for (const r of rows) {
    t.true(r.us_per_call > 0 && r.round_trip_us > 0 && r.memcpy_us > 0 && r.gb_per_s > 0);
    t.is(r.ratio_to_limit, r.us_per_call / (r.round_trip_us + r.memcpy_us));
    // C = ⌊1.25 · 32 / 4⌋ = 10 slots per group and expert: uniform keeps all 64 rows, one-hot 10 per group
    t.is(r.bytes, (r.skew === 'uniform' ? 64 : 20) * 16 * 4 * 2);
    t.is(r.dropped_fraction, r.skew === 'uniform' ? 0 : 44 / 64);
  }
  const csv = toCsv(rows).trim().split('\n');
  t.deepEqual(csv[0]!.split(','), [...CSV_COLUMNS]);
  t.true(csv[0]!.includes('us_per_call') && csv[0]!.includes('round_trip_us') && csv[0]!.includes('memcpy_us'));
  t.is(csv.length, 7);
});

test.serial('the CLI writes the CSV and refuses impossible cases with exit 2', async (t) => {
  const out = join(tempDir(t), 'd.csv');
  const r = await cli('bench', 'dispatch', '--tokens', '64', '--d-model', '8', '--payload', 'shared', '--skew', 'zipf:1.2', '--out', out);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /round trip us +memcpy us/);
  t.is(readFileSync(out, 'utf8').trim().split('\n').length, 2);
  const bad = await cli('bench', 'dispatch', '--experts', '3');
  t.is(bad.status, 2);
  t.is(bad.stderr.trim(), 'config error: --experts must be divisible by --devices (got 3 experts, 2 devices)');
  const tokens = await cli('bench', 'dispatch', '--tokens', '64,x');
  t.is(tokens.status, 2);
  t.regex(tokens.stderr.trim(), /--tokens must be a comma-separated list of integers >= 1 \(got "64,x"\)/);
});
