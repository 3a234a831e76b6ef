// i18n.js: the pages' strings, one catalogue per language, and how times read.
//
// The catalogues are the JSON files beside this module (i18n/en.json, i18n/es.json);
// a page that embeds its catalogue hands it over with provideCatalogue() and saves
// the request.

export const LANGUAGES = ["en", "es"];
const cache = new Map();

/** The language to speak: the first of `wanted` that we have, else English. */
export function pickLanguage(...wanted) {
  for (const tag of wanted.flat()) {
    const primary = String(tag ?? "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return "en";
}

export function provideCatalogue(lang, strings) {
  cache.set(lang, strings);
}

export async function loadCatalogue(lang) {
  if (!cache.has(lang)) {
    const response = await fetch(new URL(`./i18n/${lang}.json`, import.meta.url));
    if (!response.ok) throw new Error(`catalogue ${lang}: HTTP ${response.status}`);
    cache.set(lang, await response.json());
  }
  return new Translator(lang, cache.get(lang));
}

/** The browser's own locale when it speaks `lang`, else `lang` itself. */
function formatLocale(lang) {
  const own = (globalThis.navigator?.languages ?? []).find((tag) => tag.toLowerCase().split("-")[0] === lang);
  return own ?? lang;
}

/** Strings and formats of one language. A key that is missing shows as ⟦key⟧. */
export class Translator {
  constructor(lang, strings) {
    this.lang = lang;
    this.strings = strings;
    this.plurals = new Intl.PluralRules(lang);
    // Times read as the reader's own variant does (en-GB says 21:45, en-US 9:45 PM).
    const locale = formatLocale(lang);
    this.timeFormat = new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" });
    this.dayFormat = new Intl.DateTimeFormat(locale, {
      weekday: "long",
      day: "numeric",
      month: "long",
    });
  }

  /** The string for `key` with `{name}` filled from `vars`; `count` picks a plural. */
  t(key, vars = {}) {
    let template = this.strings[key];
    if (template === undefined && "count" in vars) {
      template = this.strings[`${key}.${this.plurals.select(vars.count)}`] ?? this.strings[`${key}.other`];
    }
    if (template === undefined) {
      console.error(`sessionclock: no "${key}" in the ${this.lang} catalogue`);
      return `⟦${key}⟧`;
    }
    return template.replace(/\{(\w+)\}/g, (match, name) => (name in vars ? String(vars[name]) : match));
  }

  /** A clock time in the reader's time zone: "18:55", "6:55 PM". */
  time(epochMs) {
    return this.timeFormat.format(new Date(epochMs));
  }

  /** A day in the reader's time zone: "Thursday, 3 December". */
  day(epochMs) {
    return this.dayFormat.format(new Date(epochMs));
  }
}
