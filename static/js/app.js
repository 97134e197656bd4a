// When an htmx request fails in a way the page cannot show (a 403, a 500, a dropped connection),
// say so in the flash area instead of leaving the user looking at a page that did nothing.
document.addEventListener("htmx:responseError", (event) => {
  // Our error answers to htmx name the problem themselves (the relay-error event below).
  if ((event.detail.xhr.getResponseHeader("HX-Trigger") || "").includes("relay-error")) return;
  const status = event.detail.xhr.status;
  const text = status === 403 ? "You do not have the right to do this."
    : status === 404 ? "That is no longer there. Reload the page."
    : status === 429 ? "Too many requests. Wait a moment and try again."
    : "Something went wrong. Try again in a moment.";
  showFlash(text, "error");
});
document.addEventListener("relay-error", (event) => showFlash(event.detail.message, "error"));
document.addEventListener("htmx:sendError", () => showFlash("The server could not be reached. Check your connection.", "error"));

function showFlash(text, category) {
  const area = document.getElementById("flashes");
  if (!area) return;
  const p = document.createElement("p");
  p.className = "flash flash-" + category;
  p.textContent = text;
  area.replaceChildren(p);
}

// Picking a template fills the composer (channel, subject, text) as if the user had typed it,
// so the live counter runs on it and the user can still edit before sending.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-template-select]");
  if (!select) return;
  const option = select.selectedOptions[0];
  const form = select.form;
  if (!option || !option.value || !form) return;
  const radio = form.querySelector(`input[name="channel"][value="${option.dataset.channel}"]`);
  if (radio) radio.checked = true;
  const subject = form.querySelector('[name="subject"]');
  if (subject && option.dataset.subject) subject.value = option.dataset.subject;
  const body = form.querySelector('[name="body"]');
  body.value = option.dataset.body;
  body.dispatchEvent(new Event("input", { bubbles: true }));
});

// Opening a channel's tab also picks that channel in the composer, when the user may write on it, and
// in Simulate a reply.
document.addEventListener("click", (event) => {
  const tab = event.target.closest("[data-tab-channel]");
  if (!tab) return;
  const panel = tab.closest(".panel");
  if (!panel) return;
  const channel = tab.dataset.tabChannel;
  const radio = panel.querySelector(`.composer input[name="channel"][value="${channel}"]`);
  if (radio && !radio.checked) {
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }
  const simulated = panel.querySelector("select[data-simulate-channel]");
  if (simulated && [...simulated.options].some((o) => o.value === channel)) simulated.value = channel;
});

// The thread opens at its newest message and follows new ones, unless the reader has scrolled up to
// read older ones: then a refresh keeps their place. After a send, or on another channel, the newest.
const NEAR_BOTTOM = 40; // px: "at the bottom", allowing for a message that grew while settling
const threadPlaces = new Map();

document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (!(target instanceof Element)) return;
  const panels = target.matches("[data-thread-scroll]") ? [target] : target.querySelectorAll("[data-thread-scroll]");
  for (const panel of panels) {
    const atBottom = panel.scrollHeight - panel.scrollTop - panel.clientHeight <= NEAR_BOTTOM;
    threadPlaces.set(panel.id, { channel: panel.dataset.channel, top: panel.scrollTop, atBottom });
  }
});

document.addEventListener("htmx:load", (event) => {
  const root = event.target;
  if (!(root instanceof Element)) return;
  const panels = root.matches("[data-thread-scroll]") ? [root] : root.querySelectorAll("[data-thread-scroll]");
  for (const panel of panels) {
    const place = threadPlaces.get(panel.id);
    threadPlaces.delete(panel.id);
    const keep = place && !place.atBottom && place.channel === panel.dataset.channel && panel.dataset.follow !== "newest";
    panel.scrollTop = keep ? place.top : panel.scrollHeight;
  }
});

// When a reply opens the WhatsApp window, the template picker steps aside: forget its choice, so that
// the free text typed next is what gets sent.
document.addEventListener("htmx:load", (event) => {
  const note = event.target;
  if (!(note instanceof Element) || !note.matches("[data-wa-window].wa-open")) return;
  const select = note.closest("form")?.querySelector('select[name="whatsapp_template_id"]');
  if (select) select.value = "";
});

// A refreshed thread keeps what the reader loaded by scrolling up: the poll asks for every message from
// the oldest one on screen (the smallest id: messages waiting for their time are shown last).
document.addEventListener("htmx:configRequest", (event) => {
  const elt = event.detail.elt;
  if (!(elt instanceof Element) || !elt.matches("[data-version]") || event.detail.verb !== "get") return;
  const ids = [...elt.querySelectorAll(".messages > li.msg[id^='message-']")].map((li) =>
    Number(li.id.slice("message-".length)),
  );
  if (ids.length) event.detail.parameters.from = String(Math.min(...ids));
});

// Earlier messages arrive above the ones being read: keep those where they were on screen.
const olderLoads = new WeakMap();
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (!(target instanceof Element) || !target.matches("[data-older]")) return;
  const panel = target.closest("[data-thread-scroll]");
  if (panel) olderLoads.set(target, { panel, fromBottom: panel.scrollHeight - panel.scrollTop });
});
document.addEventListener("htmx:afterSwap", (event) => {
  const load = olderLoads.get(event.detail.target);
  if (!load) return;
  load.panel.scrollTop = load.panel.scrollHeight - load.fromBottom;
});

// A form that cannot be undone asks first (data-confirm holds the question).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Placeholder buttons put their placeholder where the cursor is in the field they name — at the end when
// the user has not been in the field yet (an untouched textarea's cursor is at 0) — and the text then
// changes as if typed (the live preview follows). A link (data-insert-word) goes in as a word of its own:
// a space before and after it unless there is one, or the text begins or ends there.
const visitedFields = new WeakSet();
document.addEventListener("focusin", (event) => {
  if (event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement) visitedFields.add(event.target);
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-insert]");
  if (!button) return;
  const field = button.form?.elements.namedItem(button.dataset.insertInto);
  if (!(field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement)) return;
  const visited = visitedFields.has(field);
  const start = visited ? field.selectionStart ?? field.value.length : field.value.length;
  const end = visited ? field.selectionEnd ?? start : start;
  let text = button.dataset.insert;
  if (button.hasAttribute("data-insert-word")) {
    const before = field.value.slice(0, start);
    const after = field.value.slice(end);
    if (before && !/\s$/.test(before)) text = " " + text;
    if (after && !/^\s/.test(after)) text += " ";
  }
  field.setRangeText(text, start, end, "end");
  field.focus();
  field.dispatchEvent(new Event("input", { bubbles: true }));
});

// "Put a space around the link", "Use plain quotes and dashes": the server worked out the corrected text
// (data-fix-to) for the text it saw (data-fix-from); it goes in only while the field still holds that text
// (a newer one is on its way from the live preview otherwise), and then as if typed: the counter follows. A fix shown beside a field after a refused save (data-fix-for) is
// out of date once the field changes, and steps aside.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-fix-into]");
  if (!button) return;
  const field = button.form?.elements.namedItem(button.dataset.fixInto);
  if (!(field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement)) return;
  if (field.value !== button.dataset.fixFrom) return;
  field.value = button.dataset.fixTo;
  field.focus();
  field.dispatchEvent(new Event("input", { bubbles: true }));
});
document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLTextAreaElement || field instanceof HTMLInputElement) || !field.form || !field.name) return;
  for (const row of field.form.querySelectorAll("[data-fix-for]")) {
    if (row.dataset.fixFor === field.name) row.hidden = true;
  }
});

// An interview invitation is always for candidates (webapp.messaging.templates.audience_for): choosing that
// kind in the template editor picks it in "Written for" too.
document.addEventListener("change", (event) => {
  const kind = event.target;
  if (!(kind instanceof HTMLSelectElement) || kind.name !== "kind" || kind.value !== "interview_invitation") return;
  const audience = kind.form?.querySelector("[data-invitation-audience]");
  const radio = audience && kind.form.querySelector(`input[name="audience"][value="${audience.dataset.invitationAudience}"]`);
  if (radio) radio.checked = true;
});

// A link to hand over (a set-password link) is selected whole when focused, ready to copy.
document.addEventListener("focusin", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.matches("[data-select-on-focus]")) event.target.select();
});

// A copy button (data-copy names the field) puts the field's text on the clipboard and says so on itself.
// The clipboard API needs a secure context (HTTPS, or 127.0.0.1); elsewhere the older copy command does.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!(field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement)) return;
  // A clipboard that neither answers nor refuses within a second (an unfocused or busy browser) is not
  // waited for: the older copy command does the job, so the button always says what happened.
  const waited = new Promise((resolve) => setTimeout(() => resolve(false), 1000));
  let copied = await Promise.race([
    navigator.clipboard?.writeText(field.value).then(() => true, () => false) ?? Promise.resolve(false),
    waited,
  ]);
  if (!copied) {
    field.focus();
    field.select();
    copied = document.execCommand("copy");
  }
  button.textContent = copied ? button.dataset.copiedText || "Copied" : "Selected: copy it with your keyboard";
});

// A thread's own poll (the application and prospect pages ask every 2 s) rests while the tab is hidden:
// nobody reads what would arrive, and drawing it would mark it read. Shown again, the thread asks at
// once. (The Inbox's poll rests the same way, in inbox.js.)
document.addEventListener("htmx:beforeRequest", (event) => {
  const elt = event.detail.elt;
  if (document.hidden && elt instanceof Element && elt.matches(".thread-wrap[data-version]")) {
    event.preventDefault();
    askWaitingInstead();
  }
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && document.querySelector(".thread-wrap[data-version]")) {
    document.body.dispatchEvent(new CustomEvent("messages-changed"));
  }
});

// The composer's quick choices of a time ("Their morning", "In 1 hour", "Now") fill its Send at field,
// whose change asks the counter again: it says when the message will leave, on both clocks.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-send-at-for]");
  if (!button) return;
  const field = document.getElementById(button.dataset.sendAtFor);
  if (!(field instanceof HTMLInputElement)) return;
  field.value = button.dataset.sendAt;
  field.dispatchEvent(new Event("change", { bubbles: true }));
});

// A follow-up's template fills its text, as the composer's own picker fills the message.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-follow-up-template-for]");
  if (!select) return;
  const option = select.selectedOptions[0];
  const body = document.getElementById(select.dataset.followUpTemplateFor);
  if (!option || !option.value || !(body instanceof HTMLTextAreaElement)) return;
  body.value = option.dataset.body;
  // As if typed: the counter prices the follow-up again.
  body.dispatchEvent(new Event("input", { bubbles: true }));
});

// @mentions in an internal note: typing "@" and the start of a name offers the people who may see the
// conversation (the listbox the server drew under the field, data-mention-list). Arrows move through
// them, Enter or Tab puts the chosen name in, Escape closes the list; a click chooses too. The field
// keeps the focus throughout (aria-activedescendant names the option shown as chosen). The server reads
// the mentions from the text itself, so a name typed in full without the list mentions just as well.
function mentionQuery(field) {
  const before = field.value.slice(0, field.selectionStart ?? field.value.length);
  const match = /(?:^|[\s(\[{,;:'"])@([^\s@]{0,30}(?: [^\s@]{0,30})?)$/.exec(before);
  return match ? { text: match[1], start: before.length - match[1].length - 1 } : null;
}

function mentionOptions(list) {
  return [...list.querySelectorAll('[role="option"]')].filter((option) => !option.hidden);
}

function closeMentions(field, list) {
  list.hidden = true;
  field.removeAttribute("aria-activedescendant");
  for (const option of list.querySelectorAll('[role="option"]')) option.setAttribute("aria-selected", "false");
}

function showMention(field, list, option) {
  for (const other of list.querySelectorAll('[role="option"]')) other.setAttribute("aria-selected", String(other === option));
  if (option) {
    field.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }
}

function chooseMention(field, list, option) {
  const query = mentionQuery(field);
  if (!query || !option) return;
  const end = field.selectionStart ?? field.value.length;
  field.setRangeText("@" + option.dataset.name + " ", query.start, end, "end");
  closeMentions(field, list);
  field.focus();
}

function mentionStatus(field, text) {
  const status = field.form?.querySelector('[id^="mention-status-"]');
  if (status) status.textContent = text;
}

document.addEventListener("input", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLTextAreaElement) || !field.dataset.mentionList) return;
  const list = document.getElementById(field.dataset.mentionList);
  if (!list) return;
  const query = mentionQuery(field);
  if (!query) {
    closeMentions(field, list);
    return;
  }
  const wanted = query.text.toLowerCase();
  for (const option of list.querySelectorAll('[role="option"]')) {
    const name = option.dataset.name.toLowerCase();
    option.hidden = !(name.startsWith(wanted) || name.split(/\s+/).some((part) => part.startsWith(wanted)));
  }
  const shown = mentionOptions(list);
  if (!shown.length) {
    closeMentions(field, list);
    mentionStatus(field, "Nobody who may see this conversation is called that.");
    return;
  }
  list.hidden = false;
  showMention(field, list, shown[0]);
  mentionStatus(field, `${shown.length} ${shown.length === 1 ? "person" : "people"} to mention: arrows to choose, Enter to pick.`);
});

document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLTextAreaElement) || !field.dataset.mentionList) return;
  const list = document.getElementById(field.dataset.mentionList);
  if (!list || list.hidden) return;
  const shown = mentionOptions(list);
  const current = shown.findIndex((option) => option.id === field.getAttribute("aria-activedescendant"));
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    showMention(field, list, shown[(current + step + shown.length) % shown.length]);
  } else if (event.key === "Enter" || event.key === "Tab") {
    if (current < 0) return;
    event.preventDefault();
    chooseMention(field, list, shown[current]);
  } else if (event.key === "Escape") {
    event.preventDefault();
    closeMentions(field, list);
  }
});

// A click on a name: mousedown, so that the field keeps its focus (and its cursor) while it happens.
document.addEventListener("mousedown", (event) => {
  const option = event.target.closest?.('.mention-list [role="option"]');
  if (!option) return;
  event.preventDefault();
  const list = option.closest(".mention-list");
  const field = document.querySelector(`textarea[data-mention-list="${list.id}"]`);
  if (field) chooseMention(field, list, option);
});

document.addEventListener("focusout", (event) => {
  const field = event.target;
  if (!(field instanceof HTMLTextAreaElement) || !field.dataset.mentionList) return;
  const list = document.getElementById(field.dataset.mentionList);
  if (list) closeMentions(field, list);
});

// The top bar's count of what waits for me (base.html, webapp.web.notifications). Every htmx GET of the
// page (its one poll above all) sends the stamp the count was drawn at; an answer whose X-Relay-Waiting
// header says "<count> <stamp> <reply> <mention>" brings a newer one, the Inbox's 204 included. No timer
// of its own: a page without a poll has the light one in base.html instead.
function waitingBadge() {
  return document.getElementById("waiting");
}

document.addEventListener("htmx:configRequest", (event) => {
  const badge = waitingBadge();
  if (badge && event.detail.verb === "get") event.detail.headers["X-Relay-Waiting"] = badge.dataset.stamp;
});

document.addEventListener("htmx:afterRequest", (event) => {
  const said = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Relay-Waiting");
  const badge = waitingBadge();
  if (!said || !badge) return;
  const [count, stamp, reply, mention] = said.split(" ");
  const before = Number(badge.dataset.count);
  const now = Number(count);
  badge.dataset.stamp = stamp;
  badge.dataset.count = String(now);
  badge.classList.toggle("waiting-none", now === 0);
  document.getElementById("waiting-count").textContent = now > 99 ? "99+" : String(now);
  // The newest reply and mention this page has heard of (never lowered: reading the newest reply and
  // marking it unread again is not news). A reply in a conversation that was unread already is news
  // too, though the count stays where it was.
  const news = (field, value) => {
    const newer = Number(value || 0) > Number(badge.dataset[field] || 0);
    if (newer) badge.dataset[field] = String(Number(value));
    return newer;
  };
  const newReply = news("reply", reply);
  const newMention = news("mention", mention);
  if (now !== before) {
    const live = document.getElementById("waiting-said");
    if (live) live.textContent = `${now} conversation${now === 1 ? "" : "s"} waiting for you`;
  }
  if (newReply) desktopAlert("Relay: a new reply", now, `relay-reply-${badge.dataset.reply}`);
  else if (newMention) desktopAlert("Relay: you were mentioned in a note", now, `relay-mention-${badge.dataset.mention}`);
});

// Desktop alerts: the Notification API, asked for only when the person clicks "Turn on desktop alerts"
// (the top bar, or their notification settings), never on load. Shown for each new reply (or mention),
// in whichever tab heard of it first: every open tab tags its alert with the reply's (mention's) id, so
// the browser shows one. Nothing leaves the browser: the news comes from our own poll.
// A phone's browser (Chrome on Android) has the API but refuses to make a notification from a page (only
// from a service worker): found out at the first alert, remembered for the tab, and said in the settings.
let alertsSupported = "Notification" in window && sessionStorage.getItem("relay-alerts-unsupported") !== "1";

function alertsOn() {
  return alertsSupported && Notification.permission === "granted";
}

function desktopAlert(title, count, tag) {
  if (!alertsOn()) return;
  const badge = waitingBadge();
  let alert;
  try {
    alert = new Notification(title, {
      body: `${count} conversation${count === 1 ? "" : "s"} waiting for you`,
      tag,
      icon: document.querySelector('link[rel="icon"]')?.href,
    });
  } catch {
    alertsSupported = false;
    sessionStorage.setItem("relay-alerts-unsupported", "1");
    showAlertButtons();
    return;
  }
  alert.onclick = () => {
    window.focus();
    if (badge) window.location.href = badge.href;
  };
}

// What the controls say follows the browser's permission: "Turn on desktop alerts" while it may still ask,
// "blocked" (a link to the settings page, which says how to allow them) once it refused, nothing in the
// top bar once they are on. A change made in the browser's own site settings shows without a reload.
function showAlertButtons() {
  const permission = alertsSupported ? Notification.permission : "unsupported";
  for (const button of document.querySelectorAll("[data-alerts-button]")) button.hidden = permission !== "default";
  for (const link of document.querySelectorAll("[data-alerts-blocked]")) link.hidden = permission !== "denied";
  for (const note of document.querySelectorAll("[data-alerts-state]")) {
    note.textContent = permission === "unsupported" ? "This browser cannot show desktop alerts."
      : permission === "granted" ? "Desktop alerts are on in this browser."
      : permission === "denied" ? "Desktop alerts are blocked by this browser. To allow them, open the site settings (the icon left of the address) and allow notifications for this site."
      : "Desktop alerts are off in this browser.";
  }
}
showAlertButtons();
navigator.permissions?.query({ name: "notifications" }).then(
  (status) => status.addEventListener("change", showAlertButtons),
  () => {},
);

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-alerts-button]");
  if (!button || !alertsSupported) return;
  await Notification.requestPermission();
  showAlertButtons();
});

// A page's poll rests in a hidden tab (it would draw, and mark read, what nobody reads). With desktop
// alerts on, the top bar is asked instead, at most every 10 s, in the poll's place: never beside it.
let lastAskedHidden = 0;
function askWaitingInstead() {
  const badge = waitingBadge();
  if (!badge || !alertsOn() || Date.now() - lastAskedHidden < 10000) return;
  lastAskedHidden = Date.now();
  htmx.ajax("GET", badge.dataset.pollUrl, { source: badge, swap: "none" });
}
