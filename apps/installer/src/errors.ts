/**
 * The installer's one error type. Report codes (A4) are what the master records as the job's
 * reason; the others end the run before there is a job to report to.
 */
import { PHASE1_REPORT_REASONS, type Phase1ReportReason } from '@tips/core';

/** The reasons a report may carry: @tips/core's one list, shared with the master. */
export const REPORT_CODES = PHASE1_REPORT_REASONS;
export type ReportCode = Phase1ReportReason;

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
