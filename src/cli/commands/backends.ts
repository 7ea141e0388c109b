import { Option, type Command } from 'commander';
import { PROBED, type Probed } from '../../core/backend/names.js';
import type { BackendProbe } from '../../runtime/devices/probe.js';

const fmt = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));

/** `switch-sim backends`: which compute backends this machine has, and how fast they are at an expert's shape. */
export function register(program: Command): void {
  program
    .command('backends')
    .description('every device backend: available or why not, the adapter, matmul and expert GFLOP/s, ' +
      'upload/download GB/s (each probed in a process of its own)')
    .option('--json', 'one JSON line per backend')
    .addOption(new Option('--only <backend>', 'probe one backend in this process').choices(PROBED).hideHelp())
    .action(async (o: { json?: boolean; only?: Probed }) => {
      const { probeHere, probeInChild } = await import('../../runtime/devices/probe.js');
      if (o.only) {
        process.stdout.write(`${JSON.stringify(await probeHere(o.only))}\n`);
        return;
      }
      const probes: BackendProbe[] = [];
      for (const b of PROBED) probes.push(await probeInChild(b));
      if (o.json) {
        for (const p of probes) process.stdout.write(`${JSON.stringify(p)}\n`);
        return;
      }
      const s = probes[0]!.shape;
      console.log(`expert shape: ${s.n} rows × d_model ${s.d} × d_ff ${s.d_ff}`);
      console.log(`${'backend'.padEnd(11)} ${'available'.padEnd(9)} ${'matmul GFLOP/s'.padStart(14)} ` +
        `${'expert GFLOP/s'.padStart(14)} ${'up GB/s'.padStart(8)} ${'down GB/s'.padStart(9)}  adapter / why not`);
      for (const p of probes) {
        console.log(`${p.backend.padEnd(11)} ${(p.available ? 'yes' : 'no').padEnd(9)} ` +
          `${fmt(p.matmul_gflops).padStart(14)} ${fmt(p.expert_gflops).padStart(14)} ` +
          `${fmt(p.upload_gbps, 2).padStart(8)} ${fmt(p.download_gbps, 2).padStart(9)}  ` +
          `${p.available ? p.adapter : p.error}`);
      }
    });
}
