/**
 * Numbers from draft-ietf-suit-manifest-37 and its companions (trust domains, update management,
 * firmware encryption), with the specification's names.
 */

export const SUIT_ENVELOPE_TAG = 107;
export const SUIT_MANIFEST_TAG = 1070;

// SUIT_Envelope
export const SUIT_DELEGATION = 1;
export const SUIT_AUTHENTICATION_WRAPPER = 2;
export const SUIT_MANIFEST = 3;

// SUIT_Manifest
export const SUIT_MANIFEST_VERSION = 1;
export const SUIT_MANIFEST_SEQUENCE_NUMBER = 2;
export const SUIT_COMMON = 3;
export const SUIT_REFERENCE_URI = 4;
export const SUIT_MANIFEST_COMPONENT_ID = 5; // trust domains
export const SUIT_CURRENT_VERSION = 6; // update management
export const SUIT_VALIDATE = 7;
export const SUIT_LOAD = 8;
export const SUIT_INVOKE = 9;
export const SUIT_COSWID = 14; // update management
export const SUIT_DEPENDENCY_RESOLUTION = 15; // trust domains
export const SUIT_PAYLOAD_FETCH = 16;
export const SUIT_CANDIDATE_VERIFICATION = 18; // trust domains
export const SUIT_INSTALL = 20;
export const SUIT_TEXT = 23;
export const SUIT_UNINSTALL = 24; // trust domains

/** Members that may be severed: replaced in the manifest by their digest, carried in the envelope. */
export const SEVERABLE_MEMBERS: ReadonlySet<number> = new Set([
  SUIT_COSWID,
  SUIT_DEPENDENCY_RESOLUTION,
  SUIT_PAYLOAD_FETCH,
  SUIT_CANDIDATE_VERIFICATION,
  SUIT_INSTALL,
  SUIT_TEXT,
]);
/** Members holding a bstr-wrapped command sequence. */
export const SEQUENCE_MEMBERS: ReadonlySet<number> = new Set([
  SUIT_VALIDATE,
  SUIT_LOAD,
  SUIT_INVOKE,
  SUIT_DEPENDENCY_RESOLUTION,
  SUIT_PAYLOAD_FETCH,
  SUIT_CANDIDATE_VERIFICATION,
  SUIT_INSTALL,
  SUIT_UNINSTALL,
]);

export const MEMBER_NAMES: Record<number, string> = {
  [SUIT_MANIFEST_VERSION]: 'manifest-version',
  [SUIT_MANIFEST_SEQUENCE_NUMBER]: 'manifest-sequence-number',
  [SUIT_COMMON]: 'common',
  [SUIT_REFERENCE_URI]: 'reference-uri',
  [SUIT_MANIFEST_COMPONENT_ID]: 'manifest-component-id',
  [SUIT_CURRENT_VERSION]: 'current-version',
  [SUIT_VALIDATE]: 'validate',
  [SUIT_LOAD]: 'load',
  [SUIT_INVOKE]: 'invoke',
  [SUIT_COSWID]: 'coswid',
  [SUIT_DEPENDENCY_RESOLUTION]: 'dependency-resolution',
  [SUIT_PAYLOAD_FETCH]: 'payload-fetch',
  [SUIT_CANDIDATE_VERIFICATION]: 'candidate-verification',
  [SUIT_INSTALL]: 'install',
  [SUIT_TEXT]: 'text',
  [SUIT_UNINSTALL]: 'uninstall',
};

// SUIT_Common
export const SUIT_DEPENDENCIES = 1;
export const SUIT_COMPONENTS = 2;
export const SUIT_SHARED_SEQUENCE = 4;

// Conditions
export const SUIT_CONDITION_VENDOR_IDENTIFIER = 1;
export const SUIT_CONDITION_CLASS_IDENTIFIER = 2;
export const SUIT_CONDITION_IMAGE_MATCH = 3;
export const SUIT_CONDITION_USE_BEFORE = 4;
export const SUIT_CONDITION_COMPONENT_SLOT = 5;
export const SUIT_CONDITION_CHECK_CONTENT = 6;
export const SUIT_CONDITION_DEPENDENCY_INTEGRITY = 7;
export const SUIT_CONDITION_IS_DEPENDENCY = 8;
export const SUIT_CONDITION_ABORT = 14;
export const SUIT_CONDITION_DEVICE_IDENTIFIER = 24;
export const SUIT_CONDITION_IMAGE_NOT_MATCH = 25;
export const SUIT_CONDITION_MINIMUM_BATTERY = 26;
export const SUIT_CONDITION_UPDATE_AUTHORIZED = 27;
export const SUIT_CONDITION_VERSION = 28;

// Directives
export const SUIT_DIRECTIVE_PROCESS_DEPENDENCY = 11;
export const SUIT_DIRECTIVE_SET_COMPONENT_INDEX = 12;
export const SUIT_DIRECTIVE_TRY_EACH = 15;
export const SUIT_DIRECTIVE_WRITE = 18;
export const SUIT_DIRECTIVE_SET_PARAMETERS = 19;
export const SUIT_DIRECTIVE_OVERRIDE_PARAMETERS = 20;
export const SUIT_DIRECTIVE_FETCH = 21;
export const SUIT_DIRECTIVE_COPY = 22;
export const SUIT_DIRECTIVE_INVOKE = 23;
export const SUIT_DIRECTIVE_WAIT = 29;
export const SUIT_DIRECTIVE_SWAP = 31;
export const SUIT_DIRECTIVE_RUN_SEQUENCE = 32;
export const SUIT_DIRECTIVE_UNLINK = 33;

export const CONDITIONS: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8, 14, 24, 25, 26, 27, 28]);
/** Commands whose argument is a SUIT_Rep_Policy (uint). */
export const REP_POLICY_COMMANDS: ReadonlySet<number> = new Set([...CONDITIONS, 11, 18, 21, 22, 23, 29, 31, 33]);

export const COMMAND_NAMES: Record<number, string> = {
  1: 'condition-vendor-identifier',
  2: 'condition-class-identifier',
  3: 'condition-image-match',
  4: 'condition-use-before',
  5: 'condition-component-slot',
  6: 'condition-check-content',
  7: 'condition-dependency-integrity',
  8: 'condition-is-dependency',
  11: 'directive-process-dependency',
  12: 'directive-set-component-index',
  14: 'condition-abort',
  15: 'directive-try-each',
  18: 'directive-write',
  19: 'directive-set-parameters',
  20: 'directive-override-parameters',
  21: 'directive-fetch',
  22: 'directive-copy',
  23: 'directive-invoke',
  24: 'condition-device-identifier',
  25: 'condition-image-not-match',
  26: 'condition-minimum-battery',
  27: 'condition-update-authorized',
  28: 'condition-version',
  29: 'directive-wait',
  31: 'directive-swap',
  32: 'directive-run-sequence',
  33: 'directive-unlink',
};

// Parameters
export const SUIT_PARAMETER_VENDOR_IDENTIFIER = 1;
export const SUIT_PARAMETER_CLASS_IDENTIFIER = 2;
export const SUIT_PARAMETER_IMAGE_DIGEST = 3;
export const SUIT_PARAMETER_USE_BEFORE = 4;
export const SUIT_PARAMETER_COMPONENT_SLOT = 5;
export const SUIT_PARAMETER_STRICT_ORDER = 12;
export const SUIT_PARAMETER_SOFT_FAILURE = 13;
export const SUIT_PARAMETER_IMAGE_SIZE = 14;
export const SUIT_PARAMETER_CONTENT = 18;
export const SUIT_PARAMETER_ENCRYPTION_INFO = 19;
export const SUIT_PARAMETER_URI = 21;
export const SUIT_PARAMETER_SOURCE_COMPONENT = 22;
export const SUIT_PARAMETER_INVOKE_ARGS = 23;
export const SUIT_PARAMETER_DEVICE_IDENTIFIER = 24;
export const SUIT_PARAMETER_FETCH_ARGUMENTS = 25;

export const PARAMETER_NAMES: Record<number, string> = {
  1: 'vendor-identifier',
  2: 'class-identifier',
  3: 'image-digest',
  4: 'use-before',
  5: 'component-slot',
  12: 'strict-order',
  13: 'soft-failure',
  14: 'image-size',
  18: 'content',
  19: 'encryption-info',
  21: 'uri',
  22: 'source-component',
  23: 'invoke-args',
  24: 'device-identifier',
  25: 'fetch-arguments',
  26: 'minimum-battery',
  27: 'update-priority',
  28: 'version',
  29: 'wait-info',
  30: 'component-metadata',
};

/** Digest algorithms (COSE registry): the manifest spec requires SHA-256. */
export const DIGEST_ALGORITHMS: ReadonlyMap<number, string> = new Map([
  [-16, 'sha256'],
  [-43, 'sha384'],
  [-44, 'sha512'],
]);
export const SHA256 = -16;

// Reporting policy bits (SUIT_Rep_Policy)
export const REPORT_RECORD_ON_SUCCESS = 1 << 0;
export const REPORT_RECORD_ON_FAILURE = 1 << 1;
export const REPORT_SYSINFO_SUCCESS = 1 << 2;
export const REPORT_SYSINFO_FAILURE = 1 << 3;
