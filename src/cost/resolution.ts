/**
 * Resolution names as gamers send them: `1920x1080`, `1080p`, `4k`. Every accepted spelling maps to a
 * width and height; anything else is a `VCA_ERR_BAD_RESOLUTION`.
 */
import { VcaError } from '../errors.js';

export interface FrameSize {
  readonly width: number;
  readonly height: number;
}

/** Shorthand names and the 16:9 frame each stands for. */
const namedSizes: ReadonlyMap<string, FrameSize> = new Map([
  ['480p', { width: 854, height: 480 }],
  ['720p', { width: 1280, height: 720 }],
  ['900p', { width: 1600, height: 900 }],
  ['1080p', { width: 1920, height: 1080 }],
  ['1440p', { width: 2560, height: 1440 }],
  ['2k', { width: 2560, height: 1440 }],
  ['qhd', { width: 2560, height: 1440 }],
  ['2160p', { width: 3840, height: 2160 }],
  ['4k', { width: 3840, height: 2160 }],
  ['uhd', { width: 3840, height: 2160 }],
]);

const explicitSize = /^(\d{3,5})x(\d{3,5})$/;
/** Largest frame accepted: 8K UHD. Anything bigger is a typo or an attack on the cost model. */
const maxPixels = 7680 * 4320;

export function parseResolution(text: string): FrameSize {
  const key = text.trim().toLowerCase();
  const named = namedSizes.get(key);
  if (named) return named;
  const match = explicitSize.exec(key);
  if (match) {
    const width = Number(match[1]);
    const height = Number(match[2]);
    if (width >= 320 && height >= 240 && width * height <= maxPixels) return { width, height };
  }
  throw new VcaError(
    'VCA_ERR_BAD_RESOLUTION',
    `Resolution "${text}" is not understood; use WIDTHxHEIGHT (e.g. 1920x1080) or 720p, 1080p, 1440p, 2160p, 4k`,
    { field: 'resolution' },
  );
}

export function frameSizeName(size: FrameSize): string {
  return `${size.width}x${size.height}`;
}
