import type { z } from 'zod';
import { ConfigSchema } from './schema.js';

/**
 * A whole config, and the built-in defaults: the first of the three config layers (defaults → file → --set).
 * Both derive from the schema (schema.ts and its section files), where every key, its range, its default
 * and its description live; docs/config.md is generated from it too (`npm run docs:config`).
 */
export type Config = z.output<typeof ConfigSchema>;

/** The schema parsed from {}: every key a config file or `--set` may name, at its default. */
export const DEFAULTS: Config = ConfigSchema.parse({});
