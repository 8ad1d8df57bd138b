import { Type } from '@sinclair/typebox';
import { InvalidValueError } from '@tips/core';
import type { FastifyInstance } from 'fastify';
import { errorResponses } from '../../http/schemas.ts';
import type { MetalService } from '../metals/service.ts';
import type { SpaceService } from './service.ts';

const MAX_METALS = 200;

/**
 * The default Phase 1 Space of each of a page of metals (the fleet view's column), in one request
 * instead of one metal detail each. Metals of another owner, or unknown, are a 404 like everywhere.
 */
export function defaultSpaceRoutes(app: FastifyInstance, metals: MetalService, spaces: SpaceService): void {
  app.get<{ Querystring: { metals: string } }>(
    '/default-spaces',
    {
      schema: {
        tags: ['spaces'],
        summary: `The default Phase 1 Space of each metal named (TIPS IDs or names, up to ${MAX_METALS}, comma-separated)`,
        description: 'One item per metal that has a default Space, in the order asked.',
        querystring: Type.Object({ metals: Type.String({ maxLength: MAX_METALS * 65, description: 'metal references, comma-separated' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ metalId: Type.String(), spaceId: Type.String(), spaceName: Type.String() })) }), ...errorResponses(400, 404) },
      },
    },
    async (req) => {
      const refs = req.query.metals.split(',').filter((r) => r !== '');
      if (refs.length > MAX_METALS) throw new InvalidValueError('querystring.metals', `at most ${MAX_METALS} metals`);
      // Two queries for the references, one for the defaults, whatever the number of metals.
      const found = await metals.getMany(req.owner.id, refs);
      const defaults = new Map((await spaces.defaultsOfMetals([...new Set(found.map((m) => m.id))])).map((d) => [d.metalId as string, d]));
      const items = [];
      for (const m of found) {
        const d = defaults.get(m.id);
        if (d) items.push({ metalId: m.id, spaceId: d.spaceId, spaceName: d.spaceName });
      }
      return { items };
    },
  );
}
