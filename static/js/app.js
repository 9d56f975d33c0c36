// Behaviour of the server-rendered pages, kept out of the HTML so the Content-Security-Policy
// can refuse every inline script and event handler:
//   <form data-confirm="Delete this story?">  asks before submitting
//   <select data-autosubmit>                  submits its form when changed
//   <input data-select-on-focus>              selects its text when clicked or focused
//   <button data-copy="input-id">             copies that field's value to the clipboard
// Its own texts come from Django's JavaScript catalogue (/jsi18n/, loaded before it: gettext).
// The confirm() questions are the template's data-confirm, translated with the page.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.requestSubmit();
  }
});

for (const type of ["click", "focusin"]) {
  document.addEventListener(type, (event) => {
    const field = event.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("data-select-on-focus")) {
      field.select();
    }
  });
}

document.addEventListener("click", async (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!(field instanceof HTMLInputElement)) return;
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    button.textContent = gettext("Copied");
  } catch {
    // No clipboard (an insecure origin, or refused): the text is selected for a manual copy.
    button.textContent = gettext("Selected: copy it");
  }
});
