/**
 * Named errors of the crypto package. Every rejection of hostile input is one of these,
 * with a machine-readable `code`, so callers can count drops by reason.
 */

export type DecodeErrorCode =
  | 'truncated'
  | 'trailing-bytes'
  | 'unknown-tag'
  | 'non-minimal-varint'
  | 'varint-overflow'
  | 'length-overflow'
  | 'invalid-utf8'
  | 'unsorted-keys'
  | 'duplicate-key'
  | 'too-deep'
  | 'too-large'
  | 'wrong-type'

export class DecodeError extends Error {
  override readonly name = 'DecodeError'
  constructor(
    readonly code: DecodeErrorCode,
    message: string,
    readonly offset = -1,
  ) {
    super(message)
  }
}

export class EncodeError extends Error {
  override readonly name = 'EncodeError'
}

export type KeyErrorCode = 'malformed-key' | 'key-mismatch' | 'malformed-key-file'

export class KeyError extends Error {
  override readonly name = 'KeyError'
  constructor(
    readonly code: KeyErrorCode,
    message: string,
  ) {
    super(message)
  }
}

export type CertificateErrorCode =
  | 'malformed'
  | 'wrong-group'
  | 'wrong-digest'
  | 'non-member'
  | 'duplicate-signer'
  | 'bad-signature'
  | 'below-threshold'

export class CertificateError extends Error {
  override readonly name = 'CertificateError'
  constructor(
    readonly code: CertificateErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** A mistake in a membership config; `field` is a JSON path such as `groups.kv.members[2].publicKey`. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`)
  }
}
