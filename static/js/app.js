// When an htmx request fails in a way the page cannot show (a 403, a 500, a dropped connection),
// say so in the flash area instead of leaving the user looking at a page that did nothing.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  const text = status === 403 ? "You do not have the right to do this."
    : status === 404 ? "That is no longer there. Reload the page."
    : status === 429 ? "Too many requests. Wait a moment and try again."
    : "Something went wrong. Try again in a moment.";
  showFlash(text, "error");
});
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

// Opening a channel's tab also picks that channel in the composer, when the user may write on it.
document.addEventListener("click", (event) => {
  const tab = event.target.closest("[data-tab-channel]");
  if (!tab) return;
  const radio = document.querySelector(`#composer input[name="channel"][value="${tab.dataset.tabChannel}"]`);
  if (radio && !radio.checked) {
    radio.checked = true;
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
