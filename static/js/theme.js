// The dark/light toggle. Loaded in <head> without defer so the stored choice applies before the
// first paint (no flash of the other theme). With nothing stored the page follows the system's
// prefers-color-scheme (app.css); a choice is kept in localStorage as "dark" or "light".
"use strict";

(() => {
  const KEY = "theme";
  const root = document.documentElement;
  const stored = () => {
    try {
      const value = localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch {
      return null; // storage refused (private mode, policy): follow the system
    }
  };
  const system = () => (window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const current = () => stored() || system();

  const choice = stored();
  if (choice) root.dataset.theme = choice;

  // A toggle button with a fixed name: pressed means dark.
  const label = (button) => button.setAttribute("aria-pressed", String(current() === "dark"));

  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.hidden = false;
    label(button);
    button.addEventListener("click", () => {
      const next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try {
        localStorage.setItem(KEY, next);
      } catch {
        // not stored: the choice holds for this page only
      }
      label(button);
    });
    // Following the system: a change of the system's scheme changes the button's label too.
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => label(button));
  });
})();
