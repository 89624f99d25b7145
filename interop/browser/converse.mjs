// Drives stock Converse.js in headless Debian Chromium against Parley (run
// by interop/browser.sh): log in over the transport named on the command
// line, send a chat message to a slixmpp user, and show the reply in the
// chat window. Prints PASS/FAIL lines; saves a screenshot per transport.
//
//   node converse.mjs PAGE_URL TRANSPORT SERVICE_URL JID PASSWORD PEER SHOT.png
import { chromium } from 'playwright-core';

const [pageURL, transport, serviceURL, jid, password, peer, shot] = process.argv.slice(2);
let failures = 0;
const report = (name, ok, detail = '') => {
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: converse ${transport} ${name}${!ok && detail ? ` (${detail})` : ''}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Parley's certificate is self-signed for the test domain. No name is
  // ever resolved: the test talks to loopback addresses only, and
  // Chromium would otherwise ask the system's DNS about whatever a page or
  // the browser itself (updates, fonts) names.
  args: ['--ignore-certificate-errors', '--no-sandbox', '--disable-gpu',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.*', '--no-proxy-server',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 700 } });
  page.on('console', (m) => console.error(`browser ${m.type()}:`, m.text()));
  page.on('response', (r) => { if (r.status() >= 400) console.error('http', r.status(), r.url()); });
  page.on('pageerror', (e) => console.error('page error:', String(e)));
  const params = new URLSearchParams({ transport, url: serviceURL, jid, password });
  await page.goto(`${pageURL}?${params}`);

  const connected = await page.waitForFunction(() => window.parleyTest?.connected || window.parleyTestInitError,
    null, { timeout: 30000 }).then(() => page.evaluate(() => window.parleyTest?.connected === true)).catch(() => false);
  report('logs in', connected, await page.evaluate(() => window.parleyTestInitError || 'not connected'));

  if (connected) {
    await page.evaluate(async (peer) => {
      const chat = await window.parleyTest.api.chats.open(peer, {}, true);
      await chat.sendMessage({ body: `hello from converse over ${new URLSearchParams(location.search).get('transport')}` });
    }, peer);
    report('sends a message', true);
    const reply = `reply to converse over ${transport}`;
    const got = await page.waitForFunction((r) => window.parleyTest.received.includes(r), reply, { timeout: 20000 })
      .then(() => true).catch(() => false);
    report('receives the reply', got, JSON.stringify(await page.evaluate(() => window.parleyTest.received)));
    const shown = await page.waitForFunction((r) => [...document.querySelectorAll('.chat-msg__text')].some((e) => e.textContent.includes(r)),
      reply, { timeout: 10000 }).then(() => true).catch(() => false);
    report('shows the reply in the chat window', shown);
  }
  await page.screenshot({ path: shot });
} finally {
  await browser.close();
}
process.exit(failures ? 1 : 0);
