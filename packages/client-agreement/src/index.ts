/**
 * @packageDocumentation
 * Replicated clients invoking replicated servers (DESIGN section 5): each replica of a group is a
 * `Voter` (agreement and inter-group communication, over core-agreement) around a
 * `GroupExecutor` (the deterministic application and its inter-group state). Calls between
 * groups carry request certificates (f_caller+1 signed shares) one way and reply certificates
 * (f_callee+1) the other; every correct replica of the caller delivers the same result at the
 * same point of its execution.
 */
export { Voter, type VoterInit, type VoterConfig, type VoterReady, type Frame, DEFAULT_VOTER_CONFIG } from './voter.js'
export { GroupExecutor, type Effect, type ExecutorLimits, type Versioning, DEFAULT_VERSION } from './executor.js'
export {
  type UpgradeRequest,
  type AppVersion,
  type UpgradeErrorCode,
  UpgradeError,
  upgradeStatement,
  signUpgrade,
  compareVersions,
  verifyUpgradeAuthority,
  upgradeToValue,
  upgradeFromValue,
} from './upgrade.js'
export type { GroupApp, AppContext, CallContext, CallRef, Deferred, WorkflowFn, WorkflowContext, WorkflowCommand } from './app.js'
export { errorResult } from './app.js'
export { WorkflowError, MAX_HISTORY } from './workflow.js'
export { type GroupEvent, type CallEvent, type ReplyEvent, type TickEvent, type UpgradeEvent, encodeEvent, decodeEvent, eventKey, eventValidator, validEvent } from './events.js'
export {
  type RequestShare,
  type ReplyShare,
  type InterGroupMessage,
  INTER_GROUP_MARKER,
  encodeInterGroup,
  decodeInterGroup,
  isInterGroupFrame,
  requestShareStatement,
  replyShareStatement,
} from './wire.js'
export { OrderRandom } from './random.js'
