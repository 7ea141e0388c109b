import { writeFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ConfigError } from '../../core/config/errors.js';

/** `switch-sim bench`: micro-benchmarks: the all-to-all alone. */
export function register(program: Command): void {
  const list = (name: string, parse: (v: string) => number | string) => (v: string) => v.split(',').map((x) => {
    const r = parse(x.trim());
    if (typeof r === 'number' && (!Number.isInteger(r) || r < 1))
      throw new InvalidArgumentError(`${name} must be a comma-separated list of integers >= 1 ` +
        `(got ${JSON.stringify(v)})`);
    return r;
  });
  program
    .command('bench')
    .description('micro-benchmarks')
    .command('dispatch')
    .description('the all-to-all alone (pack, signal, devices copy their rows, reply, unpack) against an empty round ' +
      'trip and a memcpy of the same bytes')
    .option('--tokens <list>', 'tokens per call, comma-separated', list('--tokens', Number),
      [64, 256, 1024, 4096, 16384, 65536])
    .option('--d-model <list>', 'row widths', list('--d-model', Number), [128])
    .option('--devices <list>', 'device threads', list('--devices', Number), [2])
    .option('--experts <list>', 'experts', list('--experts', Number), [4])
    .addOption(new Option('--payload <list>', 'slot transport: shared, transfer, clone')
      .argParser(list('--payload', String)).default(['shared', 'transfer', 'clone']))
    .option('--skew <list>', 'routing: uniform, zipf:S, one-hot:K', list('--skew', String), ['uniform', 'zipf:1.2'])
    .option('-o, --out <file>', 'also write the rows as CSV')
    .action(async (o: { tokens: number[]; dModel: number[]; devices: number[]; experts: number[]; payload: string[];
      skew: string[]; out?: string }) => {
      const { benchDispatch, toCsv } = await import('../../apps/bench/dispatch.js');
      for (const p of o.payload)
        if (!['shared', 'transfer', 'clone'].includes(p))
          throw new InvalidArgumentError(`--payload must list shared, transfer or clone (got ${JSON.stringify(p)})`);
      const cases = o.devices.flatMap((devices) =>
        o.experts.flatMap((experts) => o.dModel.flatMap((d) => o.payload.flatMap((payload) =>
          o.skew.flatMap((skew) => o.tokens.map((tokens) =>
            ({ tokens, d_model: d, devices, experts, payload: payload as 'shared', skew })))))));
      for (const c of cases) {
        if (c.experts % c.devices !== 0)
          throw new ConfigError(`--experts must be divisible by --devices (got ${c.experts} ` +
            `experts, ${c.devices} devices)`);
        if (c.tokens % c.devices !== 0)
          throw new ConfigError(`--tokens must be divisible by --devices (got ${c.tokens} ` +
            `tokens, ${c.devices} devices)`);
      }
      console.log(`${'tokens'.padStart(7)} ${'d'.padStart(4)} ${'D'.padStart(2)} ${'E'.padStart(3)} ` +
        `${'payload'.padEnd(8)} ${'skew'.padEnd(9)} ${'KiB'.padStart(8)} ` +
        `${'us_per_call'.padStart(11)} ${'GB/s'.padStart(6)} ${'round trip us'.padStart(13)} ` +
        `${'memcpy us'.padStart(9)} ${'x (round trip + memcpy)'.padStart(23)}  pack / devices / unpack us`);
      const rows = await benchDispatch(cases, (r) => console.log(
        `${String(r.tokens).padStart(7)} ${String(r.d_model).padStart(4)} ${String(r.devices).padStart(2)} ` +
          `${String(r.experts).padStart(3)} ${r.payload.padEnd(8)} ${r.skew.padEnd(9)} ` +
        `${(r.bytes / 1024).toFixed(0).padStart(8)} ${r.us_per_call.toFixed(1).padStart(11)} ` +
        `${r.gb_per_s.toFixed(2).padStart(6)} ${r.round_trip_us.toFixed(1).padStart(13)} ` +
        `${r.memcpy_us.toFixed(1).padStart(9)} ${r.ratio_to_limit.toFixed(2).padStart(23)}  ${r.pack_us.toFixed(0)} ` +
        `/ ${r.devices_us.toFixed(0)} / ${r.unpack_us.toFixed(0)}`));
      if (o.out) {
        writeFileSync(o.out, toCsv(rows));
        console.log(`wrote ${o.out}`);
      }
    });
}
