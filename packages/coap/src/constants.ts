/** Numbers from RFC 7252 §12, RFC 7959 §6, RFC 7641 §7 and RFC 9175, by the specifications' names. */

export const COAP_VERSION = 1;

export const TYPE_CON = 0;
export const TYPE_NON = 1;
export const TYPE_ACK = 2;
export const TYPE_RST = 3;

export const OPTION = {
  IF_MATCH: 1,
  URI_HOST: 3,
  ETAG: 4,
  IF_NONE_MATCH: 5,
  OBSERVE: 6,
  URI_PORT: 7,
  LOCATION_PATH: 8,
  URI_PATH: 11,
  CONTENT_FORMAT: 12,
  MAX_AGE: 14,
  URI_QUERY: 15,
  ACCEPT: 17,
  LOCATION_QUERY: 20,
  BLOCK2: 23,
  BLOCK1: 27,
  SIZE2: 28,
  PROXY_URI: 35,
  PROXY_SCHEME: 39,
  SIZE1: 60,
  NO_RESPONSE: 258,
  REQUEST_TAG: 292,
} as const;

export const CONTENT_FORMAT = {
  TEXT: 0,
  COSE_SIGN1: 18,
  LINK_FORMAT: 40,
  OCTET_STREAM: 42,
  JSON: 50,
  CBOR: 60,
  SENML_JSON: 110,
  SENML_CBOR: 112,
  LWM2M_TLV: 11542,
} as const;

export const METHODS = { 1: 'GET', 2: 'POST', 3: 'PUT', 4: 'DELETE', 5: 'FETCH', 6: 'PATCH' } as const;
export type CoapMethod = (typeof METHODS)[keyof typeof METHODS];
export const METHOD_CODES: Record<CoapMethod, number> = { GET: 1, POST: 2, PUT: 3, DELETE: 4, FETCH: 5, PATCH: 6 };

/** RFC 7252 §4.8 transmission parameters. */
export const ACK_TIMEOUT_MS = 2000;
export const ACK_RANDOM_FACTOR = 1.5;
export const MAX_RETRANSMIT = 4;
/** §4.8.2: 247 s with the defaults above. */
export const EXCHANGE_LIFETIME_MS = 247_000;
export const NON_LIFETIME_MS = 145_000;

/** Reason phrases for diagnostics and logs. */
export const CODE_NAMES: Record<string, string> = {
  '0.00': 'Empty',
  '2.01': 'Created',
  '2.02': 'Deleted',
  '2.03': 'Valid',
  '2.04': 'Changed',
  '2.05': 'Content',
  '2.31': 'Continue',
  '4.00': 'Bad Request',
  '4.01': 'Unauthorized',
  '4.02': 'Bad Option',
  '4.03': 'Forbidden',
  '4.04': 'Not Found',
  '4.05': 'Method Not Allowed',
  '4.06': 'Not Acceptable',
  '4.08': 'Request Entity Incomplete',
  '4.09': 'Conflict',
  '4.12': 'Precondition Failed',
  '4.13': 'Request Entity Too Large',
  '4.15': 'Unsupported Content-Format',
  '5.00': 'Internal Server Error',
  '5.01': 'Not Implemented',
  '5.02': 'Bad Gateway',
  '5.03': 'Service Unavailable',
  '5.04': 'Gateway Timeout',
  '5.05': 'Proxying Not Supported',
};
