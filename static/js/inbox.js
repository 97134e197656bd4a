// The Inbox (templates/inbox/, its page only): what htmx does not do there. The poll's answer places
// the rows itself (inbox/_changes.html); this keeps the reader's place while it does, keeps the poll
// quiet in a hidden tab, and keeps the title and the open conversation's mark up to date. And the
// filters open where there is room, and the keyboard.
"use strict";

// The poll rests while the tab is hidden; shown again, it asks at once (its trigger, inbox/_poll.html).
document.addEventListener("htmx:beforeRequest", (event) => {
  if (document.hidden && event.detail.elt.id === "inbox-poll") {
    event.preventDefault();
    askWaitingInstead(); // app.js: the top bar's count, for desktop alerts
  }
});

// Rows put in above the one being read do not move it: the lowest row in view that the swap leaves
// where it was (a changed row is taken out and comes back as a new one) is put back where it was on
// screen. The browser's scroll anchoring is off for the rows (app.css): it anchors on the focused
// element when there is one — the search box being typed in — which does not move.
let inView = [];
document.addEventListener("htmx:beforeSwap", (event) => {
  inView = [];
  if (!event.detail.shouldSwap || event.detail.target.id !== "inbox-list" || window.scrollY === 0) return;
  for (const row of document.querySelectorAll("#inbox-rows > li.inbox-row")) {
    const box = row.getBoundingClientRect();
    if (box.bottom > 0 && box.top < window.innerHeight) inView.push([row, box.top]);
  }
});

document.addEventListener("htmx:afterSwap", () => {
  const [row, top] = inView.filter(([kept]) => kept.isConnected).pop() ?? [];
  inView = [];
  const moved = row ? row.getBoundingClientRect().top - top : 0;
  if (Math.abs(moved) >= 1) window.scrollBy(0, moved);
  // The title (the unread count) comes with the poll, which comes with every list.
  const title = document.getElementById("inbox-poll")?.dataset.title;
  if (title) document.title = title;
  // The open conversation is marked in the list, whichever swap brought the rows or the pane.
  const open = document.getElementById("inbox-thread")?.dataset.conversation;
  document.querySelectorAll("#inbox-rows .inbox-link[aria-current]").forEach((a) => a.removeAttribute("aria-current"));
  if (open) document.getElementById(`inbox-link-${open}`)?.setAttribute("aria-current", "true");
});

// The filters besides the search fold behind one control (index.html): the page comes with them
// folded, and they open where the list has a column of its own (app.css: wider than 860 px), as the
// page loads; the user may fold or open them after.
if (window.matchMedia("(min-width: 861px)").matches) {
  const more = document.getElementById("inbox-more-filters");
  if (more) more.open = true;
}

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
