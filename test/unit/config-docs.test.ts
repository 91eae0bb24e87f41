// docs/configuration.md is generated from the schema and must be up to date.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from '../../src/config/docs.js';
import { leaves } from '../../src/config/schema.js';

describe('renderConfigDocs', () => {
  it('documents every key with its type, default and environment variable', () => {
    const doc = renderConfigDocs();
    for (const { key, leaf } of leaves()) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row, key).toBeDefined();
      expect(row).toContain(`\`${leaf.env}\``);
    }
    expect(doc).toContain('exits\nwith status 78');
  });

  it('hides the default of a secret key', () => {
    const row = renderConfigDocs()
      .split('\n')
      .find((l) => l.startsWith('| `pdp.password` |'));
    expect(row).toContain('(hidden)');
  });

  it('matches docs/configuration.md (run node dist/config/docs.js after changing the schema)', async () => {
    const onDisk = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderConfigDocs());
  });
});
