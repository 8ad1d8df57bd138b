/**
 * The installer's one error type. Report codes (A4) are what the master records as the job's
 * reason; the others end the run before there is a job to report to.
 */
export const REPORT_CODES = [
  'suit_signature_invalid',
  'suit_unknown_key',
  'suit_digest_mismatch',
  'suit_size_mismatch',
  'suit_rollback',
  'suit_vendor_mismatch',
  'suit_class_mismatch',
  'disk_too_small',
  'write_failed',
  'verify_failed',
  'download_failed',
] as const;
export type ReportCode = (typeof REPORT_CODES)[number];

/** Failures with no job to report to: bad command line, the gateway refused or never answered. */
export type LocalCode = 'bad_cmdline' | 'no_disk' | 'work_refused' | 'work_unreachable' | 'report_failed';

export type InstallerErrorCode = ReportCode | LocalCode;

export class InstallerError extends Error {
  constructor(
    readonly code: InstallerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InstallerError';
  }

  /** True for the A4 codes a failure report carries. */
  get reportable(): boolean {
    return (REPORT_CODES as readonly string[]).includes(this.code);
  }
}
