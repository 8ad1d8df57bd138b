import type { FastifyInstance } from 'fastify';
import type { DeviceMgmtService } from './service.ts';

/**
 * Marks offline the LwM2M devices that sent no Update within lifetime + grace (Core §6.2.1: the
 * server removes the registration when the lifetime expires; TIPS keeps it, offline, so the owner
 * still sees what the device last was). One indexed query per interval, however many devices.
 */
export function installLwm2mSweeper(app: FastifyInstance, devices: DeviceMgmtService, intervalMs: number): void {
  if (intervalMs <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    devices
      .sweep()
      .catch((err) => app.log.error({ err }, 'LwM2M lifetime sweep failed; retrying at the next interval'))
      .finally(() => {
        running = false;
      });
  };
  app.addHook('onReady', async () => {
    timer = setInterval(tick, intervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}
