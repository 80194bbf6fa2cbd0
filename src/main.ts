/**
 * `npm start`: load and validate the configuration, build the gateway on the configured store, listen,
 * and stop gracefully on SIGTERM/SIGINT. Missing credentials are generated for development and logged.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigError, loadCatalog, loadConfig } from './config/index.js';
import type { VcaConfig } from './config/schema.js';
import { createStore } from './create-store.js';
import { Gateway } from './http/gateway.js';

/** The project's package.json: one level up from `src/` (run with tsx), two from `dist/src/` (npm start). */
function readPackageJson(): { version: string } {
  for (const relative of ['../package.json', '../../package.json']) {
    const file = new URL(relative, import.meta.url);
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { version: string };
  }
  return { version: '0.0.0' };
}

const packageJson = readPackageJson();

/** Fills empty credentials with random ones, so a first `npm start` works; production sets them all. */
function withDevelopmentCredentials(config: Readonly<VcaConfig>, logger: pino.Logger): Readonly<VcaConfig> {
  const auth = { ...config.auth };
  const generated: Record<string, string> = {};
  const make = (variable: string, bytes = 24) => {
    generated[variable] = randomBytes(bytes).toString(bytes === 32 ? 'hex' : 'base64url');
    return generated[variable];
  };
  if (auth.gamerTokens.length === 0) auth.gamerTokens = [make('VCA_GAMER_TOKENS')];
  if (auth.operatorTokens.length === 0) auth.operatorTokens = [make('VCA_OPERATOR_TOKENS')];
  if (!auth.orchestratorSecret) auth.orchestratorSecret = make('VCA_ORCHESTRATOR_SECRET');
  if (!auth.masterSecret) auth.masterSecret = make('VCA_MASTER_SECRET', 32);
  if (Object.keys(generated).length > 0) {
    logger.warn(
      { generated },
      'credentials not configured: generated these for this run only (set them in the environment for production)',
    );
  }
  return Object.freeze({ ...config, auth: Object.freeze(auth) });
}

async function main(): Promise<void> {
  let config: Readonly<VcaConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`vca: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = pino({ level: config.log.level, base: { service: 'vca' } });
  config = withDevelopmentCredentials(config, logger);
  const { store, relay } = await createStore(config, logger);
  const gateway = new Gateway({
    config,
    catalog: loadCatalog(config),
    logger,
    store,
    relay,
    version: packageJson.version,
  });
  await gateway.start();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    gateway
      .stop()
      .then(() => process.exit(0))
      .catch((error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
}

main().catch((error) => {
  process.stderr.write(`vca: failed to start: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
