/** Public surface of the cost model: catalogs, resolutions and session cost vectors. */
export type { Catalog, GameEntry, GpuModel } from './catalog.js';
export { CatalogIndex } from './catalog.js';
export type { FrameSize } from './resolution.js';
export { frameSizeName, parseResolution } from './resolution.js';
export type { LoadVector, SessionFormat } from './session-cost.js';
export {
  addLoad,
  canHostStreams,
  fullShare,
  referencePixelRate,
  sessionCost,
  zeroLoad,
} from './session-cost.js';
