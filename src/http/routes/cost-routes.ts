/** Operator routes of the learned title costs: what was learned, and a reset per title. */

import type { CostLearning } from '../../sessions/cost-learning.js';
import { type ApiRoute, defineRoute, json } from '../api-routes.js';

export interface CostRouteDeps {
  costs: CostLearning;
}

export function costRoutes(deps: CostRouteDeps): ApiRoute[] {
  const { costs } = deps;
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/costs',
      access: 'operator',
      summary:
        'Learned title costs per GPU model and dimension: ratio to the catalog, confidence, whether placement uses it, and both costs at the title reference format',
      responses: { 200: 'Learned costs' },
      handler: async () =>
        json(200, {
          learning: costs.enabled,
          costs: costs.view(),
        }),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/costs/:game/reset',
      access: 'operator',
      summary:
        "Forget what was learned about one title (every instance): it is placed on the catalog's costs again",
      responses: { 200: 'Reset', 422: 'Unknown title' },
      async handler(ctx) {
        const game = ctx.params.game!;
        const removed = await costs.reset(game);
        return json(200, { game, removed });
      },
    }),
  ];
}
