// Debian's Chromium for the browser tests: headless, and kept off the network (the machines
// have none but loopback; without these flags Chromium keeps trying Google's hosts).

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export const CHROMIUM_PATH = process.env.CHROMIUM || '/usr/bin/chromium';
