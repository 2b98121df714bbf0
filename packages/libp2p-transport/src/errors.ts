/** Named errors of the libp2p transport. Hostile input is never thrown: it is dropped and counted. */

/** The options or the membership do not allow this node to run (not a member, no address, bad limit). */
export class TransportConfigError extends Error {
  override readonly name = 'TransportConfigError'
}

/** A method was called in a state that does not allow it (for example `start()` after `stop()`). */
export class TransportStateError extends Error {
  override readonly name = 'TransportStateError'
}

/** `whenConnected` gave up before every named peer had a stream. */
export class TransportTimeoutError extends Error {
  override readonly name = 'TransportTimeoutError'
}
