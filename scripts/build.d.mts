export const DIST: string;
export const WEB_DIR: string;
export function buildBins(opts?: { quiet?: boolean }): Promise<void>;
export function buildWeb(opts?: { quiet?: boolean }): Promise<void>;
