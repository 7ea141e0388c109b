import type { Config } from '../core/config/defaults.js';

/**
 * Learning rate at optimizer step t (from 1):
 *   warmup:   lr · t / warmup                           for t ≤ warmup
 *   cosine:   min_lr + ½(lr − min_lr)(1 + cos(π·progress)) after warmup
 *   constant: lr
 *   noam:     lr · min(t / warmup, √(warmup / t))       (Vaswani et al., peak = lr)
 */
export function learningRate(t: number, c: Config['train']): number {
  const warm = c.warmup_steps;
  if (c.schedule === 'noam') return c.lr * Math.min(t / Math.max(1, warm), Math.sqrt(Math.max(1, warm) / t));
  if (warm > 0 && t <= warm) return (c.lr * t) / warm;
  if (c.schedule === 'constant') return c.lr;
  const progress = Math.min(1, (t - warm) / Math.max(1, c.steps - warm));
  return c.min_lr + 0.5 * (c.lr - c.min_lr) * (1 + Math.cos(Math.PI * progress));
}
