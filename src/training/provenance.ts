import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import tf from '../core/util/tfjs.cjs';
import type { Config } from '../core/config/defaults.js';
import { configHash } from '../core/config/hash.js';
import { readJson } from '../core/util/fs.js';

export { configHash };

const ROOT = new URL('../..', import.meta.url).pathname;

export interface Provenance {
  switch_sim_version: string;
  tfjs_version: string;
  /** HEAD of switch-sim's own checkout, or null (not a checkout, or a folder inside another repository) */
  git_commit: string | null;
  /** sha256 (16 hex digits) of the resolved config with sorted keys */
  config_hash: string;
}

/**
 * The commit of the switch-sim checkout at `root`, or null: null outside a git checkout, and null when
 * `root` is merely inside some other repository (switch-sim installed into another project's folder),
 * whose commit says nothing about switch-sim.
 */
export function ownCommit(root: string = ROOT): string | null {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    if (realpathSync(git('rev-parse', '--show-toplevel')) !== realpathSync(root)) return null;
    return git('rev-parse', 'HEAD') || null;
  } catch {
    return null; // not a git checkout, or no git
  }
}

/** What produced a run: switch-sim's and tfjs's versions, the git commit when there is one, the config's hash. */
export function provenance(config: Config): Provenance {
  const pkg = readJson<{ version: string }>(join(ROOT, 'package.json'));
  return { switch_sim_version: pkg.version, tfjs_version: tf.version_core, git_commit: ownCommit(),
    config_hash: configHash(config) };
}
