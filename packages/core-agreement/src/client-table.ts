/**
 * Exactly-once table: per client, the timestamp of the last executed request and its reply. It is
 * part of the checkpointed state, so state transfer and restarts keep exactly-once.
 * Bounded: past `maxClients` the least recently active client is evicted (deterministically,
 * since every replica updates it in the same order). An evicted client's old requests could then
 * execute again, so `maxClients` must exceed the number of concurrently active clients.
 */
import { type Value, asArray, asBytes, asString, asUint, DecodeError } from '@bftrc/crypto'

export interface ClientRecord {
  readonly timestamp: number
  readonly result: Uint8Array
  readonly resultDigest: Uint8Array
}

export class ClientTable {
  private readonly records = new Map<string, ClientRecord>()

  constructor(readonly maxClients: number) {}

  get(client: string): ClientRecord | undefined {
    return this.records.get(client)
  }

  lastTimestamp(client: string): number {
    return this.records.get(client)?.timestamp ?? -1
  }

  record(client: string, rec: ClientRecord): void {
    this.records.delete(client)
    this.records.set(client, rec)
    if (this.records.size > this.maxClients) {
      const oldest = this.records.keys().next().value as string
      this.records.delete(oldest)
    }
  }

  get size(): number {
    return this.records.size
  }

  toValue(): Value {
    return [...this.records].map(([client, r]) => [client, r.timestamp, r.result, r.resultDigest])
  }

  static fromValue(v: Value, maxClients: number): ClientTable {
    const table = new ClientTable(maxClients)
    const rows = asArray(v, 'clients', maxClients)
    rows.forEach((row, i) => {
      const cols = asArray(row, `clients[${i}]`)
      if (cols.length !== 4) throw new DecodeError('wrong-type', `clients[${i}]: expected 4 columns`)
      table.records.set(asString(cols[0], `clients[${i}].client`, 256), {
        timestamp: asUint(cols[1], `clients[${i}].timestamp`),
        result: asBytes(cols[2], `clients[${i}].result`),
        resultDigest: asBytes(cols[3], `clients[${i}].resultDigest`, 32),
      })
    })
    return table
  }
}
