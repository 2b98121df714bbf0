/**
 * The contract between the protocol hosts and the network. Implemented by
 * `@bftrc/libp2p-transport` (real sockets) and `@bftrc/simulator` (virtual network).
 * Identities are membership ids: replica ids (`"kv/0"`) and client ids (`"alice"`).
 */
export interface Transport {
  /** Starts listening and connecting; resolves once the node can send. */
  start(): Promise<void>
  /** Closes every connection and stops delivering; idempotent. */
  stop(): Promise<void>
  /**
   * Queues one frame for `to` without blocking. Returns false when the frame was dropped
   * (unknown peer, frame too large, or the peer's bounded queue is full); drops are counted.
   */
  send(to: string, bytes: Uint8Array): boolean
  /** Sets the receiver of frames; `from` has been authenticated by the transport. */
  onMessage(handler: (from: string, bytes: Uint8Array) => void): void
}
