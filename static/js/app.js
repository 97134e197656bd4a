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
