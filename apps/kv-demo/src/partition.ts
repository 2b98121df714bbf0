/**
 * A network partition at the transport: while it is on, the replica drops every frame it would
 * send to another replica (of any group) and every frame it receives from one, as a cut network
 * would, and counts them. Plain clients (the supervisor, the CLI) still get through, so the run
 * can be driven and observed. The chaos command switches it through the control endpoint
 * (`POST /partition`, see control.ts).
 */
import type { Transport } from '@bftrc/crypto'

export interface PartitionStatus {
  readonly partitioned: boolean
  /** Times the partition was switched on since the process started. */
  readonly episodes: number
  /** Frames dropped while partitioned, to and from other replicas. */
  readonly droppedIn: number
  readonly droppedOut: number
  /** Epoch milliseconds when the current partition began, or null. */
  readonly since: number | null
}

type MetricsTransport = Transport & { metrics?: () => unknown }

export class PartitionableTransport implements Transport {
  private on = false
  private since: number | null = null
  private episodes = 0
  private droppedIn = 0
  private droppedOut = 0

  /** `isReplica(id)`: whether a peer id is a replica (its frames are cut) rather than a client. */
  constructor(
    private readonly inner: MetricsTransport,
    private readonly isReplica: (id: string) => boolean,
  ) {}

  start(): Promise<void> {
    return this.inner.start()
  }

  stop(): Promise<void> {
    return this.inner.stop()
  }

  send(to: string, bytes: Uint8Array): boolean {
    if (this.on && this.isReplica(to)) {
      // Lost in the network: the sender cannot tell.
      this.droppedOut++
      return true
    }
    return this.inner.send(to, bytes)
  }

  onMessage(handler: (from: string, bytes: Uint8Array) => void): void {
    this.inner.onMessage((from, bytes) => {
      if (this.on && this.isReplica(from)) this.droppedIn++
      else handler(from, bytes)
    })
  }

  /** The inner transport's metrics (the host's status shows them). */
  metrics(): unknown {
    return typeof this.inner.metrics === 'function' ? this.inner.metrics() : undefined
  }

  /** Switches the partition on or off; switching to the current state changes nothing. */
  set(partitioned: boolean, now = Date.now()): PartitionStatus {
    if (partitioned && !this.on) {
      this.episodes++
      this.since = now
    }
    if (!partitioned) this.since = null
    this.on = partitioned
    return this.status()
  }

  status(): PartitionStatus {
    return { partitioned: this.on, episodes: this.episodes, droppedIn: this.droppedIn, droppedOut: this.droppedOut, since: this.since }
  }
}
