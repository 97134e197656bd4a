// The inbox (templates/inbox/): live rows from the one poll, pages as you scroll, the keyboard.
"use strict";

// The one poll of the page. A plain fetch, not an htmx trigger: the list it belongs to is swapped by
// the filters, and a request cut short that way (or by leaving the page) is nothing to report. It
// rests while the tab is hidden and asks at once when the tab is shown again.
const POLL_EVERY = 2000;
let polling = false;

async function poll() {
  const poller = document.getElementById("inbox-poll");
  if (!poller || polling || document.hidden) return;
  polling = true;
  try {
    const response = await fetch(poller.dataset.url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (response.status !== 200) return; // 204: nothing changed
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const next = doc.getElementById("inbox-poll");
    const template = doc.querySelector("template[data-inbox-changes]");
    const current = document.getElementById("inbox-poll");
    const wrap = document.getElementById("inbox-list");
    // An answer for a list that has since been replaced (other filters) is dropped.
    if (!template || !wrap || !current || template.dataset.query !== wrap.dataset.query) return;
    if (next) current.dataset.url = next.dataset.url;
    applyChanges(template);
  } catch (error) {
    // The page is going away, or the network is: the next tick asks again.
  } finally {
    polling = false;
  }
}

setInterval(poll, POLL_EVERY); // a no-op on pages without the inbox
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) poll();
});

// Too much changed to apply row by row: the list again, as the filters would fetch it.
async function reloadList(url) {
  try {
    const response = await fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (response.status !== 200) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("inbox-list");
    const wrap = document.getElementById("inbox-list");
    if (!fresh || !wrap || fresh.dataset.query !== wrap.dataset.query) return;
    const node = document.importNode(fresh, true);
    wrap.replaceWith(node);
    htmx.process(node);
  } catch (error) {
    // As for the poll: the next one asks again.
  }
}

// What a poll brought (an inert <template data-inbox-changes>): each changed row goes where its key
// sorts, replacing its old self; rows that no longer match leave. Rows inserted above the reader's
// place do not move what they are reading: the lowest row in view that does not change stays where it
// was on screen (a row moving up from below the screen would push every row in view down; one moving
// up from within it moves only those above its old place). The browser's scroll anchoring is off for
// the rows (app.css): it anchors on the focused element when there is one — the search box being
// typed in — which does not move.
function applyChanges(template) {
  const wrap = document.getElementById("inbox-list");
  const list = document.getElementById("inbox-rows");
  if (!wrap || !list) return;
  if (template.dataset.reload) {
    reloadList(template.dataset.reload);
    return;
  }
  const removed = (template.dataset.removed || "").split(" ").filter(Boolean);
  const rows = [...template.content.querySelectorAll("li.inbox-row")].map((li) => document.importNode(li, true));
  const changing = new Set([...removed.map((id) => "inbox-row-" + id), ...rows.map((row) => row.id)]);
  const inView = (li) => {
    const box = li.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  };
  const place = window.scrollY > 0
    ? [...list.querySelectorAll(":scope > li.inbox-row")].filter((li) => !changing.has(li.id) && inView(li)).pop()
    : null;
  const placeTop = place?.getBoundingClientRect().top;
  for (const id of removed) {
    document.getElementById("inbox-row-" + id)?.remove();
  }
  for (const row of rows) {
    const old = document.getElementById(row.id);
    const hadFocus = old && old.contains(document.activeElement);
    const current = old?.querySelector("[aria-current]");
    if (current) row.querySelector(".inbox-link")?.setAttribute("aria-current", "true");
    old?.remove();
    const after = [...list.querySelectorAll(":scope > li.inbox-row")].find((li) => li.dataset.key < row.dataset.key);
    const more = list.querySelector(":scope > li.inbox-more");
    if (after) list.insertBefore(row, after);
    else if (more) continue; // older than the rows loaded: the next page brings it
    else list.appendChild(row);
    htmx.process(row);
    if (hadFocus) row.querySelector(".inbox-link")?.focus({ preventScroll: true });
  }
  if (list.querySelector("li.inbox-row")) document.getElementById("inbox-empty")?.remove();
  if (place?.isConnected) {
    const moved = place.getBoundingClientRect().top - placeTop;
    if (Math.abs(moved) >= 1) window.scrollBy(0, moved);
  }
  // The open conversation changed too: its thread asks (with its version, so only if it did change).
  const open = document.getElementById("inbox-thread")?.dataset.conversation;
  if (open && rows.some((row) => row.id === "inbox-row-" + open)) {
    document.body.dispatchEvent(new CustomEvent("conversation-changed"));
  }
  if (template.dataset.title) {
    document.title = template.dataset.title;
    wrap.dataset.title = template.dataset.title;
  }
}

// The filters besides the search fold behind one control (templates/inbox/index.html): the page comes
// with them folded, and they open where the list has a column of its own (app.css: wider than 860 px),
// as the page loads; the user may fold or open them after. The control says how many are on.
const FILTERS_OPEN_WHERE = "(min-width: 861px)";

function countFilters() {
  const form = document.getElementById("inbox-filters");
  const count = document.getElementById("inbox-filter-count");
  if (!form || !count) return;
  const on = [...form.querySelectorAll(".inbox-filter")].filter((control) =>
    control.type === "checkbox" ? control.checked : control.value !== "",
  ).length;
  count.textContent = on ? ` · ${on}` : "";
}

{
  const more = document.getElementById("inbox-more-filters");
  if (more && window.matchMedia(FILTERS_OPEN_WHERE).matches) more.open = true;
  countFilters();
}
document.addEventListener("change", (event) => {
  if (event.target instanceof Element && event.target.closest("#inbox-filters .inbox-filter")) countFilters();
});

document.addEventListener("htmx:afterSettle", () => {
  // A new list (filters, search) brings its own title (the unread count).
  const wrap = document.getElementById("inbox-list");
  if (wrap?.dataset.title) document.title = wrap.dataset.title;
});

// The open conversation is marked in the list.
document.addEventListener("htmx:afterSwap", (event) => {
  const pane = document.getElementById("inbox-thread");
  if (!pane || !(event.detail.target instanceof Element) || event.detail.target.id !== "inbox-thread") return;
  const open = pane.dataset.conversation;
  document.querySelectorAll("#inbox-rows .inbox-link[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
  if (open) document.querySelector(`#inbox-row-${open} .inbox-link`)?.setAttribute("aria-current", "true");
  document.querySelector(".inbox")?.classList.toggle("has-selection", Boolean(open));
});

// Keyboard: j / k to the next / previous conversation, Enter opens it (it is a link), / to search,
// r to reply in the open one.
document.addEventListener("keydown", (event) => {
  if (!document.getElementById("inbox-rows")) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target instanceof Element && event.target.closest("input, textarea, select, [contenteditable]");
  if (typing) return;
  if (event.key === "/") {
    const search = document.getElementById("inbox-q");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
    return;
  }
  if (event.key === "r") {
    // Reply: to the text box of the open conversation's composer.
    const box = document.querySelector("#inbox-thread textarea[name='body']");
    if (box) {
      event.preventDefault();
      box.focus();
    }
    return;
  }
  if (event.key !== "j" && event.key !== "k") return;
  const links = [...document.querySelectorAll("#inbox-rows .inbox-link")];
  if (!links.length) return;
  event.preventDefault();
  const at = links.findIndex((a) => a === document.activeElement);
  let next;
  if (at === -1) {
    const open = links.findIndex((a) => a.hasAttribute("aria-current"));
    next = open === -1 ? 0 : open + (event.key === "j" ? 1 : -1);
  } else {
    next = at + (event.key === "j" ? 1 : -1);
  }
  next = Math.max(0, Math.min(links.length - 1, next));
  links[next].focus();
  links[next].scrollIntoView({ block: "nearest" });
});
