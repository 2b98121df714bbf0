/**
 * Exactly-once table: per client, the timestamp and digest of the last executed request and its
 * reply. It is part of the checkpointed state, so state transfer and restarts keep exactly-once,
 * and every correct replica updates it in the same order with the same agreed time, so every
 * decision below is the same on all of them.
 *
 * Listed clients (named in the membership, so bounded by it) keep their row for ever. Open
 * clients (any key) are free to create, so their rows are bounded (`maxOpenClients`) and a row
 * must never be dropped while it still guards anything: an open client's timestamps are its
 * clock in microseconds, and a request executes only while its timestamp lies inside the window
 * (agreed time - `openClientWindow`, agreed time + `maxClockSkew`]. A row whose timestamp has
 * fallen below the window can go, because every request it would refuse as a duplicate is now
 * refused as too old. While the open rows are full of live ones, a new open client is refused
 * (deterministically, with an error result) instead of evicting anybody.
 */
import { type Value, asArray, asBytes, asString, asUint, DecodeError } from '@bftrc/crypto'
import { errorResult } from './executor.js'

export interface ClientRecord {
  readonly timestamp: number
  /** Digest of the request executed at `timestamp`: the reply cache answers only that request. */
  readonly requestDigest: Uint8Array
  readonly result: Uint8Array
  readonly resultDigest: Uint8Array
}

export interface ClientTableLimits {
  /** Rows of open clients at most (listed clients always have theirs). */
  readonly maxOpenClients: number
  /** How far (ms) below agreed time an open client's timestamp may lie and still execute. */
  readonly openClientWindow: number
  /** How far (ms) above agreed time an open client's timestamp may lie. */
  readonly maxClockSkew: number
}

/** Why a request is not executed; `undefined` from `admit` means it executes. */
export type ClientRefusal =
  /** At or below the client's last executed timestamp: already executed (or superseded). */
  | 'duplicate'
  /** An open client's timestamp outside (agreed time - window, agreed time + skew]. */
  | 'outside-window'
  /** No row free for a new open client: every open row still guards a live timestamp. */
  | 'table-full'

/** The deterministic error result a refused request gets (same bytes on every correct replica). */
export function refusalResult(reason: ClientRefusal): Uint8Array {
  return errorResult(`request refused: ${reason}`)
}

export class ClientTable {
  private readonly records = new Map<string, ClientRecord>()
  /** Open clients with a row, least recently executed first. */
  private readonly openOrder = new Map<string, true>()

  constructor(
    private readonly limits: ClientTableLimits,
    private readonly isListed: (client: string) => boolean,
  ) {}

  get(client: string): ClientRecord | undefined {
    return this.records.get(client)
  }

  lastTimestamp(client: string): number {
    return this.records.get(client)?.timestamp ?? -1
  }

  /** Whether a request of `client` at `timestamp` executes in a batch of agreed time `stamp`. */
  admit(client: string, timestamp: number, stamp: number): ClientRefusal | undefined {
    if (timestamp <= this.lastTimestamp(client)) return 'duplicate'
    if (this.isListed(client)) return undefined
    if (timestamp > (stamp + this.limits.maxClockSkew) * 1000 || timestamp <= (stamp - this.limits.openClientWindow) * 1000) return 'outside-window'
    if (this.records.has(client)) return undefined
    this.expireOpenRows(stamp)
    return this.openOrder.size >= this.limits.maxOpenClients ? 'table-full' : undefined
  }

  /** Records an executed request (after `admit` said it executes). */
  record(client: string, rec: ClientRecord): void {
    this.records.set(client, rec)
    if (this.isListed(client)) return
    this.openOrder.delete(client)
    this.openOrder.set(client, true)
  }

  /** Drops open rows, least recently executed first, whose timestamp the window now refuses anyway. */
  private expireOpenRows(stamp: number): void {
    const floor = (stamp - this.limits.openClientWindow) * 1000
    for (const client of this.openOrder.keys()) {
      if ((this.records.get(client)?.timestamp ?? -1) > floor) return
      this.openOrder.delete(client)
      this.records.delete(client)
    }
  }

  get size(): number {
    return this.records.size
  }

  get openRows(): number {
    return this.openOrder.size
  }

  toValue(): Value {
    // Listed rows in any order would do (they are never evicted); open rows keep their LRU order.
    return [...this.records].map(([client, r]) => [client, r.timestamp, r.requestDigest, r.result, r.resultDigest])
  }

  static fromValue(v: Value, limits: ClientTableLimits, isListed: (client: string) => boolean, maxListed: number): ClientTable {
    const table = new ClientTable(limits, isListed)
    const rows = asArray(v, 'clients', limits.maxOpenClients + maxListed)
    rows.forEach((row, i) => {
      const cols = asArray(row, `clients[${i}]`)
      if (cols.length !== 5) throw new DecodeError('wrong-type', `clients[${i}]: expected 5 columns`)
      const client = asString(cols[0], `clients[${i}].client`, 256)
      if (table.records.has(client)) throw new DecodeError('wrong-type', `clients[${i}]: client ${client} twice`)
      table.records.set(client, {
        timestamp: asUint(cols[1], `clients[${i}].timestamp`),
        requestDigest: asBytes(cols[2], `clients[${i}].requestDigest`, 32),
        result: asBytes(cols[3], `clients[${i}].result`),
        resultDigest: asBytes(cols[4], `clients[${i}].resultDigest`, 32),
      })
      if (!isListed(client)) table.openOrder.set(client, true)
    })
    if (table.openOrder.size > limits.maxOpenClients) throw new DecodeError('wrong-type', `clients: more than ${limits.maxOpenClients} open clients`)
    return table
  }
}
