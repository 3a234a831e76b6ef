// page.js: what every sessionclock page starts with: its settings, strings and log.

import { loadCatalogue, provideCatalogue } from "./i18n.js";
import { createLog, reportUncaught } from "./log.js";

/** The page's settings from its shell, its language's strings, and its logger. */
export async function boot() {
  const config = JSON.parse(document.getElementById("sessionclock-page").textContent);
  provideCatalogue(config.lang, config.strings);
  const i18n = await loadCatalogue(config.lang);
  const log = createLog({ page: config.page, session_id: config.session_id ?? undefined });
  reportUncaught(log);
  log.info("page.loaded", { lang: config.lang });
  return { config, i18n, log };
}

if (import.meta.url.endsWith("/page.js") && document.getElementById("sessionclock-page")) {
  // Pages with nothing live on them (sign-in, not found) only need the basics.
  const page = JSON.parse(document.getElementById("sessionclock-page").textContent).page;
  if (page === "signin" || page === "not_found") boot();
}
