// The docs screenshot check (scripts/docs-screenshot.sh starts the server and calls this):
// opens each API's Swagger UI page in headless Chromium, waits for the operations to render,
// asserts that the operations rendered are those of the API's served OpenAPI document (as
// many, and the same METHOD /path; one under two tags counts once), and saves a full-page PNG
// screenshot. Requests to any other host than the server are blocked,
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

// "METHOD /path" of every operation of an OpenAPI document.
function operationsOf(spec) {
  return Object.entries(spec.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((m) => item && item[m]).map((m) => `${m.toUpperCase()} ${path}`),
  );
}

// "METHOD /path" of every operation Swagger UI rendered, each once (an operation with two
// tags is rendered under both).
function renderedOperations() {
  const ops = [...document.querySelectorAll(".opblock")].map((block) => {
    const method = block.querySelector(".opblock-summary-method")?.textContent.trim();
    const pathElement = block.querySelector(".opblock-summary-path");
    const path = pathElement?.getAttribute("data-path") || pathElement?.textContent.trim();
    return `${method} ${path}`.replace(/\u200b/g, "");
  });
  return [...new Set(ops)];
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
    try {
      await page.waitForSelector(".opblock-tag-section, .opblock", { timeout: TIMEOUT_MS });
      for (const tag of await page.$$(".opblock-tag-section:not(.is-open) .opblock-tag")) {
        await tag.click();
      }
      await page.waitForFunction(`(${renderedOperations})().length >= ${expected.length}`, null, {
        timeout: TIMEOUT_MS,
      });
    } catch (e) {
      errors.push(`waiting for ${expected.length} operations: ${e.message.split("\n")[0]}`);
    }
    // Let rendering settle, then compare what is shown with the document.
    await page.waitForTimeout(500);
    const rendered = await page.evaluate(renderedOperations);
    const missing = expected.filter((op) => !rendered.includes(op));
    const extra = rendered.filter((op) => !expected.includes(op));
    const title = await page.title();
    const file = join(outDir, `docs-${api.name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    const ok = expected.length > 0 && rendered.length === expected.length && !missing.length && !extra.length;
    console.log(
      `${api.name}: ${docsUrl} (${title}): ${rendered.length} operations rendered, ` +
        `${expected.length} in ${specUrl}: ${ok ? "OK" : "MISMATCH"}; screenshot ${file}`,
    );
    if (missing.length) console.log(`  not rendered: ${missing.join(", ")}`);
    if (extra.length) console.log(`  rendered, not in the document: ${extra.join(", ")}`);
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
