/** The embedded store runs the store contract that every StateStore implementation must pass. */
import { describeCostEvidenceContract } from './cost-evidence-contract.js';
import { createEmbeddedStore } from './embedded-factory.js';
import { describePendingLoadContract } from './pending-load-contract.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('embedded', (rules) => createEmbeddedStore(rules));
describePendingLoadContract('embedded', (options) => createEmbeddedStore(options));
describeCostEvidenceContract('embedded', () => createEmbeddedStore());
