import { InvalidArgumentError } from 'commander';

/** Repeatable options (`--set a=1 --set b=2`). */
export const collect = (v: string, acc: string[]) => [...acc, v];

/** A numeric option checked at parse time: errors name the flag, the rule and the value. */
export const number = (name: string, min: number, integer = false) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min} ` +
      `(got ${JSON.stringify(v)})`);
  }
  return n;
};

/** `--seeds 1,2,3`: a non-empty list of integers >= 0. */
export const seedList = (v: string): number[] => {
  const seeds = v.split(',').map((s) => Number(s.trim()));
  if (v.trim() === '' || seeds.some((n) => !Number.isInteger(n) || n < 0))
    throw new InvalidArgumentError(`--seeds must be a comma-separated list of integers >= 0 ` +
      `(got ${JSON.stringify(v)})`);
  return seeds;
};
