/** Public surface of the stores: the interface, its views and the embedded implementation. */
export { EmbeddedStore, type EmbeddedStoreOptions } from './embedded/embedded-store.js';
export type * from './store.js';
export { gpuView, nodeView } from './views.js';
