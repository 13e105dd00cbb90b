// The console in a real browser. Starts a demo federation (`attesta demo up`), signs in to
// each role's console with that operator's certificate in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core), clicks through the role's task, checks every
// page with axe-core (no serious or critical WCAG 2.1 A/AA violation) and writes a screenshot
// of each page to tests/console/output/.
//
// Run by tests/console/run.sh (make test), which installs Chromium and the npm packages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
const jsqrPath = require.resolve('jsqr/dist/jsQR.js');
const out = join(here, 'output');
const bin = process.env.ATTESTA_BIN
  ?? join(process.env.CARGO_TARGET_DIR ?? join(process.env.HOME, '.cache/attesta-target'), 'debug/attesta');

let demo, dir, consoles, samples, browser;

/// Polls `check` every 100 ms, at most `attempts` times, until it returns a value.
async function eventually(what, check, attempts = 1200) {
  for (let i = 0; i < attempts; i++) {
    const v = await check();
    if (v !== undefined && v !== false && v !== null) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not after ${attempts} attempts`);
}

before(async () => {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'attesta-console-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  demo = spawn(bin, ['demo', 'up', '--dir', dir, '--base-port', String(port), '--residents', '3000'], {
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let said = '';
  demo.stdout.on('data', (d) => { said += d; });
  demo.stderr.on('data', (d) => { said += d; });
  demo.on('exit', (code) => { if (code) said += `\n(demo exited with ${code})`; });
  await eventually('the demo federation', () => {
    if (demo.exitCode !== null) throw new Error(`demo exited: ${said}`);
    return existsSync(join(dir, 'console.json')) && said.includes('Ctrl-C');
  });
  consoles = JSON.parse(readFileSync(join(dir, 'console.json'), 'utf8'));
  samples = JSON.parse(readFileSync(join(dir, 'data', 'samples.json'), 'utf8'));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await eventually('the demo to stop', () => demo.exitCode !== null, 300).catch(() => demo.kill('SIGKILL'));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/// A browser context signed in as `role`'s operator (their certificate for their console's
/// origin). The demo CA is not in Chromium's store, so the server certificate is not checked
/// here (the Rust tests check it); bypassCSP lets axe-core be injected.
async function signedIn(role, locale = 'it-IT') {
  const c = consoles[role];
  assert.ok(c, `console.json has ${role}`);
  const origin = new URL(c.url).origin;
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    bypassCSP: true,
    locale,
    clientCertificates: [{ origin, certPath: c.cert, keyPath: c.key }],
  });
  return { context, page: await context.newPage(), c };
}

/// axe-core on the page: no serious or critical violation of WCAG 2.1 A and AA.
async function accessible(page, name) {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), [], `${name}: accessibility`);
}

/// In the print layout, no form (search, language switch, actions) is visible.
async function noFormsPrinted(page) {
  for (const form of await page.locator('form').all()) {
    assert.equal(await form.isVisible(), false, 'forms are not printed');
  }
}

/// The text each QR code on the page carries, decoded from its pixels (the SVG drawn on a
/// canvas, read by jsQR) as a phone at another office would.
async function qrTexts(page) {
  await page.addScriptTag({ path: jsqrPath });
  return page.evaluate(async () => {
    const texts = [];
    for (const svg of document.querySelectorAll('figure.attestation .qr svg')) {
      const img = new Image();
      img.src = 'data:image/svg+xml;base64,' + btoa(new XMLSerializer().serializeToString(svg));
      await img.decode();
      // A whole number of pixels a module (at least 8), so no module is blurred.
      const drawn = svg.viewBox.baseVal.width || svg.width.baseVal.value;
      const side = drawn * Math.max(1, Math.ceil(1600 / drawn));
      const canvas = document.createElement('canvas');
      canvas.width = side;
      canvas.height = side;
      const g = canvas.getContext('2d');
      g.imageSmoothingEnabled = false;
      g.fillStyle = '#fff';
      g.fillRect(0, 0, side, side);
      g.drawImage(img, 0, 0, side, side);
      const pixels = g.getImageData(0, 0, side, side);
      // eslint-disable-next-line no-undef
      const code = jsQR(pixels.data, side, side, { inversionAttempts: 'dontInvert' });
      texts.push(code ? code.data : null);
    }
    return texts;
  });
}

test('the clerk checks a resident at the counter', async () => {
  const { context, page, c } = await signedIn('clerk');
  await page.goto(c.url);
  await assert.doesNotReject(page.getByRole('heading', { level: 1, name: 'Console' }).waitFor());
  assert.match(await page.locator('.who').innerText(), /mario\.rossi/);
  await accessible(page, 'clerk-home');

  await page.getByRole('link', { name: 'Verifica', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Verifica' }).waitFor();
  await accessible(page, 'clerk-check-form');
  const person = samples.find((s) => s.label === 'resident with valid permit');
  assert.ok(person, 'samples.json has a resident with a valid permit');
  await page.getByLabel('Codice fiscale').fill(person.cf);
  await page.getByLabel('Finalità').selectOption('benefit-eligibility');
  await page.getByRole('button', { name: 'Verifica' }).click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  assert.match(await page.locator('main').innerText(), /Esito/);
  const answers = await page.locator('dd.answer').allInnerTexts();
  assert.deepEqual(answers, ['Sì', 'Sì'], 'resident and legally present');
  assert.match(await page.locator('.result').innerText(), /a nome di mario\.rossi/);
  await accessible(page, 'clerk-check-result');
  // What the clerk prints: the answer and a QR code per signed answer, no menus or forms.
  assert.ok(await page.locator('figure.attestation svg').count() >= 2, 'a QR code per attestation');
  const printed = await page.locator('pre.jws').allTextContents();
  assert.ok(printed.length >= 2, 'the attestations, printed as text too');
  // Each QR code carries exactly the attestation printed beside it.
  assert.deepEqual(await qrTexts(page), printed, 'the QR codes decode to the attestations');
  await page.emulateMedia({ media: 'print' });
  await noFormsPrinted(page);
  await page.screenshot({ path: join(out, 'clerk-printed-attestation.png'), fullPage: true });
  await page.emulateMedia({ media: 'screen' });

  // A malformed codice fiscale: the reason, on the page, not a blank error.
  await page.getByLabel('Codice fiscale').fill('RSSMRA80A01G479');
  await page.getByRole('button', { name: 'Verifica' }).click();
  await page.getByRole('heading', { level: 2, name: 'Verifica non eseguita' }).waitFor();
  await accessible(page, 'clerk-check-refused');

  // Checking an attestation someone brought: a tampered one is refused, with the reason.
  await page.getByRole('link', { name: 'Controlla un attestato' }).click();
  await page.getByRole('heading', { level: 1, name: 'Controlla un attestato' }).waitFor();
  await accessible(page, 'clerk-verify-form');
  await page.getByLabel('Attestato (JWS compatto)').fill('eyJhbGciOiJFZERTQSJ9.eyJ4IjoxfQ.AAAA');
  await page.getByRole('button', { name: 'Controlla' }).click();
  await page.getByRole('heading', { level: 2, name: 'Attestato non valido' }).waitFor();
  await accessible(page, 'clerk-verify-refused');

  // The printed attestation, checked offline with the CA alone, and as a file at the
  // counter of another office.
  const signers = new Set();
  for (const [i, jws] of printed.entries()) {
    const file = join(dir, `attestation-${i}.jws`);
    writeFileSync(file, jws);
    const v = spawnSync(bin, ['verify-attestation', '--ca', join(dir, 'ca', 'ca.crt'), file], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    signers.add(v.stderr.match(/^valid attestation signed by ([a-z0-9-]+) /)[1]);
    assert.equal(JSON.parse(v.stdout).subject, person.cf);
    await page.getByLabel('Attestato (JWS compatto)').fill('');
    await page.getByLabel("Oppure il file dell'attestato").setInputFiles(file);
    await page.getByRole('button', { name: 'Controlla' }).click();
    await page.getByRole('heading', { level: 2, name: 'Attestato valido' }).waitFor();
    assert.match(await page.locator('.result').innerText(), new RegExp(person.cf));
  }
  assert.ok(signers.has('comune-pesaro') && signers.has('questura-pu'), [...signers].join(', '));
  await accessible(page, 'clerk-verify-file');
  await context.close();
});

test('a clerk whose browser prefers English checks in English, then switches to Italian', async () => {
  const { context, page, c } = await signedIn('clerk', 'en-GB');
  await page.goto(c.url);
  await page.getByRole('heading', { level: 1, name: 'Console' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  assert.match(await page.locator('main').innerText(), /Who I am/);
  await accessible(page, 'en-clerk-home');
  await page.getByRole('link', { name: 'Check', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Check' }).waitFor();
  const person = samples.find((s) => s.label === 'resident with valid permit');
  await page.getByLabel('Tax code (codice fiscale)').fill(person.cf);
  await page.getByLabel('Purpose').selectOption('benefit-eligibility');
  await page.getByRole('button', { name: 'Check', exact: true }).click();
  await page.getByRole('heading', { level: 2, name: 'Result' }).waitFor();
  assert.deepEqual(await page.locator('dd.answer').allInnerTexts(), ['Yes', 'Yes']);
  assert.match(await page.locator('.result').innerText(), /on behalf of mario\.rossi/);
  await accessible(page, 'en-clerk-check-result');
  // The switch names the other language in that language, and the choice sticks.
  await page.getByRole('button', { name: 'Italiano' }).click();
  await page.getByRole('heading', { level: 1, name: 'Verifica' }).waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'it');
  await page.goto(c.url);
  await page.getByRole('heading', { level: 2, name: 'Chi sono' }).waitFor();
  await accessible(page, 'en-clerk-switched-to-italian');
  await page.getByRole('button', { name: 'English' }).click();
  await page.getByRole('heading', { level: 2, name: 'Who I am' }).waitFor();
  await context.close();
});

test('the Prefettura reads the policy in force and asks it a question', async () => {
  const { context, page, c } = await signedIn('policy-officer');
  await page.goto(c.url);
  await page.getByRole('link', { name: 'Politica' }).click();
  await page.getByRole('heading', { level: 1, name: 'Politica di accesso' }).waitFor();
  assert.match(await page.locator('table').first().innerText(), /benefit-eligibility/);
  await accessible(page, 'policy-in-force');
  const ask = async (resource, purpose) => {
    await page.getByLabel('Agenzia che chiede').fill('inps-pesaro');
    await page.getByLabel('Che cosa').selectOption(resource);
    await page.getByLabel('Finalità').fill(purpose);
    await page.getByRole('button', { name: 'Chiedi alla politica' }).click();
    await page.locator('.result h3').waitFor();
    return page.locator('.result').innerText();
  };
  assert.match(await ask('status', 'benefit-eligibility'), /Sì[\s\S]*p, consumer, status/);
  await accessible(page, 'policy-question-allowed');
  assert.match(await ask('family', 'benefit-eligibility'), /^No/);
  await context.close();
});

test('the Prefettura grants a purpose, publishes it, and every node applies it', async () => {
  const { context, page, c } = await signedIn('policy-officer');
  await page.goto(c.url);
  await page.getByRole('link', { name: 'Bozza' }).click();
  await page.getByRole('heading', { level: 1, name: 'Bozza della politica' }).waitFor();
  assert.match(await page.locator('main').innerText(), /Nessuna modifica in bozza/);
  await accessible(page, 'policy-draft');
  await page.getByLabel('Chi (agenzia o ruolo)').fill('inps-pesaro');
  await page.getByLabel('Che cosa').selectOption('residence');
  await page.getByLabel('Finalità').fill('pension-check');
  await page.getByLabel('Territorio').fill('*');
  await page.getByRole('button', { name: 'Aggiungi alla bozza' }).click();
  await page.getByText('Regola aggiunta alla bozza.').waitFor();
  assert.match(await page.locator('ul.diff').innerText(), /aggiunta: p, inps-pesaro, residence, read, pension-check, \*, allow/);
  await accessible(page, 'policy-draft-edited');

  // A name that is not a policy token: refused, and shown as text.
  await page.getByLabel('Chi (agenzia o ruolo)').fill('<img src=x>');
  await page.getByLabel('Finalità').fill('x');
  await page.getByRole('button', { name: 'Aggiungi alla bozza' }).click();
  await page.getByRole('heading', { level: 2, name: 'Modifica non eseguita' }).waitFor();
  assert.equal(await page.locator('main img').count(), 0, 'no markup from the form');

  await page.getByRole('link', { name: 'Rivedi e pubblica…' }).click();
  await page.getByRole('heading', { level: 1, name: 'Pubblica la politica' }).waitFor();
  await accessible(page, 'policy-confirm');
  const confirm = page.getByRole('button', { name: /^Confermo: pubblica la versione \d+$/ });
  const version = Number((await confirm.innerText()).match(/(\d+)$/)[1]);
  await confirm.click();
  await page.getByRole('heading', { level: 1, name: 'Politica pubblicata' }).waitFor();
  assert.match(await page.locator('main').innerText(), new RegExp(`versione ${version}`));
  await accessible(page, 'policy-published');

  // In force on every node of the directory, as the nodes' own answers say.
  await page.getByRole('link', { name: 'Quale versione applica ogni nodo' }).click();
  await page.getByRole('heading', { level: 1, name: 'Versione della politica sui nodi' }).waitFor();
  await eventually('every node on the new version', async () => {
    await page.reload();
    const rows = await page.locator('tbody tr').allInnerTexts();
    return rows.length >= 6 && rows.every((r) => r.includes(String(version)) && r.includes('aggiornato'));
  }, 100);
  await accessible(page, 'policy-nodes');
  await context.close();
});

test("the registry office sees its node's data", async () => {
  const { context, page, c } = await signedIn('registry-officer');
  await page.goto(c.url);
  await page.getByRole('link', { name: 'Anagrafe' }).click();
  await page.getByRole('heading', { level: 1, name: 'Anagrafe' }).waitFor();
  const row = await page.locator('tbody tr').first().innerText();
  assert.match(row, /residenti\s+\d+/, row);
  assert.ok(Number(row.split(/\s+/)[1]) > 0, `Pesaro has residents: ${row}`);
  await accessible(page, 'registry-datasets');

  // An upload with a bad row: the report names its line, and nothing changes.
  const residents = readFileSync(join(dir, 'data', 'residents.csv'), 'utf8').trim().split('\n');
  const header = residents[0];
  const pesaro = residents.slice(1).filter((l) => l.split(',')[7] === '041044');
  const broken = pesaro[1].split(',');
  broken[4] = '1899-02-30';
  const bad = join(dir, 'anagrafe-errata.csv');
  writeFileSync(bad, `${header}\n${pesaro[0]}\n${broken.join(',')}\n`);
  await page.getByLabel('File CSV').setInputFiles(bad);
  await page.getByRole('button', { name: 'Controlla il file' }).click();
  await page.getByRole('heading', { level: 2, name: 'Righe non valide: 1 su 2' }).waitFor();
  assert.match(await page.locator('tbody tr').first().innerText(), /^3\s+birth_date/);
  assert.equal(await page.getByRole('button', { name: "Applica l'importazione" }).count(), 0);
  await accessible(page, 'registry-upload-rejected');

  // A good one (a change of address): checked, then applied on confirmation.
  await page.goto(new URL('/anagrafe', c.url).href);
  const moved = pesaro[0].split(',');
  moved[8] = 'VIA DELLE PROVE 1';
  const good = join(dir, 'variazioni.csv');
  writeFileSync(good, `op,${header}\nupsert,${moved.join(',')}\n`);
  await page.getByLabel('File CSV').setInputFiles(good);
  await page.getByLabel('Aggiorna alcune righe', { exact: false }).check();
  await page.getByRole('button', { name: 'Controlla il file' }).click();
  await page.getByRole('heading', { level: 2, name: 'Tutte le righe sono valide (1)' }).waitFor();
  await accessible(page, 'registry-upload-checked');
  await page.getByRole('button', { name: "Applica l'importazione" }).click();
  await page.getByRole('heading', { level: 2, name: 'Importazione applicata' }).waitFor();
  assert.match(await page.locator('.result').innerText(), /Righe applicate: 1/);
  assert.match(await page.locator('main').innerText(), /righe lette 1, applicate 1/);
  await accessible(page, 'registry-upload-applied');

  // The permits of Pesaro's residents that expire within a year, from the Questura, and
  // the same list as a CSV file.
  await page.getByLabel('Entro quanti giorni').fill('366');
  await page.getByRole('button', { name: 'Mostra' }).click();
  await page.getByRole('heading', { level: 1, name: 'Permessi in scadenza' }).waitFor();
  await page.getByRole('heading', { level: 2, name: 'Da questura-pu' }).waitFor();
  await accessible(page, 'registry-expiring');
  const shown = await page.locator('tbody tr').count();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Scarica CSV' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^permessi-in-scadenza-041044-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'codice_fiscale,scadenza,rinnovo_in_corso,questura,dati_al');
  assert.equal(csv.length - 1, shown);
  await context.close();
});

test("the auditor verifies a node's log and prints a citizen's access report", async () => {
  const { context, page, c } = await signedIn('auditor');
  await page.goto(c.url);
  await page.getByRole('link', { name: 'Registro' }).click();
  await page.getByRole('heading', { level: 1, name: 'Registro degli accessi' }).waitFor();
  const rows = await page.locator('tbody tr').allInnerTexts();
  assert.ok(rows.some((r) => r.startsWith('questura-pu')), rows.join('\n'));
  assert.ok(!rows.some((r) => r.includes('non disponibile')), rows.join('\n'));
  await accessible(page, 'auditor-checkpoints');

  await page.getByRole('link', { name: 'Consulta le voci di un registro' }).click();
  await page.getByLabel('Registro di').selectOption('questura-pu');
  await page.getByLabel('Decisione').selectOption('allow');
  await page.getByRole('button', { name: 'Mostra le voci' }).click();
  await page.getByRole('heading', { level: 1, name: 'Voci del registro' }).waitFor();
  assert.match(await page.locator('main p[role=status]').innerText(), /corrispondono ai filtri/);
  await accessible(page, 'auditor-entries');

  await page.goto(new URL('/registro/verifica', c.url).href);
  await page.getByLabel('Registro di').selectOption('questura-pu');
  await page.getByRole('button', { name: 'Verifica' }).click();
  await eventually('the verification to end', async () => {
    const text = await page.locator('main').innerText();
    if (text.includes('in corso')) { await page.getByRole('link', { name: 'Aggiorna lo stato' }).click(); return false; }
    return true;
  }, 100);
  await page.getByRole('heading', { level: 2, name: 'Registro di questura-pu verificato' }).waitFor();
  await accessible(page, 'auditor-log-verified');

  // The clerk's question of the first test is in the person's report, one line for it.
  const person = samples.find((s) => s.label === 'resident with valid permit');
  await page.goto(new URL('/registro/persona', c.url).href);
  await accessible(page, 'auditor-report-form');
  await page.getByLabel('Codice fiscale').fill(person.cf);
  await page.getByRole('button', { name: 'Prepara il resoconto' }).click();
  await page.getByRole('heading', { level: 2, name: new RegExp(`Oggetto: accessi ai dati .* ${person.cf}`) }).waitFor();
  const lines = await page.locator('article tbody tr').allInnerTexts();
  assert.ok(lines.some((l) => /inps-pesaro\s+.*questura-pu/.test(l)), lines.join('\n'));
  await accessible(page, 'auditor-citizen-report');
  await page.emulateMedia({ media: 'print' });
  await noFormsPrinted(page);
  await page.screenshot({ path: join(out, 'auditor-citizen-letter-printed.png'), fullPage: true });
  await context.close();
});

test('every role signs in to its own console', async () => {
  for (const role of ['registry-officer', 'policy-officer']) {
    const { context, page, c } = await signedIn(role);
    const r = await page.goto(c.url);
    assert.equal(r.status(), 200, role);
    assert.match(await page.locator('.who').innerText(), new RegExp(c.operator.replace('.', '\\.')));
    await accessible(page, `${role}-home`);
    await context.close();
  }
});

test("another agency's operator gets a page that says why", async () => {
  const clerk = consoles.clerk;
  const registry = consoles['registry-officer'];
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    bypassCSP: true,
    locale: 'it-IT',
    clientCertificates: [{ origin: new URL(clerk.url).origin, certPath: registry.cert, keyPath: registry.key }],
  });
  const page = await context.newPage();
  const r = await page.goto(clerk.url);
  assert.equal(r.status(), 403);
  assert.match(await page.locator('main').innerText(), /console è di inps-pesaro/);
  await accessible(page, 'refused-other-agency');
  await context.close();
});
