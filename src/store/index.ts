/** Public surface of the stores: the interface, its views and the embedded implementation. */

export { gpuView, nodeView } from '../fleet/node-view.js';
export type * from '../state/state-store.js';
export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded/embedded-store.js';
