/**
 * The application the simulator replicates: a hash chain over every executed operation plus a
 * counter. Any divergence in order, content or context shows up in the chain, and the result of
 * each operation is the chain after it, so a client can tell a wrong result.
 */
import type { Executor, ExecutionContext } from '@bftrc/core-agreement'
import { DecodeError, asBytes, asMap, asUint, decode, encode, sha256 } from '@bftrc/crypto'

export class ChainExecutor implements Executor {
  count = 0
  chain: Uint8Array = new Uint8Array(32)
  lastStamp = 0

  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    if (ctx.stamp < this.lastStamp) throw new Error(`agreed time ran backwards: ${ctx.stamp} < ${this.lastStamp}`)
    this.lastStamp = ctx.stamp
    this.count++
    this.chain = sha256(encode({ chain: this.chain, op, client: ctx.client, timestamp: ctx.timestamp, seq: ctx.seq, stamp: ctx.stamp }))
    return encode({ count: this.count, chain: this.chain })
  }

  executeReadOnly(_op: Uint8Array, _ctx: ExecutionContext): Uint8Array {
    return encode({ count: this.count, chain: this.chain })
  }

  snapshot(): Uint8Array {
    return encode({ count: this.count, chain: this.chain, lastStamp: this.lastStamp })
  }

  restore(snapshot: Uint8Array): void {
    try {
      const m = asMap(decode(snapshot))
      this.count = asUint(m.count, 'count')
      this.chain = asBytes(m.chain, 'chain', 32)
      this.lastStamp = asUint(m.lastStamp, 'lastStamp')
    } catch (err) {
      if (err instanceof DecodeError) throw new Error(`ChainExecutor.restore: ${err.message}`)
      throw err
    }
  }
}
