/**
 * Moving between the app's screens without reloading: every screen is the same page (index.html), so a
 * link changes the history entry and app.js draws the screen of the new path. `link` is a real link, so
 * it also works opened in a new tab.
 */
import { h } from './dom.js';

let onNavigate = () => {};

/** Set by app.js: what draws the screen for the current location. */
export function setRenderer(render) {
  onNavigate = render;
}

/** Goes to `url` (a path under /app/), keeping `state` with the entry (a notice for the next screen). */
export function navigate(url, state = null, { replace = false } = {}) {
  if (replace) history.replaceState(state, '', url);
  else history.pushState(state, '', url);
  return onNavigate();
}

export function link(href, text, props = {}) {
  return h('a', {
    href,
    ...props,
    onclick(event) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(href);
    },
  }, text);
}
