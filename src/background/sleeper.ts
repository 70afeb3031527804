/**
 * A sleep that can be cut short: a loop waits on it, and stop() (or news that there is work,
 * such as NATS coming back) wakes it at once instead of waiting out the interval. The timer does
 * not keep the process alive on its own.
 */
export class Sleeper {
  private timer: NodeJS.Timeout | null = null;
  private resolve: (() => void) | null = null;

  sleep(ms: number): Promise<void> {
    this.wake();
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.wake(), ms);
      this.timer.unref();
    });
  }

  wake(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const resolve = this.resolve;
    this.resolve = null;
    resolve?.();
  }
}
