import { createHash } from 'node:crypto';
import type { Config } from './defaults.js';

/** Sorted-key JSON, so that equal configs hash equally whatever order their keys were written in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 (16 hex digits) of a value's sorted-key JSON. */
export const canonicalHash = (value: unknown) => createHash('sha256').update(canonical(value)).digest('hex')
  .slice(0, 16);

export const configHash = (config: Config) => canonicalHash(config);
