// The named errors of photo fitting (DESIGN.md §11): a message that cannot be made to fit, and an
// image that cannot be read. Both carry the part's name and a sentence a person can act on.
import { RequestError } from '../core/errors.js';

/**
 * The message does not fit its limit and cannot be made to: the non-image parts alone are too
 * large, fitting is off, or an image stays over its budget at the smallest size tried. A
 * RequestError named `MessageTooLarge`, so a front door answers it like its own size check.
 */
export class MessageTooLargeError extends RequestError {
  constructor(
    message: string,
    /** Bytes over the limit or the part's budget (the amount to cut to make it fit). */
    readonly overBy: number,
    /** The image that would not fit, when one is to blame. */
    readonly part?: string,
  ) {
    super('MessageTooLarge', message);
    this.name = 'MessageTooLargeError';
  }
}

/** Why an image part could not be fitted. */
export type ImageErrorReason =
  /** The bytes are not one of the fitted formats (JPEG, PNG, WebP, GIF, HEIF/AVIF). */
  | 'unsupported'
  /** Corrupt, truncated or otherwise undecodable. */
  | 'unreadable'
  /** The header claims more pixels than MAX_INPUT_PIXELS (a decompression bomb, or simply too big). */
  | 'too-many-pixels';

/** An image part that cannot be decoded: it is refused, never sent half-read. */
export class ImageError extends Error {
  constructor(
    /** The part's name, as submitted. */
    readonly part: string,
    readonly reason: ImageErrorReason,
    /** The message without the part's name. */
    readonly detail: string,
  ) {
    super(`${part}: ${detail}`);
    this.name = 'ImageError';
  }
}

/** The header of an image claims more pixels than the fitter decodes; nothing was decoded. */
export class ImagePixelLimitError extends ImageError {
  constructor(
    part: string,
    readonly width: number,
    readonly height: number,
    readonly limit: number,
  ) {
    super(part, 'too-many-pixels', `${width}×${height} is ${((width * height) / 1e6).toFixed(1)} megapixels; images over ${limit / 1e6} megapixels are not decoded`);
    this.name = 'ImagePixelLimitError';
  }
}
