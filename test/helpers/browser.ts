import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (apt-get install chromium); playwright-core never downloads a browser. */
export const CHROMIUM = process.env.DISPATCH_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or undefined when they can. Under CI=true a missing
 * browser is a failure (the caller throws the reason); on a developer's machine the tests are
 * skipped and the reason printed, so `npm test` still works without chromium.
 */
export function chromiumMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return `browser tests need chromium at ${CHROMIUM} (apt-get install -y chromium, or set DISPATCH_TEST_CHROMIUM)`;
}

export async function launchChromium(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  return await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}
