// Writes docs/config.md, the config reference, from the config schema (src/core/config/schema*.ts).
//   npm run docs:config            regenerate the page
//   npm run docs:config -- --check exit 1, writing nothing, when the page is not what the schema gives
import { readFileSync, writeFileSync } from 'node:fs';
import { configReference, REFERENCE_FILE } from '../src/core/config/reference.js';

const root = new URL('..', import.meta.url).pathname;
const file = `${root}${REFERENCE_FILE}`;
const page = configReference();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // a missing page is a stale one
  }
  if (current !== page) {
    console.error(`${REFERENCE_FILE} is not current: run npm run docs:config`);
    process.exitCode = 1;
  }
} else {
  writeFileSync(file, page);
  console.log(`wrote ${REFERENCE_FILE}`);
}
