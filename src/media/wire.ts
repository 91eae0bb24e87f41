// What the isolated fitter and its child process say to each other over the IPC channel
// (structured clone: Buffers pass as they are, error classes do not, so they travel as data).
import type { AttachmentInput } from '../core/message.js';
import { ImageError, ImagePixelLimitError, MessageTooLargeError, type ImageErrorReason } from './errors.js';
import type { FitResult } from './fit.js';
import { errorText } from '../core/errors.js';

export interface WorkerRequest {
  parts: AttachmentInput[];
  limitBytes: number;
  maxWidth: number;
  maxHeight: number;
}

export type WireError =
  | { kind: 'MessageTooLarge'; message: string; overBy: number; part?: string }
  | { kind: 'ImagePixelLimit'; part: string; width: number; height: number; limit: number }
  | { kind: 'Image'; part: string; reason: ImageErrorReason; detail: string }
  | { kind: 'Other'; message: string };

export type WorkerReply =
  /** Sent before each image is decoded: names the culprit if the child then dies. */
  | { kind: 'decoding'; part: string }
  /** peakRssKb: the child's own peak (getrusage maxrss), for the logs and the bench. */
  | { kind: 'done'; result: FitResult; peakRssKb: number }
  | { kind: 'failed'; error: WireError };

export function toWire(err: unknown): WireError {
  if (err instanceof MessageTooLargeError) return { kind: 'MessageTooLarge', message: err.message, overBy: err.overBy, ...(err.part !== undefined ? { part: err.part } : {}) };
  if (err instanceof ImagePixelLimitError) return { kind: 'ImagePixelLimit', part: err.part, width: err.width, height: err.height, limit: err.limit };
  if (err instanceof ImageError) return { kind: 'Image', part: err.part, reason: err.reason, detail: err.detail };
  return { kind: 'Other', message: errorText(err) };
}

export function fromWire(e: WireError): Error {
  switch (e.kind) {
    case 'MessageTooLarge':
      return new MessageTooLargeError(e.message, e.overBy, e.part);
    case 'ImagePixelLimit':
      return new ImagePixelLimitError(e.part, e.width, e.height, e.limit);
    case 'Image':
      return new ImageError(e.part, e.reason, e.detail);
    case 'Other':
      return new Error(`image fitting failed: ${e.message}`);
  }
}
