/**
 * Loads `games.yaml` and `gpus.yaml` into a validated, frozen `Catalog`. Cross-checks what a schema
 * cannot: the reference GPU exists with capacity 1, names are unique, every allowed resolution parses
 * and every title's reference session fits an empty reference GPU.
 */
import path from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { Catalog, GameEntry, GpuModel } from '../cost/catalog.js';
import { parseResolution } from '../cost/resolution.js';
import { ConfigError, defaultConfigDir, readYamlFile, validateWithSchema } from './load-config.js';
import { GamesFileSchema, GpusFileSchema, type VcaConfig } from './schema.js';

export function buildCatalog(gamesDocument: unknown, gpusDocument: unknown, origin = 'catalog'): Catalog {
  const games = validateWithSchema(GamesFileSchema, gamesDocument, `${origin} games`) as Static<
    typeof GamesFileSchema
  >;
  const gpus = validateWithSchema(GpusFileSchema, gpusDocument, `${origin} gpus`) as Static<
    typeof GpusFileSchema
  >;

  const gpuModels = new Map<string, GpuModel>();
  for (const [index, model] of gpus.models.entries()) {
    if (gpuModels.has(model.name))
      throw new ConfigError(`duplicate GPU model at models.${index}.name: ${model.name}`);
    if (model.nvencEngines > 0 && model.encoderPixelRate <= 0) {
      throw new ConfigError(
        `invalid GPU model at models.${index}.encoderPixelRate: must be > 0 with NVENC engines`,
      );
    }
    gpuModels.set(model.name, Object.freeze({ ...model, aliases: Object.freeze([...model.aliases]) }));
  }
  const reference = gpuModels.get(gpus.referenceGpu);
  if (!reference) throw new ConfigError(`invalid referenceGpu: "${gpus.referenceGpu}" is not a model name`);
  if (reference.renderCapacity !== 1) {
    throw new ConfigError(`invalid referenceGpu: ${reference.name} must have renderCapacity 1`);
  }

  const gameMap = new Map<string, GameEntry>();
  for (const [index, game] of games.games.entries()) {
    if (gameMap.has(game.id)) throw new ConfigError(`duplicate game at games.${index}.id: ${game.id}`);
    const resolutions = game.resolutions.map((name, resolutionIndex) => {
      try {
        return Object.freeze(parseResolution(name));
      } catch {
        throw new ConfigError(`invalid resolution at games.${index}.resolutions.${resolutionIndex}: ${name}`);
      }
    });
    gameMap.set(
      game.id,
      Object.freeze({ ...game, resolutions: Object.freeze(resolutions), fps: Object.freeze([...game.fps]) }),
    );
  }
  return Object.freeze({ referenceGpu: reference.name, games: gameMap, gpuModels });
}

export function loadCatalog(config: Pick<VcaConfig, 'catalog'>, configDir = defaultConfigDir): Catalog {
  const gamesFile = path.resolve(configDir, config.catalog.gamesFile);
  const gpusFile = path.resolve(configDir, config.catalog.gpusFile);
  return buildCatalog(readYamlFile(gamesFile), readYamlFile(gpusFile), `${gamesFile} / ${gpusFile}`);
}
