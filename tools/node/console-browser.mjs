// The support console in a real browser (scripts/console-browser.sh builds the binaries and
// calls this). It starts the Irdeto stand-in and `licenses serve` (fresh SQLite database, free
// loopback ports, Irdeto enabled with one attempt per job so that a failed delivery is parked at
// once), sets the scene through the management API, then drives headless Chromium through the
// console as a support agent would: sign in, find a user, read their licenses and the
// channel × service grid, explain a black channel, retry its failed DRM job, revoke and grant a
// license, suspend and reinstate one, read a license's audit trail. Every step is asserted on
// the page; a screenshot of each is saved in OUT_DIR.
//
//   node tools/node/console-browser.mjs LICENSES_BIN STANDIN_BIN OUT_DIR
//
// CHROMIUM (default /usr/bin/chromium) names the browser.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [licensesBin, standinBin, outDir] = process.argv.slice(2);
if (!licensesBin || !standinBin || !outDir) {
  console.error("usage: console-browser.mjs LICENSES_BIN STANDIN_BIN OUT_DIR");
  process.exit(2);
}

const KEY = "dev-management-key-change-me"; // config/local.toml's development key
const STANDIN_KEY = "standin-key";
const USER = "41";
const TIMEOUT_MS = 30_000;
const JSONAPI = "application/vnd.api+json";

const children = [];
const workDir = mkdtempSync(join(tmpdir(), "console-browser-"));
mkdirSync(outDir, { recursive: true });

function cleanUp() {
  for (const child of children) {
    if (child.exitCode === null) child.kill("SIGTERM");
  }
  rmSync(workDir, { recursive: true, force: true });
}

// Starts a process and resolves with the first line of its output that `pattern` matches.
function start(name, command, args, env, pattern) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  const log = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${log.join("\n")}`)), TIMEOUT_MS);
    const onLine = (line) => {
      log.push(line);
      if (log.length > 200) log.shift();
      const m = line.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, log });
      }
    };
    createInterface({ input: child.stdout }).on("line", onLine);
    createInterface({ input: child.stderr }).on("line", onLine);
    child.on("exit", (code) => reject(new Error(`${name} exited (${code}):\n${log.join("\n")}`)));
  });
}

// The stand-in answers each command with one line.
function standinSays(standin, command) {
  return new Promise((resolve) => {
    const rl = createInterface({ input: standin.stdout });
    rl.once("line", (line) => {
      rl.close();
      resolve(line);
    });
    standin.stdin.write(`${command}\n`);
  });
}

async function api(base, method, path, body) {
  const answer = await fetch(`${base}/api/license/management/v4${path}`, {
    method,
    headers: { Authorization: `Apikey ${KEY}`, "Content-Type": JSONAPI, Accept: JSONAPI },
    body: body && JSON.stringify(body),
  });
  const text = await answer.text();
  if (!answer.ok) throw new Error(`${method} ${path} answered ${answer.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

// Polls `check` until it returns a truthy value, or fails after TIMEOUT_MS with `what`.
async function eventually(what, check) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function product(title, irdeto, channel) {
  return {
    data: {
      type: "Product",
      attributes: { title, type: "CHANNEL_GROUP", irdeto_product_id: irdeto },
      relationships: {
        live: { data: [{ type: "Channel", id: channel }] },
        catchup: { data: [{ type: "Channel", id: channel }] },
      },
    },
  };
}

function license(user, productId, order) {
  return {
    data: {
      type: "License",
      attributes: { order_id: order },
      relationships: {
        user: { data: { type: "User", id: user } },
        product: { data: { type: "Product", id: productId } },
      },
    },
  };
}

async function licenseStatus(base, id) {
  const doc = await api(base, "GET", `/licenses/${id}`);
  return doc.data.attributes.status;
}

let failed = false;
try {
  const standin = await start("irdeto-standin", standinBin, [STANDIN_KEY], {}, /irdeto-standin url=(\S+)/);
  const irdetoUrl = standin.match[1];
  const server = await start(
    "licenses serve",
    licensesBin,
    ["serve"],
    {
      APP_ENV: "local",
      RUST_LOG: "warn,licenses=info",
      LICENSES__DATABASE__URL: `sqlite://${join(workDir, "licenses.db")}`,
      LICENSES__SERVER__USER_ADDR: "127.0.0.1:0",
      LICENSES__SERVER__MANAGEMENT_ADDR: "127.0.0.1:0",
      LICENSES__IRDETO__ENABLED: "true",
      LICENSES__IRDETO__BASE_URL: irdetoUrl,
      LICENSES__IRDETO__API_KEY: STANDIN_KEY,
      LICENSES__IRDETO__MAX_ATTEMPTS: "1",
    },
    /listening user_api=\S+ management_api=([0-9.]+:[0-9]+)/,
  );
  const base = `http://${server.match[1]}`;

  // The scene: news (delivered to Irdeto, ACTIVE) and sport (Irdeto down: its job failed and
  // was parked, the license stays PROCESSING: the black channel).
  const news = (await api(base, "POST", "/products", product("News", "irdeto-news", "7"))).data.id;
  const sport = (await api(base, "POST", "/products", product("Sport", "irdeto-sport", "42"))).data.id;
  const newsLicense = (await api(base, "POST", "/licenses", license(USER, news, "order-news"))).data.id;
  await eventually("the news license ACTIVE", async () => (await licenseStatus(base, newsLicense)) === "ACTIVE");
  await standinSays(standin.child, "down");
  const sportLicense = (await api(base, "POST", "/licenses", license(USER, sport, "order-sport"))).data.id;
  await eventually("the sport job parked", async () => {
    const backlog = await api(base, "GET", "/irdeto/backlog");
    return backlog.meta.irdeto.failed >= 1;
  });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Chromium's sandbox refuses to run as root, as CI does.
    args: ["--no-sandbox"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.setDefaultTimeout(TIMEOUT_MS);
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const shot = (name) => page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });

    const flash = page.getByTestId("flash");
    const row = (id) => page.locator(`#licenses tr[data-license="${id}"]`);
    const status = (id) => row(id).getByTestId("license-status");
    const cell = (channel, service) =>
      page.locator(`#entitlements tr[data-channel="${channel}"] td[data-service="${service}"]`);
    const expectText = async (locator, text) => {
      await eventually(`"${text}" in ${locator}`, async () => (await locator.textContent())?.trim() === text);
    };

    // Signing in: without a session the console asks for a key.
    await page.goto(`${base}/console/`);
    await page.getByLabel("Management key").fill(KEY);
    await page.keyboard.press("Enter");
    await page.getByLabel("User id").waitFor();
    await shot("01-home");

    // Finding the user: their licenses and the channel x service grid (channel 42 is black:
    // its license waits for the DRM entitlement).
    await page.getByLabel("User id").fill(USER);
    await page.locator("#find-user").click();
    await page.waitForURL(`**/console/users/${USER}`);
    await expectText(status(newsLicense), "ACTIVE");
    await expectText(status(sportLicense), "PROCESSING");
    await eventually("channel 7 live granted", async () => (await cell("7", "live").getAttribute("class")) === "yes");
    await page.locator(`#entitlements tr[data-channel="42"]`).waitFor({ state: "detached" });
    await shot("02-user");

    // Why is channel 42 black? Its license waits for the DRM entitlement, whose job failed.
    await page.getByLabel("Channel").fill("42");
    await page.getByLabel("Service").selectOption("live");
    await page.locator("#explain").click();
    const explanation = page.getByTestId("explanation");
    await explanation.waitFor();
    if ((await explanation.getAttribute("data-allowed")) !== "false") throw new Error("channel 42 should be black");
    const reason = page.locator(`tr[data-code="waiting_for_drm"]`, { hasText: sportLicense });
    await reason.getByRole("cell", { name: /^failed, 1 attempt/ }).waitFor();
    await shot("03-explain");

    // The failed job, retried once Irdeto is back: the channel plays.
    await page.goto(`${base}/console/irdeto`);
    const job = page.locator("tr[data-testid=failed-job-row]", { hasText: sportLicense });
    await job.waitFor();
    await shot("04-irdeto");
    await standinSays(standin.child, "up");
    await job.getByTestId("retry-link").click();
    await page.locator("#confirm-retry").click();
    await flash.waitFor();
    await eventually("the sport license ACTIVE", async () => (await licenseStatus(base, sportLicense)) === "ACTIVE");
    await page.goto(`${base}/console/users/${USER}/access?channel=42&service=live`);
    await eventually("channel 42 plays", async () => (await explanation.getAttribute("data-allowed")) === "true");
    await page.goto(`${base}/console/users/${USER}`);
    await expectText(status(sportLicense), "ACTIVE");
    await cell("42", "live").waitFor();

    // Suspend the sport license (a SUSPENDEDADMIN copy under a new id), then reinstate the
    // copy (an ACTIVE one, once Irdeto has the entitlement again).
    await row(sportLicense).getByTestId("suspend-link").click();
    await page.locator("#confirm-suspend").click();
    await flash.waitFor();
    await row(sportLicense).waitFor({ state: "detached" });
    const suspendedRow = page.locator("#licenses tr[data-license]", { hasText: "SUSPENDEDADMIN" });
    const suspended = await suspendedRow.getAttribute("data-license");
    await cell("42", "live").waitFor({ state: "detached" });
    await suspendedRow.getByTestId("reinstate-link").click();
    await page.locator("#confirm-reinstate").click();
    await flash.waitFor();
    await row(suspended).waitFor({ state: "detached" });
    await eventually("the reinstated sport license ACTIVE", async () => {
      const all = await api(base, "GET", `/licenses?filter[user]=${USER}&filter[product]=${sport}`);
      return all.data.length === 1 && all.data[0].attributes.status === "ACTIVE";
    });

    // The audit trail of the first sport license: created through the API, suspended and its
    // job retried in the console, each by the development key.
    await page.goto(`${base}/console/`);
    await page.getByLabel("License id (revoked ones too)").fill(sportLicense);
    await page.locator("#find-audit").click();
    for (const action of ["create", "drm_retry", "suspend"]) {
      await page.locator(`tr[data-action="${action}"]`, { hasText: "key:dev" }).waitFor();
    }
    await shot("06-audit");
    await page.goto(`${base}/console/users/${USER}`);

    // Revoke the news license: a confirmation page, then it is gone.
    await row(newsLicense).getByTestId("revoke-link").click();
    await page.locator("#confirm-revoke").click();
    await flash.waitFor();
    await row(newsLicense).waitFor({ state: "detached" });

    // Grant a news license again: it appears (PROCESSING until Irdeto confirms, then ACTIVE).
    await page.getByLabel("Product").selectOption(news);
    await page.locator("#grant").click();
    await page.locator("#confirm-grant").click();
    await flash.waitFor();
    await eventually("a new news license ACTIVE", async () => {
      const granted = await api(base, "GET", `/licenses?filter[user]=${USER}&filter[product]=${news}`);
      return granted.data.length === 1 && granted.data[0].attributes.status === "ACTIVE";
    });
    await page.reload();
    await page.locator("#licenses tr[data-license]").nth(1).waitFor();
    await shot("05-granted");

    const pageErrors = errors.join("\n");
    if (pageErrors) throw new Error(`script errors on the console's pages:\n${pageErrors}`);
  } finally {
    await browser.close();
  }
  console.log(`console-browser: every step passed; screenshots in ${outDir}`);
} catch (e) {
  failed = true;
  console.error(`console-browser: ${e.stack || e}`);
} finally {
  cleanUp();
}
process.exit(failed ? 1 : 0);
