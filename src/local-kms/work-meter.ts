/**
 * The work budget of one policy evaluation (policy.ts, "Bounded work").
 *
 * Every step of wildcard matching is linear, but a key policy of 32,768 characters holds thousands
 * of patterns and a request value can be as long as the request body: the pairs multiply, and the
 * server evaluates on its only thread. So each evaluation gets a fixed number of character steps;
 * the matchers (wildcard.ts, policy-operators.ts) charge what they actually scan, a long search is
 * cut where the budget ends, and an evaluation that runs out throws WorkBudgetExceeded, which the
 * policy engine turns into a denial (it fails closed: what was not evaluated is not allowed).
 */

/**
 * Steps one evaluation of one policy (or of a caller's identity policies together) may take: 2^23,
 * some tens of milliseconds of matching on a current CPU (bench/policy.mjs), and far above what a
 * realistic policy needs (a thousand patterns against a thousand-character value is about 2^20).
 * A step is one character examined by one machine word of a search (wildcard.ts counts them).
 */
export const EVALUATION_WORK_BUDGET = 8_388_608;

/** Thrown by a WorkMeter when the evaluation has used its budget. */
export class WorkBudgetExceeded extends Error {
  constructor(readonly budget: number) {
    super(`policy evaluation exceeded its budget of ${budget} character steps`);
    this.name = 'WorkBudgetExceeded';
  }
}

/** Counts the character steps of one evaluation. Not shared between evaluations. */
export class WorkMeter {
  private left: number;

  constructor(readonly budget: number = EVALUATION_WORK_BUDGET) {
    this.left = budget;
  }

  /** Steps still available (never negative). */
  get remaining(): number {
    return this.left;
  }

  /** Records `steps` of work done; throws WorkBudgetExceeded once the budget is used up. */
  charge(steps: number): void {
    this.left -= steps;
    if (this.left < 0) {
      this.left = 0;
      throw new WorkBudgetExceeded(this.budget);
    }
  }

  /** A search stopped where the budget ended, without an answer: the budget is used up. */
  exhausted(): never {
    this.left = 0;
    throw new WorkBudgetExceeded(this.budget);
  }
}
