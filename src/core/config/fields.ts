import { z } from 'zod';

/**
 * The kinds of value a config key holds, as zod schemas, and how the reference page writes each kind.
 * Every key of the schema is `kind.default(value).describe(text)`; the section files list them.
 */

/** An integer in [min, max]; max defaults to the largest safe integer, which the reference omits. */
export const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
export const positive = () => z.number().gt(0);
/** A number in [0, 1). */
export const fraction = () => z.number().min(0).lt(1);

/**
 * A config section: unknown keys are rejected, a missing section takes its keys' defaults. Every key has a
 * default, so {} is a valid input; TypeScript cannot see that through the generic shape, hence the cast
 * (DEFAULTS, the schema parsed from {}, would throw at load if a key had none).
 */
export const section = <T extends z.ZodRawShape>(shape: T, description: string) =>
  z.strictObject(shape).prefault({} as z.input<z.ZodObject<T, z.core.$strict>>).describe(description);

/** The part of a key's JSON Schema (z.toJSONSchema) that the reference reads. */
export interface KeySchema {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  default?: unknown;
  description?: string;
  properties?: Record<string, KeySchema>;
  items?: KeySchema;
}

const code = (v: unknown) => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;

/** A key's type and allowed values in words: `integer in [1, 4096]`, `number > 0`, `one of `a`, `b``. */
export function typeText(s: KeySchema): string {
  if (s.enum) return `one of ${s.enum.map(code).join(', ')}`;
  if (s.type === 'array') return `list${s.items ? ` of ${typeText(s.items).replace(/^one of /, '')}` : ''}`;
  if (s.type === 'string') return s.minLength ? 'non-empty string' : 'string';
  if (s.type !== 'number' && s.type !== 'integer') return s.type ?? 'any';
  const lo = s.exclusiveMinimum ?? s.minimum;
  const hi = s.exclusiveMaximum ?? (s.maximum === Number.MAX_SAFE_INTEGER ? undefined : s.maximum);
  const open = s.exclusiveMinimum !== undefined;
  const shut = s.exclusiveMaximum !== undefined;
  if (lo !== undefined && hi !== undefined) return `${s.type} in ${open ? '(' : '['}${lo}, ${hi}${shut ? ')' : ']'}`;
  if (lo !== undefined) return `${s.type} ${open ? '>' : '>='} ${lo}`;
  if (hi !== undefined) return `${s.type} ${shut ? '<' : '<='} ${hi}`;
  return s.type;
}

/** A default as a config file would write it: strings in backticks, `""` for the empty one. */
export const defaultText = (v: unknown) =>
  (v === '' ? '`""`' : typeof v === 'string' || Array.isArray(v) ? code(v) : String(v));
