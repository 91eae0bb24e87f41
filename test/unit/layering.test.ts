// The layering check of eslint.config.js (DESIGN.md §1) bites: the project's own lint config,
// through ESLint's Node API, refuses an import that points up or sideways and lets a downward one
// through.
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let eslint: ESLint;
beforeAll(async () => {
  eslint = new ESLint({ cwd: ROOT });
  // The first file loads the TypeScript project for the type-aware rules: seconds, once.
  await eslint.lintText('export {};\n', { filePath: `${ROOT}src/core/limits.ts` });
}, 180_000);

/** The no-restricted-imports messages for `code` linted as if it were the file at `path`. */
async function refusals(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${path}` });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering (eslint.config.js)', () => {
  it.each([
    ['src/core/validate.ts', "import type { FrontDoorContext } from '../api/types.js';", /src\/core may import nothing of ours, not src\/api/],
    ['src/sender/progress.ts', "import { CmeError } from '../at/errors.js';", /not src\/at/],
    ['src/api/types.ts', "import type { ModemStatus } from '../modem/types.js';", /not src\/modem/],
    ['src/api/dbus/names.ts', "import { VirtualModem } from '../../sim/modem.js';", /not src\/sim/],
    ['src/modem/lock.ts', "import { Outbox } from '../outbox/outbox.js';", /not src\/outbox/],
    ['src/cli/mmsd.ts', "import { Testbed } from '../harness/testbed.js';", /not src\/harness/],
    ['test/unit/at-checksum.test.ts', "import { until } from '../../src/bench/common.js';", /src\/harness, not src\/bench/],
  ])('refuses in %s: %s', async (path, code, message) => {
    const got = await refusals(path, `${code}\n`);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(message);
  });

  it('lets imports that point down through', async () => {
    expect(await refusals('src/sender/progress.ts', "import { CmeError } from '../modem/errors.js';\nimport { LIMITS } from '../core/limits.js';\n")).toEqual([]);
    expect(await refusals('src/cli/mmsd-sim.ts', "import { VirtualModem } from '../sim/modem.js';\n")).toEqual([]);
    expect(await refusals('src/cli/demo.ts', "import { Testbed } from '../harness/testbed.js';\n")).toEqual([]);
  });
});
