/**
 * @packageDocumentation
 * Keys, signatures, digests, canonical encoding, quorum certificates and membership: the
 * ground every bftrc layer stands on. Pure functions over `node:crypto`; no I/O but what a
 * caller asks for (the CLI reads and writes files).
 */
export { encode, decode, MAX_DEPTH, DEFAULT_MAX_ENCODED_BYTES, type Value, type ValueMap } from './encoding.js'
export { asMap, asArray, asUint, asBool, asString, asBytes, optional } from './schema.js'
export { sha256, sha256Parts, digestOf, hmacSha256, bytesEqual, DIGEST_BYTES } from './digest.js'
export {
  type KeyPair,
  type KeyFile,
  keyPairFromSeed,
  generateKeyPair,
  signBytes,
  verifyBytes,
  setVerificationCache,
  signatureWork,
  publicKeyObject,
  weakPublicKeyReason,
  peerIdOf,
  toHex,
  fromHex,
  keyFileOf,
  serializeKeyFile,
  parseKeyFile,
  PUBLIC_KEY_BYTES,
  SEED_BYTES,
  SIGNATURE_BYTES,
} from './keys.js'
export {
  type QuorumCertificate,
  type SignatureShare,
  type CertificateExpectation,
  signDigest,
  verifyShare,
  verifyCertificate,
  ShareCollector,
  certificateToValue,
  certificateFromValue,
} from './certificate.js'
export {
  Membership,
  type MembershipConfig,
  type MembershipOptions,
  quorumOf,
  type GroupConfig,
  type MemberConfig,
  type ClientConfig,
  type Member,
  type Group,
  type Client,
  replicaId,
  parseReplicaId,
  GROUP_NAME,
  CLIENT_ID,
} from './membership.js'
export {
  type TcpMultiaddr,
  type TcpMultiaddrOptions,
  type TcpMultiaddrResult,
  type TcpHostKind,
  parseTcpMultiaddr,
  isIpv4,
  ipv6Bytes,
  isHostname,
  TCP_MULTIADDR_FORMS,
} from './addr.js'
export { type ClusterSpec, type GeneratedCluster, generateCluster } from './cluster.js'
export { DecodeError, EncodeError, KeyError, CertificateError, ConfigError, type DecodeErrorCode, type CertificateErrorCode, type KeyErrorCode } from './errors.js'
export type { Transport } from './transport.js'
export { Sfc32 } from './sfc32.js'
