// Type-aware lint: an unhandled promise in a daemon is a crash at 3 a.m.
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layering of DESIGN.md §1: which of our folders (src/<name>) the code in each may import.
// Imports point down — at ← modem ← sender / outbox ← api ← daemon ← cli; core is imported by
// anyone and imports nothing of ours; the sim is never imported by daemon code.
const LAYERS = {
  core: [],
  at: ['core'],
  mms: ['core'],
  modem: ['core', 'at', 'mms'],
  outbox: ['core'],
  sender: ['core', 'modem', 'outbox', 'mms'],
  inbound: ['core', 'mms'],
  carrier: ['core', 'mms', 'config'],
  media: ['core', 'mms'],
  config: ['core'],
  api: ['core', 'outbox', 'sender', 'inbound'],
  daemon: ['core', 'config', 'at', 'mms', 'modem', 'outbox', 'sender', 'inbound', 'carrier', 'media', 'api'],
  cli: ['core', 'config', 'daemon', 'api', 'outbox'],
  sim: ['core', 'mms', 'at', 'inbound'],
  harness: ['core', 'sim', 'api', 'media'],
  // Measures everything.
  bench: ['core', 'config', 'at', 'mms', 'modem', 'outbox', 'sender', 'inbound', 'carrier', 'media', 'api', 'daemon', 'sim', 'harness'],
};
// Entry points of the tools, not of the daemon (after `cli`, so they override it).
const TOOL_ENTRY_POINTS = {
  'cli/mmsd-sim.ts': ['core', 'sim'],
  'cli/demo.ts': ['core', 'harness'],
};

const unplaced = readdirSync(new URL('src/', import.meta.url), { withFileTypes: true }).filter((d) => d.isDirectory() && !(d.name in LAYERS));
if (unplaced.length > 0) throw new Error(`eslint.config.js: give src/${unplaced[0].name} a row in LAYERS (DESIGN.md §1)`);

/** no-restricted-imports for code in src/<where>: every folder of ours not in `allowed` is refused. */
function layer(where, allowed) {
  const self = where.split('/')[0];
  const refused = Object.keys(LAYERS).filter((f) => f !== self && !allowed.includes(f));
  const may = allowed.length > 0 ? `only ${allowed.map((f) => `src/${f}`).join(', ')}` : 'nothing';
  return {
    files: [where.endsWith('.ts') ? `src/${where}` : `src/${where}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: refused.map((f) => ({
            regex: `^(\\.\\./)+(src/)?${f}(/|$)`,
            message: `src/${where} may import ${may} of ours, not src/${f} (DESIGN.md §1; the table in eslint.config.js).`,
          })),
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-control-regex': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...Object.entries(LAYERS).map(([where, allowed]) => layer(where, allowed)),
  ...Object.entries(TOOL_ENTRY_POINTS).map(([where, allowed]) => layer(where, allowed)),
  {
    // Tests share the harness with the benchmarks, not the benchmarks themselves.
    files: ['test/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(\\.\\./)+src/bench(/|$)', message: 'tests take shared helpers from src/harness, not src/bench.' }] },
      ],
    },
  },
);
