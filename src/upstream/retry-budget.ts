// Retry budget (as in linkerd and Envoy): retries may add at most budgetPercent of the
// recent request volume, plus a floor of minPerSecond, so retries cannot amplify an outage.
const WINDOW_S = 10;

export class RetryBudget {
  private readonly requests = new Array<number>(WINDOW_S).fill(0);
  private readonly retries = new Array<number>(WINDOW_S).fill(0);
  private second = 0;

  constructor(
    private readonly percent: number,
    private readonly minPerSecond: number,
  ) {}

  private roll(): number {
    const now = Math.floor(Date.now() / 1000);
    if (now !== this.second) {
      const steps = Math.min(WINDOW_S, now - this.second);
      for (let i = 1; i <= steps; i++) {
        const slot = (this.second + i) % WINDOW_S;
        this.requests[slot] = 0;
        this.retries[slot] = 0;
      }
      this.second = now;
    }
    return now % WINDOW_S;
  }

  recordRequest(): void {
    this.requests[this.roll()]! += 1;
  }

  /** Takes one retry from the budget if there is one. */
  tryRetry(): boolean {
    const slot = this.roll();
    let req = 0;
    let ret = 0;
    for (let i = 0; i < WINDOW_S; i++) {
      req += this.requests[i]!;
      ret += this.retries[i]!;
    }
    const allowed = this.minPerSecond * WINDOW_S + (req * this.percent) / 100;
    if (ret >= allowed) return false;
    this.retries[slot]! += 1;
    return true;
  }
}
