// The child process of the isolated fitter (isolated.ts): fits one message and exits, so the
// library's memory and any crash of a decoder on a hostile image stay out of the daemon.
import { fitMessage } from './fit.js';
import { toWire, type WorkerReply, type WorkerRequest } from './wire.js';

function reply(msg: WorkerReply): Promise<void> {
  return new Promise((resolve) => {
    // The daemon may be gone: then there is nobody to tell.
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, undefined, () => resolve());
  });
}

async function run(req: WorkerRequest): Promise<void> {
  try {
    const result = await fitMessage(req.parts, req.limitBytes, {
      maxWidth: req.maxWidth,
      maxHeight: req.maxHeight,
      onDecode: (part) => void reply({ kind: 'decoding', part }),
    });
    await reply({ kind: 'done', result, peakRssKb: process.resourceUsage().maxRSS });
  } catch (err) {
    await reply({ kind: 'failed', error: toWire(err) });
  }
  process.disconnect?.();
}

process.once('message', (req: WorkerRequest) => {
  void run(req);
});
