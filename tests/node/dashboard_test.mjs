// The dashboard in a real browser: loads the page a running dfrpd serves, checks that what it
// shows equals what the API answers, that it loads nothing from outside the daemon and logs
// no errors, that the "unreachable" banner comes and goes, and saves a screenshot.
//
//   node tests/node/dashboard_test.mjs http://127.0.0.1:PORT OUTPUT_DIR
//
// Prints "PASS name" or "FAIL name: details" per check; exits 1 on any failure. Needs
// playwright-core (npm ci in the repository root) and Debian's chromium (/usr/bin/chromium,
// or CHROMIUM_PATH): without them the test fails, it does not skip.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const kChromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const kArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const kWaitMs = 15000;

let failures = 0;
function Pass(name) { console.log(`PASS ${name}`); }
function Fail(name, detail) {
  failures++;
  console.log(`FAIL ${name}: ${detail}`);
}
function Check(name, ok, detail) {
  if (ok) Pass(name); else Fail(name, detail);
}
const Sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function ApiGet(base, route) {
  const res = await fetch(new URL(route, base), { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET ${route}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

// What the page shows for each volume card, by index.
function ReadVolumeCards(page) {
  return page.evaluate(() => {
    const num = (el, key) => (el && el.dataset[key] !== '' ? Number(el.dataset[key]) : null);
    return [...document.querySelectorAll('[data-volume]')].map((card) => {
      const q = (cls) => card.querySelector('.' + cls);
      return {
        index: Number(card.dataset.volume),
        state: q('vol-state') ? q('vol-state').textContent.trim() : null,
        shards: num(q('vol-shards'), 'value'),
        shardsText: q('vol-shards') ? q('vol-shards').textContent.trim() : null,
        used: num(q('vol-used'), 'bytes'),
        quota: num(q('vol-quota'), 'bytes'),
        path: q('vol-path') ? q('vol-path').textContent : null,
        pathHasMarkup: q('vol-path') ? q('vol-path').children.length > 0 : null,
      };
    });
  });
}

function VolumeMismatches(apiVolumes, cards) {
  const out = [];
  const byIndex = new Map(cards.map((c) => [c.index, c]));
  for (const v of apiVolumes) {
    const c = byIndex.get(v.index);
    if (!c) {
      out.push({ v, field: 'card', want: 'a card', got: 'none' });
      continue;
    }
    for (const [field, want, got] of [['state', v.state, c.state], ['shards', v.shards, c.shards],
                                      ['shards text', String(v.shards), c.shardsText],
                                      ['used', v.used, c.used], ['quota', v.quota, c.quota],
                                      ['path', v.path, c.path]]) {
      if (want !== got) out.push({ v, field, want, got });
    }
  }
  if (cards.length !== apiVolumes.length) {
    out.push({ v: { index: '*' }, field: 'count', want: apiVolumes.length, got: cards.length });
  }
  return out;
}

// The page polls every 2 s: retry until it shows the API's figures or kWaitMs passes (on the
// monotonic clock, which a change of the system time cannot move).
async function CheckVolumes(page, base) {
  const deadline = performance.now() + kWaitMs;
  let api;
  let cards;
  let bad;
  do {
    api = (await ApiGet(base, '/v1/volumes')).volumes;
    cards = await ReadVolumeCards(page);
    bad = VolumeMismatches(api, cards);
    if (bad.length === 0) break;
    await Sleep(500);
  } while (performance.now() < deadline);
  Check('one card per volume', cards.length === api.length,
        `API has ${api.length} volumes, page shows ${cards.length}`);
  for (const v of api) {
    const mine = bad.filter((b) => b.v.index === v.index);
    Check(`volume ${v.index} (${v.state}, ${v.shards} shards, ${v.used} of ${v.quota} bytes)`,
          mine.length === 0,
          mine.map((b) => `${b.field}: API ${JSON.stringify(b.want)}, page ${JSON.stringify(b.got)}`)
              .join('; '));
  }
  const marked = cards.filter((c) => c.pathHasMarkup);
  Check('volume paths shown as text, not markup', marked.length === 0,
        `volumes ${marked.map((c) => c.index).join(',')} hold elements in .vol-path`);
  return api;
}

async function CheckNode(page, base, volumes) {
  const st = await ApiGet(base, '/v1/status');
  const text = (sel) => page.locator(sel).first().textContent({ timeout: kWaitMs });
  const version = (await text('#node-version')).trim();
  Check('version shown', version === st.version, `API ${st.version}, page "${version}"`);
  const store = (await text('#store-id')).trim();
  Check('store id shown', store === st.store_id, `API ${st.store_id}, page "${store}"`);
  const addr = (await text('#api-addr')).trim();
  Check('API address shown', addr === st.api_addr, `API ${st.api_addr}, page "${addr}"`);
  const uptime = (await text('#uptime')).trim();
  const shown = Number(await page.locator('#uptime').getAttribute('data-seconds'));
  Check('uptime shown, human readable',
        /^(\d+s|\d+m \d\ds|\d+h \d\dm|\d+d \d+h)$/.test(uptime) &&
            Math.abs(shown - st.uptime_seconds) < 10,
        `page "${uptime}" (${shown} s), API ${st.uptime_seconds} s`);
  const total = Number(await page.locator('#total-shards').getAttribute('data-value'));
  const sum = volumes.reduce((a, v) => a + v.shards, 0);
  Check('total shards', total === st.shards && total === sum,
        `page ${total}, /v1/status ${st.shards}, sum of /v1/volumes ${sum}`);
  const corrupt = Number(await page.locator('#scrub-corrupt').getAttribute('data-value'));
  Check('scrub corrupt count', corrupt === st.scrub.corrupt_found,
        `page ${corrupt}, API ${st.scrub.corrupt_found}`);
  const chart = await page.locator('#throughput-chart').boundingBox();
  Check('throughput chart drawn', chart !== null && chart.width > 100 && chart.height > 50,
        `canvas box ${JSON.stringify(chart)}`);
  Check('no unreachable banner while the daemon runs',
        await page.locator('#unreachable').isHidden(), 'the banner is visible');
}

// The admin token stays in this tab's sessionStorage, nowhere else.
async function CheckToken(page) {
  await page.fill('#admin-token', 'not-the-token');
  const stored = await page.evaluate(() => [sessionStorage.getItem('dfrp-admin-token'),
                                            localStorage.length]);
  Check('admin token kept in sessionStorage only',
        stored[0] === 'not-the-token' && stored[1] === 0, `got ${JSON.stringify(stored)}`);
  await page.fill('#admin-token', '');
}

// Cut the page off from /v1/status: the banner shows, then goes once the route is back.
async function CheckBanner(page) {
  const cut = (route) => route.abort('connectionrefused');
  await page.route('**/v1/status', cut);
  try {
    await page.locator('#unreachable').waitFor({ state: 'visible', timeout: kWaitMs });
    Pass('unreachable banner shows when a poll fails');
  } catch (e) {
    Fail('unreachable banner shows when a poll fails', e.message.split('\n')[0]);
  }
  await page.unroute('**/v1/status', cut);
  try {
    await page.locator('#unreachable').waitFor({ state: 'hidden', timeout: kWaitMs });
    Pass('unreachable banner goes when the daemon answers again');
  } catch (e) {
    Fail('unreachable banner goes when the daemon answers again', e.message.split('\n')[0]);
  }
}

// Waits until the page has rendered one more poll than when called (each poll shows a new
// uptime), so that what that poll logs has been seen; fails the check named `name` when none
// comes within kWaitMs.
async function WaitForNextPoll(page, name) {
  try {
    const before = await page.locator('#uptime').getAttribute('data-seconds');
    await page.waitForFunction(
        (b) => document.querySelector('#uptime').dataset.seconds !== b, before,
        { timeout: kWaitMs });
    Pass(name);
  } catch (e) {
    Fail(name, e.message.split('\n')[0]);
  }
}

// The market panel: each resource's price and utilisation as the API gives them, a price
// chart per resource drawn from the history, and the top wallets of usage.db.
async function CheckMarket(page, base) {
  await page.waitForSelector('#market-rows [data-resource]', { timeout: kWaitMs });
  // An epoch may end between the API's answer and the page's poll: compare the page with the
  // API's answer for the same vector (the page names it in data-after-epoch), trying again
  // when an epoch ended while the page caught up.
  let prices = null;
  let rows = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    prices = await ApiGet(base, '/v1/market/prices?history=60');
    try {
      await page.waitForFunction(
          // null (no epoch ended yet) is shown as an empty data-after-epoch.
          (e) => document.querySelector('#market-rows').dataset.afterEpoch ===
              (e === null ? '' : String(e)),
          prices.prices_after_epoch, { timeout: kWaitMs });
    } catch (e) {
      continue;  // a newer epoch ended before the page showed this one
    }
    rows = await page.evaluate(() => [...document.querySelectorAll('#market-rows tr')].map(
        (tr) => ({
          resource: tr.dataset.resource,
          price: tr.querySelector('.market-price').dataset.price,
          util: tr.querySelector('.market-util').textContent.trim(),
          points: Number(tr.querySelector('.price-chart').dataset.points),
          drawn: tr.querySelector('.price-chart').width > 0,
        })));
    const again = await ApiGet(base, '/v1/market/prices');
    if (again.prices_after_epoch === prices.prices_after_epoch) break;
  }
  const usage = await ApiGet(base, '/v1/market/usage');
  Check('market: one row per resource of the price vector',
        rows.length === Object.keys(prices.prices).length && rows.length === 6,
        JSON.stringify(rows.map((r) => r.resource)));
  const wrong = rows.filter((r) => r.price !== prices.prices[r.resource] ||
      r.util !== `${(prices.utilization_bps[r.resource] / 100).toFixed(1)}%`);
  Check('market: prices and utilisation as the API gives them', wrong.length === 0,
        JSON.stringify(wrong));
  const history = (prices.history || []).length;
  Check('market: a price chart per resource over the epochs kept',
        rows.every((r) => r.drawn && r.points === history), `${history} epochs, ${JSON.stringify(rows)}`);
  const wallets = await page.evaluate(
      () => [...document.querySelectorAll('#top-wallets li')].map((li) => li.dataset.wallet));
  const want = (usage.top_wallets || []).map((w) => w.wallet);
  Check('market: the top wallets of usage.db', JSON.stringify(wallets) === JSON.stringify(want) &&
        want.length > 0, `page ${JSON.stringify(wallets)}, API ${JSON.stringify(want)}`);
}

// The ledger panel (the node is the one authority of a committee of one): its wallet's address
// and balance, and the authority's figures, as /v1/ledger/node gives them.
async function CheckLedger(page, base) {
  const api = await ApiGet(base, '/v1/ledger/node');
  await page.waitForFunction(
      (a) => document.getElementById('ledger-address').textContent === a,
      api.wallet ? api.wallet.address : '', { timeout: kWaitMs }).catch(() => {});
  const shown = await page.evaluate(() => ({
    empty: document.getElementById('ledger-empty').hidden,
    address: document.getElementById('ledger-address').textContent,
    balance: document.getElementById('ledger-balance').dataset.baseUnits,
    index: document.getElementById('ledger-index').textContent,
    conserved: document.getElementById('ledger-conserved').dataset.conserved,
    equivocations: document.getElementById('ledger-equivocation-count').dataset.count,
    authorityShown: !document.getElementById('ledger-authority').hidden,
    payoutBuckets: document.getElementById('ledger-payouts-totals').dataset.buckets,
    payoutsEmptyShown: !document.getElementById('ledger-payouts-empty').hidden,
    payoutsChartShown: !document.getElementById('ledger-payouts-chart').hidden,
  }));
  Check('ledger: the wallet and its balance as the committee reports them',
        api.wallet && !api.wallet.error && shown.empty &&
        shown.address === api.wallet.address &&
        shown.balance === String(api.wallet.balance_base_units),
        `page ${JSON.stringify(shown)}, API ${JSON.stringify(api.wallet)}`);
  Check('ledger: the authority, its supply check and its equivocations',
        api.authority && shown.authorityShown && shown.index === String(api.authority.index) &&
        shown.conserved === 'true' && api.authority.conserved === true &&
        shown.equivocations === String(api.authority.equivocations.length),
        `page ${JSON.stringify(shown)}, API ${JSON.stringify(api.authority)}`);
  const buckets = (api.authority && api.authority.payouts || []).length;
  Check('ledger: payouts by period as the API lists them (the chart, or the empty note)',
        shown.payoutBuckets === String(buckets) && shown.payoutsChartShown === (buckets > 0) &&
        shown.payoutsEmptyShown === (buckets === 0),
        `page ${JSON.stringify(shown)}, API ${buckets} buckets`);
}

// The provider's escrows as the Ledger panel lists them: this node provides none, so the
// answer of /v1/ledger/node is the real one with an `escrows` section added (a storage escrow
// and a read escrow, in the shapes docs/API.md gives), to check how each kind is drawn.
async function CheckLedgerEscrows(page, base) {
  const inject = async (route) => {
    const real = await route.fetch();
    const body = await real.json();
    body.escrows = {
      provider: 'dfrp1test', open_escrows: 2, releases_sent: 1, failures: 0, last_error: null,
      last_check_ms: Date.now(), last_outcome: {}, redemptions_sent: 1, closes_sent: 0,
      escrows: [
        { id: 'a'.repeat(64), kind: 'storage', shard_id: '0'.repeat(32), periods: 3, released: 1,
          refunded: 0, to_come: 2, paid_to_provider: '0.95', paid_to_provider_base_units: 950,
          margin: '0.05', remaining: '2', remaining_base_units: 2000 },
        { id: 'b'.repeat(64), kind: 'read', end_unix: 1800000000, price_per_mib: '0.001',
          receipted_bytes: 2621440, redeemed_bytes: 1048576, paid_to_provider: '0.00095',
          paid_to_provider_base_units: 950000, margin: '0.00005', remaining: '0.009',
          remaining_base_units: 9000000 },
      ] };
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  };
  await page.route('**/v1/ledger/node', inject);
  const ok = await page.waitForFunction(
      () => document.getElementById('ledger-escrows').children.length === 2,
      null, { timeout: kWaitMs }).then(() => true).catch(() => false);
  const shown = await page.evaluate(() => [...document.getElementById('ledger-escrows').children]
    .map((li) => ({ kind: li.dataset.kind || 'storage', released: li.dataset.released,
                    redeemed: li.dataset.redeemed, text: li.textContent })));
  await page.unroute('**/v1/ledger/node', inject);
  Check('ledger: a provider\'s storage and read escrows, each drawn by its kind',
        ok && shown.length === 2 && shown[0].released === '1' && shown[1].kind === 'read' &&
        shown[1].redeemed === '1048576' && shown[1].text.includes('2621440 bytes receipted'),
        JSON.stringify(shown));
}

// The Mesh panel: the node (it has a wallet) is in a mesh of its own; its real /v1/mesh/node
// answer, and a /v1/mesh/peers answer with two peers added (in the shape docs/API.md gives),
// to check how peers and the price field are drawn.
async function CheckMesh(page, base) {
  const node = await ApiGet(base, '/v1/mesh/node');
  const ok0 = await page.waitForFunction(
      (url) => document.getElementById('mesh-url').textContent === url, node.url,
      { timeout: kWaitMs }).then(() => true).catch(() => false);
  Check('mesh: the node\'s URL and its peers by state, as /v1/mesh/node gives them',
        ok0 && await page.evaluate(() => !document.getElementById('mesh-body').hidden &&
          document.getElementById('mesh-empty').hidden &&
          document.getElementById('mesh-alive').dataset.count === '0'),
        JSON.stringify(node.peers));
  const peer = (address, state, storage, distance) => ({
    address, node_key: 'c'.repeat(96), url: `http://127.0.0.1:${state === 'alive' ? 7001 : 7002}`,
    state, roles: ['storage'], seq: 1, expires_in_s: 3000, last_answer_ms_ago: 100,
    failures: 0, uptime: 0.75, policy_version: 1, prices: [1, 2, 3, 4, 5, 6],
    price_vector: { cpu_sec: '0.00001', gpu_sec: '0.0005', storage_gib_month: storage,
                    write_gib: '0.0001', read_gib: '0.007', proof: '0.000001' },
    distance, vector: [1, 0],
    trust: { score: state === 'alive' ? 0.8 : 0, global: 0.3, local: 1 } });
  const inject = async (route) => {
    const real = await route.fetch();
    const body = await real.json();
    body.peers = [peer('dfrp1alivepeer', 'alive', '0.004', 0.25),
                  peer('dfrp1deadpeer', 'dead', '0.04', 1.5)];
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  };
  await page.route('**/v1/mesh/peers', inject);
  const ok = await page.waitForFunction(
      () => document.getElementById('mesh-rows').children.length === 2,
      null, { timeout: kWaitMs }).then(() => true).catch(() => false);
  const shown = await page.evaluate(() => ({
    rows: [...document.getElementById('mesh-rows').children].map((tr) => ({
      state: tr.dataset.state, distance: tr.querySelector('.mesh-distance').textContent,
      storage: tr.querySelector('.mesh-storage-price').textContent,
      uptime: tr.querySelector('.mesh-uptime').textContent,
      trust: tr.querySelector('.mesh-trust').textContent })),
    fieldPeers: document.getElementById('mesh-field').dataset.peers,
    field: document.getElementById('mesh-field').textContent }));
  await page.unroute('**/v1/mesh/peers', inject);
  Check('mesh: each peer with its state, vector distance, prices, uptime and trust; the price ' +
        'field over the alive ones',
        ok && shown.rows.length === 2 && shown.rows[0].trust === '0.80' &&
        shown.rows[1].trust === '0.00' && shown.rows[0].state === 'alive' &&
        shown.rows[0].distance === '0.250' && shown.rows[0].storage === '0.004' &&
        shown.rows[1].state === 'dead' && shown.rows[1].uptime === '0.75' &&
        shown.fieldPeers === '1' && shown.field.includes('median 0.004'),
        JSON.stringify(shown));
}

// The Compute panel: this node (ROLES storage,authority) takes no jobs, which its /v1/status
// says (compute null; nothing is asked of /v1/compute then); then answers of a listener's shape (docs/API.md, "Compute") stand in for a compute
// node's, to check how its slots, counts and jobs are drawn.
async function CheckCompute(page) {
  const ok0 = await page.waitForFunction(
      () => !document.getElementById('compute-empty').hidden &&
        document.getElementById('compute-body').hidden,
      null, { timeout: kWaitMs }).then(() => true).catch(() => false);
  Check('compute: a node without the compute role says it takes no jobs', ok0);
  // `paid`: the job's escrow settlement as the listener reports it (docs/API.md), or false.
  const job = (id, state, paid, cpuMs) => ({
    job_id: id.repeat(64), state, app: 'matmul', args: ['64', '3'], ranks: 2,
    client: 'dfrp1client', max_fee: '1', provider: 'dfrp1me', submitted_ms: 1764720000000,
    quote: { total: '0.0012', total_base_units: 1200000, cpu_sec: '0.000001', similarity: 1 },
    ...(paid ? { escrow: 'e'.repeat(64), settlement: paid } : {}),
    ...(cpuMs === null ? {} : { report: { end: 'exited', exit_code: 0, cpu_ms: cpuMs } }) });
  const answers = {
    '/v1/compute/node': { provider: 'dfrp1me', vector: [1, 0], cpu_sec_price: '0.000001',
                          gpu: false, slots: 4, queued: 1, running: 'b'.repeat(64),
                          jobs: { done: 3, failed: 1, queued: 1, running: 1 }, refused: 3,
                          paid_jobs: { open: 1, released: 1, refunded: 2 },
                          earned: '0.00114', earned_base_units: 1140000,
                          apps: ['matmul'], max_wall_seconds: 600, vector_threshold: 0.8 },
    '/v1/compute/jobs': { jobs: [
      job('a', 'queued', false, null), job('b', 'running', { state: 'open' }, null),
      job('c', 'done', { state: 'released', to_provider: '0.00114',
                         to_provider_base_units: 1140000 }, 2500),
      job('d', 'done', { state: 'refunded', fraud_proof: true }, 100),
      job('f', 'failed', { state: 'refunded', fraud_proof: false }, 10)], total: 5 } };
  const inject = async (route) => {
    const path = new URL(route.request().url()).pathname;
    await route.fulfill({ status: 200, contentType: 'application/json',
                          body: JSON.stringify(answers[path]) });
  };
  // /v1/status says whether the node computes: its real answer, with the listener added.
  const injectStatus = async (route) => {
    const body = await (await route.fetch()).json();
    body.compute = answers['/v1/compute/node'];
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  };
  await page.route('**/v1/compute/**', inject);
  await page.route('**/v1/status', injectStatus);
  const ok = await page.waitForFunction(
      () => document.getElementById('compute-rows').children.length === 5,
      null, { timeout: kWaitMs }).then(() => true).catch(() => false);
  const shown = await page.evaluate(() => ({
    empty: document.getElementById('compute-empty').hidden,
    slots: document.getElementById('compute-slots').dataset.slots,
    queued: document.getElementById('compute-queued').dataset.queued,
    running: document.getElementById('compute-running').textContent,
    counts: document.getElementById('compute-counts').textContent,
    earned: document.getElementById('compute-earned').textContent,
    earnedUnits: document.getElementById('compute-earned').dataset.baseUnits,
    paidJobs: document.getElementById('compute-paid-jobs').textContent,
    rows: [...document.getElementById('compute-rows').children].map((tr) => ({
      state: tr.dataset.state, paid: tr.querySelector('.compute-paid').textContent,
      settled: tr.querySelector('.compute-settled').textContent,
      quote: tr.querySelector('.compute-quote').textContent,
      cpu: tr.querySelector('.compute-cpu').textContent })) }));
  await page.unroute('**/v1/compute/**', inject);
  await page.unroute('**/v1/status', injectStatus);
  Check('compute: slots, queue, the running job, counts by state, and each job with its ' +
        'state, quote, escrow and CPU time',
        ok && shown.empty && shown.slots === '4' && shown.queued === '1' &&
        shown.running.startsWith('bbbbbbbbbbbbbbbb') &&
        shown.counts === 'Jobs: 3 done, 1 failed, 1 queued, 1 running.' &&
        shown.rows.map((r) => r.state).join() === 'queued,running,done,done,failed' &&
        shown.rows[0].paid === '–' && shown.rows[1].paid === 'escrow' &&
        shown.rows[2].quote === '0.0012' && shown.rows[2].cpu === '2.5' &&
        shown.rows[0].cpu === '–',
        JSON.stringify(shown));
  Check('compute: earnings from paid jobs, and how each paid job was settled (open, released ' +
        'with the pay, refunded on a fraud proof, refunded for no claim)',
        ok && shown.earned === '0.00114' && shown.earnedUnits === '1140000' &&
        shown.paidJobs === '(paid jobs: 1 open, 2 refunded, 1 released)' &&
        shown.rows.map((r) => r.settled).join('|') ===
          '–|open|released: 0.00114|refunded: fraud proof|refunded',
        JSON.stringify(shown));
}

async function LoadPlaywright() {
  try {
    return (await import('playwright-core')).chromium;
  } catch (e) {
    Fail('playwright-core', `cannot import it (${e.message.split('\n')[0]}): run ` +
         '`npm ci --ignore-scripts` in the repository root (scripts/setup.sh does)');
    return null;
  }
}

async function Main() {
  const [base, outDir] = process.argv.slice(2);
  if (!base || !outDir) {
    console.error('usage: node dashboard_test.mjs URL OUTPUT_DIR');
    return 2;
  }
  const origin = new URL(base).origin;
  const chromium = await LoadPlaywright();
  if (!fs.existsSync(kChromium)) {
    Fail('chromium', `${kChromium} is missing: apt-get install chromium (scripts/setup.sh does)`);
  }
  if (!chromium || failures > 0) return 1;

  fs.mkdirSync(outDir, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'dfrp-dashboard-chromium-'));
  const outside = [];
  const errors = [];
  let phase = 'load';  // console errors count outside the deliberate outage only
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: kChromium, headless: true, args: kArgs,
    viewport: { width: 1280, height: 900 }, timeout: 60000 });
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.protocol !== 'data:' && u.origin !== origin) outside.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error' && phase !== 'outage') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));

    const res = await page.goto(origin + '/', { waitUntil: 'load', timeout: kWaitMs });
    Check('GET / serves the page', res && res.status() === 200 &&
          /text\/html/.test(res.headers()['content-type'] || ''),
          `status ${res && res.status()}, content-type ${res && res.headers()['content-type']}`);
    await page.waitForSelector('[data-volume]', { timeout: kWaitMs });
    phase = 'main';
    const volumes = await CheckVolumes(page, base);
    await CheckNode(page, base, volumes);
    await CheckToken(page);
    await CheckMarket(page, base);
    await CheckLedger(page, base);
    await CheckLedgerEscrows(page, base);
    await CheckMesh(page, base);
    await CheckCompute(page);

    const shot = path.resolve(outDir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# screenshot: ${shot}`);

    phase = 'outage';
    await CheckBanner(page);
    phase = 'main';
    await WaitForNextPoll(page, 'the page polls again after the outage');  // for late errors
    Check('no request outside the daemon', outside.length === 0, outside.join(', '));
    Check('no console errors', errors.length === 0, errors.join(' | '));
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return failures > 0 ? 1 : 0;
}

const watchdog = setTimeout(() => {
  Fail('time', 'the test ran over 150 s');
  process.exit(1);
}, 150000);
watchdog.unref();

Main().then((code) => {
  console.log(code === 0 ? '# all checks passed' : `# ${failures} check(s) failed`);
  process.exit(code);
}, (e) => {
  Fail('run', e.stack || String(e));
  process.exit(1);
});
