import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetalService } from './service.ts';

/** Prometheus metrics of the metal list served from memory (SQLite; list-view.ts). */
export function installMetalListMetrics(registry: Registry, metals: MetalService): void {
  new Gauge({
    name: 'tips_master_metal_list_view_items',
    help: 'Metal list items held in memory (SQLite), over all owners',
    registers: [registry],
    collect() {
      this.set(metals.listViewStats()?.items ?? 0);
    },
  });
  new Gauge({
    name: 'tips_master_metal_list_view_owners',
    help: 'Owners whose metal list is held in memory (SQLite)',
    registers: [registry],
    collect() {
      this.set(metals.listViewStats()?.owners ?? 0);
    },
  });
  new Counter({
    name: 'tips_master_metal_list_view_reloads_total',
    help: 'Times the in-memory metal list was dropped and reloaded (the change log pruned past it, or unreadable)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(metals.listViewStats()?.reloads ?? 0);
    },
  });
  new Counter({
    name: 'tips_master_metal_list_pages_total',
    help: 'Unfiltered metal list pages answered, by source (memory: the in-memory list; database: read from the database)',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      const s = metals.listViewStats();
      this.reset();
      this.inc({ source: 'memory' }, s?.pagesFromMemory ?? 0);
      this.inc({ source: 'database' }, s?.pagesFromDatabase ?? 0);
    },
  });
}
