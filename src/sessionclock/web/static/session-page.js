// session-page.js: /sessions/{id}: the lobby, then the call, then how it ended.
//
// The <session-lobby> element in the page does the work; this module gives it the
// page's strings and keeps the tab's title in step with the session.

import { boot } from "./page.js";
import "./session-lobby.js";

const { i18n } = await boot();
const lobby = document.querySelector("session-lobby");
const baseTitle = document.title;

function retitle() {
  const status = lobby.snapshot?.status;
  document.title = status ? `${i18n.t(`status.${status}`)} · ${baseTitle}` : baseTitle;
}

lobby.addEventListener("call-open", retitle);
lobby.addEventListener("session-end", retitle);
await lobby.ready;
retitle();
