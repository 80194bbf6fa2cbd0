/** OpenStack API clients the VCA speaks to directly (no Python): Keystone v3 so far. */
export {
  type ApplicationCredential,
  type CatalogEndpoint,
  type CatalogService,
  type EndpointInterface,
  KeystoneClient,
  type KeystoneClientOptions,
  keystoneOptionsFromConfig,
  type TokenInfo,
} from './keystone.js';
