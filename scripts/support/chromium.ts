// Debian's chromium, headless, as the browser tests and the page bench start it: downloaded
// browsers do not run here, and without the background-networking flags chromium's own calls home
// are refused by a closed network, many at a time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** A fresh profile per launch; `close` ends the browser and removes the profile. */
export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(who: string): Promise<Chromium> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `${who} needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    );
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-chromium-'));
  // The persistent-context API is how playwright takes --user-data-dir.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
