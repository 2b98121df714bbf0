/**
 * @packageDocumentation
 * The bftrc `Transport` over libp2p: TCP + Noise + Yamux, one long-lived stream of
 * length-prefixed frames per peer pair, members only, the replica's Ed25519 key as its identity.
 *
 * Importing this module installs the `Promise.withResolvers` polyfill libp2p 3 needs on Node 20.
 */
import './polyfill.js'

export {
  createLibp2pTransport,
  Libp2pTransport,
  openClientId,
  PROTOCOL,
  DEFAULTS,
  type Libp2pTransportInit,
  type PeerKind,
  type PeerMetrics,
  type DropCounts,
  type TransportMetrics,
} from './transport.js'
export type { PreHandshakeMetrics } from './admission.js'
export { FrameDecoder, type FrameSink, encodeFrame, encodeFrames, FRAME_HEADER_BYTES, MAX_FRAME_HEADER_VALUE } from './framing.js'
export { TransportConfigError, TransportStateError, TransportTimeoutError } from './errors.js'
export type { Transport } from '@bftrc/crypto'
