// Photos that fit (DESIGN.md §11): the module's public face. Importing it loads no image library;
// sharp is loaded on the first message that needs fitting.
export { checkNonImageParts, DEFAULT_MAX_HEIGHT, DEFAULT_MAX_WIDTH, fitMessage, formatBytes, isFittableImage, needsFitting } from './fit.js';
export { fitMessageIsolated } from './isolated.js';
export type { IsolatedFitOptions, WorkerStats } from './isolated.js';
export type { FitOptions, FitResult, PartSize } from './fit.js';
export { ImageError, ImagePixelLimitError, MessageTooLargeError } from './errors.js';
export type { ImageErrorReason } from './errors.js';
export { MAX_INPUT_PIXELS } from './image.js';
export { loadImageLibrary, locateImageLibrary, probeImageLibrary } from './library.js';
export type { ImageLibrary, ImageLibraryLoader, ImageLibraryStatus } from './library.js';
