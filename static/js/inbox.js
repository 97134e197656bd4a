// The inbox (templates/inbox/): live rows from the one poll, pages as you scroll, the keyboard.
"use strict";

// The poll rests while the tab is hidden, and asks at once when it is shown again.
document.addEventListener("htmx:confirm", (event) => {
  if (event.target instanceof Element && event.target.matches("[data-inbox-poll]") && document.hidden) {
    event.preventDefault();
  }
});
document.addEventListener("visibilitychange", () => {
  const poll = document.getElementById("inbox-poll");
  if (!document.hidden && poll && window.htmx) htmx.trigger(poll, "inbox-poll");
});

// What a poll brought (an inert <template data-inbox-changes>): each changed row goes where its key
// sorts, replacing its old self; rows that no longer match leave. Rows inserted above the reader's
// place do not move what they are reading (the browser's scroll anchoring keeps it).
function applyChanges(template) {
  const wrap = document.getElementById("inbox-list");
  const list = document.getElementById("inbox-rows");
  template.remove();
  if (!wrap || !list || template.dataset.query !== wrap.dataset.query) return; // a late answer for old filters
  if (template.dataset.reload) {
    htmx.ajax("GET", template.dataset.reload, { target: "#inbox-list", swap: "outerHTML" });
    return;
  }
  for (const id of (template.dataset.removed || "").split(" ").filter(Boolean)) {
    document.getElementById("inbox-row-" + id)?.remove();
  }
  const rows = [...template.content.querySelectorAll("li.inbox-row")];
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
  if (template.dataset.title) {
    document.title = template.dataset.title;
    wrap.dataset.title = template.dataset.title;
  }
}

document.addEventListener("htmx:afterSettle", () => {
  document.querySelectorAll("template[data-inbox-changes]").forEach(applyChanges);
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

// Keyboard: j / k to the next / previous conversation, Enter opens it (it is a link), / to search.
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
