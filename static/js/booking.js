// The booking page shows times in the candidate's zone: the one of their phone number when it has one
// (the server knows it), else the one this device is set to — asked for once, by reloading with it.
(() => {
  const page = document.querySelector("[data-zone-source]");
  if (!page || page.dataset.zoneSource === "number") return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const url = new URL(window.location.href);
  if (!zone || zone === page.dataset.zone || url.searchParams.get("tz") === zone) return;
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
