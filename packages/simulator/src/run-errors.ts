/** A campaign or CLI named a scenario that does not exist. */
export class UnknownScenarioError extends Error {
  override readonly name = 'UnknownScenarioError'
}
