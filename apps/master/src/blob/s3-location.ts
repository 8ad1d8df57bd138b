// Kept apart from the S3 adapter so parsing the configuration does not load the AWS SDK.

export interface S3Location {
  bucket: string;
  /** '' or a key prefix ending in '/'. */
  prefix: string;
}

/** Parses `s3://bucket` or `s3://bucket/some/prefix`. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/([A-Za-z0-9._/-]*))?$/.exec(url);
  const prefix = m?.[2]?.replace(/^\/+|\/+$/g, '') ?? '';
  if (!m || prefix.split('/').some((p) => p === '.' || p === '..') || /\/\//.test(prefix)) {
    throw new Error(`"${url}" is not s3://<bucket>[/<prefix>] (bucket: 3–63 of a-z 0-9 . -; prefix: letters, digits, . _ - /)`);
  }
  return { bucket: m[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
}
