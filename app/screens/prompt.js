/**
 * The prompt screen (`/app/prompt#<id>`, where a notification leads): what asks, and the answer. A
 * sign-in prompt needs the number shown on the sign-in page; a test or CIBA prompt only "Approve". Both
 * can be cancelled, or denied as "This wasn't me". Each refusal of the server is shown in words; one that
 * ends the prompt (expired, already answered, the third wrong number) leaves only the way back.
 */
import { ApiError, approvePrompt, denyPrompt, getPrompt } from '../api.js';
import { loadDevice } from '../device.js';
import { alertLine, field, h, setAlert, show } from '../dom.js';
import { errorText, isFinal, isUnpaired } from '../errors.js';
import { link, navigate } from '../nav.js';
import { forgetLocally } from '../push.js';
import { t } from '../strings.js';
import { promptDetails } from './prompt-details.js';

const HEADINGS = { 'sign-in': 'signInHeading', test: 'testHeading', ciba: 'cibaHeading' };

function lead(p) {
  const client = p.client?.name ?? '';
  if (p.kind === 'test') return t('testLead');
  return t(p.kind === 'ciba' ? 'cibaLead' : 'signInLead', { client });
}

const backLink = () => h('p', { class: 'links' }, link('/app/', t('back')));

function outcome(heading, text) {
  show(h('h1', {}, heading), h('p', { class: 'notice', role: 'status' }, text), backLink());
}

/** A screen for a prompt that cannot be shown or answered any more. */
function ended(err) {
  show(h('h1', {}, t('promptGone')), h('p', { class: 'error', role: 'alert' }, errorText(err)), backLink());
}

/** "Expires in N s", counting down; calls `onExpired` at 0. Returns its stop function. */
function countdown(el, expiresAt, onExpired) {
  const end = Date.parse(expiresAt);
  if (Number.isNaN(end)) return () => {};
  const tick = () => {
    const seconds = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    el.textContent = t('expiresIn', { seconds });
    if (seconds === 0) {
      clearInterval(timer);
      onExpired();
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  return () => clearInterval(timer);
}

function numberField(digits, kind) {
  return field({
    id: 'number', label: t(kind === 'test' ? 'numberPairing' : 'number'), type: 'text', inputmode: 'numeric', pattern: '[0-9]*', autocomplete: 'off',
    required: true, minlength: digits ?? undefined, maxlength: digits ?? undefined, size: digits ?? undefined,
    enterkeyhint: 'done', spellcheck: 'false', class: 'number',
  });
}

function answerForm(p, stopCountdown, app) {
  const status = alertLine('prompt-error');
  // The protocol says which prompts take a number: a sign-in's and a pairing's (never a CIBA request's).
  const needsNumber = typeof p.numberDigits === 'number';
  const approve = h('button', { type: 'submit' }, t('approve'));
  const cancel = h('button', { type: 'button', class: 'secondary-action' }, t('cancel'));
  const notMe = h('button', { type: 'button', class: 'link danger' }, t('notMe'));
  const form = h('form', { novalidate: true }, needsNumber ? numberField(p.numberDigits, p.kind) : null, status, h('div', { class: 'actions' }, approve, cancel), notMe);
  const number = form.querySelector('#number');
  const buttons = [approve, cancel, notMe];
  const busy = (on) => buttons.forEach((b) => (b.disabled = on));

  async function answer(send, done) {
    busy(true);
    try {
      await send();
      stopCountdown();
      done();
    } catch (err) {
      if (isUnpaired(err)) await forgetLocally(await app.registration());
      if (isFinal(err)) {
        stopCountdown();
        return ended(err);
      }
      setAlert(status, errorText(err));
      busy(false);
      if (number && err.code === 'wrong_number') {
        number.value = '';
        number.setAttribute('aria-invalid', 'true');
        number.focus();
      }
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const typed = number ? number.value.replace(/\s+/g, '') : undefined;
    if (number && !typed) {
      setAlert(status, t('error.number_required'));
      number.setAttribute('aria-invalid', 'true');
      return number.focus();
    }
    number?.setAttribute('aria-describedby', 'prompt-error');
    answer(() => approvePrompt(p.id, typed), () => outcome(t('approvedHeading'), t(p.kind === 'test' ? 'approvedTest' : 'approved')));
  });
  cancel.addEventListener('click', () => answer(() => denyPrompt(p.id, 'cancel'), () => outcome(t('deniedHeading'), t('cancelled'))));
  notMe.addEventListener('click', () => answer(() => denyPrompt(p.id, 'not-me'), () => outcome(t('deniedHeading'), t('deniedNotMe'))));
  return form;
}

export async function promptScreen(app) {
  const id = decodeURIComponent(location.hash.slice(1));
  const device = await loadDevice();
  if (!id || !device?.deviceId) return navigate('/app/', null, { replace: true });
  show(h('p', { class: 'muted' }, t('loading')));
  let p;
  try {
    p = await getPrompt(id);
  } catch (err) {
    if (isUnpaired(err)) await forgetLocally(await app.registration());
    return ended(err);
  }
  const left = h('p', { class: 'muted countdown' });
  let stop = () => {};
  const form = answerForm(p, () => stop(), app);
  show(h('h1', {}, t(HEADINGS[p.kind] ?? 'signInHeading')), h('p', { class: 'lead' }, lead(p)), promptDetails(p), left, form);
  stop = countdown(left, p.expiresAt, () => ended(new ApiError(410, 'expired', '')));
  return () => stop();
}
