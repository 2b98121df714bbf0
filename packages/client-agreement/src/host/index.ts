/**
 * @packageDocumentation
 * `@bftrc/client-agreement/node-host`: real-time hosts for Node.js. They drive the I/O-free
 * state machines with the host clock, durable storage and a Transport:
 *  - `VoterHost` (and `openVoterHost`, which opens a LevelStorage folder and restarts from it):
 *    one replica of a group;
 *  - `ClientHost`: plain core-agreement Clients (one per server group) over one transport.
 * Kept out of the package's main entry so the deterministic core stays free of I/O.
 */
export { VoterHost, type VoterHostInit, type VoterHostStatus, type VoterHostCounters } from './voter-host.js'
export { openVoterHost, type OpenVoterHostInit, type OpenedVoterHost } from './open.js'
export { ClientHost, type ClientHostInit, type ClientHostCounters, type InvokeOptions, ClientTimeoutError, ClientStoppedError, ClientQueueFullError } from './client-host.js'
