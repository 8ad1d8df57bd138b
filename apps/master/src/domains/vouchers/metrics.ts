import { Counter, type Registry } from 'prom-client';
import type { VoucherService } from './service.ts';

/** Prometheus metrics of voucher imports: vouchers imported (or already there), refused by reason. */
export function installVoucherMetrics(registry: Registry, vouchers: VoucherService): void {
  vouchers.useMetrics({
    imported: new Counter({ name: 'tips_master_vouchers_imported_total', help: 'Ownership vouchers accepted by an import, by result (imported, unchanged)', labelNames: ['result'] as const, registers: [registry] }),
    refused: new Counter({ name: 'tips_master_vouchers_refused_total', help: 'Voucher imports refused, by reason (the error code: the broken link kind)', labelNames: ['reason'] as const, registers: [registry] }),
  });
}
