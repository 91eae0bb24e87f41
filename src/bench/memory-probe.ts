// Loaded into the daemon by the footprint benchmark (`node --import …/memory-probe.js`): on SIGWINCH
// it writes process.memoryUsage() and V8's heap spaces, after a full GC when --expose-gc is on, to
// the file MMSD_MEMORY_PROBE names. A measuring aid only: the daemon never imports it.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const target = process.env.MMSD_MEMORY_PROBE;
if (target) {
  process.on('SIGWINCH', () => {
    const before = process.memoryUsage();
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const after = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
    writeFileSync(target, JSON.stringify({ before, after, gc: gc !== undefined, spaces }));
  });
}
