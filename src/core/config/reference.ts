import { z } from 'zod';
import { defaultText, typeText, type KeySchema } from './fields.js';
import { ConfigSchema, RULES } from './schema.js';

/**
 * docs/config.md, generated from the schema: every key with its type and allowed values, its default, its
 * description and the rules that tie it to other keys, one table per section. `npm run docs:config` writes
 * it; test/config-reference.test.ts fails when the page and the schema disagree.
 */

export const REFERENCE_FILE = 'docs/config.md';

/** One row of the reference: a key and what the schema says about it. */
export interface KeyDoc {
  key: string;
  type: string;
  default: string;
  description: string;
  rules: string[];
}

export interface SectionDoc {
  /** the section's dotted name; '' for the top-level keys */
  name: string;
  description: string;
  keys: KeyDoc[];
}

const isSection = (s: KeySchema) => s.type === 'object' && s.properties !== undefined;

/** The schema as sections of documented keys, in the schema's order; a nested section follows its parent. */
export function configSections(): SectionDoc[] {
  const root = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as KeySchema;
  const out: SectionDoc[] = [];
  const walk = (name: string, s: KeySchema) => {
    const entries = Object.entries(s.properties ?? {});
    const keys = entries.filter(([, v]) => !isSection(v)).map(([k, v]): KeyDoc => {
      const key = name ? `${name}.${k}` : k;
      return {
        key, type: typeText(v), default: defaultText(v.default), description: v.description ?? '',
        rules: RULES.filter((r) => r.key === key).map((r) => r.doc),
      };
    });
    out.push({ name, description: s.description ?? '', keys });
    for (const [k, v] of entries) if (isSection(v)) walk(name ? `${name}.${k}` : k, v);
  };
  walk('', root);
  return out;
}

/** Markdown table cell: no line breaks, pipes escaped. */
const cell = (text: string) => text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
/** Key names in prose (`moe.top_k`, `parallel.fault.step`) set as code, so they read as keys. */
const keysAsCode = (text: string, keys: Set<string>) =>
  text.replace(/(?<![\w.`])([a-z_]+(?:\.[a-z_0-9]+)+)(?![\w`])/g, (m) => (keys.has(m) ? `\`${m}\`` : m));

const INTRO = [
  'A run\'s config comes in three layers, each over the one before: the defaults below → a YAML file '
  + '(`--config file.yaml`) → `--set section.key=value` (repeatable; the value is read as YAML, so `true`, `2` and '
  + '`1e-3` are a boolean and numbers). `switch-sim simulate` reads the same keys, `plan.*` included.',
  '',
  'A key that is not listed here is rejected, as is a value outside its range or one that breaks a rule between '
  + 'keys. Each problem is one line that names the key, the rule and the value, and the command exits with code 2:',
  '',
  '```',
  'config error: moe.capacity_factor must be > 0 (got 0)',
  'config error: unknown key moe.capacity_factr (did you mean moe.capacity_factor?)',
  'config error: moe.n_experts must be divisible by parallel.devices (2) (got 3)',
  '```',
  '',
  'A key left out keeps its default; a whole section left out keeps all of them.',
];

/** The whole page, as `npm run docs:config` writes it. */
export function configReference(): string {
  const sections = configSections();
  const keys = new Set(sections.flatMap((s) => s.keys.map((k) => k.key)));
  const title = (s: SectionDoc) => (s.name ? `\`${s.name}\`` : 'Top level');
  /** GitHub's anchor of a section's heading: lower case, punctuation dropped, spaces as dashes */
  const anchor = (s: SectionDoc) => (s.name || 'top level').replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
  const lines = [
    '# Config reference',
    '',
    '<!-- Generated from src/core/config/schema*.ts by `npm run docs:config`: edit the schema, not this page. -->',
    '',
    ...INTRO,
    '',
    `Sections: ${sections.map((s) => `[${title(s)}](#${anchor(s)})`).join(', ')}.`,
  ];
  for (const s of sections) {
    lines.push('', `## ${title(s)}`, '');
    if (s.description) lines.push(keysAsCode(s.description, keys), '');
    lines.push('| key | type | default | description |', '|---|---|---|---|');
    for (const k of s.keys) {
      const rules = k.rules.length > 0 ? ` Rules: ${k.rules.join('; ')}.` : '';
      const text = keysAsCode(`${k.description}${rules}`, keys);
      lines.push(`| \`${k.key}\` | ${cell(k.type)} | ${cell(k.default)} | ${cell(text)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}
