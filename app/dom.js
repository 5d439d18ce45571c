/**
 * Building the screens with plain DOM: `h(tag, props, ...children)` makes an element whose text children
 * become text nodes, so nothing the server or a person sent is ever parsed as HTML (no innerHTML anywhere).
 */

/**
 * An element. `props`: `class`, `on<event>` listeners, boolean attributes as true/false, other attributes
 * as strings (null/undefined/false leave them out). Children: nodes, strings (as text), arrays, or nothing.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces the screen's content and moves focus to its heading, so screen readers announce the change. */
export function show(...nodes) {
  const screen = document.getElementById('screen');
  screen.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  const heading = screen.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

/** An error line, announced when it appears (`role="alert"`); hidden while empty. */
export function alertLine(id) {
  return h('p', { id, class: 'error', role: 'alert', hidden: true });
}

/** Shows (or with no text, hides) an error line. */
export function setAlert(el, text) {
  el.textContent = text ?? '';
  el.hidden = !text;
}

/** A field's label, input and hint, tied together by ids. */
export function field({ id, label, hint, ...input }) {
  const hintId = hint ? `${id}-hint` : undefined;
  return [
    h('label', { for: id }, label),
    hint ? h('p', { id: hintId, class: 'field-hint muted' }, hint) : null,
    h('input', { id, name: id, 'aria-describedby': hintId, ...input }),
  ];
}
