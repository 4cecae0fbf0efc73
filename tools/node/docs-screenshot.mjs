// The docs screenshot check (scripts/docs-screenshot.sh starts the server and calls this):
// opens each API's Swagger UI page in headless Chromium, waits for the operations to render,
// asserts that as many operations are rendered as the API's served OpenAPI document has, and
// saves a full-page PNG screenshot. Requests to any other host than the server are blocked,
// so the pages are proved to work without the internet.
//
//   node tools/node/docs-screenshot.mjs USER_URL MANAGEMENT_URL OUT_DIR
//
// CHROMIUM (default /usr/bin/chromium) names the browser.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [userUrl, managementUrl, outDir] = process.argv.slice(2);
if (!userUrl || !managementUrl || !outDir) {
  console.error("usage: docs-screenshot.mjs USER_URL MANAGEMENT_URL OUT_DIR");
  process.exit(2);
}

const apis = [
  { name: "user", base: userUrl, prefix: "/api/license/v4" },
  { name: "management", base: managementUrl, prefix: "/api/license/management/v4" },
];
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const TIMEOUT_MS = 30_000;

function operationsOf(spec) {
  return Object.values(spec.paths ?? {}).reduce(
    (n, item) => n + METHODS.filter((m) => item && item[m]).length,
    0,
  );
}

mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Chromium's sandbox refuses to run as root, as CI does.
  args: ["--no-sandbox"],
});

let failed = false;
try {
  for (const api of apis) {
    const origin = new URL(api.base).origin;
    const specUrl = `${api.base}${api.prefix}/openapi.json`;
    const docsUrl = `${api.base}${api.prefix}/docs`;
    const answer = await fetch(specUrl);
    if (!answer.ok) {
      throw new Error(`${specUrl} answered ${answer.status}`);
    }
    const expected = operationsOf(await answer.json());

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const blocked = [];
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith("data:") || url.startsWith("blob:")) {
        return route.continue();
      }
      blocked.push(url);
      return route.abort();
    });
    const response = await page.goto(docsUrl, { waitUntil: "load", timeout: TIMEOUT_MS });
    if (!response || !response.ok()) {
      throw new Error(`${docsUrl} answered ${response ? response.status() : "nothing"}`);
    }
    // Swagger UI renders one .opblock per operation, inside its tag's section; open the
    // sections that are closed (docExpansion "none") so that every operation is rendered.
    let rendered = 0;
    try {
      await page.waitForSelector(".opblock-tag-section, .opblock", { timeout: TIMEOUT_MS });
      for (const tag of await page.$$(".opblock-tag-section:not(.is-open) .opblock-tag")) {
        await tag.click();
      }
      await page.waitForFunction(
        (n) => document.querySelectorAll(".opblock").length >= n,
        expected,
        { timeout: TIMEOUT_MS },
      );
    } catch (e) {
      errors.push(`waiting for ${expected} operations: ${e.message.split("\n")[0]}`);
    }
    // Let rendering settle, then count.
    await page.waitForTimeout(500);
    rendered = await page.$$eval(".opblock", (blocks) => blocks.length);
    const title = await page.title();
    const file = join(outDir, `docs-${api.name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const ok = rendered === expected && expected > 0;
    console.log(
      `${api.name}: ${docsUrl} (${title}): ${rendered} operations rendered, ${expected} in ${specUrl}: ` +
        `${ok ? "OK" : "MISMATCH"}; screenshot ${file}`,
    );
    if (blocked.length) {
      console.log(`  requests to other hosts, blocked (the page must not need them): ${blocked.join(", ")}`);
    }
    for (const e of errors) {
      console.log(`  error: ${e}`);
    }
    failed ||= !ok;
    await page.close();
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
